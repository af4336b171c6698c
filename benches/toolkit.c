/*
 * benches/toolkit.c - the threads toolkit (Signal, Till, Lock) beside pthread baselines, each
 * pair measured in the same run, interleaved repetition by repetition (libslp, baseline,
 * libslp, ...), each result the median of REPS repetitions after a warm-up.
 *
 *   signal.wake   ns per round trip: thread A makes a signal go, thread B (waiting in
 *                 slp_signal_wait) wakes and makes A's next signal go — beside the same ping-pong
 *                 with a pthread mutex + condvar and a flag.
 *   lock.uncont   ns per slp_lock_acquire + slp_lock_release on one thread, beside
 *                 pthread_mutex_lock + unlock.
 *   lock.contend  ns per acquire + release when two threads hammer one lock (both counted),
 *                 beside the same with a pthread mutex.
 *   till.late     Till lateness (median and p99, us): 200 Tills of 1-3 ms, waited on in turn.
 *
 * Build and run: scripts/bench-toolkit.sh [--quick]. Performance is reported, never asserted:
 * the program fails only when a call fails.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slp.h"

static int REPS = 5;
static long ROUNDS = 20000;
static long OPS = 2000000;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, slp_status st) {
    fprintf(stderr, "bench-toolkit: %s failed: %d (%s)\n", what, st, slp_last_error());
    exit(1);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* ---- signal ping-pong ------------------------------------------------------------------- */
static slp_signal **g_ping, **g_pong;
static int32_t sig_partner(void *arg, slp_signal *please_stop) {
    (void)arg;
    (void)please_stop;
    for (long i = 0; i < ROUNDS; i++) {
        slp_status st = slp_signal_wait(g_ping[i], -1);
        if (st) die("slp_signal_wait (partner)", st);
        slp_signal_go(g_pong[i]);
    }
    return 0;
}
static double bench_signal(void) {
    g_ping = calloc(ROUNDS, sizeof *g_ping);
    g_pong = calloc(ROUNDS, sizeof *g_pong);
    for (long i = 0; i < ROUNDS; i++) {
        slp_signal_new(&g_ping[i]);
        slp_signal_new(&g_pong[i]);
    }
    slp_thread *th;
    slp_status st = slp_thread_new("partner", sig_partner, NULL, &th);
    if (st) die("slp_thread_new", st);
    int64_t t0 = now_ns();
    for (long i = 0; i < ROUNDS; i++) {
        slp_signal_go(g_ping[i]);
        st = slp_signal_wait(g_pong[i], -1);
        if (st) die("slp_signal_wait", st);
    }
    int64_t t1 = now_ns();
    int32_t rc;
    if ((st = slp_thread_join(th, -1, &rc))) die("slp_thread_join", st);
    for (long i = 0; i < ROUNDS; i++) {
        slp_signal_release(g_ping[i]);
        slp_signal_release(g_pong[i]);
    }
    free(g_ping);
    free(g_pong);
    return (double)(t1 - t0) / ROUNDS;
}

static pthread_mutex_t cv_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_a = PTHREAD_COND_INITIALIZER, cv_b = PTHREAD_COND_INITIALIZER;
static long cv_ping, cv_pong;
static void *cv_partner(void *arg) {
    (void)arg;
    for (long i = 1; i <= ROUNDS; i++) {
        pthread_mutex_lock(&cv_mx);
        while (cv_ping < i) pthread_cond_wait(&cv_a, &cv_mx);
        cv_pong = i;
        pthread_cond_signal(&cv_b);
        pthread_mutex_unlock(&cv_mx);
    }
    return NULL;
}
static double bench_condvar(void) {
    cv_ping = cv_pong = 0;
    pthread_t th;
    pthread_create(&th, NULL, cv_partner, NULL);
    int64_t t0 = now_ns();
    for (long i = 1; i <= ROUNDS; i++) {
        pthread_mutex_lock(&cv_mx);
        cv_ping = i;
        pthread_cond_signal(&cv_a);
        while (cv_pong < i) pthread_cond_wait(&cv_b, &cv_mx);
        pthread_mutex_unlock(&cv_mx);
    }
    int64_t t1 = now_ns();
    pthread_join(th, NULL);
    return (double)(t1 - t0) / ROUNDS;
}

/* ---- locks ------------------------------------------------------------------------------ */
static slp_lock *g_lock;
static pthread_mutex_t g_mx = PTHREAD_MUTEX_INITIALIZER;
static volatile long g_count;

