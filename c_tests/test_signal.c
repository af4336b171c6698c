/* test_signal.c - the mo-threads Signal and Till (SPEC §7, the API contract's Signal / Till
 * section), their deadlock rules (§5.3), SIGNAL cases in slp_select (§5.5) and §10 scenario 21.
 *
 * Covered, one area per block below:
 *   - go: idempotent (SLP_OK every time), is_go, irreversible;
 *   - wait: at once after go (no switch); timeout 0 polls (SLP_E_TIMEOUT at once, no switch);
 *     finite timeouts (SLP_E_TIMEOUT, never early, lateness bound generous); a go before the
 *     timeout (SLP_OK); released by go from another thread: the main tasklet, a plain thread,
 *     a tasklet while its main runs slp_run_wait, a tasklet of a worker thread;
 *   - a wait in a tasklet parks only that tasklet (another tasklet keeps running, also while
 *     the waiter has a timeout); several waiters (tasklets and threads) all released by one go;
 *   - then: before go runs at go, in registration order, on the thread that calls go, before
 *     go returns; after go runs at once on the caller; *token written (NULL allowed);
 *     remove_then before go (SLP_OK, the fn never runs) and after (SLP_E_STATE), unknown
 *     tokens; calls inside a then callback that would block or switch (slp_signal_wait on an
 *     unfired signal, slp_schedule, slp_run, a blocking select) return SLP_E_STATE, and the go
 *     in progress completes normally; go, new, release, then are allowed there;
 *   - or / and: when they fire, at once when already satisfied, derived of derived (also a
 *     chain of 100), then on a derived signal (runs on the thread that goes the input), a
 *     derived signal keeps its inputs alive; releasing a derived signal before its inputs fire
 *     (its then callback never runs, nothing touches freed memory), a tasklet waiting on a
 *     derived signal whose handle was released;
 *   - §10 scenario 21: 1,000,000 `or(x, please_stop)` created, polled and released in a loop,
 *     RSS (/proc/self/statm) growth under 4 MiB; the same for and, for chains, for an input
 *     that already went and with a then callback added and removed each time;
 *   - deadlock rules: main waiting alone (SLP_E_DEADLOCK, nothing changed), a participating
 *     thread that will go (SLP_OK) or exits without going (SLP_E_DEADLOCK on its exit),
 *     rule 1 (tasklet waits while main in slp_run), rule 3 (a tasklet ends while main waits),
 *     rule 4 (a tasklet's wait while main waits: SLP_E_DEADLOCK, it goes on), a pending Till
 *     (or an or over one) is never a deadlock;
 *   - kill and throw of a waiting tasklet (pending and not, with a timeout, from another
 *     thread); block_trap and switch_trap;
 *   - Till: fires after its time (never early: is_go is polled and never true early), within
 *     generous bounds; in deadline order; ns <= 0 born went; 1000 tills all fire, each after its
 *     time; waited on from main and from a tasklet; a till ignores the scheduler's host clock;
 *     a till released before it fires;
 *   - select: SIGNAL case ready when went (*index set, value untouched), first ready case in
 *     array order wins, NULL signal disables, poll and finite timeout, blocked selectors (main
 *     and tasklet) released by go from this and another thread (the channel's balance back),
 *     over a Till, kill of a blocked selector, deadlock; the worker-loop idiom (select over a
 *     work channel and a stop signal: every item first, then stop), on another thread and on a
 *     tasklet, rendezvous and buffered;
 *   - misuse: NULLs -> SLP_E_INVALID / false / no-op, out-parameters untouched on failure.
 *
 * Every test is bounded (harness alarm, watchdog(n), bounded polls); timing checks are strict
 * only about "never early"; lateness bounds are wide (and scaled in slow mode). The callback
 * scenarios run in forked children (child_util.h). */
#include "harness.h"
#include "common.h"
#include "thread_util.h"
#include "child_util.h"

#include <sched.h>

#define MS(x) ((int64_t)(x) * 1000000LL)
#define NO_INDEX ((size_t)777)
#define NO_TOKEN UINT64_MAX
#define RECV SLP_SELECT_RECEIVE
#define SEND SLP_SELECT_SEND
#define SIG SLP_SELECT_SIGNAL

/* Under a sanitizer RSS says nothing about leaks (ASan's quarantine keeps freed memory). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SIG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SIG_SANITIZED 1
#endif
#endif
#ifndef SIG_SANITIZED
#define SIG_SANITIZED 0
#endif

static long g_marker; /* exception data for throws */

/* ---- creating signals (checked) ---- */

#define NEW_SIGNAL() new_signal_at(__FILE__, __LINE__)
static slp_signal *new_signal_at(const char *file, int line) {
    slp_signal *s = NULL;
    slp_status st = slp_signal_new(&s);
    if (st != SLP_OK || s == NULL) {
        harness_fail_header(file, line);
        printf("slp_signal_new failed: %d (%s)", (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
        return NULL;
    }
    harness_passed++;
    return s;
}

#define NEW_TILL(ns) new_till_at(__FILE__, __LINE__, (ns))
static slp_signal *new_till_at(const char *file, int line, int64_t ns) {
    slp_signal *s = NULL;
    slp_status st = slp_till_new(ns, &s);
    if (st != SLP_OK || s == NULL) {
        harness_fail_header(file, line);
        printf("slp_till_new(%lld) failed: %d (%s)", (long long)ns, (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
        return NULL;
    }
    harness_passed++;
    return s;
}

#define NEW_OR(a, b) new_derived_at(__FILE__, __LINE__, 0, (a), (b))
#define NEW_AND(a, b) new_derived_at(__FILE__, __LINE__, 1, (a), (b))
static slp_signal *new_derived_at(const char *file, int line, int is_and, slp_signal *a, slp_signal *b) {
    slp_signal *s = NULL;
    slp_status st = is_and ? slp_signal_and(a, b, &s) : slp_signal_or(a, b, &s);
    if (st != SLP_OK || s == NULL) {
        harness_fail_header(file, line);
        printf("slp_signal_%s failed: %d (%s)", is_and ? "and" : "or", (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
        return NULL;
    }
    harness_passed++;
    return s;
}

static uint64_t switches_now(void) {
    slp_counters c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    if (slp_counters_get(&c) != SLP_OK) return (uint64_t)-1;
    return c.switches;
}

/* Resident set size in bytes (/proc/self/statm, second field). */
static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, res = -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

/* Runs slp_run_wait in slices until `cond` holds or `ms` (scaled) passed (serves timers). */
#define RUN_WAIT_UNTIL(ok, cond, ms)                                                      \
    do {                                                                                  \
        int64_t rw_dl_ = now_ns() + MS(xt_ms(ms));                                        \
        (ok) = false;                                                                     \
        while (!((ok) = (cond)) && now_ns() < rw_dl_) slp_run_wait(MS(10));               \
    } while (0)

/* ---- then callbacks ---- */

/* logs the character passed as user_data (same-thread tests only) */
static void cb_log(void *ud) { log_c((char)(intptr_t)ud); }

/* records where and when it ran, and its place among all recorded callbacks */
struct rec {
    long count;
    pthread_t th;
    long tid;      /* slp_thread_id() (only with want_tid: it needs the thread's scheduler) */
    int want_tid;
    long seq;
    int64_t t;
};
static long g_seq;

static void rec_init(struct rec *r, int want_tid) {
    memset(r, 0, sizeof *r);
    r->want_tid = want_tid;
}

static void cb_rec(void *ud) {
    struct rec *r = ud;
    pthread_t self = pthread_self();
    int64_t t = now_ns();
    long tid = r->want_tid ? (long)slp_thread_id() : 0;
    xt_lock();
    r->count++;
    r->th = self;
    r->tid = tid;
    r->seq = ++g_seq;
    r->t = t;
    xt_unlock();
}

static long rec_count(struct rec *r) { return xt_get(&r->count); }

/* ---- a waiting tasklet (results published under xt_mx: it may run on another thread) ---- */
struct sw {
    slp_signal *s;
    int64_t timeout;
    char tag;              /* same-thread tests: logs tag before the wait, upper case after */
    int block_trap;
    int switch_trap;
    int wake_self;         /* slp_scheduler_wakeup(own thread) after the wait */
    slp_signal *then_go;   /* go this signal after the wait */
    slp_status then_go_st;
    int32_t ret;
    slp_status st;
    void *exc;
    int64_t t0, t1;
    long tid;
    long started;
    long done;
};

static void sw_init(struct sw *w, slp_signal *s, int64_t timeout, char tag) {
    memset(w, 0, sizeof *w);
    w->s = s;
    w->timeout = timeout;
    w->tag = tag;
    w->st = 12345;
    w->then_go_st = 12345;
}

static int32_t t_wait(void *arg) {
    struct sw *w = arg;
    if (w->block_trap) slp_tasklet_set_block_trap(slp_current(), true);
    if (w->switch_trap) slp_switch_trap(1);
    if (w->tag) log_c(w->tag);
    long tid = (long)slp_thread_id();
    int64_t t0 = now_ns();
    xt_lock();
    w->t0 = t0;
    w->tid = tid;
    w->started = 1;
    xt_unlock();
    slp_status st = slp_signal_wait(w->s, w->timeout);
    int64_t t1 = now_ns();
    void *exc = slp_exception_data();
    if (w->switch_trap) slp_switch_trap(-1);
    if (w->block_trap) slp_tasklet_set_block_trap(slp_current(), false);
    xt_lock();
    w->st = st;
    w->exc = exc;
    w->t1 = t1;
    w->done = 1;
    xt_unlock();
    if (w->tag) log_c((char)(w->tag - 'a' + 'A'));
    if (w->then_go) w->then_go_st = slp_signal_go(w->then_go);
    if (w->wake_self) slp_scheduler_wakeup(slp_thread_id());
    return w->ret;
}

static long sw_done(struct sw *w) { return xt_get(&w->done); }

static slp_status sw_st(struct sw *w) {
    xt_lock();
    slp_status st = w->st;
    xt_unlock();
    return st;
}

static void setup_spawn_wait(void *arg) { slp_tasklet_new(t_wait, arg, NULL); }
static slp_tasklet *g_kept;
static void setup_spawn_wait_keep(void *arg) {
    g_kept = NULL;
    slp_tasklet_new(t_wait, arg, &g_kept);
}

/* ---- a plain thread that waits (its first libslp call is the wait) ---- */
struct tw {
    slp_signal *s;
    int64_t timeout;
    long ktid;
    long started;
    slp_status st;
    int64_t t0, t1;
    long done;
};

static void *th_wait(void *arg) {
    struct tw *w = arg;
    long ktid = xt_gettid();
    int64_t t0 = now_ns();
    xt_lock();
    w->ktid = ktid;
    w->t0 = t0;
    w->started = 1;
    xt_unlock();
    slp_status st = slp_signal_wait(w->s, w->timeout);
    int64_t t1 = now_ns();
    xt_lock();
    w->st = st;
    w->t1 = t1;
    w->done = 1;
    xt_unlock();
    return NULL;
}

static bool tw_start(struct tw *w, pthread_t *th, slp_signal *s, int64_t timeout) {
    memset(w, 0, sizeof *w);
    w->s = s;
    w->timeout = timeout;
    w->st = 12345;
    return pthread_create(th, NULL, th_wait, w) == 0;
}

/* the thread is asleep (in the wait, past libslp's spin) */
static bool tw_parked(struct tw *w) {
    xt_lock();
    long started = w->started, ktid = w->ktid, done = w->done;
    xt_unlock();
    return started && !done && xt_task_sleeping(ktid);
}

/* ---- a thread that goes a signal after a delay ---- */
struct goer {
    slp_signal *s;
    int64_t delay_ms;
    int participate;       /* slp_current() first: it counts for deadlock detection */
    int no_go;             /* exit without going */
    struct rec *watch;     /* read its count right after go returned */
    long ready;
    long tid;
    pthread_t self;
    slp_status st;
    int64_t t_go, t_exit;
    long watch_count_after_go;
    long done;
};

static void *th_go(void *arg) {
    struct goer *g = arg;
    long tid = 0;
    if (g->participate) {
        slp_current();
        tid = (long)slp_thread_id();
    }
    pthread_t self = pthread_self();
    xt_lock();
    g->tid = tid;
    g->self = self;
    g->ready = 1;
    xt_unlock();
    if (g->delay_ms) sleep_ms(g->delay_ms);
    int64_t t = now_ns();
    slp_status st = g->no_go ? SLP_OK : slp_signal_go(g->s);
    long wc = g->watch ? rec_count(g->watch) : 0;
    xt_lock();
    g->st = st;
    g->t_go = t;
    g->watch_count_after_go = wc;
    g->t_exit = now_ns();
    g->done = 1;
    xt_unlock();
    return NULL;
}

static bool goer_start(struct goer *g, pthread_t *th, slp_signal *s, int64_t delay_ms, int participate) {
    memset(g, 0, sizeof *g);
    g->s = s;
    g->delay_ms = delay_ms;
    g->participate = participate;
    g->st = 12345;
    if (pthread_create(th, NULL, th_go, g) != 0) return false;
    bool ok;
    WAIT_UNTIL(ok, xt_get(&g->ready), 2000);
    return ok;
}

/* ============================================================================================
 * go, is_go, wait after go
 * ========================================================================================== */

TEST(go_is_idempotent_and_irreversible) {
    slp_signal *s = NEW_SIGNAL();
    CHECK(!slp_signal_is_go(s));
    CHECK(!slp_signal_is_go(s)); /* a query changes nothing */
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK(slp_signal_is_go(s));
    for (int i = 0; i < 5; i++) CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK(slp_signal_is_go(s));
    /* retain / release keep it alive and went */
    slp_signal_retain(s);
    slp_signal_release(s);
    CHECK(slp_signal_is_go(s));
    CHECK_ST(slp_signal_wait(s, 0), SLP_OK);
    CHECK_ST(slp_signal_wait(s, -1), SLP_OK);
    CHECK_ST(slp_signal_wait(s, MS(10)), SLP_OK);
    CHECK(slp_signal_is_go(s));
    slp_signal_release(s);

    /* a go with waiters, then again: the second go finds no waiters and is still SLP_OK */
    slp_signal *s2 = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s2, -1, 0);
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_signal_go(s2), SLP_OK);
    CHECK_ST(slp_signal_go(s2), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_signal_release(s2);
}

static int32_t t_wait_went_then_log(void *arg) {
    slp_signal *s = arg;
    log_c('a');
    slp_status st = slp_signal_wait(s, -1);
    log_c(st == SLP_OK ? 'A' : '!');
    return 0;
}

TEST(wait_after_go_returns_at_once_without_switching) {
    slp_signal *s = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(s), SLP_OK);
    /* main, with another tasklet runnable: no switch, O does not run */
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    uint64_t sw0 = switches_now();
    int64_t t0 = now_ns();
    CHECK_ST(slp_signal_wait(s, -1), SLP_OK);
    CHECK_ST(slp_signal_wait(s, 0), SLP_OK);
    CHECK_ST(slp_signal_wait(s, MS(5000)), SLP_OK);
    int64_t took = now_ns() - t0;
    CHECK_MSG(took < MS(xt_ms(200)), "three waits on a went signal took %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(switches_now(), sw0);
    CHECK_LOG("");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("o");
    /* a tasklet: its wait returns at once, before O runs */
    log_reset();
    slp_tasklet *a = SPAWN(t_wait_went_then_log, s);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("aAo");
    slp_tasklet_release(o);
    slp_tasklet_release(o2);
    slp_tasklet_release(a);
    slp_signal_release(s);
}

/* ============================================================================================
 * Polls and finite timeouts
 * ========================================================================================== */

TEST(poll_unfired_times_out_at_once_without_switching) {
    slp_signal *s = NEW_SIGNAL();
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    uint64_t sw0 = switches_now();
    int64_t t0 = now_ns();
    for (int i = 0; i < 100; i++) CHECK_ST(slp_signal_wait(s, 0), SLP_E_TIMEOUT);
    int64_t took = now_ns() - t0;
    CHECK_MSG(took < MS(xt_ms(200)), "100 polls took %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(switches_now(), sw0);
    CHECK_LOG("");
    CHECK(!slp_signal_is_go(s));
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_ST(slp_signal_wait(s, 0), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("o");
    slp_tasklet_release(o);
    slp_signal_release(s);
}

TEST(finite_timeout_on_main_expires_never_early) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    static const int64_t tos[] = {1, 5, 20, 50}; /* ms */
    for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
        int64_t to = MS(tos[i]);
        int64_t t0 = now_ns();
        CHECK_ST(slp_signal_wait(s, to), SLP_E_TIMEOUT);
        int64_t took = now_ns() - t0;
        CHECK_MSG(took >= to, "wait(%lld ms) returned early, after %lld us", (long long)tos[i],
                  (long long)(took / 1000));
        CHECK_MSG(took < to + MS(xt_ms(1000)), "wait(%lld ms) returned after %lld us", (long long)tos[i],
                  (long long)(took / 1000));
        CHECK(!slp_signal_is_go(s));
    }
    /* after timeouts the signal works as before */
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_ST(slp_signal_wait(s, MS(20)), SLP_OK);
    slp_signal_release(s);
}

TEST(finite_timeout_in_tasklet_expires_never_early) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, MS(20), 0);
    slp_tasklet *t = SPAWN(t_wait, &w);
    bool ok;
    RUN_WAIT_UNTIL(ok, sw_done(&w), 3000);
    CHECK(ok);
    CHECK_ST(w.st, SLP_E_TIMEOUT);
    CHECK_MSG(w.t1 - w.t0 >= MS(20), "returned early, after %lld us", (long long)((w.t1 - w.t0) / 1000));
    CHECK_MSG(w.t1 - w.t0 < MS(20) + MS(xt_ms(1000)), "returned after %lld us", (long long)((w.t1 - w.t0) / 1000));
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_signal_release(s);
}

/* a go before the timeout: SLP_OK, well before it */
TEST(finite_timeout_go_first_returns_ok) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct goer g;
    pthread_t th;
    CHECK(goer_start(&g, &th, s, xt_ms(20), 1));
    int64_t t0 = now_ns();
    CHECK_ST(slp_signal_wait(s, MS(xt_ms(5000))), SLP_OK);
    int64_t took = now_ns() - t0;
    CHECK_MSG(took < MS(xt_ms(4000)), "returned after %lld us (the timeout?)", (long long)(took / 1000));
    pthread_join(th, NULL);
    CHECK_ST(g.st, SLP_OK);
    CHECK(slp_signal_is_go(s));
    slp_signal_release(s);
}

/* ============================================================================================
 * Released by go from another thread
 * ========================================================================================== */

TEST(main_waiter_released_by_go_from_another_thread) {
    watchdog(10);
    for (int finite = 0; finite < 2; finite++) {
        slp_signal *s = NEW_SIGNAL();
        struct goer g;
        pthread_t th;
        CHECK(goer_start(&g, &th, s, xt_ms(30), 1));
        int64_t t0 = now_ns();
        CHECK_ST(slp_signal_wait(s, finite ? MS(xt_ms(5000)) : -1), SLP_OK);
        int64_t t1 = now_ns();
        pthread_join(th, NULL);
        CHECK_ST(g.st, SLP_OK);
        CHECK_MSG(t1 >= g.t_go, "main's wait returned before the other thread called go");
        CHECK_MSG(t1 - t0 >= MS(10), "returned after %lld us: it did not wait", (long long)((t1 - t0) / 1000));
        CHECK(slp_tasklet_is_current(slp_main()));
        slp_signal_release(s);
    }
}

TEST(plain_thread_waiter_released_by_go_from_main) {
    watchdog(10);
    for (int finite = 0; finite < 2; finite++) {
        slp_signal *s = NEW_SIGNAL();
        struct tw w;
        pthread_t th;
        CHECK(tw_start(&w, &th, s, finite ? MS(xt_ms(5000)) : -1));
        CHECK_WAIT(tw_parked(&w), 2000);
        CHECK_EQ_INT(xt_get(&w.done), 0);
        int64_t t_go = now_ns();
        CHECK_ST(slp_signal_go(s), SLP_OK);
        CHECK_WAIT(xt_get(&w.done), 2000);
        pthread_join(th, NULL);
        CHECK_ST(w.st, SLP_OK);
        CHECK(w.t1 >= t_go);
        slp_signal_release(s);
    }
}

/* a tasklet of this thread waits while main is in slp_run_wait; another thread goes */
TEST(tasklet_waiter_released_while_main_in_run_wait) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, -1, 0);
    w.wake_self = 1;
    slp_tasklet *t = SPAWN(t_wait, &w);
    struct goer g;
    pthread_t th;
    CHECK(goer_start(&g, &th, s, xt_ms(30), 1));
    slp_status st = slp_run_wait(MS(xt_ms(5000)));
    CHECK_ST(st, SLP_OK); /* woken by the tasklet's slp_scheduler_wakeup, not the timeout */
    CHECK_EQ_INT(sw_done(&w), 1);
    CHECK_ST(w.st, SLP_OK);
    CHECK_EQ_INT(w.tid, slp_thread_id());
    pthread_join(th, NULL);
    CHECK_ST(g.st, SLP_OK);
    CHECK(w.t1 >= g.t_go);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_signal_release(s);
}

