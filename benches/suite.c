/*
 * benches/suite.c - libslp's side of the side-by-side benchmark suite (libslp beside Go and
 * Boost.Fiber, scripts/bench-suite.sh), plus the pthread baselines. C11 against the public
 * header only.
 *
 *   suite WORKLOAD N      runs WORKLOAD once with size N and prints its result lines,
 *                         `RESULT <workload> <metric> <value>`, on stdout (all other output
 *                         goes to stderr); exit 0. Any error (a call returning an unexpected
 *                         status, a value out of order, a count that does not add up) prints a
 *                         message on stderr and exits 1; a usage error exits 2; a workload this
 *                         program does not implement exits 3 ("unsupported workload").
 *
 * Workloads (the shared protocol; the single-thread ones run on the calling OS thread only,
 * and the script pins them to one CPU):
 *
 *   yield           two tasklets each call slp_schedule() N times; ns_per_switch = elapsed / 2N
 *   spawn_batch     N tasklets, 1000 at a time: create 1000 (slp_tasklet_new, a function that
 *                   only returns), slp_run until all have ended, release the 1000 handles;
 *                   ns_per_tasklet = elapsed / N. libslp's defaults: the thread's stack pool
 *                   keeps the recent peak of live stacks (guard pages kept), so every batch
 *                   after the first reuses the stacks instead of mapping new ones; the peers
 *                   reuse stacks too (Go's stack cache, a Boost pooled_fixedsize_stack).
 *   spawn_one       create one tasklet, slp_run it to its end, release it; N times; ns_per_tasklet
 *   pingpong        tasklet A sends i on `ping` and receives it back on `pong`, tasklet B the
 *                   other way round (two rendezvous channels, default preference); N round
 *                   trips, values checked; ns_per_message = elapsed / 2N
 *   ring            503 tasklets in a ring, tasklet k receives on channel k and sends to channel
 *                   (k+1) % 503; the token N is injected into channel 0 and every hop decrements
 *                   it; the tasklet that receives 0 stops the ring (a stop marker goes round once,
 *                   untimed, so that every tasklet ends); ns_per_hop = elapsed / N
 *   xthread_parked  two OS threads, their main tasklets ping-pong N round trips over two
 *                   rendezvous channels; the waiting side sleeps in libslp; ns_per_round_trip
 *   xthread_busy    the same exchange done by one tasklet on each thread, plus a tasklet per
 *                   thread that keeps calling slp_schedule(), so that neither thread ever
 *                   sleeps (the main tasklets wait in slp_run_wait); ns_per_round_trip
 *   many            N tasklets, each blocked receiving on ONE shared rendezvous channel: time from
 *                   the start until all N are blocked and the RSS growth then (VmRSS of
 *                   /proc/self/status); then N sends wake them (polls: each receiver is appended
 *                   to the run queue, nothing switches), slp_run lets them end; the tasklets are
 *                   created without a handle (the runtime's own reference is released when each
 *                   ends). Every libslp stack (default 256 KiB, reserved, not committed) has a
 *                   guard page below it, so RSS counts the touched top of each stack plus the
 *                   tasklet object. ns_per_tasklet = (create + block + wake + end) / N (the RSS
 *                   read excluded); kib_rss_per_tasklet = (RSS all blocked - RSS before) / N;
 *                   then, libslp only, the RSS left (per tasklet of the spike) once all ended
 *                   (_after_end: the pool keeps the stacks for the next wave) and once the pool
 *                   has decayed (_after_decay: the thread idles in slp_run_wait until no
 *                   stack is pooled, about 3 s: pages given back after 1 s, unmapped after 2)
 *   sleep           1000 tasklets each sleep N times for random 0.1-5 ms (splitmix64, seeded per
 *                   sleeper, as benches/time.c) under slp_run_wait; lateness = actual - asked
 *                   (CLOCK_MONOTONIC); an early wake is an error; lateness_median_us,
 *                   lateness_p99_us
 *   tick            slp_tick(1) in a tight loop on the main tasklet, outside any watchdog run;
 *                   ns_per_tick
 *   select2         slp_select over 2 RECEIVE cases on buffered channels that both hold items
 *                   (the first wins; nothing blocks) and, in the same run, slp_channel_receive
 *                   on one buffered channel holding items; chunks of 10,000 calls alternate
 *                   between the two, the channels are refilled between chunks (untimed);
 *                   N calls of each: ns_per_select, ns_per_receive
 *   signal          cross-thread wake-up: thread A makes signal i go, thread B (a toolkit thread
 *                   waiting in slp_signal_wait) wakes and makes A's signal i go; N round trips
 *                   (2N signals made beforehand); ns_per_round_trip
 *   lock            two OS threads each acquire and release one slp_lock N times, counting under
 *                   it; ns_per_acquire = elapsed / 2N
 *   condvar         (pthread baseline) mutex + two condition variables + a turn flag, ping-pong
 *                   between two threads, N round trips; ns_per_round_trip
 *   mutex           (pthread baseline) as lock with a pthread_mutex; ns_per_acquire
 *   idle            after a burst of 1000 tasklets, the thread sleeps in slp_run_wait for N ms
 *                   with nothing to do; the CPU time it used in all that time
 *                   (CLOCK_THREAD_CPUTIME_ID): the spin before parking, and the stack pool's
 *                   wake-ups that give the 1000 idle stacks back (after 1 s their pages,
 *                   after 2 s the mappings), nothing else: us_cpu_in_wait
 *
 * Build and run through scripts/bench-suite.sh, or by hand:
 *   cc -O2 -I include benches/suite.c -L target/release -lslp -lpthread -o suite
 */
