/*
 * thread_util.h - helpers for the cross-thread C tests (test_threads.c, test_stress.c).
 * Include after harness.h and common.h.
 *
 * Shared test state is only touched under one pthread mutex (xt_lock/xt_unlock, xt_get/xt_set):
 * no C11 atomics, so that the race checkers (helgrind, drd, TSan) see every hand-over between
 * the test's own threads as synchronized and only report what happens inside libslp.
 */
#ifndef SLP_TEST_THREAD_UTIL_H
#define SLP_TEST_THREAD_UTIL_H

#include "harness.h"
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define XT_HAVE_VALGRIND 1
#endif
#endif

/* ---- slow mode: under valgrind (or SLP_TEST_SLOW=1) waits are scaled, the per-test
 * watchdog follows SLP_TEST_TIMEOUT, and CPU-time bounds are not asserted ---- */
static HARNESS_UNUSED int xt_slow(void) {
    static int slow = -1;
    if (slow < 0) {
        const char *e = getenv("SLP_TEST_SLOW");
        slow = (e && atoi(e) > 0) ? 1 : 0;
#ifdef XT_HAVE_VALGRIND
        if (RUNNING_ON_VALGRIND) slow = 1;
#endif
    }
    return slow;
}

/* milliseconds scaled for slow mode */
static HARNESS_UNUSED int64_t xt_ms(int64_t ms) { return xt_slow() ? ms * 20 : ms; }

/* Per-test watchdog: a hang becomes a failure (harness_alarm prints the test and exits 2). */
static HARNESS_UNUSED void watchdog(unsigned seconds) {
    alarm(xt_slow() ? harness_timeout : seconds);
}

