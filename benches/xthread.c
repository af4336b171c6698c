/*
 * benches/xthread.c - cross-thread ping-pong round trip (SPEC §11), libslp beside a raw
 * pthread mutex+condvar ping-pong between the same two OS threads, in the same run.
 *
 * Thread A (the process's main thread) sends a value to thread B, B sends it back; one round
 * trip is two cross-thread hand-offs. Variants, N round trips per run, median of 5 runs
 * after one warm-up run (condvar, main and run_wait are interleaved run by run so that clock
 * or load drift hits them alike; busy runs last, so that the other tables are printed even
 * if it hangs):
 *
 *   condvar    pthread mutex + two condition variables and a turn flag: the reference.
 *   main       libslp, the threads' main tasklets block on two rendezvous channels
 *              (A: send ch1, receive ch2; B: receive ch1, send ch2) - a blocking queue
 *              between OS threads; the partner sleeps in libslp (SPEC §5.3).
 *   run_wait   the same exchange done by one tasklet on each thread, the thread sleeping in
 *              slp_run_wait() whenever its tasklet is blocked.
 *   busy       as run_wait, plus a tasklet on each thread that keeps calling slp_schedule(),
 *              so neither thread ever sleeps: both are busy in libslp (SPEC §11: <= 2 us).
 *
 * Where the two threads run matters as much as what they do (spinning before parking helps
 * when the partner has its own CPU and hurts when it waits for ours), so every variant is
 * measured in three placements, set with pthread_setaffinity_np before each run:
 *   free     both threads may use every CPU of the process (the kernel decides);
 *   split    A on the first CPU, B on the second (needs 2 CPUs);
 *   shared   both on the first CPU (not for busy: two threads that never sleep on one CPU
 *            hand it over only when the kernel preempts one, milliseconds per hop).
 *
 * Usage: xthread [ROUND_TRIPS]   (default 50000)
 * Environment: XTHREAD_VARIANTS=main,busy     run only these beside condvar (main, run_wait, busy)
 *              XTHREAD_PLACEMENTS=free,split  only these placements (free, split, shared)
 * Build and run: scripts/bench-xthread.sh. A variant that does not finish within 60 s is
 * reported on stderr and the program exits with status 2.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_* */

#include <slp.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS 5
#define VARIANT_TIMEOUT_S 60

enum { V_CONDVAR, V_MAIN, V_RUN_WAIT, V_BUSY, V_COUNT };
static const char *const variant_key[V_COUNT] = {"condvar", "main", "run_wait", "busy"};
static const char *const variant_name[V_COUNT] = {
    "pthread mutex+condvar (reference)",
    "libslp: main tasklets block on channels",
    "libslp: tasklets, threads sleep in slp_run_wait",
    "libslp: tasklets, both threads busy in libslp",
};
enum { P_FREE, P_SPLIT, P_SHARED, P_COUNT };
static const char *const placement_key[P_COUNT] = {"free", "split", "shared"};
static const char *const placement_name[P_COUNT] = {
    "threads free to use every CPU",
    "A on one CPU, B on another",
    "A and B on the same CPU",
};

static long g_n = 50000;

/* ---- failure handling ---------------------------------------------------------------------- */

static void die(const char *who, const char *what, slp_status st)
{
    fprintf(stderr, "xthread: %s: %s failed: %s (%d): %s\n", who, what, slp_status_str(st),
            (int)st, slp_last_error());
    exit(1);
}

#define CHECK(who, call)                                                                   \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK)                                                                 \
            die((who), #call, st_);                                                        \
    } while (0)

static volatile sig_atomic_t g_running_variant = -1, g_running_placement = -1;
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "xthread: a variant did not finish within the timeout: ";
    ssize_t r = write(2, msg, sizeof msg - 1);
    int v = g_running_variant, p = g_running_placement;
    if (v >= 0 && v < V_COUNT)
        r = write(2, variant_name[v], strlen(variant_name[v]));
    if (p >= 0 && p < P_COUNT) {
        r = write(2, ", ", 2);
        r = write(2, placement_name[p], strlen(placement_name[p]));
    }
    r = write(2, "\n", 1);
    (void)r;
    _exit(2);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Comma-separated `list` contains `key` (a NULL list contains everything). */