#define _GNU_SOURCE

#include <slp.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_workload = "?";
static long g_n;

/* ---- failure handling ----------------------------------------------------------------------- */

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "suite: %s: ", g_workload);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void die(const char *what, slp_status st)
{
    fail("%s failed: %s (%d): %s", what, slp_status_str(st), (int)st, slp_last_error());
}

#define CHECK(call)                                                                        \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK)                                                                 \
            die(#call, st_);                                                               \
    } while (0)

/* pthread calls return an errno value. */
#define PCHECK(call)                                                                       \
    do {                                                                                   \
        int e_ = (call);                                                                   \
        if (e_ != 0)                                                                       \
            fail("%s failed: %s", #call, strerror(e_));                                    \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fail("out of memory (%zu bytes)", n);
    return p;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void result(const char *metric, double value)
{
    if (!(value >= 0))
        fail("metric %s has no valid value (%f)", metric, value);
    printf("RESULT %s %s %.3f\n", g_workload, metric, value);
}

static slp_counters counters(void)
{
    slp_counters c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    CHECK(slp_counters_get(&c));
    return c;
}

/* No tasklet of this thread is left alive, and `created` were created since `before`. */
static void expect_all_ended(const slp_counters *before, uint64_t created)
{
    slp_counters c = counters();
    if (c.tasklets_live != 0)
        fail("%llu tasklets still alive", (unsigned long long)c.tasklets_live);
    if (c.tasklets_created - before->tasklets_created != created)
        fail("%llu tasklets created, expected %llu",
             (unsigned long long)(c.tasklets_created - before->tasklets_created),
             (unsigned long long)created);
}

static void expect_balance(const slp_channel *ch, int32_t want, const char *which)
{
    int32_t b = slp_channel_balance(ch);
    if (b != want)
        fail("channel %s has balance %d, expected %d", which, (int)b, (int)want);
}

static slp_channel *new_channel(uint32_t capacity)
{
    slp_channel_options o;
    slp_channel_options_init(&o);
    o.capacity = capacity;
    slp_channel *ch = NULL;
    CHECK(slp_channel_new_ex(&o, &ch));
    return ch;
}

/* The process's resident set size in KiB (VmRSS of /proc/self/status). */
static long vmrss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        fail("cannot open /proc/self/status: %s", strerror(errno));
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    if (kib < 0)
        fail("no VmRSS line in /proc/self/status");
    return kib;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- yield ---------------------------------------------------------------------------------- */

static int32_t yield_body(void *arg)
{
    long *count = arg;
    for (long i = 0; i < g_n; i++) {
        CHECK(slp_schedule());
        ++*count;
    }
    return 0;
}

static void w_yield(void)
{
    static long count[2];
    slp_counters c0 = counters();
    CHECK(slp_tasklet_new(yield_body, &count[0], NULL));
    CHECK(slp_tasklet_new(yield_body, &count[1], NULL));
    int64_t t0 = now_ns();
    CHECK(slp_run());
    int64_t t1 = now_ns();
    if (count[0] != g_n || count[1] != g_n)
        fail("the tasklets yielded %ld and %ld times, expected %ld each", count[0], count[1], g_n);
    slp_counters c1 = counters();
    if (c1.switches - c0.switches < (uint64_t)(2 * g_n))
        fail("only %llu switches for 2 x %ld yields",
             (unsigned long long)(c1.switches - c0.switches), g_n);
    expect_all_ended(&c0, 2);
    result("ns_per_switch", (double)(t1 - t0) / (2.0 * (double)g_n));
}

/* ---- spawn_batch, spawn_one ------------------------------------------------------------------ */

static int32_t noop_body(void *arg)
{
    (void)arg;
    return 0;
}

#define BATCH 1000

static void w_spawn_batch(void)
{
    static slp_tasklet *batch[BATCH];
    slp_counters c0 = counters();
    int64_t t0 = now_ns();
    for (long left = g_n; left > 0;) {
        long k = left < BATCH ? left : BATCH;
        for (long i = 0; i < k; i++)
            CHECK(slp_tasklet_new(noop_body, NULL, &batch[i]));
        CHECK(slp_run());
        slp_counters c = counters(); /* one call per batch: all 1000 have ended */
        if (c.tasklets_live != 0)
            fail("%llu tasklets of a batch still alive after slp_run",
                 (unsigned long long)c.tasklets_live);
        for (long i = 0; i < k; i++)
            slp_tasklet_release(batch[i]);
        left -= k;
    }
    int64_t t1 = now_ns();
    expect_all_ended(&c0, (uint64_t)g_n);
    result("ns_per_tasklet", (double)(t1 - t0) / (double)g_n);
}

static void w_spawn_one(void)
{
    slp_counters c0 = counters();
    int64_t t0 = now_ns();
    for (long i = 0; i < g_n; i++) {
        slp_tasklet *t = NULL;
        CHECK(slp_tasklet_new(noop_body, NULL, &t));
        CHECK(slp_run());
        slp_tasklet_release(t);
    }
    int64_t t1 = now_ns();
    expect_all_ended(&c0, (uint64_t)g_n);
    result("ns_per_tasklet", (double)(t1 - t0) / (double)g_n);
}

/* ---- pingpong ------------------------------------------------------------------------------- */

static slp_channel *g_ping, *g_pong;

static int32_t ping_body(void *arg)
{
    (void)arg;
    for (long i = 1; i <= g_n; i++) {
        void *v = NULL;
        CHECK(slp_channel_send(g_ping, (void *)(intptr_t)i));
        CHECK(slp_channel_receive(g_pong, &v));
        if ((intptr_t)v != i)
            fail("A received %ld back, expected %ld", (long)(intptr_t)v, i);
    }
    return 0;
}

static int32_t pong_body(void *arg)
{
    (void)arg;
    for (long i = 1; i <= g_n; i++) {
        void *v = NULL;
        CHECK(slp_channel_receive(g_ping, &v));
        if ((intptr_t)v != i)
            fail("B received %ld, expected %ld", (long)(intptr_t)v, i);
        CHECK(slp_channel_send(g_pong, v));
    }
    return 0;
}

static void w_pingpong(void)
{
    g_ping = new_channel(0);
    g_pong = new_channel(0);
    slp_counters c0 = counters();
    CHECK(slp_tasklet_new(pong_body, NULL, NULL));
    CHECK(slp_tasklet_new(ping_body, NULL, NULL));
    int64_t t0 = now_ns();
    CHECK(slp_run());
    int64_t t1 = now_ns();
    expect_all_ended(&c0, 2);
    expect_balance(g_ping, 0, "ping");
    expect_balance(g_pong, 0, "pong");
    slp_channel_release(g_ping);
    slp_channel_release(g_pong);
    result("ns_per_message", (double)(t1 - t0) / (2.0 * (double)g_n));
}

/* ---- ring ----------------------------------------------------------------------------------- */

#define RING 503
#define RING_STOP ((intptr_t)-1)

static slp_channel *g_ring[RING];
static int64_t g_ring_t1;
static long g_ring_finisher = -1;

static int32_t ring_body(void *arg)
{
    long k = (long)(intptr_t)arg;
    slp_channel *in = g_ring[k], *out = g_ring[(k + 1) % RING];
    for (;;) {
        void *v = NULL;
        CHECK(slp_channel_receive(in, &v));
        intptr_t token = (intptr_t)v;
        if (token > 0) {
            CHECK(slp_channel_send(out, (void *)(token - 1)));
        } else if (token == 0) {
            /* The last hop: stop the clock, then send the stop marker round the ring once and
             * wait for it to come back, so that every tasklet ends. */
            g_ring_t1 = now_ns();
            g_ring_finisher = k;
            CHECK(slp_channel_send(out, (void *)RING_STOP));
            CHECK(slp_channel_receive(in, &v));
            if ((intptr_t)v != RING_STOP)
                fail("ring tasklet %ld got %ld after the last hop, expected the stop marker", k,
                     (long)(intptr_t)v);
            return 0;
        } else if (token == RING_STOP) {
            CHECK(slp_channel_send(out, v));
            return 0;
        } else {
            fail("ring tasklet %ld got a bad token %ld", k, (long)token);
        }
    }
}

static void w_ring(void)
{
    for (long k = 0; k < RING; k++)
        g_ring[k] = new_channel(0);
    slp_counters c0 = counters();
    for (long k = 0; k < RING; k++)
        CHECK(slp_tasklet_new(ring_body, (void *)(intptr_t)k, NULL));
    CHECK(slp_run()); /* every tasklet starts and blocks receiving (untimed) */
    for (long k = 0; k < RING; k++)
        expect_balance(g_ring[k], -1, "of the ring (all blocked)");
    int64_t t0 = now_ns();
    /* A poll: tasklet 0 gets the token and is appended to the run queue, nothing switches. */
    CHECK(slp_channel_send_timeout(g_ring[0], (void *)(intptr_t)g_n, 0));
    CHECK(slp_run());
    if (g_ring_finisher != g_n % RING)
        fail("the token reached 0 in tasklet %ld, expected %ld", g_ring_finisher, g_n % RING);
    expect_all_ended(&c0, RING);
    for (long k = 0; k < RING; k++) {
        expect_balance(g_ring[k], 0, "of the ring (at the end)");
        slp_channel_release(g_ring[k]);
    }
    result("ns_per_hop", (double)(g_ring_t1 - t0) / (double)g_n);
}

/* ---- xthread_parked, xthread_busy ------------------------------------------------------------ */

static slp_channel *g_x1, *g_x2; /* A -> B, B -> A */
static pthread_barrier_t g_x_start;
static atomic_bool g_x_stop_a, g_x_stop_b;
static int64_t g_x_t0, g_x_t1;
static bool g_x_busy;

static void x_ping_loop(void)
{
    for (long i = 1; i <= g_n; i++) {
        void *v = NULL;
        CHECK(slp_channel_send(g_x1, (void *)(intptr_t)i));
        CHECK(slp_channel_receive(g_x2, &v));
        if ((intptr_t)v != i)
            fail("thread A received %ld back, expected %ld", (long)(intptr_t)v, i);
    }
}

static void x_pong_loop(void)
{
    for (long i = 1; i <= g_n; i++) {
        void *v = NULL;
        CHECK(slp_channel_receive(g_x1, &v));
        if ((intptr_t)v != i)
            fail("thread B received %ld, expected %ld", (long)(intptr_t)v, i);
        CHECK(slp_channel_send(g_x2, v));
    }
}

/* Keeps its thread busy: yields until told to stop, then ends the thread's slp_run_wait (it
 * is the last of the thread's tasklets to end). */
static int32_t x_spinner(void *arg)
{
    atomic_bool *stop = arg;
    while (!atomic_load_explicit(stop, memory_order_relaxed))
        CHECK(slp_schedule());
    return slp_scheduler_wakeup(slp_thread_id());
}

static int32_t x_ping_tasklet(void *arg)
{
    (void)arg;
    g_x_t0 = now_ns();
    x_ping_loop();
    g_x_t1 = now_ns();
    atomic_store(&g_x_stop_a, true);
    return 0;
}

static int32_t x_pong_tasklet(void *arg)
{
    (void)arg;
    x_pong_loop();
    atomic_store(&g_x_stop_b, true);
    return 0;
}

/* The busy variant on one thread: the exchanging tasklet and a spinner, the main tasklet in
 * slp_run_wait until the spinner (the last to end) wakes it. */
static void x_run_busy(slp_tasklet_fn fn, atomic_bool *stop)
{
    slp_counters c0 = counters();
    CHECK(slp_tasklet_new(fn, NULL, NULL));
    CHECK(slp_tasklet_new(x_spinner, stop, NULL));
    CHECK(slp_run_wait(-1));
    if (slp_runcount() > 1)
        fail("tasklets still runnable after slp_run_wait");
    expect_all_ended(&c0, 2);
}

static void *x_thread_b(void *arg)
{
    (void)arg;
    CHECK(slp_thread_register("pong"));
    pthread_barrier_wait(&g_x_start);
    if (g_x_busy)
        x_run_busy(x_pong_tasklet, &g_x_stop_b);
    else
        x_pong_loop();
    CHECK(slp_thread_unregister());
    return NULL;
}

static void w_xthread(bool busy)
{
    g_x_busy = busy;
    CHECK(slp_thread_register("ping"));
    g_x1 = new_channel(0);
    g_x2 = new_channel(0);
    PCHECK(pthread_barrier_init(&g_x_start, NULL, 2));
    pthread_t b;
    PCHECK(pthread_create(&b, NULL, x_thread_b, NULL));
    pthread_barrier_wait(&g_x_start); /* B is registered: it counts as a possible waker */
    if (busy) {
        x_run_busy(x_ping_tasklet, &g_x_stop_a); /* timed inside the tasklet */
    } else {
        g_x_t0 = now_ns();
        x_ping_loop();
        g_x_t1 = now_ns();
    }
    PCHECK(pthread_join(b, NULL));
    expect_balance(g_x1, 0, "A->B");
    expect_balance(g_x2, 0, "B->A");
    slp_channel_release(g_x1);
    slp_channel_release(g_x2);
    pthread_barrier_destroy(&g_x_start);
    CHECK(slp_thread_unregister());
    result("ns_per_round_trip", (double)(g_x_t1 - g_x_t0) / (double)g_n);
}

/* ---- many ----------------------------------------------------------------------------------- */

static slp_channel *g_many_ch;
static long g_many_got;
static uint64_t g_many_sum;

static int32_t many_body(void *arg)
{
    (void)arg;
    void *v = NULL;
    CHECK(slp_channel_receive(g_many_ch, &v));
    if (v == NULL)
        fail("a blocked tasklet received NULL");
    g_many_got++;
    g_many_sum += (uint64_t)(uintptr_t)v;
    return 0;
}

static void w_many(void)
{
    if (g_n > INT32_MAX)
        fail("N too large for a channel balance");
    g_many_ch = new_channel(0);
    slp_counters c0 = counters();
    long rss0 = vmrss_kib();
    int64_t t0 = now_ns();
    for (long i = 0; i < g_n; i++)
        CHECK(slp_tasklet_new(many_body, NULL, NULL));
    CHECK(slp_run()); /* each starts and blocks receiving; the run returns when all are blocked */
    int64_t t_blocked = now_ns();
    long rss1 = vmrss_kib();
    expect_balance(g_many_ch, (int32_t)-g_n, "(all blocked)");
    slp_counters c1 = counters();
    if (c1.tasklets_live != (uint64_t)g_n)
        fail("%llu tasklets alive while all should be blocked, expected %ld",
             (unsigned long long)c1.tasklets_live, g_n);
    int64_t t_wake = now_ns();
    for (long i = 1; i <= g_n; i++)
        CHECK(slp_channel_send_timeout(g_many_ch, (void *)(intptr_t)i, 0));
    CHECK(slp_run());
    int64_t t1 = now_ns();
    if (g_many_got != g_n || g_many_sum != (uint64_t)g_n * (uint64_t)(g_n + 1) / 2)
        fail("%ld tasklets received (sum %llu), expected %ld", g_many_got,
             (unsigned long long)g_many_sum, g_n);
    expect_balance(g_many_ch, 0, "(at the end)");
    expect_all_ended(&c0, (uint64_t)g_n);
    slp_channel_release(g_many_ch);
    /* After the spike: the stacks stay pooled (warm) for the next wave... */
    long rss_end = vmrss_kib();
    /* ...and go back when demand stays low: idle stacks give their pages back after one idle
     * second and are unmapped after two, also while the thread sleeps in slp_run_wait. */
    int64_t d0 = now_ns();
    while (counters().stacks_pooled > 0) {
        if (now_ns() - d0 > 10 * 1000000000LL)
            fail("%llu stacks still pooled 10 s after the spike",
                 (unsigned long long)counters().stacks_pooled);
        slp_status st = slp_run_wait(100 * 1000000LL);
        if (st != SLP_E_TIMEOUT)
            fail("slp_run_wait: %s (%s)", slp_status_str(st), slp_last_error());
    }
    long rss_decayed = vmrss_kib();
    result("ns_per_tasklet", (double)((t_blocked - t0) + (t1 - t_wake)) / (double)g_n);
    result("kib_rss_per_tasklet", (double)(rss1 - rss0) / (double)g_n);
    result("kib_rss_per_tasklet_after_end", (double)(rss_end - rss0) / (double)g_n);
    result("kib_rss_per_tasklet_after_decay", (double)(rss_decayed - rss0) / (double)g_n);
}

/* ---- sleep ---------------------------------------------------------------------------------- */

#define SLEEPERS 1000
static const uint64_t SLEEP_SEED = 20240611;

static int64_t *g_late; /* SLEEPERS * N latenesses, ns */
static long g_sleepers_left;

/* splitmix64 */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int32_t sleeper_body(void *arg)
{
    long i = (long)(intptr_t)arg;
    uint64_t s = SLEEP_SEED ^ ((uint64_t)i * 0xD1B54A32D192ED03ull);
    for (long k = 0; k < g_n; k++) {
        int64_t d = 100000 + (int64_t)(next_rand(&s) % 4900001); /* 0.1 .. 5 ms */
        int64_t t0 = now_ns();
        CHECK(slp_sleep(d));
        int64_t late = now_ns() - t0 - d;
        if (late < 0)
            fail("sleeper %ld woke %lld ns early", i, (long long)-late);
        g_late[i * g_n + k] = late;
    }
    if (--g_sleepers_left == 0)
        return slp_scheduler_wakeup(slp_thread_id()); /* the last one ends slp_run_wait */
    return 0;
}

static void w_sleep(void)
{
    long total = SLEEPERS * g_n;
    g_late = xmalloc((size_t)total * sizeof *g_late);
    g_sleepers_left = SLEEPERS;
    slp_counters c0 = counters();
    for (long i = 0; i < SLEEPERS; i++)
        CHECK(slp_tasklet_new(sleeper_body, (void *)(intptr_t)i, NULL));
    CHECK(slp_run_wait(-1));
    if (g_sleepers_left != 0 || slp_runcount() != 1)
        fail("slp_run_wait returned with %ld sleepers left", g_sleepers_left);
    expect_all_ended(&c0, SLEEPERS);
    qsort(g_late, (size_t)total, sizeof g_late[0], cmp_i64);
    result("lateness_median_us", (double)g_late[total / 2] / 1000.0);
    long p99 = total * 99 / 100;
    result("lateness_p99_us", (double)g_late[p99 < total ? p99 : total - 1] / 1000.0);
    free(g_late);
}

/* ---- tick ----------------------------------------------------------------------------------- */

static void w_tick(void)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < g_n; i++)
        if (slp_tick(1) != SLP_OK)
            fail("slp_tick(1) did not return SLP_OK");
    int64_t t1 = now_ns();
    result("ns_per_tick", (double)(t1 - t0) / (double)g_n);
}