/* a worker thread's tasklet waits (the worker in slp_run_wait); this thread goes */
TEST(worker_tasklet_waiter_released_by_go_from_main) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, -1, 0);
    struct worker b;
    if (!START_WORKER(&b, setup_spawn_wait, &w)) return;
    CHECK_WAIT(xt_get(&w.started) && xt_task_sleeping(b.ktid), 2000);
    CHECK_EQ_INT(sw_done(&w), 0);
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_WAIT(sw_done(&w), 2000);
    xt_lock();
    CHECK_ST(w.st, SLP_OK);
    CHECK_EQ_INT(w.tid, b.tid);
    xt_unlock();
    STOP_WORKER(&b);
    slp_signal_release(s);
}

/* ============================================================================================
 * A wait in a tasklet parks only that tasklet
 * ========================================================================================== */

struct other {
    slp_tasklet *waiter;
    slp_signal *s;
    int waiter_blocked; /* seen blocked while this one ran */
    long yields;
    struct sw *until;   /* yield until it is done (timeout test) */
};

static int32_t t_other_then_go(void *arg) {
    struct other *o = arg;
    log_c('b');
    o->waiter_blocked = slp_tasklet_blocked(o->waiter);
    if (slp_schedule() != SLP_OK) log_c('!');
    log_c('c');
    if (slp_signal_go(o->s) != SLP_OK) log_c('!');
    log_c('d');
    return 0;
}

TEST(tasklet_wait_parks_only_that_tasklet) {
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, -1, 'a');
    log_reset();
    slp_tasklet *a = SPAWN(t_wait, &w);
    struct other o;
    memset(&o, 0, sizeof o);
    o.waiter = a;
    o.s = s;
    slp_tasklet *b = SPAWN(t_other_then_go, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_OK);
    CHECK(o.waiter_blocked);
    /* a waits, b runs on (it yields with a still parked), goes; then a resumes. Whether go
     * switches to the waiter at once is not pinned: "abcdA" or "abcAd". */
    CHECK_MSG(strncmp(g_log, "abc", 3) == 0 && strlen(g_log) == 5 && strchr(g_log + 3, 'A') && strchr(g_log + 3, 'd'),
              "log \"%s\"", g_log);
    CHECK(!slp_tasklet_alive(a));
    CHECK(!slp_tasklet_alive(b));
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_signal_release(s);
}

static int32_t t_yield_until_done(void *arg) {
    struct other *o = arg;
    int64_t dl = now_ns() + MS(xt_ms(3000));
    while (!sw_done(o->until) && now_ns() < dl) {
        o->yields++;
        if (slp_schedule() != SLP_OK) break;
    }
    return 0;
}

/* while a tasklet waits with a timeout, another keeps running (and the timeout still fires) */
TEST(tasklet_timed_wait_parks_only_that_tasklet) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, MS(20), 0);
    slp_tasklet *a = SPAWN(t_wait, &w);
    struct other o;
    memset(&o, 0, sizeof o);
    o.until = &w;
    slp_tasklet *b = SPAWN(t_yield_until_done, &o);
    bool ok;
    RUN_WAIT_UNTIL(ok, sw_done(&w) && !slp_tasklet_alive(b), 4000);
    CHECK(ok);
    CHECK_ST(w.st, SLP_E_TIMEOUT);
    CHECK(w.t1 - w.t0 >= MS(20));
    CHECK_MSG(o.yields > 10, "the other tasklet ran only %ld times while the waiter waited", o.yields);
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_signal_release(s);
}

/* ============================================================================================
 * Several waiters, tasklets and threads, all released by one go
 * ========================================================================================== */