static bool listed(const char *list, const char *key)
{
    if (!list)
        return true;
    size_t len = strlen(key);
    for (const char *p = list; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
        if (strncmp(p, key, len) == 0 && (p[len] == ',' || p[len] == '\0'))
            return true;
    return false;
}

/* ---- placement ------------------------------------------------------------------------------ */

static cpu_set_t g_all_cpus; /* the process's affinity at start */
static int g_cpu0 = -1, g_cpu1 = -1;

static void place(int placement, bool is_b)
{
    cpu_set_t set;
    if (placement == P_FREE) {
        set = g_all_cpus;
    } else {
        CPU_ZERO(&set);
        CPU_SET(placement == P_SPLIT && is_b ? g_cpu1 : g_cpu0, &set);
    }
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "xthread: pthread_setaffinity_np failed\n");
        exit(1);
    }
}

/* ---- the two threads' common state ----------------------------------------------------------- */

static pthread_barrier_t g_start, g_end;
static int g_cmd = -1;       /* variant for this run, or -1: quit (set by A before g_start) */
static int g_placement;

/* condvar variant */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv_a = PTHREAD_COND_INITIALIZER, g_cv_b = PTHREAD_COND_INITIALIZER;
static int g_turn; /* 0: A's turn, 1: B's turn */
static long g_cv_value;

/* libslp variants */
static slp_channel *g_ch1, *g_ch2; /* A -> B, B -> A */
static atomic_bool g_stop_spin_a, g_stop_spin_b;
static int64_t g_t0, g_t1; /* written by A's ping tasklet */

/* ---- condvar -------------------------------------------------------------------------------- */

static void condvar_ping(void)
{
    for (long i = 0; i < g_n; i++) {
        pthread_mutex_lock(&g_mu);
        g_cv_value = i;
        g_turn = 1;
        pthread_cond_signal(&g_cv_b);
        while (g_turn != 0)
            pthread_cond_wait(&g_cv_a, &g_mu);
        if (g_cv_value != i + 1) {
            fprintf(stderr, "xthread: condvar: wrong value\n");
            exit(1);
        }
        pthread_mutex_unlock(&g_mu);
    }
}

static void condvar_pong(void)
{
    for (long i = 0; i < g_n; i++) {
        pthread_mutex_lock(&g_mu);
        while (g_turn != 1)
            pthread_cond_wait(&g_cv_b, &g_mu);
        g_cv_value++;
        g_turn = 0;
        pthread_cond_signal(&g_cv_a);
        pthread_mutex_unlock(&g_mu);
    }
}

/* ---- libslp: the exchange (from a main tasklet or a tasklet alike) ---------------------------- */

static void slp_ping_loop(const char *who)
{
    for (long i = 0; i < g_n; i++) {
        void *v = NULL;
        CHECK(who, slp_channel_send(g_ch1, (void *)(intptr_t)(i + 1)));
        CHECK(who, slp_channel_receive(g_ch2, &v));
        if ((intptr_t)v != i + 2) {
            fprintf(stderr, "xthread: %s: got %ld, expected %ld\n", who, (long)(intptr_t)v, i + 2);
            exit(1);
        }
    }
}

static void slp_pong_loop(const char *who)
{
    for (long i = 0; i < g_n; i++) {
        void *v = NULL;
        CHECK(who, slp_channel_receive(g_ch1, &v));
        CHECK(who, slp_channel_send(g_ch2, (void *)((intptr_t)v + 1)));
    }
}

/* A tasklet that keeps its thread busy: it yields until told to stop, then wakes its thread's
 * slp_run_wait() (it is the last tasklet of the thread to end). */
static int32_t spinner(void *arg)
{
    atomic_bool *stop = (atomic_bool *)arg;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        slp_status st = slp_schedule();
        if (st != SLP_OK)
            return st;
    }
    return slp_scheduler_wakeup(slp_thread_id());
}

static int32_t ping_tasklet(void *arg)
{
    bool with_spinner = arg != NULL;
    g_t0 = now_ns();
    slp_ping_loop("A (tasklet)");
    g_t1 = now_ns();
    if (with_spinner) {
        atomic_store(&g_stop_spin_a, true); /* the spinner ends and wakes the thread */
        return 0;
    }
    return slp_scheduler_wakeup(slp_thread_id());
}