/* ---- select2 -------------------------------------------------------------------------------- */

#define CHUNK 10000

static void fill(slp_channel *ch, long n)
{
    for (long i = 1; i <= n; i++)
        CHECK(slp_channel_send_timeout(ch, (void *)(intptr_t)i, 0)); /* room: never blocks */
}

static void w_select2(void)
{
    slp_channel *a = new_channel(CHUNK), *b = new_channel(1);
    fill(b, 1); /* b keeps its one item: always ready, never chosen (a comes first) */
    int64_t t_select = 0, t_receive = 0;
    for (long done = 0; done < g_n;) {
        long k = g_n - done < CHUNK ? g_n - done : CHUNK;
        slp_select_case c[2];
        memset(c, 0, sizeof c);
        c[0].op = c[1].op = SLP_SELECT_RECEIVE;
        c[0].channel = a;
        c[1].channel = b;

        fill(a, k);
        int64_t t0 = now_ns();
        for (long i = 1; i <= k; i++) {
            size_t idx = 99;
            slp_status st = slp_select(c, 2, -1, &idx);
            if (st != SLP_OK)
                die("slp_select", st);
            if (idx != 0 || c[0].value != (void *)(intptr_t)i)
                fail("slp_select chose case %zu with %ld, expected case 0 with %ld", idx,
                     (long)(intptr_t)c[idx < 2 ? idx : 0].value, i);
        }
        t_select += now_ns() - t0;

        fill(a, k);
        t0 = now_ns();
        for (long i = 1; i <= k; i++) {
            void *v = NULL;
            slp_status st = slp_channel_receive(a, &v);
            if (st != SLP_OK)
                die("slp_channel_receive", st);
            if (v != (void *)(intptr_t)i)
                fail("slp_channel_receive gave %ld, expected %ld", (long)(intptr_t)v, i);
        }
        t_receive += now_ns() - t0;
        done += k;
    }
    expect_balance(a, 0, "a");
    expect_balance(b, 1, "b");
    slp_channel_release(a);
    slp_channel_release(b);
    result("ns_per_select", (double)t_select / (double)g_n);
    result("ns_per_receive", (double)t_receive / (double)g_n);
}