TEST(several_waiters_tasklets_and_threads_all_released) {
    watchdog(15);
    slp_signal *s = NEW_SIGNAL();
    slp_signal *o = NULL; /* a derived signal waited on by one more thread */
    slp_signal *never = NEW_SIGNAL();
    o = NEW_OR(never, s);
    /* three tasklets on this thread, one with a finite timeout */
    struct sw w[3];
    slp_tasklet *t[3];
    for (int i = 0; i < 3; i++) {
        sw_init(&w[i], s, i == 2 ? MS(xt_ms(10000)) : -1, 0);
        t[i] = SPAWN(t_wait, &w[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 3; i++) CHECK(slp_tasklet_blocked(t[i]));
    /* two plain threads on s, one on the derived signal */
    struct tw tw[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) CHECK(tw_start(&tw[i], &th[i], i == 2 ? o : s, i == 1 ? MS(xt_ms(10000)) : -1));
    /* a worker's tasklet */
    struct sw ww;
    sw_init(&ww, s, -1, 0);
    struct worker b;
    if (!START_WORKER(&b, setup_spawn_wait, &ww)) return;
    for (int i = 0; i < 3; i++) CHECK_WAIT(tw_parked(&tw[i]), 2000);
    CHECK_WAIT(xt_get(&ww.started) && xt_task_sleeping(b.ktid), 2000);
    /* then callbacks too */
    struct rec r1, r2;
    rec_init(&r1, 1);
    rec_init(&r2, 1);
    CHECK_ST(slp_signal_then(s, cb_rec, &r1, NULL), SLP_OK);
    CHECK_ST(slp_signal_then(o, cb_rec, &r2, NULL), SLP_OK);

    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_EQ_INT(rec_count(&r1), 1);
    CHECK_EQ_INT(rec_count(&r2), 1);
    CHECK(slp_signal_is_go(o));
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(w[i].st, SLP_OK);
        CHECK(!slp_tasklet_alive(t[i]));
        slp_tasklet_release(t[i]);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_WAIT(xt_get(&tw[i].done), 2000);
        pthread_join(th[i], NULL);
        CHECK_ST(tw[i].st, SLP_OK);
    }
    CHECK_WAIT(sw_done(&ww), 2000);
    CHECK_ST(sw_st(&ww), SLP_OK);
    STOP_WORKER(&b);
    slp_signal_release(o);
    slp_signal_release(never);
    slp_signal_release(s);
}

/* ============================================================================================
 * then / remove_then
 * ========================================================================================== */

TEST(then_before_go_runs_at_go_in_registration_order) {
    slp_signal *s = NEW_SIGNAL();
    log_reset();
    uint64_t tk[3] = {NO_TOKEN, NO_TOKEN, NO_TOKEN};
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('a'), &tk[0]), SLP_OK);
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('b'), &tk[1]), SLP_OK);
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('c'), &tk[2]), SLP_OK);
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('d'), NULL), SLP_OK); /* token NULL: fine */
    CHECK(tk[0] != tk[1] && tk[1] != tk[2] && tk[0] != tk[2]);
    CHECK_LOG(""); /* nothing ran yet */
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_LOG("abcd"); /* inside go, before it returned, in order */
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_LOG("abcd"); /* once */
    for (int i = 0; i < 3; i++) CHECK_ST(slp_signal_remove_then(s, tk[i]), SLP_E_STATE); /* already ran */
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_signal_release(s);

    /* the same callback twice is two registrations */
    slp_signal *s2 = NEW_SIGNAL();
    log_reset();
    CHECK_ST(slp_signal_then(s2, cb_log, IPTR('x'), NULL), SLP_OK);
    CHECK_ST(slp_signal_then(s2, cb_log, IPTR('x'), NULL), SLP_OK);
    CHECK_ST(slp_signal_go(s2), SLP_OK);
    CHECK_LOG("xx");
    slp_signal_release(s2);
}

/* go from another (participating) thread: the callbacks run there, in order, inside go */
TEST(then_before_go_runs_on_the_go_thread) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct rec r[3];
    for (int i = 0; i < 3; i++) {
        rec_init(&r[i], 1);
        CHECK_ST(slp_signal_then(s, cb_rec, &r[i], NULL), SLP_OK);
    }
    struct goer g;
    pthread_t th;
    memset(&g, 0, sizeof g);
    g.s = s;
    g.delay_ms = 5;
    g.participate = 1;
    g.watch = &r[2]; /* the last one ran before go returned */
    g.st = 12345;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_go, &g), 0);
    pthread_join(th, NULL);
    CHECK_ST(g.st, SLP_OK);
    CHECK_EQ_INT(g.watch_count_after_go, 1);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(r[i].count, 1);
        CHECK(pthread_equal(r[i].th, g.self));
        CHECK(!pthread_equal(r[i].th, pthread_self()));
        CHECK_EQ_INT(r[i].tid, g.tid);
        CHECK(r[i].tid != slp_thread_id());
    }
    CHECK(r[0].seq < r[1].seq && r[1].seq < r[2].seq);
    slp_signal_release(s);
}

struct then_on_thread {
    slp_signal *s;
    struct rec *r;
    slp_status st;
    uint64_t token;
    long count_at_return;
    pthread_t self;
};

static void *th_then(void *arg) {
    struct then_on_thread *x = arg;
    x->self = pthread_self();
    x->token = NO_TOKEN;
    x->st = slp_signal_then(x->s, cb_rec, x->r, &x->token);
    x->count_at_return = rec_count(x->r);
    return NULL;
}

TEST(then_after_go_runs_at_once_on_the_caller) {
    slp_signal *s = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(s), SLP_OK);
    log_reset();
    uint64_t tk = NO_TOKEN;
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('x'), &tk), SLP_OK);
    CHECK_LOG("x"); /* at once, before then returned */
    CHECK(tk != NO_TOKEN); /* written all the same */
    CHECK_ST(slp_signal_remove_then(s, tk), SLP_E_STATE);
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('y'), NULL), SLP_OK);
    CHECK_LOG("xy");
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_LOG("xy"); /* not again */

    /* on another thread: runs there, at once */
    struct rec r;
    rec_init(&r, 0);
    struct then_on_thread x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.r = &r;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_then, &x), 0);
    pthread_join(th, NULL);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.count_at_return, 1);
    CHECK_EQ_INT(r.count, 1);
    CHECK(pthread_equal(r.th, x.self));
    CHECK(x.token != NO_TOKEN);
    CHECK_ST(slp_signal_remove_then(s, x.token), SLP_E_STATE);
    slp_signal_release(s);
}

TEST(remove_then_before_go_and_after) {
    slp_signal *s = NEW_SIGNAL();
    log_reset();
    uint64_t tk[3];
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('a'), &tk[0]), SLP_OK);
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('b'), &tk[1]), SLP_OK);
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('c'), &tk[2]), SLP_OK);
    CHECK_ST(slp_signal_remove_then(s, tk[1]), SLP_OK);
    CHECK_ST(slp_signal_remove_then(s, tk[1]), SLP_E_STATE); /* removed already */
    CHECK_LAST_ERROR_SET();
    uint64_t unknown = tk[0] ^ tk[1] ^ tk[2] ^ 0x5a5a5a5a5a5aULL;
    if (unknown == tk[0] || unknown == tk[1] || unknown == tk[2]) unknown = NO_TOKEN - 1;
    CHECK_ST(slp_signal_remove_then(s, unknown), SLP_E_STATE);
    CHECK_LOG("");
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_LOG("ac"); /* b never runs */
    CHECK_ST(slp_signal_remove_then(s, tk[0]), SLP_E_STATE); /* ran */
    CHECK_ST(slp_signal_remove_then(s, tk[2]), SLP_E_STATE);
    CHECK_ST(slp_signal_remove_then(s, tk[1]), SLP_E_STATE);
    CHECK_LOG("ac");

    /* remove every callback: go runs none */
    slp_signal *s2 = NEW_SIGNAL();
    log_reset();
    uint64_t t1, t2;
    CHECK_ST(slp_signal_then(s2, cb_log, IPTR('p'), &t1), SLP_OK);
    CHECK_ST(slp_signal_then(s2, cb_log, IPTR('q'), &t2), SLP_OK);
    CHECK_ST(slp_signal_remove_then(s2, t2), SLP_OK);
    CHECK_ST(slp_signal_remove_then(s2, t1), SLP_OK);
    CHECK_ST(slp_signal_go(s2), SLP_OK);
    CHECK_LOG("");
    slp_signal_release(s2);
    slp_signal_release(s);
}

/* ============================================================================================
 * Inside a then callback: calls that would block or switch are SLP_E_STATE (forked children)
 * ========================================================================================== */
static struct {
    slp_signal *unfired, *other, *went, *fresh;
    int calls;
    slp_status st_wait, st_wait_timed, st_wait_poll, st_wait_went, st_sched, st_run, st_select, st_select_poll;
    slp_status st_go_other, st_new, st_then_went, st_then_unfired, st_kill;
    bool other_go_after;
    char err[512];
    int nested_ran;
    char log_at_end[64];
    slp_tasklet *victim;
    size_t idx;
} g_cb;

static void cb_nested(void *ud) {
    (void)ud;
    g_cb.nested_ran++;
}

static void cb_do_calls(void *ud) {
    (void)ud;
    if (g_cb.calls++ != 0) return;
    g_cb.st_wait = slp_signal_wait(g_cb.unfired, -1);
    snprintf(g_cb.err, sizeof g_cb.err, "%s", slp_last_error());
    g_cb.st_wait_timed = slp_signal_wait(g_cb.unfired, MS(10));
    g_cb.st_wait_poll = slp_signal_wait(g_cb.unfired, 0);
    g_cb.st_wait_went = slp_signal_wait(g_cb.went, -1);
    g_cb.st_sched = slp_schedule();
    g_cb.st_run = slp_run();
    slp_select_case c[1];
    memset(c, 0, sizeof c);
    c[0].op = SIG;
    c[0].signal = g_cb.unfired;
    g_cb.idx = NO_INDEX;
    g_cb.st_select = slp_select(c, 1, -1, &g_cb.idx);
    g_cb.st_select_poll = slp_select(c, 1, 0, &g_cb.idx);
    g_cb.st_kill = g_cb.victim ? slp_tasklet_kill(g_cb.victim, false) : SLP_E_STATE;
    /* allowed: go another signal (its callbacks run nested), new/release, then */
    g_cb.st_go_other = slp_signal_go(g_cb.other);
    g_cb.other_go_after = slp_signal_is_go(g_cb.other);
    g_cb.st_new = slp_signal_new(&g_cb.fresh);
    g_cb.st_then_went = slp_signal_then(g_cb.went, cb_nested, NULL, NULL);
    g_cb.st_then_unfired = slp_signal_then(g_cb.unfired, cb_nested, NULL, NULL);
    snprintf(g_cb.log_at_end, sizeof g_cb.log_at_end, "%.63s", g_log);
}

static int32_t t_go(void *arg) { return slp_signal_go((slp_signal *)arg) == SLP_OK ? 0 : 99; }

static void then_callback_child(void *arg) {
    int kind = (int)(intptr_t)arg; /* 0 go from main, 1 go from a tasklet, 2 then after go */
    memset(&g_cb, 0, sizeof g_cb);
    g_cb.st_wait = g_cb.st_wait_timed = g_cb.st_wait_poll = g_cb.st_wait_went = 12345;
    g_cb.st_sched = g_cb.st_run = g_cb.st_select = g_cb.st_select_poll = 12345;
    g_cb.st_go_other = g_cb.st_new = g_cb.st_then_went = g_cb.st_then_unfired = g_cb.st_kill = 12345;
    g_cb.unfired = NEW_SIGNAL();
    g_cb.other = NEW_SIGNAL();
    g_cb.went = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(g_cb.went), SLP_OK);
    CHECK_ST(slp_signal_then(g_cb.other, cb_nested, NULL, NULL), SLP_OK);
    slp_signal *s = NEW_SIGNAL();
    /* a tasklet waiting on s: the go in progress still releases it */
    struct sw w;
    sw_init(&w, s, -1, 0);
    slp_tasklet *waiter = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(waiter));
    /* a runnable tasklet that the callback's schedule / run must not reach, and a victim
     * for a non-pending kill */
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    g_cb.victim = o;
    const char *word = "callback";
    if (kind == 0) {
        CHECK_ST(slp_signal_then(s, cb_do_calls, NULL, NULL), SLP_OK);
        CHECK_ST(slp_signal_go(s), SLP_OK);
    } else if (kind == 1) {
        CHECK_ST(slp_signal_then(s, cb_do_calls, NULL, NULL), SLP_OK);
        slp_tasklet *g = SPAWN(t_go, s);
        CHECK_ST(slp_tasklet_run(g), SLP_OK); /* g goes s, runs the callback, ends */
        CHECK(!slp_tasklet_alive(g));
        slp_tasklet_release(g);
    } else {
        CHECK_ST(slp_signal_go(s), SLP_OK);
        CHECK_ST(slp_signal_then(s, cb_do_calls, NULL, NULL), SLP_OK); /* runs at once, here */
    }
    CHECK_EQ_INT(g_cb.calls, 1);
    CHECK_ST(g_cb.st_wait, SLP_E_STATE);
    CHECK_MSG(strstr(g_cb.err, word) != NULL, "slp_last_error \"%s\" does not name the callback", g_cb.err);
    CHECK_ST(g_cb.st_wait_timed, SLP_E_STATE);
    /* a poll blocks nothing: SLP_E_TIMEOUT is the natural answer; SLP_E_STATE is accepted
     * (the contract lists wait "inside a callback -> SLP_E_STATE" without exceptions) */
    CHECK_MSG(g_cb.st_wait_poll == SLP_E_TIMEOUT || g_cb.st_wait_poll == SLP_E_STATE, "poll in callback: %d (%s)",
              (int)g_cb.st_wait_poll, harness_status_name(g_cb.st_wait_poll));
    /* a wait on a went signal blocks nothing either: SLP_OK expected, SLP_E_STATE accepted */
    CHECK_MSG(g_cb.st_wait_went == SLP_OK || g_cb.st_wait_went == SLP_E_STATE, "wait(went) in callback: %d (%s)",
              (int)g_cb.st_wait_went, harness_status_name(g_cb.st_wait_went));
    CHECK_ST(g_cb.st_sched, SLP_E_STATE);
    CHECK_ST(g_cb.st_run, SLP_E_STATE);
    CHECK_ST(g_cb.st_select, SLP_E_STATE);
    CHECK_EQ_INT(g_cb.idx, NO_INDEX);
    CHECK_MSG(g_cb.st_select_poll == SLP_E_TIMEOUT || g_cb.st_select_poll == SLP_E_STATE, "select poll in callback: %d",
              (int)g_cb.st_select_poll);
    CHECK_ST(g_cb.st_kill, SLP_E_STATE); /* a non-pending kill switches */
    CHECK_ST(g_cb.st_go_other, SLP_OK);
    CHECK(g_cb.other_go_after);
    CHECK_ST(g_cb.st_new, SLP_OK);
    CHECK_ST(g_cb.st_then_went, SLP_OK);
    CHECK_ST(g_cb.st_then_unfired, SLP_OK);
    CHECK_EQ_INT(g_cb.nested_ran, 2); /* other's callback (at its go) and the then on went */
    CHECK(slp_signal_is_go(s));
    CHECK(!slp_signal_is_go(g_cb.unfired));
    CHECK(g_cb.fresh != NULL && !slp_signal_is_go(g_cb.fresh));
    CHECK_EQ_STR(g_cb.log_at_end, ""); /* o did not run from inside the callback */
    CHECK(slp_tasklet_is_current(slp_main()));
    /* the go in progress completed normally: the waiter is released */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_OK);
    CHECK_LOG("o");
    CHECK_ST(slp_signal_go(g_cb.unfired), SLP_OK);
    CHECK_EQ_INT(g_cb.nested_ran, 3);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(waiter);
    slp_tasklet_release(o);
    slp_signal_release(g_cb.fresh);
    slp_signal_release(g_cb.unfired);
    slp_signal_release(g_cb.other);
    slp_signal_release(g_cb.went);
    slp_signal_release(s);
}