static HARNESS_UNUSED void sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static HARNESS_UNUSED int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The kernel's id of the calling thread, and whether that thread is asleep (state S or D in
 * /proc): used to make sure a thread has really parked (past libslp's short spin) before the
 * test goes on. */
static HARNESS_UNUSED long xt_gettid(void) { return (long)syscall(SYS_gettid); }

static HARNESS_UNUSED int xt_task_sleeping(long ktid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", ktid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

/* ---- shared state under one mutex ---- */
static pthread_mutex_t xt_mx = PTHREAD_MUTEX_INITIALIZER;
static HARNESS_UNUSED void xt_lock(void) { pthread_mutex_lock(&xt_mx); }
static HARNESS_UNUSED void xt_unlock(void) { pthread_mutex_unlock(&xt_mx); }
static HARNESS_UNUSED long xt_get(const long *p) {
    xt_lock();
    long v = *p;
    xt_unlock();
    return v;
}
static HARNESS_UNUSED void xt_set(long *p, long v) {
    xt_lock();
    *p = v;
    xt_unlock();
}
static HARNESS_UNUSED long xt_add(long *p, long d) {
    xt_lock();
    long v = (*p += d);
    xt_unlock();
    return v;
}

/* Polls `cond` (re-evaluated every 100 us) for up to `ms` (scaled); ok = whether it held. */
#define WAIT_UNTIL(ok, cond, ms)                                                          \
    do {                                                                                  \
        int64_t xt_dl_ = now_ns() + xt_ms(ms) * 1000000LL;                                \
        for (;;) {                                                                        \
            if (cond) {                                                                   \
                (ok) = true;                                                              \
                break;                                                                    \
            }                                                                             \
            if (now_ns() > xt_dl_) {                                                      \
                (ok) = false;                                                             \
                break;                                                                    \
            }                                                                             \
            usleep(100);                                                                  \
        }                                                                                 \
    } while (0)

/* A check that waits: passes once `cond` holds, fails after `ms` (scaled). */
#define CHECK_WAIT(cond, ms)                                                              \
    do {                                                                                  \
        bool xt_ok_;                                                                      \
        WAIT_UNTIL(xt_ok_, cond, ms);                                                     \
        CHECK_MSG(xt_ok_, "still false after %lld ms", (long long)xt_ms(ms));             \
    } while (0)

/* ---- one channel operation done on some thread, results published under xt_mx ---- */
struct xop {
    slp_channel *ch;
    void *val;        /* to send; for receive: what was received (pre-set to SENTINEL) */
    slp_status st;    /* what the operation returned */
    long tid;         /* slp_thread_id() of the thread it returned on */
    long done;        /* the operation returned */
    void *exc;        /* slp_exception_data() right after it */
    int64_t t_done;   /* now_ns() when it returned */
    int wake_self;    /* then slp_scheduler_wakeup(own thread) */
    int free_count;   /* arg_free ran (xop_free) */
    long free_tid;    /* on which thread arg_free ran */
};

static HARNESS_UNUSED void xop_init(struct xop *o, slp_channel *ch, void *val) {
    memset(o, 0, sizeof *o);
    o->ch = ch;
    o->val = val;
    o->st = 12345;
}

static HARNESS_UNUSED void xop_publish(struct xop *o, slp_status st, void *val, bool set_val) {
    void *exc = slp_exception_data();
    long tid = (long)slp_thread_id();
    xt_lock();
    o->st = st;
    if (set_val) o->val = val;
    o->exc = exc;
    o->tid = tid;
    o->t_done = now_ns();
    o->done = 1;
    xt_unlock();
}

static HARNESS_UNUSED int32_t xop_recv(void *arg) {
    struct xop *o = arg;
    void *v = SENTINEL;
    slp_status st = slp_channel_receive(o->ch, &v);
    xop_publish(o, st, v, st == SLP_OK);
    if (o->wake_self) slp_scheduler_wakeup(slp_thread_id());
    return 0; /* handled, whatever it was */
}

static HARNESS_UNUSED int32_t xop_send(void *arg) {
    struct xop *o = arg;
    slp_status st = slp_channel_send(o->ch, o->val);
    xop_publish(o, st, NULL, false);
    if (o->wake_self) slp_scheduler_wakeup(slp_thread_id());
    return 0;
}

/* arg_free for a struct xop: counts and records the thread it ran on */
static HARNESS_UNUSED void xop_free(void *arg) {
    struct xop *o = arg;
    long tid = (long)slp_thread_id();
    xt_lock();
    o->free_count++;
    o->free_tid = tid;
    xt_unlock();
}

static HARNESS_UNUSED long xop_done(struct xop *o) { return xt_get(&o->done); }

/* Creates a tasklet (checked) with arg_free = xop_free and optional flags. */
static HARNESS_UNUSED slp_tasklet *spawn_xop(slp_tasklet_fn fn, struct xop *o, uint32_t flags) {
    slp_tasklet_options opts;
    slp_tasklet_options_init(&opts);
    opts.flags = flags;
    opts.arg_free = xop_free;
    slp_tasklet *t = NULL;
    slp_status st = slp_tasklet_new_ex(fn, o, &opts, &t);
    if (st != SLP_OK) {
        printf("spawn_xop: slp_tasklet_new_ex failed: %d %s\n", (int)st, slp_last_error());
        return NULL;
    }
    return t;
}

/* ---- a dedicated worker thread: setup() on the thread, then slp_run_wait(-1) until stopped ---- */
struct worker {
    pthread_t th;
    void (*setup)(void *arg); /* runs on the worker before its first slp_run_wait */
    void *arg;
    long tid;      /* its slp_thread_id(), published once set up */
    long ktid;     /* its kernel thread id */
    long started;
    long stop;     /* set by stop_worker before its slp_scheduler_wakeup */
    long n_ok;     /* slp_run_wait returned SLP_OK (woken by slp_scheduler_wakeup) */
    long n_err;    /* any other return */
    long first_err;
    char err[256];
};

static HARNESS_UNUSED void *worker_main(void *p) {
    struct worker *w = p;
    slp_current(); /* has a scheduler: participates from here */
    if (w->setup) w->setup(w->arg);
    long ktid = xt_gettid();
    xt_lock();
    w->tid = (long)slp_thread_id();
    w->ktid = ktid;
    w->started = 1;
    xt_unlock();
    for (;;) {
        slp_status st = slp_run_wait(-1);
        if (st == SLP_OK) {
            xt_add(&w->n_ok, 1);
            if (xt_get(&w->stop)) break;
            continue;
        }
        xt_lock();
        if (w->n_err++ == 0) {
            w->first_err = st;
            snprintf(w->err, sizeof w->err, "%s", slp_last_error());
        }
        long n = w->n_err;
        xt_unlock();
        if (st == SLP_E_DEADLOCK || st == SLP_E_STATE || st == SLP_E_INVALID || n > 1000) break;
    }
    return NULL; /* thread exit: §5.4 cleans up whatever is left */
}

#define START_WORKER(w, setup_fn, setup_arg) start_worker_at(__FILE__, __LINE__, (w), (setup_fn), (setup_arg))
static HARNESS_UNUSED bool start_worker_at(const char *file, int line, struct worker *w, void (*setup)(void *),
                                           void *arg) {
    memset(w, 0, sizeof *w);
    w->setup = setup;
    w->arg = arg;
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
        harness_fail_header(file, line);
        printf("pthread_create failed");
        harness_fail_tail("");
        return false;
    }
    bool ok;
    WAIT_UNTIL(ok, xt_get(&w->started), 5000);
    if (!ok) {
        harness_fail_header(file, line);
        printf("worker did not start");
        harness_fail_tail(slp_last_error());
    } else {
        harness_passed++;
    }
    return ok;
}

/* Stops the worker (stop flag + slp_scheduler_wakeup), joins it, checks that every
 * slp_run_wait returned SLP_OK. */
#define STOP_WORKER(w) stop_worker_at(__FILE__, __LINE__, (w))
static HARNESS_UNUSED void stop_worker_at(const char *file, int line, struct worker *w) {
    xt_set(&w->stop, 1);
    slp_status st = slp_scheduler_wakeup(xt_get(&w->tid));
    if (st != SLP_OK) {
        harness_fail_header(file, line);
        printf("slp_scheduler_wakeup(worker) returned %d (%s)", (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
    } else {
        harness_passed++;
    }
    pthread_join(w->th, NULL);
    if (w->n_err != 0) {
        harness_fail_header(file, line);
        printf("worker: slp_run_wait failed %ld time(s), first %ld (%s): \"%s\"", w->n_err, w->first_err,
               harness_status_name(w->first_err), w->err);
        harness_fail_tail("");
    } else {
        harness_passed++;
    }
}

#endif /* SLP_TEST_THREAD_UTIL_H */