/* ---- signal --------------------------------------------------------------------------------- */

static slp_signal **g_sig_ping, **g_sig_pong, *g_sig_ready;

static int32_t signal_partner(void *arg, slp_signal *please_stop)
{
    (void)arg;
    (void)please_stop;
    CHECK(slp_signal_go(g_sig_ready));
    for (long i = 0; i < g_n; i++) {
        CHECK(slp_signal_wait(g_sig_ping[i], -1));
        CHECK(slp_signal_go(g_sig_pong[i]));
    }
    return 0;
}

static void w_signal(void)
{
    CHECK(slp_thread_register("ping"));
    g_sig_ping = xmalloc((size_t)g_n * sizeof *g_sig_ping);
    g_sig_pong = xmalloc((size_t)g_n * sizeof *g_sig_pong);
    for (long i = 0; i < g_n; i++) {
        CHECK(slp_signal_new(&g_sig_ping[i]));
        CHECK(slp_signal_new(&g_sig_pong[i]));
    }
    CHECK(slp_signal_new(&g_sig_ready));
    slp_thread *th = NULL;
    CHECK(slp_thread_new("pong", signal_partner, NULL, &th));
    CHECK(slp_signal_wait(g_sig_ready, -1)); /* the partner runs (thread start untimed) */
    int64_t t0 = now_ns();
    for (long i = 0; i < g_n; i++) {
        CHECK(slp_signal_go(g_sig_ping[i]));
        CHECK(slp_signal_wait(g_sig_pong[i], -1));
    }
    int64_t t1 = now_ns();
    int32_t rc = -1;
    CHECK(slp_thread_join(th, -1, &rc));
    if (rc != 0)
        fail("the partner thread returned %d", (int)rc);
    for (long i = 0; i < g_n; i++) {
        if (!slp_signal_is_go(g_sig_ping[i]) || !slp_signal_is_go(g_sig_pong[i]))
            fail("signal pair %ld did not go", i);
        slp_signal_release(g_sig_ping[i]);
        slp_signal_release(g_sig_pong[i]);
    }
    slp_signal_release(g_sig_ready);
    free(g_sig_ping);
    free(g_sig_pong);
    CHECK(slp_thread_unregister());
    result("ns_per_round_trip", (double)(t1 - t0) / (double)g_n);
}