TEST(calls_inside_then_callback_that_would_block_are_state) {
    CHECK_CHILD("then callback run by go on main", then_callback_child, IPTR(0), 5);
    CHECK_CHILD("then callback run by go in a tasklet", then_callback_child, IPTR(1), 5);
    CHECK_CHILD("then callback run at once by then", then_callback_child, IPTR(2), 5);
}

/* ============================================================================================
 * or / and
 * ========================================================================================== */

TEST(or_fires_when_either_input_goes) {
    for (int which = 0; which < 2; which++) {
        slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
        slp_signal *o = NEW_OR(a, b);
        CHECK(!slp_signal_is_go(o));
        CHECK_ST(slp_signal_wait(o, 0), SLP_E_TIMEOUT);
        log_reset();
        CHECK_ST(slp_signal_then(o, cb_log, IPTR('o'), NULL), SLP_OK);
        CHECK_ST(slp_signal_go(which ? b : a), SLP_OK);
        CHECK_LOG("o"); /* o went inside the input's go, on this thread */
        CHECK(slp_signal_is_go(o));
        CHECK(!slp_signal_is_go(which ? a : b)); /* the other input is untouched */
        CHECK_ST(slp_signal_wait(o, 0), SLP_OK);
        CHECK_ST(slp_signal_go(which ? a : b), SLP_OK);
        CHECK_LOG("o");
        slp_signal_release(o);
        slp_signal_release(a);
        slp_signal_release(b);
    }
    /* at once when already satisfied */
    slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(a), SLP_OK);
    slp_signal *o1 = NEW_OR(a, b), *o2 = NEW_OR(b, a);
    CHECK(slp_signal_is_go(o1));
    CHECK(slp_signal_is_go(o2));
    CHECK_ST(slp_signal_wait(o1, -1), SLP_OK);
    /* or(x, x) */
    slp_signal *c = NEW_SIGNAL();
    slp_signal *cc = NEW_OR(c, c);
    CHECK(!slp_signal_is_go(cc));
    CHECK_ST(slp_signal_go(c), SLP_OK);
    CHECK(slp_signal_is_go(cc));
    slp_signal_release(cc);
    slp_signal_release(c);
    slp_signal_release(o1);
    slp_signal_release(o2);
    slp_signal_release(a);
    slp_signal_release(b);
}

TEST(and_fires_when_both_inputs_went) {
    for (int order = 0; order < 2; order++) {
        slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
        slp_signal *x = NEW_AND(a, b);
        log_reset();
        CHECK_ST(slp_signal_then(x, cb_log, IPTR('x'), NULL), SLP_OK);
        CHECK(!slp_signal_is_go(x));
        CHECK_ST(slp_signal_go(order ? b : a), SLP_OK);
        CHECK(!slp_signal_is_go(x));
        CHECK_ST(slp_signal_wait(x, 0), SLP_E_TIMEOUT);
        CHECK_LOG("");
        CHECK_ST(slp_signal_go(order ? b : a), SLP_OK); /* the same input again: still not */
        CHECK(!slp_signal_is_go(x));
        CHECK_ST(slp_signal_go(order ? a : b), SLP_OK);
        CHECK_LOG("x");
        CHECK(slp_signal_is_go(x));
        CHECK_ST(slp_signal_wait(x, -1), SLP_OK);
        slp_signal_release(x);
        slp_signal_release(a);
        slp_signal_release(b);
    }
    slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(a), SLP_OK);
    slp_signal *x1 = NEW_AND(a, b);
    CHECK(!slp_signal_is_go(x1)); /* one went: not yet */
    CHECK_ST(slp_signal_go(b), SLP_OK);
    CHECK(slp_signal_is_go(x1));
    slp_signal *x2 = NEW_AND(a, b); /* both went: born went */
    CHECK(slp_signal_is_go(x2));
    CHECK_ST(slp_signal_wait(x2, 0), SLP_OK);
    slp_signal *c = NEW_SIGNAL();
    slp_signal *cc = NEW_AND(c, c);
    CHECK(!slp_signal_is_go(cc));
    CHECK_ST(slp_signal_go(c), SLP_OK);
    CHECK(slp_signal_is_go(cc));
    slp_signal_release(cc);
    slp_signal_release(c);
    slp_signal_release(x1);
    slp_signal_release(x2);
    slp_signal_release(a);
    slp_signal_release(b);
}

TEST(derived_of_derived) {
    slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL(), *c = NEW_SIGNAL(), *d = NEW_SIGNAL();
    slp_signal *o1 = NEW_OR(a, b);     /* a | b */
    slp_signal *x1 = NEW_AND(o1, c);   /* (a | b) & c */
    slp_signal *o2 = NEW_OR(x1, d);    /* ((a | b) & c) | d */
    slp_signal *x2 = NEW_AND(o2, o1);  /* shares o1 */
    log_reset();
    CHECK_ST(slp_signal_then(o2, cb_log, IPTR('2'), NULL), SLP_OK);
    CHECK_ST(slp_signal_then(x2, cb_log, IPTR('X'), NULL), SLP_OK);
    CHECK_ST(slp_signal_go(b), SLP_OK);
    CHECK(slp_signal_is_go(o1));
    CHECK(!slp_signal_is_go(x1));
    CHECK(!slp_signal_is_go(o2));
    CHECK(!slp_signal_is_go(x2));
    CHECK_LOG("");
    CHECK_ST(slp_signal_go(c), SLP_OK);
    CHECK(slp_signal_is_go(x1));
    CHECK(slp_signal_is_go(o2));
    CHECK(slp_signal_is_go(x2));
    /* both ran, inside go(c); their relative order is not pinned (x2 subscribed to o2 when it
     * was made, before o2's then was registered) */
    CHECK_MSG(strlen(g_log) == 2 && strchr(g_log, '2') && strchr(g_log, 'X'), "log \"%s\"", g_log);
    CHECK(!slp_signal_is_go(a));
    CHECK(!slp_signal_is_go(d));
    slp_signal *all[] = {o1, x1, o2, x2, a, b, c, d};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) slp_signal_release(all[i]);

    /* a chain of 100 ors (each over the previous and a fresh signal), our handles released
     * as we go except the last: going the base goes the end */
    slp_signal *base = NEW_SIGNAL();
    slp_signal *cur = base;
    slp_signal_retain(base);
    slp_signal *fresh[100];
    for (int i = 0; i < 100; i++) {
        fresh[i] = NEW_SIGNAL();
        slp_signal *n = (i % 2) ? NEW_OR(cur, fresh[i]) : NEW_OR(fresh[i], cur);
        slp_signal_release(cur);
        cur = n;
    }
    CHECK(!slp_signal_is_go(cur));
    CHECK_ST(slp_signal_go(base), SLP_OK);
    CHECK(slp_signal_is_go(cur));
    slp_signal_release(cur);
    slp_signal_release(base);
    for (int i = 0; i < 100; i++) slp_signal_release(fresh[i]);

    /* a chain of 100 ands needs every input */
    slp_signal *in[101];
    for (int i = 0; i <= 100; i++) in[i] = NEW_SIGNAL();
    cur = in[0];
    slp_signal_retain(cur);
    for (int i = 1; i <= 100; i++) {
        slp_signal *n = NEW_AND(cur, in[i]);
        slp_signal_release(cur);
        cur = n;
    }
    for (int i = 100; i >= 1; i--) CHECK_ST(slp_signal_go(in[i]), SLP_OK);
    CHECK(!slp_signal_is_go(cur));
    CHECK_ST(slp_signal_go(in[0]), SLP_OK);
    CHECK(slp_signal_is_go(cur));
    slp_signal_release(cur);
    for (int i = 0; i <= 100; i++) slp_signal_release(in[i]);
}

/* a derived signal's then runs on the thread that goes its input; a thread waiting on it is
 * released */
TEST(derived_signal_across_threads) {
    watchdog(10);
    slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
    slp_signal *o = NEW_OR(a, b);
    struct rec r;
    rec_init(&r, 1);
    CHECK_ST(slp_signal_then(o, cb_rec, &r, NULL), SLP_OK);
    struct goer g;
    pthread_t th;
    CHECK(goer_start(&g, &th, b, xt_ms(20), 1));
    CHECK_ST(slp_signal_wait(o, -1), SLP_OK);
    pthread_join(th, NULL);
    CHECK_ST(g.st, SLP_OK);
    CHECK_EQ_INT(r.count, 1);
    CHECK(pthread_equal(r.th, g.self));
    CHECK_EQ_INT(r.tid, g.tid);
    slp_signal_release(o);
    slp_signal_release(a);
    slp_signal_release(b);
}

/* A derived signal keeps its inputs alive while it exists: the caller's handles to the inputs
 * can go first. Releasing a derived signal before its inputs fire unsubscribes it: going the
 * inputs afterwards touches nothing freed (valgrind / ASan watch this) and its then callback
 * never runs. */
TEST(derived_keeps_inputs_and_released_derived_is_unsubscribed) {
    /* inputs released first */
    slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
    slp_signal *o = NEW_OR(a, b), *x = NEW_AND(a, b);
    slp_signal_retain(a); /* one extra handle to go it with */
    slp_signal_release(a);
    slp_signal_release(b); /* b now lives only through o and x */
    CHECK(!slp_signal_is_go(o));
    CHECK_ST(slp_signal_go(a), SLP_OK);
    CHECK(slp_signal_is_go(o));
    CHECK(!slp_signal_is_go(x));
    slp_signal_release(a); /* now a lives only through x (and o) */
    slp_signal_release(o);
    CHECK(!slp_signal_is_go(x));
    slp_signal_release(x); /* frees x, then a and b */

    /* derived released before its inputs fire */
    struct rec r[4];
    for (int i = 0; i < 4; i++) rec_init(&r[i], 0);
    slp_signal *p = NEW_SIGNAL(), *q = NEW_SIGNAL();
    slp_signal *d_or = NEW_OR(p, q), *d_and = NEW_AND(p, q);
    slp_signal *d_o1 = NEW_OR(p, q);
    slp_signal *d_o2 = NEW_AND(d_o1, q); /* derived of derived */
    CHECK_ST(slp_signal_then(d_or, cb_rec, &r[0], NULL), SLP_OK);
    CHECK_ST(slp_signal_then(d_and, cb_rec, &r[1], NULL), SLP_OK);
    CHECK_ST(slp_signal_then(d_o1, cb_rec, &r[2], NULL), SLP_OK);
    CHECK_ST(slp_signal_then(d_o2, cb_rec, &r[3], NULL), SLP_OK);
    slp_signal_release(d_or);
    slp_signal_release(d_and);
    slp_signal_release(d_o1); /* still alive through d_o2 */
    slp_signal_release(d_o2);  /* frees d_o2, then d_o1 */
    CHECK_ST(slp_signal_go(p), SLP_OK);
    CHECK_ST(slp_signal_go(q), SLP_OK);
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(r[i].count, 0);
    /* the inputs still work */
    slp_signal *after = NEW_OR(p, q);
    CHECK(slp_signal_is_go(after));
    slp_signal_release(after);
    slp_signal_release(p);
    slp_signal_release(q);

    /* a derived signal whose inner derived was released (alive through the outer one) still
     * fires its then when the inputs go */
    slp_signal *e = NEW_SIGNAL(), *f = NEW_SIGNAL();
    slp_signal *in = NEW_OR(e, f);
    slp_signal *out = NEW_AND(in, f);
    slp_signal_release(in);
    log_reset();
    CHECK_ST(slp_signal_then(out, cb_log, IPTR('z'), NULL), SLP_OK);
    CHECK_ST(slp_signal_go(f), SLP_OK);
    CHECK_LOG("z");
    CHECK(slp_signal_is_go(out));
    slp_signal_release(out);
    slp_signal_release(e);
    slp_signal_release(f);
}