static double bench_lock_uncont(void) {
    int64_t t0 = now_ns();
    for (long i = 0; i < OPS; i++) {
        slp_lock_acquire(g_lock);
        g_count++;
        slp_lock_release(g_lock);
    }
    return (double)(now_ns() - t0) / OPS;
}
static double bench_mutex_uncont(void) {
    int64_t t0 = now_ns();
    for (long i = 0; i < OPS; i++) {
        pthread_mutex_lock(&g_mx);
        g_count++;
        pthread_mutex_unlock(&g_mx);
    }
    return (double)(now_ns() - t0) / OPS;
}

static void *lock_hammer(void *arg) {
    long n = (long)(intptr_t)arg;
    slp_thread_register("hammer");
    for (long i = 0; i < n; i++) {
        slp_status st = slp_lock_acquire(g_lock);
        if (st) die("slp_lock_acquire", st);
        g_count++;
        slp_lock_release(g_lock);
    }
    slp_thread_unregister();
    return NULL;
}
static void *mutex_hammer(void *arg) {
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&g_mx);
        g_count++;
        pthread_mutex_unlock(&g_mx);
    }
    return NULL;
}
static double bench_contended(void *(*fn)(void *)) {
    long n = OPS / 10;
    g_count = 0;
    pthread_t a, b;
    int64_t t0 = now_ns();
    pthread_create(&a, NULL, fn, (void *)(intptr_t)n);
    pthread_create(&b, NULL, fn, (void *)(intptr_t)n);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    int64_t t1 = now_ns();
    if (g_count != 2 * n) {
        fprintf(stderr, "bench-toolkit: lost updates under the lock: %ld of %ld\n", g_count, 2 * n);
        exit(1);
    }
    return (double)(t1 - t0) / (2 * n);
}

/* ---- Till lateness ---------------------------------------------------------------------- */
static void bench_till(int n, double *med, double *p99) {
    double *late = calloc(n, sizeof *late);
    unsigned seed = 12345;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        int64_t ns = 1000000 + (int64_t)(seed % 2000000u);
        int64_t t0 = now_ns();
        slp_signal *t;
        slp_status st = slp_till_new(ns, &t);
        if (st) die("slp_till_new", st);
        st = slp_signal_wait(t, -1);
        if (st) die("slp_signal_wait (till)", st);
        int64_t l = now_ns() - t0 - ns;
        if (l < 0) {
            fprintf(stderr, "bench-toolkit: a Till fired %lld ns early\n", (long long)-l);
            exit(1);
        }
        late[i] = l / 1000.0;
        slp_signal_release(t);
    }
    qsort(late, n, sizeof *late, cmp_d);
    *med = late[n / 2];
    *p99 = late[(n * 99) / 100];
    free(late);
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (quick) {
        REPS = 3;
        ROUNDS = 500;
        OPS = 20000;
    }
    slp_status st = slp_thread_register("bench");
    if (st) die("slp_thread_register", st);
    if ((st = slp_lock_new(&g_lock))) die("slp_lock_new", st);
    double s[9], c[9], lu[9], mu[9], lc[9], mc[9];
    bench_signal();
    bench_condvar();
    for (int r = 0; r < REPS; r++) {
        s[r] = bench_signal();
        c[r] = bench_condvar();
        lu[r] = bench_lock_uncont();
        mu[r] = bench_mutex_uncont();
        lc[r] = bench_contended(lock_hammer);
        mc[r] = bench_contended(mutex_hammer);
    }
    double tm, tp;
    bench_till(quick ? 20 : 200, &tm, &tp);
    double ms = median(s, REPS), mcv = median(c, REPS), mlu = median(lu, REPS), mmu = median(mu, REPS);
    double mlc = median(lc, REPS), mmc = median(mc, REPS);
    printf("libslp toolkit benchmarks: median of %d repetitions, interleaved with the baselines\n", REPS);
    printf("%-14s %12s %12s %8s  %s\n", "key", "libslp", "baseline", "ratio", "baseline");
    printf("%-14s %10.0f ns %10.0f ns %7.2fx  %s\n", "signal.wake", ms, mcv, ms / mcv,
           "pthread mutex + condvar ping-pong (round trip)");
    printf("%-14s %10.1f ns %10.1f ns %7.2fx  %s\n", "lock.uncont", mlu, mmu, mlu / mmu,
           "pthread_mutex_lock + unlock, one thread");
    printf("%-14s %10.1f ns %10.1f ns %7.2fx  %s\n", "lock.contend", mlc, mmc, mlc / mmc,
           "pthread mutex, two threads hammering");
    printf("%-14s %10.1f us %10.1f us %8s  %s\n", "till.late", tm, tp, "-", "median / p99 lateness (1-3 ms Tills)");
    slp_lock_free(g_lock);
    slp_thread_unregister();
    return 0;
}