/* ---- lock, mutex ---------------------------------------------------------------------------- */

static slp_lock *g_lock;
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t g_hammer_start;
static volatile long g_hammer_count;

static void *lock_hammer(void *arg)
{
    (void)arg;
    CHECK(slp_thread_register("hammer"));
    pthread_barrier_wait(&g_hammer_start);
    for (long i = 0; i < g_n; i++) {
        CHECK(slp_lock_acquire(g_lock));
        g_hammer_count++;
        CHECK(slp_lock_release(g_lock));
    }
    CHECK(slp_thread_unregister());
    return NULL;
}

static void *mutex_hammer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&g_hammer_start);
    for (long i = 0; i < g_n; i++) {
        PCHECK(pthread_mutex_lock(&g_mutex));
        g_hammer_count++;
        PCHECK(pthread_mutex_unlock(&g_mutex));
    }
    return NULL;
}

static void hammer(void *(*fn)(void *))
{
    g_hammer_count = 0;
    PCHECK(pthread_barrier_init(&g_hammer_start, NULL, 3));
    pthread_t a, b;
    PCHECK(pthread_create(&a, NULL, fn, NULL));
    PCHECK(pthread_create(&b, NULL, fn, NULL));
    int64_t t0 = now_ns(); /* both threads wait at the barrier (or are about to) */
    pthread_barrier_wait(&g_hammer_start);
    PCHECK(pthread_join(a, NULL));
    PCHECK(pthread_join(b, NULL));
    int64_t t1 = now_ns();
    pthread_barrier_destroy(&g_hammer_start);
    if (g_hammer_count != 2 * g_n)
        fail("lost updates under the lock: %ld of %ld", g_hammer_count, 2 * g_n);
    result("ns_per_acquire", (double)(t1 - t0) / (2.0 * (double)g_n));
}

