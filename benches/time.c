/*
 * benches/time.c - time and preemption: slp_tick, slp_select, sleep lateness beside
 * Boost.Fiber, and the cost of arming and cancelling a timer among many pending ones. Every
 * result is printed beside its baseline, measured in the same run, interleaved repetition by
 * repetition (so that clock or load drift hits both alike), as the median of RUNS repetitions
 * after one warm-up.
 *
 *   1. tick     slp_tick(1) in a tight loop, ns per call: from the main tasklet and from a
 *               tasklet outside any watchdog run; from a tasklet inside slp_run_watchdog with
 *               a budget never reached (ticks, and SLP_WATCHDOG_TIME); from a tasklet while
 *               ANOTHER thread is inside a watchdog run. Baseline: the same loop calling
 *               slp_bench_noop_tick(1), an empty function of the same signature in a separate
 *               shared library (benches/time_noop.c), from the same place.
 *   2. select   slp_select over 2 RECEIVE cases on buffered channels that hold items, ns per
 *               call (nothing blocks or switches): both ready (the first wins), and only the
 *               second ready. Baseline: slp_channel_receive on one buffered channel with
 *               items. The channels are refilled between timed chunks (not timed).
 *   3. sleep    A storm: STORM tasklets each slp_sleep ROUNDS times for random durations of
 *               0.1-5 ms under slp_run_wait; each wake's lateness is (CLOCK_MONOTONIC after)
 *               - (CLOCK_MONOTONIC before) - (duration asked): median and p99 over all
 *               wakes. Then the main tasklet sleeps 1 ms ALONE times by itself (its thread
 *               sleeps in the OS): median and p99. Baseline: the same program written with
 *               Boost.Fiber (benches/peers/sleep_storm_fiber.cpp, the same durations from the
 *               same seeds), run as a child process between libslp's repetitions.
 *   4. timers   A receiver tasklet calls slp_channel_receive_timeout(ch, &v, T) on an empty
 *               channel and a sender tasklet pairs it at once (default preference: the
 *               receiver runs first), so every round arms a timer and cancels it; ns per
 *               round. Measured with PENDING other tasklets asleep for an hour (their timers
 *               pending in the same heap) and with none. The round also contains the channel
 *               transfer and two switches, so the same round with a plain slp_channel_receive
 *               (no timer) is measured too, and "arm+cancel" is the difference (timeout round
 *               - plain round, per repetition). T = 10 s is earlier than every pending timer:
 *               the new timer goes to the top of the heap and its cancel takes it from the
 *               top, the worst case of a binary heap; T = 2 h is later than all of them: it
 *               stays at the bottom.
 *
 * Usage: time [--quick] [--peer PATH]   (--quick: tiny sizes, for CI: a few seconds)
 * Build and run: scripts/bench-time.sh (pins the process to one CPU). Errors (a failing call,
 * a sleep that woke early, a timer that fired when it should not have) exit with status 1;
 * timing never fails the run.
 */
#define _GNU_SOURCE

#include <slp.h>

#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int32_t slp_bench_noop_tick(uint32_t n); /* benches/time_noop.c, its own shared library */

/* ---- sizes ------------------------------------------------------------------------------- */

static int g_runs = 5;
static long g_tick_n = 20000000;     /* calls per tick measurement */
static long g_select_n = 1000000;    /* calls per select measurement */
static long g_select_chunk = 10000;  /* buffered items per timed chunk */
static long g_storm = 1000;          /* sleeping tasklets */
static long g_rounds = 5;            /* sleeps each */
static long g_alone = 200;           /* 1 ms sleeps of the main tasklet alone */
static long g_pending = 100000;      /* far-future timers pending */
static long g_timer_rounds = 200000; /* arm+cancel rounds per measurement */
static const char *g_peer;           /* Boost.Fiber peer, or NULL */
static const uint64_t SEED = 20240611;

/* ---- helpers ----------------------------------------------------------------------------- */

static void die(const char *what, slp_status st)
{
    fprintf(stderr, "time: %s failed: %s (%d): %s\n", what, slp_status_str(st), (int)st,
            slp_last_error());
    exit(1);
}