/* The runtime holds a waited-on signal (SPEC §2: it keeps its own references while it needs
 * an object): a tasklet waits on a derived signal whose only handle the test releases; going
 * an input still releases the tasklet. */
TEST(waiter_keeps_released_derived_signal_alive) {
    slp_signal *a = NEW_SIGNAL(), *b = NEW_SIGNAL();
    slp_signal *o = NEW_OR(a, b);
    struct sw w;
    sw_init(&w, o, -1, 0);
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    slp_signal_release(o); /* the waiting tasklet is what keeps it */
    CHECK_ST(slp_signal_go(b), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_signal_release(a);
    slp_signal_release(b);
}

/* ============================================================================================
 * SPEC §10 scenario 21: or(x, please_stop) made, polled and released a million times; the
 * inputs' subscriber lists do not grow (RSS bounded), for or and for and, chains too.
 * ========================================================================================== */

static long loop_count(void) {
    const char *e = getenv("SLP_SIGNAL_LOOP");
    if (e && atol(e) > 0) return atol(e);
    return (xt_slow() || SIG_SANITIZED) ? 50000 : 1000000;
}

enum loop_kind { LOOP_OR, LOOP_AND, LOOP_CHAIN, LOOP_WENT, LOOP_THEN };

/* one iteration; returns 0 if everything answered as it should */
static int loop_once(enum loop_kind k, slp_signal *x, slp_signal *ps, slp_signal *y, slp_signal *went) {
    slp_signal *o = NULL, *o2 = NULL;
    int bad = 0;
    switch (k) {
    case LOOP_OR:
        if (slp_signal_or(x, ps, &o) != SLP_OK) return 1;
        bad |= slp_signal_wait(o, 0) != SLP_E_TIMEOUT;
        break;
    case LOOP_AND:
        if (slp_signal_and(x, ps, &o) != SLP_OK) return 1;
        bad |= slp_signal_wait(o, 0) != SLP_E_TIMEOUT;
        break;
    case LOOP_CHAIN:
        if (slp_signal_or(x, ps, &o2) != SLP_OK) return 1;
        if (slp_signal_and(o2, y, &o) != SLP_OK) {
            slp_signal_release(o2);
            return 1;
        }
        slp_signal_release(o2); /* alive through o */
        bad |= slp_signal_wait(o, 0) != SLP_E_TIMEOUT;
        break;
    case LOOP_WENT: /* an input that already went: born went */
        if (slp_signal_or(went, ps, &o) != SLP_OK) return 1;
        bad |= slp_signal_wait(o, 0) != SLP_OK;
        break;
    case LOOP_THEN: {
        if (slp_signal_or(x, ps, &o) != SLP_OK) return 1;
        uint64_t tk;
        bad |= slp_signal_then(o, cb_nested, NULL, &tk) != SLP_OK;
        bad |= slp_signal_wait(o, 0) != SLP_E_TIMEOUT;
        static unsigned parity;
        if (parity++ & 1) bad |= slp_signal_remove_then(o, tk) != SLP_OK; /* else released with it */
        break;
    }
    }
    slp_signal_release(o);
    return bad;
}

static void derived_loop(enum loop_kind k, const char *what) {
    watchdog(60);
    long n = loop_count();
    slp_signal *x = NEW_SIGNAL(), *ps = NEW_SIGNAL(), *y = NEW_SIGNAL(), *went = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(went), SLP_OK);
    g_cb.nested_ran = 0;
    long bad = 0;
    /* warm up (allocator, lazily created state), then measure */
    for (long i = 0; i < n / 10; i++) bad += loop_once(k, x, ps, y, went);
    long rss0 = rss_bytes();
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) bad += loop_once(k, x, ps, y, went);
    int64_t took = now_ns() - t0;
    long rss1 = rss_bytes();
    CHECK_MSG(bad == 0, "%s: %ld iterations answered wrongly", what, bad);
    CHECK(rss0 > 0 && rss1 > 0);
    long growth = rss1 - rss0;
    printf("    %s: %ld iterations, %.0f ns each, RSS %+ld KiB\n", what, n, (double)took / (double)n, growth / 1024);
    if (!xt_slow() && !SIG_SANITIZED)
        CHECK_MSG(growth < 4L * 1024 * 1024, "%s: RSS grew by %ld KiB over %ld iterations", what, growth / 1024, n);
    CHECK_EQ_INT(g_cb.nested_ran, 0); /* the released derived signals' callbacks never ran */
    /* the inputs still work, and going them reaches no released derived signal */
    slp_signal *o = NEW_OR(x, ps);
    CHECK_ST(slp_signal_go(ps), SLP_OK);
    CHECK(slp_signal_is_go(o));
    CHECK_ST(slp_signal_go(x), SLP_OK);
    CHECK_ST(slp_signal_go(y), SLP_OK);
    CHECK_EQ_INT(g_cb.nested_ran, 0);
    slp_signal_release(o);
    slp_signal_release(x);
    slp_signal_release(ps);
    slp_signal_release(y);
    slp_signal_release(went);
}

TEST(scenario21_million_or_please_stop_bounded_memory) { derived_loop(LOOP_OR, "or(x, please_stop)"); }
TEST(million_and_bounded_memory) { derived_loop(LOOP_AND, "and(x, please_stop)"); }
TEST(million_derived_chains_bounded_memory) { derived_loop(LOOP_CHAIN, "and(or(x, please_stop), y)"); }
TEST(million_or_with_went_input_bounded_memory) { derived_loop(LOOP_WENT, "or(went, please_stop)"); }
TEST(million_or_with_then_bounded_memory) { derived_loop(LOOP_THEN, "or(x, please_stop) + then"); }

/* ============================================================================================
 * Deadlock rules (§5.3) for a wait
 * ========================================================================================== */

TEST(main_wait_alone_is_deadlock_and_changes_nothing) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    int64_t t0 = now_ns();
    CHECK_ST(slp_signal_wait(s, -1), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_MSG(now_ns() - t0 < MS(xt_ms(2000)), "deadlock took %lld ms", (long long)((now_ns() - t0) / 1000000));
    CHECK(!slp_signal_is_go(s));
    CHECK(!slp_tasklet_blocked(slp_main()));
    /* a derived signal over unfired signals, and a select over it: the same */
    slp_signal *b = NEW_SIGNAL();
    slp_signal *o = NEW_OR(s, b), *x = NEW_AND(s, b);
    CHECK_ST(slp_signal_wait(o, -1), SLP_E_DEADLOCK);
    CHECK_ST(slp_signal_wait(x, -1), SLP_E_DEADLOCK);
    slp_select_case c[1];
    memset(c, 0, sizeof c);
    c[0].op = SIG;
    c[0].signal = s;
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_E_DEADLOCK);
    CHECK_EQ_INT(idx, NO_INDEX);
    /* the signal still works afterwards (the failed wait left nothing behind) */
    log_reset();
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('s'), NULL), SLP_OK);
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_LOG("s");
    CHECK_ST(slp_signal_wait(s, -1), SLP_OK);
    CHECK_ST(slp_signal_wait(o, -1), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_signal_release(o);
    slp_signal_release(x);
    slp_signal_release(b);
    slp_signal_release(s);
}

/* with another participating thread that will go it: SLP_OK; one that exits without going:
 * SLP_E_DEADLOCK once it exited (the blocked main is re-checked), not a hang */
TEST(main_wait_with_participating_thread) {
    watchdog(10);
    for (int go = 1; go >= 0; go--) {
        slp_signal *s = NEW_SIGNAL();
        struct goer g;
        pthread_t th;
        memset(&g, 0, sizeof g);
        g.s = s;
        g.delay_ms = xt_ms(50);
        g.participate = 1;
        g.no_go = !go;
        g.st = 12345;
        CHECK_EQ_INT(pthread_create(&th, NULL, th_go, &g), 0);
        CHECK_WAIT(xt_get(&g.ready), 2000);
        int64_t t0 = now_ns();
        slp_status st = slp_signal_wait(s, -1);
        int64_t t1 = now_ns();
        CHECK_ST(st, go ? SLP_OK : SLP_E_DEADLOCK);
        CHECK_MSG(t1 - t0 >= MS(30), "returned after %lld us: it did not wait for the thread", (long long)((t1 - t0) / 1000));
        pthread_join(th, NULL);
        if (!go) CHECK(g.t_exit <= t1);
        CHECK_EQ_INT(slp_signal_is_go(s), go);
        slp_signal_release(s);
    }
}

/* rule 1: a tasklet's wait while main is in slp_run: the run returns, the tasklet stays */
TEST(tasklet_wait_while_main_in_run_returns_the_run) {
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, -1, 0);
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(w.done, 0);
    CHECK_ST(slp_run(), SLP_OK); /* again: still waiting */
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK(!slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_signal_release(s);
}

static int32_t t_return_arg(void *arg) { return (int32_t)(intptr_t)arg; }

/* rule 3: a tasklet ends while main waits (and nothing else could go the signal) */
TEST(tasklet_ends_while_main_waits_is_deadlock_or_its_error) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    slp_tasklet *t = SPAWN(t_return_arg, IPTR(0));
    CHECK_ST(slp_signal_wait(s, -1), SLP_E_DEADLOCK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    t = SPAWN(t_return_arg, IPTR(42));
    CHECK_ST(slp_signal_wait(s, -1), 42);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    CHECK(!slp_signal_is_go(s));
    slp_signal_release(s);
}

/* rule 4: main waits outside slp_run; a tasklet's wait that nothing could end gets
 * SLP_E_DEADLOCK itself and can go on (here: to go main's signal) */
TEST(tasklet_wait_while_main_waits_is_deadlock_and_goes_on) {
    watchdog(10);
    slp_signal *sm = NEW_SIGNAL(), *st = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, st, -1, 0);
    w.then_go = sm;
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_signal_wait(sm, -1), SLP_OK);
    CHECK_ST(w.st, SLP_E_DEADLOCK);
    CHECK_ST(w.then_go_st, SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_signal_is_go(st));
    slp_tasklet_release(t);
    slp_signal_release(sm);
    slp_signal_release(st);
}

/* a pending Till will go: never a deadlock (main alone, an or over a Till, a select) */
TEST(wait_on_pending_till_is_not_deadlock) {
    watchdog(10);
    int64_t t0 = now_ns(); /* before the call: the till's time counts from the call */
    slp_signal *t = NEW_TILL(MS(30));
    CHECK_ST(slp_signal_wait(t, -1), SLP_OK);
    CHECK(now_ns() - t0 >= MS(30));
    slp_signal_release(t);

    slp_signal *s = NEW_SIGNAL();
    t0 = now_ns();
    t = NEW_TILL(MS(30));
    slp_signal *o = NEW_OR(s, t);
    CHECK_ST(slp_signal_wait(o, -1), SLP_OK);
    CHECK(now_ns() - t0 >= MS(30));
    CHECK(slp_signal_is_go(t));
    CHECK(!slp_signal_is_go(s));
    slp_signal_release(o);
    slp_signal_release(t);
    slp_signal_release(s);
}

/* ============================================================================================
 * kill and throw of a waiting tasklet
 * ========================================================================================== */

TEST(kill_waiting_tasklet) {
    for (int pending = 0; pending < 2; pending++) {
        slp_signal *s = NEW_SIGNAL();
        struct sw w;
        sw_init(&w, s, -1, 0);
        w.ret = SLP_E_KILLED; /* a silent end */
        slp_tasklet *t = SPAWN(t_wait, &w);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        CHECK_ST(slp_tasklet_kill(t, pending), SLP_OK);
        if (pending) {
            CHECK(slp_tasklet_alive(t));
            CHECK(!slp_tasklet_blocked(t)); /* it left the signal */
            CHECK(slp_tasklet_scheduled(t));
            CHECK_ST(slp_run(), SLP_OK);
        }
        CHECK_ST(w.st, SLP_E_KILLED);
        CHECK(!slp_tasklet_alive(t));
        /* going the signal now reaches no dead waiter; a new waiter works */
        struct sw w2;
        sw_init(&w2, s, -1, 0);
        slp_tasklet *t2 = SPAWN(t_wait, &w2);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(slp_signal_go(s), SLP_OK);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(w2.st, SLP_OK);
        CHECK_ST(w.st, SLP_E_KILLED);
        slp_tasklet_release(t);
        slp_tasklet_release(t2);
        slp_signal_release(s);
    }
}