static int32_t pong_tasklet(void *arg)
{
    bool with_spinner = arg != NULL;
    slp_pong_loop("B (tasklet)");
    if (with_spinner) {
        atomic_store(&g_stop_spin_b, true);
        return 0;
    }
    return slp_scheduler_wakeup(slp_thread_id());
}

/* Runs `fn` (and, when busy, a spinner) as tasklets on the calling thread until they ended. */
static void run_tasklets(const char *who, slp_tasklet_fn fn, bool busy, atomic_bool *stop)
{
    atomic_store(stop, false);
    CHECK(who, slp_tasklet_new(fn, busy ? (void *)1 : NULL, NULL));
    if (busy)
        CHECK(who, slp_tasklet_new(spinner, stop, NULL));
    CHECK(who, slp_run_wait(-1)); /* SLP_OK once the last tasklet woke us */
    if (slp_runcount() > 1) {     /* outside a run, the main tasklet itself counts */
        fprintf(stderr, "xthread: %s: tasklets still runnable after slp_run_wait\n", who);
        exit(1);
    }
}

/* ---- thread B ------------------------------------------------------------------------------- */

static void *thread_b(void *arg)
{
    (void)arg;
    CHECK("B", slp_thread_register("pong"));
    pthread_barrier_wait(&g_start); /* registered: A may start */
    for (;;) {
        pthread_barrier_wait(&g_start);
        int v = g_cmd;
        if (v < 0)
            break;
        place(g_placement, true);
        pthread_barrier_wait(&g_start); /* both placed */
        switch (v) {
        case V_CONDVAR: condvar_pong(); break;
        case V_MAIN: slp_pong_loop("B (main)"); break;
        case V_RUN_WAIT: run_tasklets("B", pong_tasklet, false, &g_stop_spin_b); break;
        case V_BUSY: run_tasklets("B", pong_tasklet, true, &g_stop_spin_b); break;
        }
        pthread_barrier_wait(&g_end);
    }
    CHECK("B", slp_thread_unregister());
    return NULL;
}

/* ---- thread A: drives the runs and measures ------------------------------------------------- */