#define CHECK(call)                                                                        \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK)                                                                 \
            die(#call, st_);                                                               \
    } while (0)

static void fail(const char *msg)
{
    fprintf(stderr, "time: %s\n", msg);
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time (user + system) of the process so far, ns. */
static int64_t cpu_ns(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return ((int64_t)u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The pct-th percentile (nearest rank below) of v[0..n) (sorts v). */
static int64_t percentile(int64_t *v, long n, int pct)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_i64);
    long i = n * pct / 100;
    return v[i < n ? i : n - 1];
}

/* splitmix64; the peer uses the same generator and seeds. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t storm_duration(uint64_t *s)
{
    return 100000 + (int64_t)(next_rand(s) % 4900001); /* 0.1 .. 5 ms */
}

/* One table row: key, result, baseline, ratio, description. */
static void row(const char *key, double result, double base, const char *fmt, const char *what)
{
    char r[32], b[32], q[32];
    snprintf(r, sizeof r, fmt, result);
    if (base == base) { /* not NaN */
        snprintf(b, sizeof b, fmt, base);
        if (base > 0)
            snprintf(q, sizeof q, "%.2fx", result / base);
        else
            snprintf(q, sizeof q, "-");
    } else {
        snprintf(b, sizeof b, "-");
        snprintf(q, sizeof q, "-");
    }
    printf("  %-18s %10s %10s %8s  %s\n", key, r, b, q, what);
}

static void header(const char *title)
{
    printf("\n%s\n  %-18s %10s %10s %8s  %s\n", title, "key", "result", "baseline", "ratio",
           "result / baseline");
}

/* ---- 1. slp_tick --------------------------------------------------------------------------- */

/* ns per call of f(1) over n calls. Two copies of the loop, so that each is a direct call
 * through the PLT exactly as a host writes it. */
static double loop_slp_tick(long n)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (slp_tick(1) != SLP_OK)
            fail("slp_tick(1) did not return SLP_OK");
    return (double)(now_ns() - t0) / (double)n;
}

static double loop_noop_tick(long n)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (slp_bench_noop_tick(1) != SLP_OK)
            fail("slp_bench_noop_tick(1) did not return 0");
    return (double)(now_ns() - t0) / (double)n;
}

struct tick_job {
    bool real; /* slp_tick, else the noop */
    long n;
    double ns;
};

static int32_t tick_tasklet(void *arg)
{
    struct tick_job *j = arg;
    j->ns = j->real ? loop_slp_tick(j->n) : loop_noop_tick(j->n);
    return 0;
}

enum { IN_RUN, IN_WATCHDOG, IN_WATCHDOG_TIME };

static double tick_in_tasklet(bool real, int where, long n)
{
    struct tick_job j = {real, n, 0};
    CHECK(slp_tasklet_new(tick_tasklet, &j, NULL));
    if (where == IN_RUN) {
        CHECK(slp_run());
    } else {
        slp_tasklet *t = (slp_tasklet *)1;
        /* A budget never reached: 2^63 ticks, or an hour of the clock. */
        if (where == IN_WATCHDOG)
            CHECK(slp_run_watchdog(UINT64_C(1) << 63, 0, &t));
        else
            CHECK(slp_run_watchdog(UINT64_C(3600000000000), SLP_WATCHDOG_TIME, &t));
        if (t != NULL)
            fail("slp_run_watchdog interrupted a tasklet whose budget was never reached");
    }
    if (j.ns <= 0)
        fail("the tick tasklet did not run");
    return j.ns;
}

/* Another thread that sits inside slp_run_watchdog (its tasklet waits on a semaphore, so the
 * thread uses no CPU) while this thread measures. */
static sem_t g_other_in_run, g_other_leave;

static int32_t other_waiter(void *arg)
{
    (void)arg;
    sem_post(&g_other_in_run);
    while (sem_wait(&g_other_leave) != 0) {
    }
    return 0;
}

static void *other_thread(void *arg)
{
    (void)arg;
    slp_tasklet *t = NULL;
    CHECK(slp_tasklet_new(other_waiter, NULL, NULL));
    CHECK(slp_run_watchdog(UINT64_C(1) << 63, 0, &t));
    if (t != NULL)
        fail("the other thread's watchdog interrupted its tasklet");
    CHECK(slp_thread_unregister());
    return NULL;
}