TEST(throw_to_waiting_tasklet) {
    for (int pending = 0; pending < 2; pending++) {
        slp_signal *s = NEW_SIGNAL();
        struct sw w;
        sw_init(&w, s, -1, 0);
        slp_tasklet *t = SPAWN(t_wait, &w);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        CHECK_ST(slp_tasklet_throw(t, 42, &g_marker, pending), SLP_OK);
        if (pending) CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(w.st, 42);
        CHECK_EQ_PTR(w.exc, &g_marker);
        CHECK(!slp_tasklet_alive(t));
        CHECK_ST(slp_signal_go(s), SLP_OK);
        slp_tasklet_release(t);
        slp_signal_release(s);
    }
}

/* killed while waiting with a timeout: SLP_E_KILLED at once; the timeout later does nothing */
TEST(kill_tasklet_waiting_with_timeout) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, MS(30), 0);
    w.ret = SLP_E_KILLED;
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(w.st, SLP_E_KILLED);
    CHECK(w.t1 - w.t0 < MS(30) || xt_slow());
    /* past the old deadline: nothing happens */
    CHECK_ST(slp_run_wait(MS(60)), SLP_E_TIMEOUT);
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_signal_release(s);
}

/* a worker's waiting tasklet killed from this thread */
TEST(kill_waiting_tasklet_from_another_thread) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    struct sw w;
    sw_init(&w, s, -1, 0);
    w.ret = SLP_E_KILLED;
    struct worker b;
    if (!START_WORKER(&b, setup_spawn_wait_keep, &w)) return;
    slp_tasklet *t = g_kept;
    CHECK_WAIT(xt_get(&w.started) && xt_task_sleeping(b.ktid), 2000);
    CHECK(t != NULL);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK); /* pending from another thread */
    CHECK_WAIT(sw_done(&w), 2000);
    CHECK_ST(sw_st(&w), SLP_E_KILLED);
    CHECK_ST(slp_signal_go(s), SLP_OK);
    STOP_WORKER(&b);
    slp_tasklet_release(t);
    slp_signal_release(s);
}

/* ============================================================================================
 * block_trap, switch_trap
 * ========================================================================================== */

TEST(block_trap_wait_would_block) {
    slp_signal *s = NEW_SIGNAL(), *went = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(went), SLP_OK);
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    CHECK(!slp_tasklet_set_block_trap(slp_main(), true));
    CHECK_ST(slp_signal_wait(s, -1), SLP_E_WOULD_BLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_signal_wait(s, MS(10)), SLP_E_WOULD_BLOCK);
    slp_status poll = slp_signal_wait(s, 0); /* a poll blocks nothing */
    CHECK_MSG(poll == SLP_E_TIMEOUT || poll == SLP_E_WOULD_BLOCK, "poll under block_trap: %d (%s)", (int)poll,
              harness_status_name(poll));
    CHECK_ST(slp_signal_wait(went, -1), SLP_OK); /* went: does not block */
    CHECK_LOG("");
    CHECK(slp_tasklet_set_block_trap(slp_main(), false));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("O");

    /* a tasklet with block_trap: its wait fails, it goes on */
    struct sw w;
    sw_init(&w, s, -1, 't');
    w.block_trap = 1;
    log_reset();
    slp_tasklet *t = SPAWN(t_wait, &w);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_E_WOULD_BLOCK);
    CHECK_LOG("tTO");
    CHECK(!slp_signal_is_go(s));
    slp_tasklet_release(t);
    slp_tasklet_release(o);
    slp_tasklet_release(o2);
    slp_signal_release(s);
    slp_signal_release(went);
}

TEST(switch_trap_wait_changes_nothing) {
    slp_signal *s = NEW_SIGNAL(), *went = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(went), SLP_OK);
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_ST(slp_signal_wait(s, -1), SLP_E_SWITCH_TRAP); /* would block and switch to O */
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_signal_wait(s, MS(10)), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_signal_wait(s, 0), SLP_E_TIMEOUT); /* a poll never switches */
    CHECK_ST(slp_signal_wait(went, -1), SLP_OK);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("O");

    struct sw w;
    sw_init(&w, s, -1, 't');
    w.switch_trap = 1;
    log_reset();
    slp_tasklet *t = SPAWN(t_wait, &w);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(w.st, SLP_E_SWITCH_TRAP);
    CHECK_LOG("tTO");
    slp_tasklet_release(t);
    slp_tasklet_release(o);
    slp_tasklet_release(o2);
    slp_signal_release(s);
    slp_signal_release(went);
}

/* ============================================================================================
 * Till
 * ========================================================================================== */

/* never early: is_go is polled and never seen true before the time */
TEST(till_fires_after_its_time_never_early) {
    watchdog(10);
    static const int64_t nss[] = {MS(1), MS(10), MS(30)};
    for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
        int64_t ns = nss[i];
        int64_t t0 = now_ns();
        slp_signal *t = NEW_TILL(ns);
        int64_t seen = 0;
        long polls = 0;
        for (;;) {
            bool g = slp_signal_is_go(t);
            int64_t now = now_ns();
            polls++;
            if (g) {
                seen = now;
                break;
            }
            if (now - t0 > ns + MS(xt_ms(2000))) break;
            if (polls % 64 == 0) sched_yield();
        }
        CHECK_MSG(seen != 0, "till(%lld us) never went", (long long)(ns / 1000));
        CHECK_MSG(seen - t0 >= ns, "till(%lld us) went early, after %lld us", (long long)(ns / 1000),
                  (long long)((seen - t0) / 1000));
        CHECK_MSG(seen - t0 < ns + MS(xt_ms(500)), "till(%lld us) went after %lld us", (long long)(ns / 1000),
                  (long long)((seen - t0) / 1000));
        slp_signal_release(t);
    }
    /* and waiting on it from main */
    for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
        int64_t ns = nss[i];
        int64_t t0 = now_ns();
        slp_signal *t = NEW_TILL(ns);
        CHECK_ST(slp_signal_wait(t, -1), SLP_OK);
        int64_t took = now_ns() - t0;
        CHECK_MSG(took >= ns, "wait on till(%lld us) returned early, after %lld us", (long long)(ns / 1000),
                  (long long)(took / 1000));
        CHECK_MSG(took < ns + MS(xt_ms(500)), "wait on till(%lld us) returned after %lld us", (long long)(ns / 1000),
                  (long long)(took / 1000));
        CHECK(slp_signal_is_go(t));
        slp_signal_release(t);
    }
    /* a finite wait shorter than the till: timeout first */
    slp_signal *t = NEW_TILL(MS(200));
    CHECK_ST(slp_signal_wait(t, MS(10)), SLP_E_TIMEOUT);
    CHECK(!slp_signal_is_go(t));
    slp_signal_release(t);
}

TEST(till_with_ns_not_positive_is_born_went) {
    static const int64_t nss[] = {0, -1, -MS(1000), INT64_MIN};
    for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
        slp_signal *t = NEW_TILL(nss[i]);
        CHECK(slp_signal_is_go(t));
        CHECK_ST(slp_signal_wait(t, 0), SLP_OK);
        log_reset();
        CHECK_ST(slp_signal_then(t, cb_log, IPTR('t'), NULL), SLP_OK);
        CHECK_LOG("t");
        CHECK_ST(slp_signal_go(t), SLP_OK);
        slp_signal_release(t);
    }
}

struct till_rec {
    struct rec r;
    int64_t t0; /* before slp_till_new */
    int64_t ns;
    slp_signal *s;
};

TEST(tills_fire_in_deadline_order_on_the_timer_thread) {
    watchdog(10);
    static const int ms[] = {160, 40, 120, 80, 200};
    enum { N = 5 };
    struct till_rec tr[N];
    for (int i = 0; i < N; i++) {
        rec_init(&tr[i].r, 0);
        tr[i].ns = MS(xt_ms(ms[i]));
        tr[i].t0 = now_ns();
        tr[i].s = NEW_TILL(tr[i].ns);
        CHECK_ST(slp_signal_then(tr[i].s, cb_rec, &tr[i].r, NULL), SLP_OK);
    }
    for (int i = 0; i < N; i++) CHECK_ST(slp_signal_wait(tr[i].s, -1), SLP_OK);
    /* by deadline: 40, 80, 120, 160, 200 */
    static const int order[] = {1, 3, 2, 0, 4};
    xt_lock();
    for (int k = 0; k < N; k++) {
        struct till_rec *x = &tr[order[k]];
        CHECK_EQ_INT(x->r.count, 1);
        if (k > 0) CHECK_MSG(tr[order[k - 1]].r.seq < x->r.seq, "till %d ms fired before till %d ms", ms[order[k]], ms[order[k - 1]]);
        CHECK_MSG(x->r.t - x->t0 >= x->ns, "till %d ms: callback after %lld us", ms[order[k]], (long long)((x->r.t - x->t0) / 1000));
        CHECK(!pthread_equal(x->r.th, pthread_self())); /* the process-wide timer thread goes it */
    }
    xt_unlock();
    for (int i = 0; i < N; i++) slp_signal_release(tr[i].s);
}

TEST(thousand_tills_all_fire_after_their_time) {
    watchdog(20);
    enum { N = 1000 };
    static struct till_rec tr[N];
    int64_t start = now_ns();
    for (int i = 0; i < N; i++) {
        rec_init(&tr[i].r, 0);
        tr[i].ns = MS((i * 7919) % 100); /* 0 .. 99 ms, shuffled; a few born went */
        tr[i].t0 = now_ns();
        tr[i].s = NEW_TILL(tr[i].ns);
        CHECK_ST(slp_signal_then(tr[i].s, cb_rec, &tr[i].r, NULL), SLP_OK);
    }
    /* wait for them all, in creation order (many already went) */
    long bad = 0;
    for (int i = 0; i < N; i++)
        if (slp_signal_wait(tr[i].s, MS(xt_ms(5000))) != SLP_OK) bad++;
    int64_t took = now_ns() - start;
    CHECK_EQ_INT(bad, 0);
    CHECK_MSG(took < MS(100) + MS(xt_ms(2000)), "1000 tills of at most 99 ms took %lld ms", (long long)(took / 1000000));
    long early = 0, count_bad = 0;
    xt_lock();
    for (int i = 0; i < N; i++) {
        if (tr[i].r.count != 1) count_bad++;
        if (tr[i].r.t - tr[i].t0 < tr[i].ns) early++;
    }
    xt_unlock();
    CHECK_EQ_INT(count_bad, 0);
    CHECK_MSG(early == 0, "%ld tills went early", early);
    for (int i = 0; i < N; i++) slp_signal_release(tr[i].s);
}

/* a tasklet waits on a till while main is in slp_run_wait(-1): no deadlock, woken in time */
TEST(till_waited_on_from_a_tasklet) {
    watchdog(10);
    int64_t t0 = now_ns(); /* before the call: the till's time counts from the call */
    slp_signal *t = NEW_TILL(MS(30));
    struct sw w;
    sw_init(&w, t, -1, 0);
    w.wake_self = 1;
    slp_tasklet *tk = SPAWN(t_wait, &w);
    CHECK_ST(slp_run_wait(-1), SLP_OK); /* until the tasklet's slp_scheduler_wakeup */
    CHECK_ST(w.st, SLP_OK);
    CHECK(w.t1 - t0 >= MS(30));
    CHECK_MSG(w.t1 - t0 < MS(30) + MS(xt_ms(500)), "after %lld us", (long long)((w.t1 - t0) / 1000));
    CHECK(!slp_tasklet_alive(tk));
    slp_tasklet_release(tk);
    slp_signal_release(t);

    /* two tasklets on two tills; main keeps running its loop in slices */
    slp_signal *t1 = NEW_TILL(MS(40)), *t2 = NEW_TILL(MS(20));
    struct sw a, b;
    sw_init(&a, t1, -1, 0);
    sw_init(&b, t2, -1, 0);
    slp_tasklet *ta = SPAWN(t_wait, &a), *tb = SPAWN(t_wait, &b);
    bool ok;
    RUN_WAIT_UNTIL(ok, sw_done(&a) && sw_done(&b), 3000);
    CHECK(ok);
    CHECK_ST(a.st, SLP_OK);
    CHECK_ST(b.st, SLP_OK);
    CHECK(b.t1 <= a.t1);
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_signal_release(t1);
    slp_signal_release(t2);
}

static int64_t frozen_clock(void *ud) { return *(int64_t *)ud; }