static void w_lock(void)
{
    CHECK(slp_lock_new(&g_lock));
    hammer(lock_hammer);
    slp_counters c = counters();
    if (c.locks_held != 0)
        fail("%llu locks still held", (unsigned long long)c.locks_held);
    slp_lock_free(g_lock);
}

static void w_mutex(void)
{
    hammer(mutex_hammer);
}

/* ---- condvar -------------------------------------------------------------------------------- */

static pthread_mutex_t g_cv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv_a = PTHREAD_COND_INITIALIZER, g_cv_b = PTHREAD_COND_INITIALIZER;
static int g_cv_turn; /* 0: A's turn, 1: B's */
static long g_cv_value;

static void *condvar_b(void *arg)
{
    (void)arg;
    for (long i = 1; i <= g_n; i++) {
        PCHECK(pthread_mutex_lock(&g_cv_mu));
        while (g_cv_turn != 1)
            PCHECK(pthread_cond_wait(&g_cv_b, &g_cv_mu));
        if (g_cv_value != i)
            fail("thread B saw %ld, expected %ld", g_cv_value, i);
        g_cv_value = -i; /* the answer */
        g_cv_turn = 0;
        PCHECK(pthread_cond_signal(&g_cv_a));
        PCHECK(pthread_mutex_unlock(&g_cv_mu));
    }
    return NULL;
}