enum { T_MAIN, T_TASKLET, T_WATCHDOG, T_WATCHDOG_TIME, T_OTHER_THREAD, T_COUNT };

static void bench_tick(void)
{
    static const char *const key[T_COUNT] = {"tick.main", "tick.tasklet", "tick.watchdog",
                                             "tick.watchdog_time", "tick.other_thread"};
    static const char *const what[T_COUNT] = {
        "main tasklet, no watchdog run",
        "tasklet in slp_run, no watchdog run",
        "tasklet in slp_run_watchdog(2^63 ticks), budget never reached",
        "tasklet in slp_run_watchdog(1 h, SLP_WATCHDOG_TIME), never reached",
        "tasklet in slp_run while ANOTHER thread is in slp_run_watchdog",
    };
    double res[T_COUNT][16], base[T_COUNT][16];
    long n = g_tick_n;
    sem_init(&g_other_in_run, 0, 0);
    sem_init(&g_other_leave, 0, 0);
    for (int r = -1; r < g_runs; r++) { /* r == -1: warm-up */
        long m = r < 0 ? n / 10 + 1 : n;
        double rr[T_COUNT], bb[T_COUNT];
        bb[T_MAIN] = loop_noop_tick(m);
        rr[T_MAIN] = loop_slp_tick(m);
        bb[T_TASKLET] = tick_in_tasklet(false, IN_RUN, m);
        rr[T_TASKLET] = tick_in_tasklet(true, IN_RUN, m);
        bb[T_WATCHDOG] = tick_in_tasklet(false, IN_WATCHDOG, m);
        rr[T_WATCHDOG] = tick_in_tasklet(true, IN_WATCHDOG, m);
        bb[T_WATCHDOG_TIME] = tick_in_tasklet(false, IN_WATCHDOG_TIME, m);
        rr[T_WATCHDOG_TIME] = tick_in_tasklet(true, IN_WATCHDOG_TIME, m);
        pthread_t other;
        if (pthread_create(&other, NULL, other_thread, NULL) != 0)
            fail("pthread_create failed");
        while (sem_wait(&g_other_in_run) != 0) {
        }
        bb[T_OTHER_THREAD] = tick_in_tasklet(false, IN_RUN, m);
        rr[T_OTHER_THREAD] = tick_in_tasklet(true, IN_RUN, m);
        sem_post(&g_other_leave);
        pthread_join(other, NULL);
        if (r >= 0)
            for (int k = 0; k < T_COUNT; k++) {
                res[k][r] = rr[k];
                base[k][r] = bb[k];
            }
    }
    char title[200];
    snprintf(title, sizeof title,
             "1. slp_tick(1) in a tight loop, ns per call (%ld calls, median of %d); baseline: "
             "an empty function in another shared library, same loop, same place",
             n, g_runs);
    header(title);
    for (int k = 0; k < T_COUNT; k++)
        row(key[k], median(res[k], g_runs), median(base[k], g_runs), "%.2f", what[k]);
    fflush(stdout);
}

/* ---- 2. slp_select --------------------------------------------------------------------------- */

static slp_channel *new_buffered(uint32_t capacity)
{
    slp_channel_options o;
    slp_channel_options_init(&o);
    o.capacity = capacity;
    slp_channel *ch = NULL;
    CHECK(slp_channel_new_ex(&o, &ch));
    return ch;
}

static void fill(slp_channel *ch, long n)
{
    for (long i = 0; i < n; i++)
        CHECK(slp_channel_send_timeout(ch, (void *)(intptr_t)(i + 1), 0));
}

enum { S_RECEIVE, S_BOTH_READY, S_SECOND_READY, S_COUNT };