/* a till runs on the monotonic clock, not the scheduler's host clock */
TEST(till_ignores_the_host_clock) {
    watchdog(10);
    static int64_t frozen = 1000;
    CHECK_ST(slp_set_clock(frozen_clock, &frozen), SLP_OK);
    int64_t t0 = now_ns();
    slp_signal *t = NEW_TILL(MS(20));
    CHECK_ST(slp_signal_wait(t, -1), SLP_OK); /* game time stands still; the till goes */
    int64_t took = now_ns() - t0;
    CHECK(took >= MS(20));
    CHECK_MSG(took < MS(20) + MS(xt_ms(1000)), "after %lld us", (long long)(took / 1000));
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
    slp_signal_release(t);
}

/* released before it fires: no crash, nothing left behind (valgrind, ASan) */
TEST(till_released_before_it_fires) {
    watchdog(10);
    struct rec r;
    rec_init(&r, 0);
    slp_signal *t = NEW_TILL(MS(10));
    CHECK_ST(slp_signal_then(t, cb_rec, &r, NULL), SLP_OK);
    slp_signal *o = NEW_OR(t, t);
    slp_signal_release(t);
    slp_signal_release(o);
    for (int i = 0; i < 100; i++) {
        slp_signal *x = NEW_TILL(MS(i % 20));
        slp_signal_release(x);
    }
    sleep_ms(xt_ms(60));
    CHECK(rec_count(&r) <= 1); /* whether it still fires is not pinned; at most once */
}

/* ============================================================================================
 * slp_select with SIGNAL cases
 * ========================================================================================== */

static void set_sig(slp_select_case *c, slp_signal *s) {
    memset(c, 0, sizeof *c);
    c->op = SIG;
    c->channel = NULL;
    c->signal = s;
    c->value = SENTINEL;
}

static void set_chan(slp_select_case *c, int32_t op, slp_channel *ch, void *v) {
    memset(c, 0, sizeof *c);
    c->op = op;
    c->channel = ch;
    c->signal = NULL;
    c->value = v;
}

static slp_tasklet *blocked_op(slp_tasklet_fn fn, struct op *o, slp_channel *ch, void *v) {
    op_init(o, ch, v, 0);
    slp_tasklet *t = SPAWN(fn, o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    return t;
}

TEST(select_signal_case_ready_when_went) {
    slp_channel *ch = NEW_CHANNEL();
    slp_signal *s = NEW_SIGNAL();
    slp_select_case c[2];
    set_chan(&c[0], RECV, ch, SENTINEL);
    set_sig(&c[1], s);
    size_t idx = NO_INDEX;
    /* not went: a poll times out, index untouched */
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_E_TIMEOUT);
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_ST(slp_signal_go(s), SLP_OK);
    for (int poll = 1; poll >= 0; poll--) {
        idx = NO_INDEX;
        CHECK_ST(slp_select(c, 2, poll ? 0 : -1, &idx), SLP_OK);
        CHECK_EQ_INT(idx, 1);
        CHECK_EQ_PTR(c[1].value, SENTINEL); /* value untouched */
        CHECK_EQ_PTR(c[0].value, SENTINEL);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
    }
    /* a signal case alone */
    idx = NO_INDEX;
    CHECK_ST(slp_select(&c[1], 1, MS(10), &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    /* a derived signal and a born-went till */
    slp_signal *t0 = NEW_TILL(0);
    slp_signal *never = NEW_SIGNAL();
    slp_signal *o = NEW_OR(never, s);
    set_sig(&c[0], never);
    set_sig(&c[1], o);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    set_sig(&c[1], t0);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    slp_signal_release(o);
    slp_signal_release(never);
    slp_signal_release(t0);
    slp_signal_release(s);
    slp_channel_release(ch);
}

TEST(select_first_ready_case_in_order_wins_with_signals) {
    slp_channel *ch = NEW_CHANNEL();
    slp_signal *s = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(s), SLP_OK);
    struct op snd;
    slp_tasklet *ts = blocked_op(op_send, &snd, ch, IPTR(5));
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    slp_select_case c[2];
    /* signal first: it wins, the sender still waits */
    set_sig(&c[0], s);
    set_chan(&c[1], RECV, ch, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    CHECK(slp_tasklet_blocked(ts));
    /* receive first: it wins */
    set_chan(&c[0], RECV, ch, SENTINEL);
    set_sig(&c[1], s);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, IPTR(5));
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(snd.st, SLP_OK);
    /* two went signals: the first */
    slp_signal *s2 = NEW_TILL(-1);
    set_sig(&c[0], s2);
    set_sig(&c[1], s);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    slp_tasklet_release(ts);
    slp_signal_release(s2);
    slp_signal_release(s);
    slp_channel_release(ch);
}

TEST(select_null_signal_disables_the_case) {
    watchdog(10);
    slp_signal *s = NEW_SIGNAL();
    CHECK_ST(slp_signal_go(s), SLP_OK);
    slp_select_case c[2];
    set_sig(&c[0], NULL);
    set_sig(&c[1], s);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    /* only disabled cases: deadlock without a finite timeout, timeout with one */
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_E_DEADLOCK);
    CHECK_EQ_INT(idx, NO_INDEX);
    int64_t t0 = now_ns();
    CHECK_ST(slp_select(c, 1, MS(10), &idx), SLP_E_TIMEOUT);
    CHECK(now_ns() - t0 >= MS(10));
    CHECK_EQ_INT(idx, NO_INDEX);
    slp_signal_release(s);
}

TEST(select_unfired_signal_finite_timeout) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    slp_signal *s = NEW_SIGNAL();
    slp_select_case c[2];
    set_chan(&c[0], RECV, ch, SENTINEL);
    set_sig(&c[1], s);
    size_t idx = NO_INDEX;
    int64_t t0 = now_ns();
    CHECK_ST(slp_select(c, 2, MS(20), &idx), SLP_E_TIMEOUT);
    int64_t took = now_ns() - t0;
    CHECK(took >= MS(20));
    CHECK_MSG(took < MS(20) + MS(xt_ms(1000)), "after %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    /* the signal still works (the selector left it) */
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    slp_signal_release(s);
    slp_channel_release(ch);
}

/* main blocks on a channel and a signal; another thread goes the signal */
TEST(select_blocked_on_channel_and_signal_released_by_go_from_another_thread) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    slp_signal *s = NEW_SIGNAL();
    struct goer g;
    pthread_t th;
    CHECK(goer_start(&g, &th, s, xt_ms(30), 1));
    slp_select_case c[2];
    set_chan(&c[0], RECV, ch, SENTINEL);
    set_sig(&c[1], s);
    size_t idx = NO_INDEX;
    int64_t t0 = now_ns();
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    int64_t t1 = now_ns();
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0); /* it left the channel */
    CHECK(t1 - t0 >= MS(10));
    pthread_join(th, NULL);
    CHECK(t1 >= g.t_go);
    /* the channel still works */
    struct op r;
    slp_tasklet *tr = blocked_op(op_recv, &r, ch, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(3)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(3));
    slp_tasklet_release(tr);
    slp_signal_release(s);
    slp_channel_release(ch);
}

struct ssel {
    slp_select_case c[2];
    int64_t timeout;
    size_t index;
    slp_status st;
    int32_t ret;
    long done;
};

static int32_t t_ssel(void *arg) {
    struct ssel *x = arg;
    size_t idx = NO_INDEX;
    slp_status st = slp_select(x->c, 2, x->timeout, &idx);
    xt_lock();
    x->st = st;
    x->index = idx;
    x->done = 1;
    xt_unlock();
    return x->ret;
}

/* a tasklet selector, same thread: counts in the channel's balance while it waits; go
 * releases it (the balance back); a send releases it by the channel case instead */
TEST(select_tasklet_selector_released_by_go_or_by_channel) {
    slp_channel *ch = NEW_CHANNEL();
    for (int by_go = 1; by_go >= 0; by_go--) {
        slp_signal *s = NEW_SIGNAL();
        struct ssel x;
        memset(&x, 0, sizeof x);
        x.timeout = -1;
        x.index = NO_INDEX;
        x.st = 12345;
        set_chan(&x.c[0], RECV, ch, SENTINEL);
        set_sig(&x.c[1], s);
        slp_tasklet *t = SPAWN(t_ssel, &x);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        CHECK_EQ_INT(slp_channel_balance(ch), -1);
        if (by_go) {
            CHECK_ST(slp_signal_go(s), SLP_OK);
        } else {
            CHECK_ST(slp_channel_send(ch, IPTR(9)), SLP_OK);
        }
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(x.st, SLP_OK);
        CHECK_EQ_INT(x.index, by_go ? 1 : 0);
        CHECK_EQ_PTR(x.c[0].value, by_go ? SENTINEL : IPTR(9));
        CHECK_EQ_PTR(x.c[1].value, SENTINEL);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        if (!by_go) CHECK_ST(slp_signal_go(s), SLP_OK); /* reaches no stale selector */
        CHECK(!slp_tasklet_alive(t));
        slp_tasklet_release(t);
        slp_signal_release(s);
    }
    slp_channel_release(ch);
}

TEST(select_over_a_till) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    int64_t t0 = now_ns();
    slp_signal *t = NEW_TILL(MS(30));
    slp_select_case c[2];
    set_chan(&c[0], RECV, ch, SENTINEL);
    set_sig(&c[1], t);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK); /* a pending till: no deadlock */
    int64_t took = now_ns() - t0;
    CHECK_EQ_INT(idx, 1);
    CHECK(took >= MS(30));
    CHECK_MSG(took < MS(30) + MS(xt_ms(500)), "after %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_signal_release(t);
    slp_channel_release(ch);
}

TEST(select_kill_and_throw_blocked_selector_with_signal_case) {
    slp_channel *ch = NEW_CHANNEL();
    slp_signal *s = NEW_SIGNAL();
    for (int throw_ = 0; throw_ < 2; throw_++) {
        struct ssel x;
        memset(&x, 0, sizeof x);
        x.timeout = -1;
        x.index = NO_INDEX;
        x.st = 12345;
        x.ret = throw_ ? 0 : SLP_E_KILLED;
        set_chan(&x.c[0], RECV, ch, SENTINEL);
        set_sig(&x.c[1], s);
        slp_tasklet *t = SPAWN(t_ssel, &x);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        if (throw_)
            CHECK_ST(slp_tasklet_throw(t, 7, &g_marker, false), SLP_OK);
        else
            CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
        CHECK_ST(x.st, throw_ ? 7 : SLP_E_KILLED);
        CHECK_EQ_INT(x.index, NO_INDEX);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        CHECK(!slp_tasklet_alive(t));
        slp_tasklet_release(t);
    }
    CHECK_ST(slp_signal_go(s), SLP_OK); /* no stale selector behind it */
    slp_signal_release(s);
    slp_channel_release(ch);
}

/* ---- the worker-loop idiom: select over a work channel and a stop signal ---- */
enum { N_ITEMS = 100 };

struct wloop {
    slp_channel *work;
    slp_signal *stop;
    long items[N_ITEMS + 1];
    long n;
    long stopped;      /* saw stop (after n items) */
    long ready;        /* the worker thread participates */
    slp_status err;    /* first unexpected status */
    long done;
};

static void wloop_run(struct wloop *l) {
    for (;;) {
        slp_select_case c[2];
        set_chan(&c[0], RECV, l->work, SENTINEL);
        set_sig(&c[1], l->stop);
        size_t idx = NO_INDEX;
        slp_status st = slp_select(c, 2, -1, &idx);
        xt_lock();
        if (st != SLP_OK) {
            l->err = st;
        } else if (idx == 0) {
            if (l->n <= N_ITEMS) l->items[l->n] = PTRI(c[0].value);
            l->n++;
        } else {
            l->stopped = 1;
        }
        int end = st != SLP_OK || idx == 1;
        if (end) l->done = 1;
        xt_unlock();
        if (end) return;
    }
}

static void *th_wloop(void *arg) {
    struct wloop *l = arg;
    slp_current(); /* participates from here: main's sends may block on it */
    xt_set(&l->ready, 1);
    wloop_run(l);
    return NULL;
}

static int32_t t_wloop(void *arg) {
    wloop_run(arg);
    return 0;
}

static void wloop_check(struct wloop *l, const char *what) {
    xt_lock();
    CHECK_MSG(l->err == SLP_OK, "%s: select returned %d (%s)", what, (int)l->err, harness_status_name(l->err));
    CHECK_MSG(l->n == N_ITEMS, "%s: %ld items before stop, expected %d", what, l->n, N_ITEMS);
    CHECK_MSG(l->stopped, "%s: stop not seen", what);
    long wrong = 0;
    for (long i = 0; i < l->n && i < N_ITEMS; i++)
        if (l->items[i] != i + 1) wrong++;
    CHECK_MSG(wrong == 0, "%s: %ld items out of order", what, wrong);
    xt_unlock();
}

static void wloop_init(struct wloop *l, slp_channel *work, slp_signal *stop) {
    memset(l, 0, sizeof *l);
    l->work = work;
    l->stop = stop;
}