static void w_condvar(void)
{
    pthread_t b;
    PCHECK(pthread_create(&b, NULL, condvar_b, NULL));
    int64_t t0 = now_ns();
    for (long i = 1; i <= g_n; i++) {
        PCHECK(pthread_mutex_lock(&g_cv_mu));
        g_cv_value = i;
        g_cv_turn = 1;
        PCHECK(pthread_cond_signal(&g_cv_b));
        while (g_cv_turn != 0)
            PCHECK(pthread_cond_wait(&g_cv_a, &g_cv_mu));
        if (g_cv_value != -i)
            fail("thread A got %ld back, expected %ld", g_cv_value, -i);
        PCHECK(pthread_mutex_unlock(&g_cv_mu));
    }
    int64_t t1 = now_ns();
    PCHECK(pthread_join(b, NULL));
    result("ns_per_round_trip", (double)(t1 - t0) / (double)g_n);
}

/* ---- idle ----------------------------------------------------------------------------------- */

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        fail("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %s", strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void w_idle(void)
{
    /* a burst first, so that the thread's stack pool holds idle stacks to give back while
     * it sleeps (its only reason to wake at all) */
    for (int i = 0; i < 1000; i++)
        CHECK(slp_tasklet_new(noop_body, NULL, NULL));
    CHECK(slp_run());
    int64_t c0 = thread_cpu_ns();
    int64_t t0 = now_ns();
    slp_status st = slp_run_wait(g_n * 1000000LL);
    int64_t t1 = now_ns();
    int64_t c1 = thread_cpu_ns();
    if (st != SLP_E_TIMEOUT)
        fail("slp_run_wait: %s (%s)", slp_status_str(st), slp_last_error());
    if (t1 - t0 < g_n * 1000000LL)
        fail("slp_run_wait(%ld ms) returned after %lld ms", g_n, (long long)((t1 - t0) / 1000000));
    result("us_cpu_in_wait", (double)(c1 - c0) / 1e3);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void w_xthread_parked(void) { w_xthread(false); }
static void w_xthread_busy(void) { w_xthread(true); }

static const struct {
    const char *name;
    void (*run)(void);
} WORKLOADS[] = {
    {"yield", w_yield},
    {"spawn_batch", w_spawn_batch},
    {"spawn_one", w_spawn_one},
    {"pingpong", w_pingpong},
    {"ring", w_ring},
    {"xthread_parked", w_xthread_parked},
    {"xthread_busy", w_xthread_busy},
    {"many", w_many},
    {"sleep", w_sleep},
    {"tick", w_tick},
    {"select2", w_select2},
    {"signal", w_signal},
    {"lock", w_lock},
    {"condvar", w_condvar},
    {"mutex", w_mutex},
    {"idle", w_idle},
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: suite WORKLOAD N\nworkloads:");
        for (size_t i = 0; i < sizeof WORKLOADS / sizeof WORKLOADS[0]; i++)
            fprintf(stderr, " %s", WORKLOADS[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long long n = strtoll(argv[2], &end, 10);
    if (errno != 0 || end == argv[2] || *end != '\0' || n <= 0 || n > (long long)(INT64_MAX / 4)) {
        fprintf(stderr, "suite: N must be a positive integer, not '%s'\n", argv[2]);
        return 2;
    }
    g_n = (long)n;
    if (slp_version() != SLP_VERSION_NUMBER) {
        fprintf(stderr, "suite: built against libslp %s but loaded version %u\n",
                SLP_VERSION_STRING, slp_version());
        return 1;
    }
    for (size_t i = 0; i < sizeof WORKLOADS / sizeof WORKLOADS[0]; i++)
        if (strcmp(argv[1], WORKLOADS[i].name) == 0) {
            g_workload = WORKLOADS[i].name;
            WORKLOADS[i].run();
            if (fflush(stdout) != 0)
                fail("writing the results failed");
            return 0;
        }
    fprintf(stderr, "suite: %s: unsupported workload\n", argv[1]);
    return 3;
}