/* ns per call: `n` calls in chunks of g_select_chunk buffered items (refills not timed). */
static double select_run(int kind, long n, slp_channel *a, slp_channel *b, slp_channel *empty,
                         slp_channel *c2)
{
    int64_t total = 0;
    long done = 0;
    while (done < n) {
        long chunk = n - done < g_select_chunk ? n - done : g_select_chunk;
        slp_channel *src = kind == S_SECOND_READY ? c2 : a;
        fill(src, chunk);
        slp_select_case c[2];
        memset(c, 0, sizeof c);
        c[0].op = c[1].op = SLP_SELECT_RECEIVE;
        c[0].channel = kind == S_SECOND_READY ? empty : a;
        c[1].channel = kind == S_SECOND_READY ? c2 : b;
        size_t want = kind == S_SECOND_READY ? 1 : 0;
        int64_t t0 = now_ns();
        if (kind == S_RECEIVE) {
            for (long i = 0; i < chunk; i++) {
                void *v = NULL;
                if (slp_channel_receive(a, &v) != SLP_OK || v != (void *)(intptr_t)(i + 1))
                    fail("slp_channel_receive on a buffered channel gave a wrong result");
            }
        } else {
            for (long i = 0; i < chunk; i++) {
                size_t idx = 99;
                if (slp_select(c, 2, -1, &idx) != SLP_OK || idx != want ||
                    c[want].value != (void *)(intptr_t)(i + 1))
                    fail("slp_select over ready buffered channels gave a wrong result");
            }
        }
        total += now_ns() - t0;
        done += chunk;
    }
    return (double)total / (double)n;
}

static void bench_select(void)
{
    slp_channel *a = new_buffered((uint32_t)g_select_chunk);
    slp_channel *b = new_buffered((uint32_t)g_select_chunk + 1);
    slp_channel *empty = new_buffered(1);
    slp_channel *c2 = new_buffered((uint32_t)g_select_chunk);
    /* b keeps one item throughout, so it is always ready; in S_BOTH_READY a wins (first). */
    fill(b, 1);
    double v[S_COUNT][16];
    for (int r = -1; r < g_runs; r++) {
        long n = r < 0 ? g_select_chunk : g_select_n;
        for (int k = 0; k < S_COUNT; k++) {
            double x = select_run(k, n, a, b, empty, c2);
            if (r >= 0)
                v[k][r] = x;
        }
    }
    if (slp_channel_balance(a) != 0 || slp_channel_balance(b) != 1 || slp_channel_balance(empty) != 0 ||
        slp_channel_balance(c2) != 0)
        fail("unexpected channel balances after the select runs");
    char title[200];
    snprintf(title, sizeof title,
             "2. slp_select over 2 buffered channels holding items (main tasklet, nothing blocks), "
             "ns per call (%ld calls, median of %d); baseline: slp_channel_receive on one",
             g_select_n, g_runs);
    header(title);
    double base = median(v[S_RECEIVE], g_runs);
    row("select.both_ready", median(v[S_BOTH_READY], g_runs), base, "%.1f",
        "select, 2 RECEIVE cases both ready (the first wins)");
    row("select.second_ready", median(v[S_SECOND_READY], g_runs), base, "%.1f",
        "select, 2 RECEIVE cases, only the second ready");
    slp_channel_release(a);
    slp_channel_release(b);
    slp_channel_release(empty);
    slp_channel_release(c2);
    fflush(stdout);
}

/* ---- 3. sleep storm ------------------------------------------------------------------------ */

static int64_t *g_late;      /* g_storm * g_rounds latenesses */
static long g_storm_left;    /* sleepers not yet done */
static long g_early;         /* wakes before the deadline (a contract violation) */

static int32_t storm_tasklet(void *arg)
{
    long i = (long)(intptr_t)arg;
    uint64_t s = SEED ^ ((uint64_t)i * 0xD1B54A32D192ED03ull);
    for (long k = 0; k < g_rounds; k++) {
        int64_t d = storm_duration(&s);
        int64_t t0 = now_ns();
        slp_status st = slp_sleep(d);
        int64_t late = now_ns() - t0 - d;
        if (st != SLP_OK)
            die("slp_sleep in the storm", st);
        if (late < 0)
            g_early++;
        g_late[i * g_rounds + k] = late;
    }
    if (--g_storm_left == 0)
        return slp_scheduler_wakeup(slp_thread_id()); /* the storm is over: end slp_run_wait */
    return 0;
}