TEST(worker_loop_idiom_items_first_then_stop) {
    watchdog(20);
    /* 1. a worker thread, rendezvous channel: main sends every item (each send waits for the
     *    worker), then goes stop */
    {
        slp_channel *work = NEW_CHANNEL();
        slp_signal *stop = NEW_SIGNAL();
        struct wloop l;
        wloop_init(&l, work, stop);
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, th_wloop, &l), 0);
        CHECK_WAIT(xt_get(&l.ready), 2000);
        long bad = 0;
        for (int i = 1; i <= N_ITEMS; i++)
            if (slp_channel_send(work, IPTR(i)) != SLP_OK) bad++;
        CHECK_EQ_INT(bad, 0);
        CHECK_ST(slp_signal_go(stop), SLP_OK);
        CHECK_WAIT(xt_get(&l.done), 3000);
        pthread_join(th, NULL);
        wloop_check(&l, "worker thread, rendezvous");
        CHECK_EQ_INT(slp_channel_balance(work), 0);
        slp_signal_release(stop);
        slp_channel_release(work);
    }
    /* 2. a worker thread started after every item was buffered and stop already went: the
     *    work case comes first in the array, so every item is taken before stop */
    {
        slp_channel *work = NEW_CHANNEL_EX(-1, N_ITEMS, false);
        slp_signal *stop = NEW_SIGNAL();
        for (int i = 1; i <= N_ITEMS; i++) CHECK_ST(slp_channel_send(work, IPTR(i)), SLP_OK);
        CHECK_ST(slp_signal_go(stop), SLP_OK);
        struct wloop l;
        wloop_init(&l, work, stop);
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, th_wloop, &l), 0);
        CHECK_WAIT(xt_get(&l.done), 3000);
        pthread_join(th, NULL);
        wloop_check(&l, "worker thread, buffered, stop already went");
        CHECK_EQ_INT(slp_channel_balance(work), 0);
        slp_signal_release(stop);
        slp_channel_release(work);
    }
    /* 3. a tasklet on this thread, rendezvous: main sends, then goes stop */
    {
        slp_channel *work = NEW_CHANNEL();
        slp_signal *stop = NEW_SIGNAL();
        struct wloop l;
        wloop_init(&l, work, stop);
        slp_tasklet *t = SPAWN(t_wloop, &l);
        long bad = 0;
        for (int i = 1; i <= N_ITEMS; i++)
            if (slp_channel_send(work, IPTR(i)) != SLP_OK) bad++;
        CHECK_EQ_INT(bad, 0);
        CHECK_ST(slp_signal_go(stop), SLP_OK);
        CHECK_ST(slp_run(), SLP_OK);
        wloop_check(&l, "tasklet, rendezvous");
        CHECK(!slp_tasklet_alive(t));
        slp_tasklet_release(t);
        slp_signal_release(stop);
        slp_channel_release(work);
    }
    /* 4. a tasklet, buffered, stop going while items are still queued */
    {
        slp_channel *work = NEW_CHANNEL_EX(-1, N_ITEMS, false);
        slp_signal *stop = NEW_SIGNAL();
        struct wloop l;
        wloop_init(&l, work, stop);
        slp_tasklet *t = SPAWN(t_wloop, &l);
        for (int i = 1; i <= N_ITEMS; i++) CHECK_ST(slp_channel_send(work, IPTR(i)), SLP_OK);
        CHECK_ST(slp_signal_go(stop), SLP_OK);
        CHECK_ST(slp_run(), SLP_OK);
        wloop_check(&l, "tasklet, buffered");
        slp_tasklet_release(t);
        slp_signal_release(stop);
        slp_channel_release(work);
    }
}

/* ============================================================================================
 * Races across threads (also for ThreadSanitizer): then racing go, derived signals made and
 * released while an input goes, timed waits racing go
 * ========================================================================================== */

enum { RACE_THENS = 2000, RACE_THREADS = 2 };

struct then_racer {
    slp_signal *s;
    long counts[RACE_THENS];
    long bad_st;
    long removed; /* every third callback is removed again (SLP_OK before go, SLP_E_STATE after) */
    long remove_other;
};

static void cb_count(void *ud) {
    long *c = ud;
    xt_add(c, 1);
}

static void *th_then_racer(void *arg) {
    struct then_racer *r = arg;
    slp_current();
    for (int i = 0; i < RACE_THENS; i++) {
        uint64_t tk = NO_TOKEN;
        if (slp_signal_then(r->s, cb_count, &r->counts[i], &tk) != SLP_OK) r->bad_st++;
        if (i % 3 == 0) {
            slp_status st = slp_signal_remove_then(r->s, tk);
            if (st == SLP_OK)
                r->removed++;
            else if (st != SLP_E_STATE)
                r->remove_other++;
            else
                xt_add(&r->counts[i], 1000); /* too late to remove: mark it so the check knows */
        }
    }
    return NULL;
}

TEST(then_racing_go_runs_each_callback_exactly_once) {
    watchdog(20);
    for (int round = 0; round < 3; round++) {
        slp_signal *s = NEW_SIGNAL();
        static struct then_racer r[RACE_THREADS];
        pthread_t th[RACE_THREADS];
        for (int i = 0; i < RACE_THREADS; i++) {
            memset(&r[i], 0, sizeof r[i]);
            r[i].s = s;
            CHECK_EQ_INT(pthread_create(&th[i], NULL, th_then_racer, &r[i]), 0);
        }
        if (round > 0) sleep_ms(round);
        CHECK_ST(slp_signal_go(s), SLP_OK);
        for (int i = 0; i < RACE_THREADS; i++) pthread_join(th[i], NULL);
        long wrong = 0, removed = 0;
        for (int i = 0; i < RACE_THREADS; i++) {
            CHECK_EQ_INT(r[i].bad_st, 0);
            CHECK_EQ_INT(r[i].remove_other, 0);
            removed += r[i].removed;
            xt_lock();
            for (int k = 0; k < RACE_THENS; k++) {
                long c = r[i].counts[k];
                /* removed in time: 0; ran (at go, or at once after it): 1; ran, then the
                 * removal said SLP_E_STATE: 1001 */
                bool ok = (k % 3 == 0) ? (c == 0 || c == 1001) : (c == 1);
                if (!ok) wrong++;
            }
            xt_unlock();
        }
        CHECK_MSG(wrong == 0, "round %d: %ld callbacks ran a wrong number of times", round, wrong);
        long zeros = 0;
        for (int i = 0; i < RACE_THREADS; i++)
            for (int k = 0; k < RACE_THENS; k += 3) zeros += r[i].counts[k] == 0;
        CHECK_EQ_INT(zeros, removed); /* exactly the removed ones never ran */
        slp_signal_release(s);
    }
}

struct derived_racer {
    slp_signal *x, *ps;
    long iterations;
    long went_seen;   /* a derived signal made after x went was born went */
    long bad;
};

static void *th_derived_racer(void *arg) {
    struct derived_racer *d = arg;
    for (long i = 0;; i++) {
        bool x_went_before = slp_signal_is_go(d->x);
        slp_signal *o = NULL, *a = NULL;
        if (slp_signal_or(d->x, d->ps, &o) != SLP_OK) d->bad++;
        if (slp_signal_and(d->x, o, &a) != SLP_OK) d->bad++;
        slp_status st = slp_signal_wait(o, 0);
        if (x_went_before && st != SLP_OK) d->bad++;
        if (st != SLP_OK && st != SLP_E_TIMEOUT) d->bad++;
        if (i % 2) {
            slp_signal_release(o);
            slp_signal_release(a);
        } else {
            slp_signal_release(a);
            slp_signal_release(o);
        }
        if (x_went_before) {
            d->went_seen++;
            if (d->went_seen > 100) {
                d->iterations = i + 1;
                return NULL;
            }
        }
    }
}

TEST(derived_made_and_released_while_input_goes_on_another_thread) {
    watchdog(20);
    for (int round = 0; round < 5; round++) {
        slp_signal *x = NEW_SIGNAL(), *ps = NEW_SIGNAL();
        struct derived_racer d[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            memset(&d[i], 0, sizeof d[i]);
            d[i].x = x;
            d[i].ps = ps;
            CHECK_EQ_INT(pthread_create(&th[i], NULL, th_derived_racer, &d[i]), 0);
        }
        sleep_ms(round * 2);
        CHECK_ST(slp_signal_go(x), SLP_OK);
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            CHECK_EQ_INT(d[i].bad, 0);
            CHECK(d[i].went_seen > 100);
        }
        CHECK(!slp_signal_is_go(ps));
        CHECK_ST(slp_signal_go(ps), SLP_OK);
        slp_signal_release(x);
        slp_signal_release(ps);
    }
}

struct timed_racer {
    slp_signal *s;
    long timeouts;
    slp_status last;
    long bad;
    int64_t t_ok;
};

static void *th_timed_racer(void *arg) {
    struct timed_racer *t = arg;
    int64_t dl = now_ns() + MS(xt_ms(5000));
    for (;;) {
        slp_status st = slp_signal_wait(t->s, 100000 + (t->timeouts % 7) * 150000); /* 0.1 .. 1 ms */
        if (st == SLP_OK) {
            t->t_ok = now_ns();
            break;
        }
        if (st == SLP_E_TIMEOUT)
            t->timeouts++;
        else
            t->bad++;
        if (now_ns() > dl) break;
    }
    t->last = slp_signal_is_go(t->s) ? SLP_OK : SLP_E_TIMEOUT;
    return NULL;
}

TEST(timed_waits_racing_go_all_end_ok) {
    watchdog(20);
    for (int round = 0; round < 5; round++) {
        slp_signal *s = NEW_SIGNAL();
        enum { NT = 3 };
        struct timed_racer t[NT];
        pthread_t th[NT];
        for (int i = 0; i < NT; i++) {
            memset(&t[i], 0, sizeof t[i]);
            t[i].s = s;
            CHECK_EQ_INT(pthread_create(&th[i], NULL, th_timed_racer, &t[i]), 0);
        }
        /* after go, a tasklet's timed wait returns at once */
        struct sw w;
        sw_init(&w, s, MS(1), 0);
        sleep_ms(5 + round * 3);
        int64_t t_go = now_ns();
        CHECK_ST(slp_signal_go(s), SLP_OK);
        for (int i = 0; i < NT; i++) {
            pthread_join(th[i], NULL);
            CHECK_EQ_INT(t[i].bad, 0);
            CHECK_ST(t[i].last, SLP_OK);
            CHECK(t[i].t_ok >= t_go);
        }
        slp_tasklet *tk = SPAWN(t_wait, &w);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(w.st, SLP_OK);
        slp_tasklet_release(tk);
        slp_signal_release(s);
    }
}

/* ============================================================================================
 * Misuse
 * ========================================================================================== */

TEST(misuse_nulls) {
    slp_signal *s = NEW_SIGNAL();
    slp_signal *out = (slp_signal *)SENTINEL;
    CHECK_ST(slp_signal_new(NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    slp_signal_retain(NULL);  /* no-ops */
    slp_signal_release(NULL);
    CHECK(!slp_signal_is_go(NULL));
    CHECK_ST(slp_signal_go(NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_signal_wait(NULL, -1), SLP_E_INVALID);
    CHECK_ST(slp_signal_wait(NULL, 0), SLP_E_INVALID);
    CHECK_ST(slp_signal_wait(NULL, MS(10)), SLP_E_INVALID);
    uint64_t tk = NO_TOKEN;
    CHECK_ST(slp_signal_then(NULL, cb_log, NULL, &tk), SLP_E_INVALID);
    CHECK_ST(slp_signal_then(s, NULL, NULL, &tk), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(tk, NO_TOKEN); /* not written on failure */
    CHECK_ST(slp_signal_remove_then(NULL, 0), SLP_E_INVALID);
    CHECK_ST(slp_signal_or(NULL, s, &out), SLP_E_INVALID);
    CHECK_ST(slp_signal_or(s, NULL, &out), SLP_E_INVALID);
    CHECK_ST(slp_signal_or(s, s, NULL), SLP_E_INVALID);
    CHECK_ST(slp_signal_and(NULL, s, &out), SLP_E_INVALID);
    CHECK_ST(slp_signal_and(s, NULL, &out), SLP_E_INVALID);
    CHECK_ST(slp_signal_and(s, s, NULL), SLP_E_INVALID);
    CHECK_ST(slp_signal_or(NULL, NULL, &out), SLP_E_INVALID);
    CHECK_EQ_PTR(out, SENTINEL); /* untouched */
    CHECK_ST(slp_till_new(MS(1), NULL), SLP_E_INVALID);
    CHECK_ST(slp_till_new(0, NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    /* a select with a NULL index is still invalid with a signal case */
    slp_select_case c[1];
    set_sig(&c[0], s);
    CHECK_ST(slp_select(c, 1, 0, NULL), SLP_E_INVALID);
    /* none of that touched s */
    CHECK(!slp_signal_is_go(s));
    log_reset();
    CHECK_ST(slp_signal_then(s, cb_log, IPTR('k'), NULL), SLP_OK);
    CHECK_ST(slp_signal_go(s), SLP_OK);
    CHECK_LOG("k");
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_signal_release(s);
}