static double run_variant(int v, int placement)
{
    g_cmd = v;
    g_placement = placement;
    g_turn = 0;
    pthread_barrier_wait(&g_start);
    place(placement, false);
    pthread_barrier_wait(&g_start);
    g_running_variant = v;
    g_running_placement = placement;
    alarm(VARIANT_TIMEOUT_S);
    int64_t t0 = now_ns(), t1;
    switch (v) {
    case V_CONDVAR: condvar_ping(); t1 = now_ns(); break;
    case V_MAIN: slp_ping_loop("A (main)"); t1 = now_ns(); break;
    default:
        run_tasklets("A", ping_tasklet, v == V_BUSY, &g_stop_spin_a);
        t0 = g_t0; /* timed inside the tasklet: tasklet creation and wake-up excluded */
        t1 = g_t1;
        break;
    }
    pthread_barrier_wait(&g_end);
    alarm(0);
    g_running_variant = g_running_placement = -1;
    if (slp_channel_balance(g_ch1) != 0 || slp_channel_balance(g_ch2) != 0) {
        fprintf(stderr, "xthread: %s: channel balance %d/%d after the run\n", variant_name[v],
                slp_channel_balance(g_ch1), slp_channel_balance(g_ch2));
        exit(1);
    }
    return (double)(t1 - t0) / (double)g_n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts `runs` and prints one table row (without the name when v < 0); the ratio is to
 * `ref` (the condvar median of the same placement; 0: this row is the reference). */
static double print_row(int v, double *runs, double ref)
{
    qsort(runs, RUNS, sizeof runs[0], cmp_double);
    double med = runs[RUNS / 2];
    if (v >= 0)
        printf("  %-50s ", variant_name[v]);
    if (ref > 0)
        printf("%9.0f %9.0f %9.0f %9.2fx\n", med, runs[0], runs[RUNS - 1], med / ref);
    else
        printf("%9.0f %9.0f %9.0f %10s\n", med, runs[0], runs[RUNS - 1], v == V_CONDVAR ? "1.00x" : "-");
    return med;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_n = atol(argv[1]);
    if (g_n <= 0) {
        fprintf(stderr, "usage: xthread [ROUND_TRIPS > 0]\n");
        return 1;
    }
    bool variant_on[V_COUNT], placement_on[P_COUNT];
    for (int v = 0; v < V_COUNT; v++)
        variant_on[v] = v == V_CONDVAR || listed(getenv("XTHREAD_VARIANTS"), variant_key[v]);
    if (sched_getaffinity(0, sizeof g_all_cpus, &g_all_cpus) != 0) {
        fprintf(stderr, "xthread: sched_getaffinity failed\n");
        return 1;
    }
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &g_all_cpus)) {
            if (g_cpu0 < 0)
                g_cpu0 = c;
            else if (g_cpu1 < 0)
                g_cpu1 = c;
        }
    for (int p = 0; p < P_COUNT; p++)
        placement_on[p] = listed(getenv("XTHREAD_PLACEMENTS"), placement_key[p]) &&
                          (p != P_SPLIT || g_cpu1 >= 0);
    signal(SIGALRM, on_alarm);

    CHECK("A", slp_thread_register("ping"));
    CHECK("A", slp_channel_new(&g_ch1));
    CHECK("A", slp_channel_new(&g_ch2));
    pthread_barrier_init(&g_start, NULL, 2);
    pthread_barrier_init(&g_end, NULL, 2);
    pthread_t b;
    if (pthread_create(&b, NULL, thread_b, NULL) != 0) {
        fprintf(stderr, "xthread: pthread_create failed\n");
        return 1;
    }
    pthread_barrier_wait(&g_start); /* B is registered with libslp */

    printf("cross-thread ping-pong: 2 threads, %ld round trips per run, median of %d runs "
           "(+1 warm-up), ns per round trip; %d CPUs available\n",
           g_n, RUNS, CPU_COUNT(&g_all_cpus));
    /* condvar, main and run_wait: interleaved run by run, one table per placement. */
    static double ns[P_COUNT][V_COUNT][RUNS];
    double ref[P_COUNT] = {0};
    for (int p = 0; p < P_COUNT; p++) {
        if (!placement_on[p])
            continue;
        for (int v = 0; v < V_BUSY; v++)
            if (variant_on[v])
                (void)run_variant(v, p); /* warm-up: stacks pooled, pages touched, caches warm */
        for (int r = 0; r < RUNS; r++)
            for (int v = 0; v < V_BUSY; v++)
                if (variant_on[v])
                    ns[p][v][r] = run_variant(v, p);

        printf("\n%s (%s)\n", placement_name[p], placement_key[p]);
        printf("  %-50s %9s %9s %9s %10s\n", "variant", "median", "min", "max", "vs condvar");
        for (int v = 0; v < V_BUSY; v++)
            if (variant_on[v]) {
                double med = print_row(v, ns[p][v], v == V_CONDVAR ? 0 : ref[p]);
                if (v == V_CONDVAR)
                    ref[p] = med;
            }
        fflush(stdout);
    }

    /* busy: last, on its own, so that the tables above are printed even if it hangs. Not on
     * a shared CPU: two threads that never sleep hand the CPU over only when the kernel
     * preempts one (milliseconds per hop), which measures the kernel's time slice. */
    if (variant_on[V_BUSY]) {
        printf("\nboth threads busy in libslp (each also runs a tasklet that keeps calling "
               "slp_schedule)\n");
        for (int p = 0; p < P_COUNT; p++) {
            if (!placement_on[p] || p == P_SHARED)
                continue;
            (void)run_variant(V_BUSY, p);
            for (int r = 0; r < RUNS; r++)
                ns[p][V_BUSY][r] = run_variant(V_BUSY, p);
            char label[96];
            snprintf(label, sizeof label, "%s", placement_name[p]);
            printf("  %-50s ", label);
            print_row(-1, ns[p][V_BUSY], ref[p]);
            fflush(stdout);
        }
    }

    g_cmd = -1;
    pthread_barrier_wait(&g_start);
    pthread_join(b, NULL);
    slp_channel_release(g_ch1);
    slp_channel_release(g_ch2);
    CHECK("A", slp_thread_unregister());
    return 0;
}