struct lateness {
    double storm_med, storm_p99, alone_med, alone_p99, storm_cpu, alone_cpu; /* ns */
};

static struct lateness storm_libslp(long storm, long alone)
{
    struct lateness L;
    long n = storm * g_rounds;
    g_storm_left = storm;
    int64_t c0 = cpu_ns();
    for (long i = 0; i < storm; i++)
        CHECK(slp_tasklet_new(storm_tasklet, (void *)(intptr_t)i, NULL));
    slp_status st = slp_run_wait(-1);
    if (st != SLP_OK)
        die("slp_run_wait(-1) serving the sleep storm", st);
    if (g_storm_left != 0 || slp_runcount() != 1)
        fail("the sleep storm ended with sleepers left");
    L.storm_cpu = (double)(cpu_ns() - c0);
    L.storm_med = (double)percentile(g_late, n, 50);
    L.storm_p99 = (double)percentile(g_late, n, 99);
    int64_t *solo = malloc((size_t)alone * sizeof *solo);
    if (!solo)
        fail("out of memory");
    c0 = cpu_ns();
    for (long k = 0; k < alone; k++) {
        int64_t t0 = now_ns();
        CHECK(slp_sleep(1000000));
        int64_t late = now_ns() - t0 - 1000000;
        if (late < 0)
            g_early++;
        solo[k] = late;
    }
    L.alone_cpu = (double)(cpu_ns() - c0);
    L.alone_med = (double)percentile(solo, alone, 50);
    L.alone_p99 = (double)percentile(solo, alone, 99);
    free(solo);
    if (g_early)
        fail("slp_sleep woke before the time it was asked for");
    return L;
}

static bool storm_peer(long storm, long alone, struct lateness *L)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' %ld %ld %ld %llu", g_peer, storm, g_rounds, alone,
             (unsigned long long)SEED);
    FILE *p = popen(cmd, "r");
    if (!p)
        fail("popen of the Boost.Fiber peer failed");
    long long a, b, c, d, e, f;
    long early;
    int got = fscanf(p, "%lld %lld %lld %lld %ld %lld %lld", &a, &b, &c, &d, &early, &e, &f);
    int rc = pclose(p);
    if (got != 7 || rc != 0) {
        fprintf(stderr, "time: the Boost.Fiber peer (%s) failed (status %d)\n", g_peer, rc);
        exit(1);
    }
    if (early)
        fprintf(stderr, "time: note: Boost.Fiber woke %ld sleepers early\n", early);
    L->storm_med = (double)a;
    L->storm_p99 = (double)b;
    L->alone_med = (double)c;
    L->alone_p99 = (double)d;
    L->storm_cpu = (double)e;
    L->alone_cpu = (double)f;
    return true;
}

static void bench_storm(void)
{
    g_late = malloc((size_t)(g_storm * g_rounds) * sizeof *g_late);
    if (!g_late)
        fail("out of memory");
    double s[6][16], f[6][16];
    for (int r = -1; r < g_runs; r++) {
        struct lateness a = storm_libslp(g_storm, g_alone), b = {NAN, NAN, NAN, NAN, NAN, NAN};
        if (g_peer)
            storm_peer(g_storm, g_alone, &b);
        if (r >= 0) {
            s[0][r] = a.storm_med, s[1][r] = a.storm_p99, s[2][r] = a.alone_med, s[3][r] = a.alone_p99;
            f[0][r] = b.storm_med, f[1][r] = b.storm_p99, f[2][r] = b.alone_med, f[3][r] = b.alone_p99;
            s[4][r] = a.storm_cpu, s[5][r] = a.alone_cpu, f[4][r] = b.storm_cpu, f[5][r] = b.alone_cpu;
        }
    }
    char title[240];
    snprintf(title, sizeof title,
             "3. sleep lateness, us (actual - asked, CLOCK_MONOTONIC; median of %d runs); "
             "baseline: Boost.Fiber %s",
             g_runs, g_peer ? "(sleep_for, round_robin), same shape" : "not run (no --peer)");
    header(title);
    static const char *const key[6] = {"storm.median", "storm.p99", "alone.median", "alone.p99",
                                       "storm.cpu_ms", "alone.cpu_ms"};
    char what[6][160];
    snprintf(what[0], sizeof what[0], "%ld tasklets x %ld sleeps of 0.1-5 ms, slp_run_wait: median wake", g_storm, g_rounds);
    snprintf(what[1], sizeof what[1], "the same storm: 99th percentile");
    snprintf(what[2], sizeof what[2], "main tasklet alone, %ld sleeps of 1 ms: median", g_alone);
    snprintf(what[3], sizeof what[3], "main tasklet alone: 99th percentile");
    snprintf(what[4], sizeof what[4], "CPU time (user+sys, getrusage) of the whole storm, ms");
    snprintf(what[5], sizeof what[5], "CPU time of the %ld sleeps alone, ms", g_alone);
    for (int k = 0; k < 6; k++) {
        double scale = k < 4 ? 1000 : 1e6;
        double base = g_peer ? median(f[k], g_runs) / scale : NAN;
        row(key[k], median(s[k], g_runs) / scale, base, "%.1f", what[k]);
    }
    free(g_late);
    fflush(stdout);
}

/* ---- 4. timer arm + cancel -------------------------------------------------------------------- */

static slp_channel *g_tch;
static long g_tn;
static int64_t g_ttimeout; /* < 0: plain receive */
static double g_tns;

static int32_t timer_receiver(void *arg)
{
    (void)arg;
    int64_t t0 = now_ns();
    for (long i = 0; i < g_tn; i++) {
        void *v = NULL;
        slp_status st = g_ttimeout < 0 ? slp_channel_receive(g_tch, &v)
                                       : slp_channel_receive_timeout(g_tch, &v, g_ttimeout);
        if (st != SLP_OK)
            die("slp_channel_receive_timeout in the timer round", st);
        if (v != (void *)(intptr_t)(i + 1))
            fail("the timer round received a wrong value");
    }
    g_tns = (double)(now_ns() - t0) / (double)g_tn;
    return 0;
}

static int32_t timer_sender(void *arg)
{
    (void)arg;
    for (long i = 0; i < g_tn; i++) {
        slp_status st = slp_channel_send(g_tch, (void *)(intptr_t)(i + 1));
        if (st != SLP_OK)
            die("slp_channel_send in the timer round", st);
    }
    return 0;
}

static double timer_round(int64_t timeout, long n)
{
    g_ttimeout = timeout;
    g_tn = n;
    g_tns = 0;
    CHECK(slp_tasklet_new(timer_receiver, NULL, NULL)); /* runs first: blocks, timer armed */
    CHECK(slp_tasklet_new(timer_sender, NULL, NULL));
    CHECK(slp_run());
    if (g_tns <= 0 || slp_channel_balance(g_tch) != 0)
        fail("the timer round did not complete");
    return g_tns;
}

static int32_t far_sleeper(void *arg)
{
    (void)arg;
    slp_status st = slp_sleep(INT64_C(3600000000000)); /* an hour: killed long before */
    if (st == SLP_OK)
        fail("a sleeper of one hour woke");
    return st == SLP_E_KILLED ? SLP_E_KILLED : st;
}

static slp_tasklet **add_sleepers(long n)
{
    slp_tasklet **h = malloc((size_t)n * sizeof *h);
    if (!h)
        fail("out of memory");
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.stack_size = 16384; /* the smallest stack: 100,000 of them */
    for (long i = 0; i < n; i++) {
        slp_status st = slp_tasklet_new_ex(far_sleeper, NULL, &o, &h[i]);
        if (st != SLP_OK) {
            fprintf(stderr, "time: creating sleeper %ld of %ld failed\n", i + 1, n);
            die("slp_tasklet_new_ex", st);
        }
    }
    CHECK(slp_run()); /* each runs and goes to sleep; the run returns with only sleepers left */
    for (long i = 0; i < n; i++)
        if (!slp_tasklet_blocked(h[i]))
            fail("a far sleeper is not blocked");
    return h;
}

static void remove_sleepers(slp_tasklet **h, long n)
{
    for (long i = 0; i < n; i++) {
        if (!slp_tasklet_blocked(h[i]))
            fail("a far sleeper woke during the measurement");
        CHECK(slp_tasklet_kill(h[i], true));
    }
    CHECK(slp_run());
    for (long i = 0; i < n; i++) {
        if (slp_tasklet_alive(h[i]))
            fail("a killed sleeper is still alive");
        slp_tasklet_release(h[i]);
    }
    free(h);
}

enum { R_PLAIN, R_EARLY, R_LATE, R_COUNT };

static void bench_timers(void)
{
    static const int64_t timeout[R_COUNT] = {-1, INT64_C(10000000000), INT64_C(7200000000000)};
    CHECK(slp_channel_new(&g_tch));
    double v[2][R_COUNT][16]; /* [0 pending / g_pending pending][kind][run] */
    for (int k = 0; k < R_COUNT; k++)
        (void)timer_round(timeout[k], g_timer_rounds / 10 + 1); /* warm-up */
    int64_t setup = 0;
    for (int r = 0; r < g_runs; r++) {
        for (int k = 0; k < R_COUNT; k++)
            v[0][k][r] = timer_round(timeout[k], g_timer_rounds);
        int64_t t0 = now_ns();
        slp_tasklet **h = add_sleepers(g_pending);
        setup += now_ns() - t0;
        for (int k = 0; k < R_COUNT; k++)
            v[1][k][r] = timer_round(timeout[k], g_timer_rounds);
        t0 = now_ns();
        remove_sleepers(h, g_pending);
        setup += now_ns() - t0;
    }
    char title[260];
    snprintf(title, sizeof title,
             "4. timer arm+cancel: receive_timeout on an empty channel, paired at once, ns per round "
             "(%ld rounds, median of %d); result: %ld timers pending, baseline: none",
             g_timer_rounds, g_runs, g_pending);
    header(title);
    double med[2][R_COUNT];
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < R_COUNT; k++) {
            double tmp[16];
            memcpy(tmp, v[p][k], sizeof tmp);
            med[p][k] = median(tmp, g_runs);
        }
    row("round.plain", med[1][R_PLAIN], med[0][R_PLAIN], "%.1f",
        "plain slp_channel_receive round (no timer): transfer + 2 switches");
    row("round.timeout_10s", med[1][R_EARLY], med[0][R_EARLY], "%.1f",
        "receive_timeout(10 s) round: timer earlier than every pending one");
    row("round.timeout_2h", med[1][R_LATE], med[0][R_LATE], "%.1f",
        "receive_timeout(2 h) round: timer later than every pending one");
    /* arm+cancel: (timeout round - plain round) per run, then the median. */
    for (int k = R_EARLY; k <= R_LATE; k++) {
        double d[2][16];
        for (int p = 0; p < 2; p++)
            for (int r = 0; r < g_runs; r++)
                d[p][r] = v[p][k][r] - v[p][R_PLAIN][r];
        row(k == R_EARLY ? "armcancel.10s" : "armcancel.2h", median(d[1], g_runs),
            median(d[0], g_runs), "%.1f",
            k == R_EARLY ? "arm+cancel = timeout_10s round - plain round"
                         : "arm+cancel = timeout_2h round - plain round");
    }
    printf("  (creating, then killing %ld sleepers took %.0f ms per run, not timed above)\n",
           g_pending, (double)setup / 1e6 / g_runs);
    slp_channel_release(g_tch);
    fflush(stdout);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            g_peer = argv[++i];
        else {
            fprintf(stderr, "usage: time [--quick] [--peer PATH]\n");
            return 1;
        }
    }
    if (quick) {
        g_runs = 3;
        g_tick_n = 200000;
        g_select_n = 20000;
        g_select_chunk = 5000;
        g_storm = 100;
        g_rounds = 2;
        g_alone = 20;
        g_pending = 1000;
        g_timer_rounds = 5000;
    }
    CHECK(slp_thread_register("time"));
    printf("libslp %s time and preemption benchmark%s; pid %d\n", SLP_VERSION_STRING,
           quick ? " (--quick: tiny sizes, numbers not meaningful)" : "", (int)getpid());
    bench_tick();
    bench_select();
    bench_storm();
    bench_timers();
    CHECK(slp_thread_unregister());
    return 0;
}
