/* test_lock.c - the mo-threads Lock (SPEC §7 "Lock", §5.3, §10 scenario 22; the header's
 * slp_lock_* contract): re-entry is SLP_E_DEADLOCK; wait always returns holding the lock
 * (woken: SLP_OK; timeout: SLP_E_TIMEOUT, only once it holds the lock again, never early);
 * release by a non-holder (nobody, another tasklet, another thread) is SLP_E_STATE; FIFO
 * hand-off (a releaser that re-acquires queues behind the waiting acquirers); each release
 * (also the one inside wait) wakes exactly one waiter, which re-acquires behind earlier
 * acquirers; kill and throw of a tasklet blocked in acquire or wait (before and after it was
 * woken, on its thread and from another thread) return the code without the lock, and the lock
 * still works; thread exit with tasklets blocked on a lock; mutual exclusion between plain
 * threads under load and between tasklets of two threads; a contending tasklet parks only
 * itself; the deadlock rules of §5.3 with locks (rules 2, 3 and 4); block_trap, switch_trap and
 * callbacks; slp_lock_free refusing a held or waited-for lock; NULL arguments.
 *
 * Every test arms its own watchdog alarm; every wait on another thread is a bounded poll.
 * Timing checks: "never early" strictly, lateness only with wide margins, scaled under
 * valgrind / TSan (slow mode). */
#include "harness.h"
#include "common.h"
#include "thread_util.h"

#define MS 1000000LL

static long g_marker; /* exception data for throws */

static slp_lock *new_lock(void) {
    slp_lock *l = NULL;
    slp_status st = slp_lock_new(&l);
    CHECK_ST(st, SLP_OK);
    CHECK(l != NULL);
    return l;
}

/* Frees `l` and checks that the free was accepted: slp_last_error() is primed with a known
 * message first and must not change (a refused free sets it). */
static char g_prime[512];
static void prime_last_error(void) {
    slp_lock_new(NULL); /* SLP_E_INVALID: sets a message */
    snprintf(g_prime, sizeof g_prime, "%s", slp_last_error());
}
static bool last_error_changed(void) { return strcmp(g_prime, slp_last_error()) != 0; }

#define FREE_OK(l)                                                                           \
    do {                                                                                     \
        prime_last_error();                                                                  \
        slp_lock_free(l);                                                                    \
        CHECK_MSG(!last_error_changed(), "slp_lock_free refused a free lock: \"%s\"",       \
                  slp_last_error());                                                         \
    } while (0)

#define FREE_REFUSED(l)                                                                      \
    do {                                                                                     \
        prime_last_error();                                                                  \
        slp_lock_free(l);                                                                    \
        CHECK_MSG(last_error_changed(), "slp_lock_free of a held/waited-for lock did not "  \
                                        "set slp_last_error (was it freed?)");               \
    } while (0)

/* ---- a tasklet that acquires, logs, proves it holds (re-entry -> DEADLOCK), releases ----
 * Logs `tag` lower-case before acquiring and upper-case once it holds the lock. Shared
 * fields are read by other threads only after `done` (under xt_mx). */
struct lk {
    slp_lock *l;
    char tag;
    int schedule_inside; /* slp_schedule() this many times while holding */
    int keep;            /* end holding the lock (no release) */
    slp_status st_acq, st_held, st_rel;
    void *exc;
    long started, holding, done;
    long tid;
};

static void lk_init(struct lk *k, slp_lock *l, char tag) {
    memset(k, 0, sizeof *k);
    k->l = l;
    k->tag = tag;
    k->st_acq = k->st_held = k->st_rel = 12345;
}

static int32_t t_acq(void *arg) {
    struct lk *k = arg;
    xt_set(&k->started, 1);
    if (k->tag) log_c(k->tag);
    slp_status st = slp_lock_acquire(k->l);
    void *exc = slp_exception_data();
    slp_status held = 12345, rel;
    if (st == SLP_OK) {
        if (k->tag) log_c((char)(k->tag - 'a' + 'A'));
        xt_set(&k->holding, 1);
        held = slp_lock_acquire(k->l); /* SLP_E_DEADLOCK: it holds it */
        for (int i = 0; i < k->schedule_inside; i++) slp_schedule();
        if (k->keep) {
            xt_lock();
            k->st_acq = st;
            k->st_held = held;
            k->exc = exc;
            k->tid = (long)slp_thread_id();
            k->done = 1;
            xt_unlock();
            return 0;
        }
        xt_set(&k->holding, 0);
        rel = slp_lock_release(k->l);
    } else {
        rel = slp_lock_release(k->l); /* SLP_E_STATE: it does not hold it */
    }
    xt_lock();
    k->st_acq = st;
    k->st_held = held;
    k->st_rel = rel;
    k->exc = exc;
    k->tid = (long)slp_thread_id();
    k->done = 1;
    xt_unlock();
    return 0;
}

/* ---- a tasklet that acquires, logs lower-case, waits, logs upper-case, releases ---- */
struct lw {
    slp_lock *l;
    int64_t timeout;
    char tag;
    slp_status st_acq, st_wait, st_held, st_rel;
    void *exc;
    int64_t t0, t1; /* CLOCK_MONOTONIC around the wait */
    long waiting, done;
    long tid;
};

static void lw_init(struct lw *w, slp_lock *l, int64_t timeout, char tag) {
    memset(w, 0, sizeof *w);
    w->l = l;
    w->timeout = timeout;
    w->tag = tag;
    w->st_acq = w->st_wait = w->st_held = w->st_rel = 12345;
}

static int32_t t_wait(void *arg) {
    struct lw *w = arg;
    slp_status acq = slp_lock_acquire(w->l);
    if (w->tag) log_c(w->tag);
    int64_t t0 = now_ns();
    xt_lock();
    w->st_acq = acq;
    w->t0 = t0;
    w->waiting = 1;
    xt_unlock();
    slp_status st = slp_lock_wait(w->l, w->timeout);
    int64_t t1 = now_ns();
    void *exc = slp_exception_data();
    if (w->tag) log_c((char)(w->tag - 'a' + 'A'));
    slp_status held = 12345, rel;
    if (st == SLP_OK || st == SLP_E_TIMEOUT) {
        held = slp_lock_acquire(w->l); /* SLP_E_DEADLOCK: it holds it again */
        rel = slp_lock_release(w->l);
    } else {
        rel = slp_lock_release(w->l); /* SLP_E_STATE: killed, it does not hold it */
    }
    xt_lock();
    w->st_wait = st;
    w->t1 = t1;
    w->exc = exc;
    w->st_held = held;
    w->st_rel = rel;
    w->tid = (long)slp_thread_id();
    w->waiting = 0;
    w->done = 1;
    xt_unlock();
    return 0;
}

/* A tasklet that acquires, pauses itself (slp_schedule_remove) while holding, then releases
 * once re-inserted. */
struct hold {
    slp_lock *l;
    slp_status st_acq, st_rel;
    int done;
};

static int32_t t_hold_paused(void *arg) {
    struct hold *h = arg;
    h->st_acq = slp_lock_acquire(h->l);
    slp_schedule_remove();
    h->st_rel = slp_lock_release(h->l);
    h->done = 1;
    return 0;
}

/* Runs this thread's tasklets (slp_run_wait in short slices: wake-ups from other threads
 * arrive through the inbox) until *flag (read under xt_mx) is set or `ms` (scaled) passed. */
static bool drive_until(long *flag, int64_t ms) {
    int64_t deadline = now_ns() + xt_ms(ms) * MS;
    while (!xt_get(flag) && now_ns() < deadline) {
        slp_status st = slp_run_wait(2 * MS);
        if (st != SLP_E_TIMEOUT && st != SLP_OK) {
            printf("drive_until: slp_run_wait returned %d (%s): %s\n", (int)st, harness_status_name(st),
                   slp_last_error());
            break;
        }
    }
    return xt_get(flag) != 0;
}

struct plain_cycle {
    slp_lock *l;
    slp_status st_acq, st_rel;
    long go, done;
};

static void *th_acquire_release(void *arg) {
    struct plain_cycle *p = arg;
    slp_current(); /* participates */
    while (!xt_get(&p->go)) sleep_ms(1);
    slp_status a = slp_lock_acquire(p->l);
    slp_status r = slp_lock_release(p->l);
    xt_lock();
    p->st_acq = a;
    p->st_rel = r;
    p->done = 1;
    xt_unlock();
    return NULL;
}

/* The lock is free and works: another tasklet takes and releases it; main takes it without
 * blocking. */
static void check_lock_works(slp_lock *l) {
    /* another tasklet takes it after main releases it; then it is free */
    struct lk k;
    lk_init(&k, l, 0);
    slp_tasklet *t = SPAWN(t_acq, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_acq, SLP_OK);
    CHECK_ST(k.st_rel, SLP_OK);
    slp_tasklet_release(t);
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* free: no blocking */
    slp_tasklet_set_block_trap(slp_main(), false);
    CHECK_ST(slp_lock_release(l), SLP_OK);
}

/* slp_counters.locks_held: locks held right now, process-wide. */
static uint64_t locks_held(void) {
    slp_counters c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    if (slp_counters_get(&c) != SLP_OK) return (uint64_t)-1;
    return c.locks_held;
}

/* ============================================================================================
 * NULL arguments; new and free.
 * ========================================================================================== */
TEST(nulls_and_new_free) {
    watchdog(5);
    CHECK_ST(slp_lock_new(NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_acquire(NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_release(NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_wait(NULL, 0), SLP_E_INVALID);
    CHECK_ST(slp_lock_wait(NULL, -1), SLP_E_INVALID);
    CHECK_ST(slp_lock_wait(NULL, 10 * MS), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    slp_lock_free(NULL); /* ignored */
    /* a fresh lock frees; one that was used and is free again too */
    slp_lock *a = new_lock(), *b = new_lock();
    CHECK(a != b);
    FREE_OK(a);
    uint64_t held0 = locks_held();
    CHECK_ST(slp_lock_acquire(b), SLP_OK);
    CHECK_EQ_INT(locks_held(), held0 + 1);
    CHECK_ST(slp_lock_release(b), SLP_OK);
    CHECK_EQ_INT(locks_held(), held0);
    FREE_OK(b);
    CHECK(slp_tasklet_is_current(slp_main()));
}

/* ============================================================================================
 * SPEC §10 scenario 22: acquired twice by the same tasklet -> the second call SLP_E_DEADLOCK
 * (at once, the lock still held); wait returns holding the lock; two tasklets on one thread
 * contending both finish.
 * ========================================================================================== */
TEST(scenario22_reentry_is_deadlock) {
    watchdog(5);
    slp_lock *l = new_lock();
    /* the main tasklet */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    int64_t t0 = now_ns();
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_MSG(now_ns() - t0 < xt_ms(1000) * MS, "re-entry took %lld ms", (long long)((now_ns() - t0) / MS));
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* again: nothing changed */
    CHECK_ST(slp_lock_release(l), SLP_OK);         /* it still held it, once */
    CHECK_ST(slp_lock_release(l), SLP_E_STATE);
    /* a tasklet (another tasklet runnable: re-entry is still refused at once) */
    struct lk k;
    lk_init(&k, l, 0);
    slp_tasklet *o = SPAWN(t_log_yield, IPTR('o'));
    slp_tasklet *t = SPAWN(t_acq, &k);
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_acq, SLP_OK);
    CHECK_ST(k.st_held, SLP_E_DEADLOCK);
    CHECK_ST(k.st_rel, SLP_OK);
    CHECK_LOG("oO");
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* free again */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    slp_tasklet_release(o);
    slp_tasklet_release(t);
    FREE_OK(l);
}

TEST(scenario22_wait_returns_holding_the_lock) {
    watchdog(10);
    slp_lock *l = new_lock();
    /* main alone, timed wait: SLP_E_TIMEOUT, never early, holding the lock */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    int64_t t0 = now_ns();
    CHECK_ST(slp_lock_wait(l, 20 * MS), SLP_E_TIMEOUT);
    int64_t el = now_ns() - t0;
    CHECK_LAST_ERROR_SET();
    CHECK_MSG(el >= 20 * MS, "wait(20 ms) returned after %lld us", (long long)(el / 1000));
    CHECK_MSG(el < (20 + xt_ms(1000)) * MS, "wait(20 ms) returned after %lld ms", (long long)(el / MS));
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* holds it */
    /* woken by a tasklet's release: SLP_OK, holding the lock */
    struct lk k;
    lk_init(&k, l, 'a');
    slp_tasklet *t = SPAWN(t_acq, &k);
    log_reset();
    slp_status st = slp_lock_wait(l, 2000 * MS);
    log_c('M');
    CHECK_ST(st, SLP_OK);
    CHECK_LOG("aAM");
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_acq, SLP_OK);
    CHECK_ST(k.st_rel, SLP_OK);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* holds it */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_E_STATE);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    /* a tasklet's wait, woken by main's release: SLP_OK, holding it */
    struct lw w;
    lw_init(&w, l, -1, 'w');
    log_reset();
    t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK); /* w waits: the run returns (§5.3 rule 1) */
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(w.done, 0);
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* wait released it */
    CHECK_ST(slp_lock_release(l), SLP_OK); /* wakes w, hands it the lock */
    CHECK(!slp_tasklet_blocked(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("wW");
    CHECK_EQ_INT(w.done, 1);
    CHECK_ST(w.st_wait, SLP_OK);
    CHECK_ST(w.st_held, SLP_E_DEADLOCK);
    CHECK_ST(w.st_rel, SLP_OK);
    slp_tasklet_release(t);
    FREE_OK(l);
}

struct contend {
    slp_lock *l;
    int n;
    int *inside, *count;
    int overlap, errors, finished;
    char tag;
};

static int32_t t_contend(void *arg) {
    struct contend *c = arg;
    for (int i = 0; i < c->n; i++) {
        slp_status st = slp_lock_acquire(c->l);
        if (st != SLP_OK) {
            c->errors++;
            break;
        }
        if (++*c->inside != 1) c->overlap++;
        log_c(c->tag);
        slp_schedule(); /* the other one runs meanwhile and contends */
        ++*c->count;
        if (*c->inside != 1) c->overlap++;
        --*c->inside;
        if (slp_lock_release(c->l) != SLP_OK) c->errors++;
        slp_schedule();
    }
    c->finished = 1;
    return 0;
}

TEST(scenario22_two_tasklets_contending_both_finish) {
    watchdog(10);
    slp_lock *l = new_lock();
    int inside = 0, count = 0;
    struct contend a = {l, 50, &inside, &count, 0, 0, 0, 'a'};
    struct contend b = {l, 50, &inside, &count, 0, 0, 0, 'b'};
    log_reset();
    slp_tasklet *ta = SPAWN(t_contend, &a);
    slp_tasklet *tb = SPAWN(t_contend, &b);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(a.finished, 1);
    CHECK_EQ_INT(b.finished, 1);
    CHECK_EQ_INT(a.errors + b.errors, 0);
    CHECK_EQ_INT(a.overlap + b.overlap, 0);
    CHECK_EQ_INT(count, 100);
    /* they took turns (FIFO hand-off): the log alternates */
    CHECK_MSG(strncmp(g_log, "abababab", 8) == 0, "log starts \"%.16s\"", g_log);
    CHECK(!slp_tasklet_alive(ta));
    CHECK(!slp_tasklet_alive(tb));
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    FREE_OK(l);
}

/* ============================================================================================
 * release / wait by a non-holder: SLP_E_STATE (nobody holds it, another tasklet holds it,
 * another thread tries); the holder is unaffected.
 * ========================================================================================== */
struct rel_other {
    slp_lock *l;
    slp_status st_rel, st_wait;
    long done;
};

static void *th_release_other(void *arg) {
    struct rel_other *r = arg;
    slp_status a = slp_lock_release(r->l);
    slp_status b = slp_lock_wait(r->l, 0);
    xt_lock();
    r->st_rel = a;
    r->st_wait = b;
    r->done = 1;
    xt_unlock();
    return NULL;
}

static int32_t t_release_only(void *arg) {
    struct lk *k = arg;
    k->st_rel = slp_lock_release(k->l);
    k->st_held = slp_lock_wait(k->l, 0);
    k->done = 1;
    return 0;
}

TEST(release_or_wait_without_holding_is_state) {
    watchdog(10);
    slp_lock *l = new_lock();
    /* nobody holds it */
    CHECK_ST(slp_lock_release(l), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_wait(l, 0), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_wait(l, -1), SLP_E_STATE);
    CHECK_ST(slp_lock_wait(l, 10 * MS), SLP_E_STATE);
    /* main holds it; another tasklet releases / waits */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    struct lk k;
    lk_init(&k, l, 0);
    slp_tasklet *t = SPAWN(t_release_only, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_rel, SLP_E_STATE);
    CHECK_ST(k.st_held, SLP_E_STATE);
    slp_tasklet_release(t);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* main still holds it */
    /* another thread releases / waits */
    struct rel_other r;
    memset(&r, 0, sizeof r);
    r.l = l;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_release_other, &r), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.done, 1);
    CHECK_ST(r.st_rel, SLP_E_STATE);
    CHECK_ST(r.st_wait, SLP_E_STATE);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* main still holds it */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    /* a tasklet holds it (paused); main releases -> SLP_E_STATE; the tasklet still holds it */
    struct hold h = {l, 12345, 12345, 0};
    t = SPAWN(t_hold_paused, &h);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_acq, SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_E_STATE);
    CHECK_ST(slp_lock_wait(l, 0), SLP_E_STATE);
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_lock_acquire(l), SLP_E_WOULD_BLOCK); /* still held by the tasklet */
    slp_tasklet_set_block_trap(slp_main(), false);
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(h.done, 1);
    CHECK_ST(h.st_rel, SLP_OK);
    slp_tasklet_release(t);
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    FREE_OK(l);
}

/* ============================================================================================
 * FIFO hand-off: acquirers get the lock in the order they blocked (not creation order); a
 * releaser that re-acquires at once queues behind them.
 * ========================================================================================== */
TEST(fifo_handoff_order_and_releaser_queues_behind) {
    watchdog(10);
    slp_lock *l = new_lock();
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    struct lk k[5];
    slp_tasklet *t[5];
    log_reset();
    for (int i = 0; i < 5; i++) {
        lk_init(&k[i], l, (char)('a' + i));
        t[i] = SPAWN(t_acq, &k[i]);
    }
    /* queue M a b c d e: run d first (d, e block, then main resumes), then the rest */
    CHECK_ST(slp_tasklet_run(t[3]), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 5; i++) CHECK(slp_tasklet_blocked(t[i]));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_INT(strlen(g_log), 5);
    char order[8] = {0};
    memcpy(order, g_log, 5);
    CHECK_MSG(strcmp(order, "abcde") != 0, "blocking order \"%s\" (slp_tasklet_run(d) first)", order);
    /* release, then acquire at once: main queues behind all five */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 2); /* only the first acquirer was woken */
    slp_status st = slp_lock_acquire(l);
    log_c('M');
    CHECK_ST(st, SLP_OK);
    char expected[32];
    size_t n = strlen(order);
    memcpy(expected, order, n);
    for (size_t i = 0; i < n; i++) expected[n + i] = (char)(order[i] - 'a' + 'A');
    expected[2 * n] = 'M';
    expected[2 * n + 1] = '\0';
    CHECK_LOG(expected);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(k[i].done, 1);
        CHECK_ST(k[i].st_acq, SLP_OK);
        CHECK_ST(k[i].st_held, SLP_E_DEADLOCK);
        CHECK_ST(k[i].st_rel, SLP_OK);
    }
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* main holds it */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 5; i++) slp_tasklet_release(t[i]);
    FREE_OK(l);
}

/* ============================================================================================
 * Each release (also the one inside wait) wakes exactly one waiter, which re-acquires behind
 * the acquirers queued before it. Since every wait begins with such a release, a second
 * tasklet entering wait wakes the first: at most one tasklet is ever waiting un-woken, and
 * waiters take turns. Three tasklets that each acquire, wait(-1), release:
 *   a: acquires, waits (nobody to wake)                                   log a
 *   b: acquires, waits -> wakes a, hands it the lock                      log b
 *   c: blocks in acquire (a holds it)
 *   a: returns from wait holding it, releases -> wakes b (queued behind c), hands it to c   A
 *   c: waits -> wakes nobody (b was woken already), hands the lock to b   log c
 *   b: returns, releases -> wakes c, hands it to c                        B
 *   c: returns, releases                                                  C
 * ========================================================================================== */
TEST(each_release_wakes_exactly_one_waiter) {
    watchdog(10);
    slp_lock *l = new_lock();
    struct lw w[3];
    slp_tasklet *t[3];
    log_reset();
    for (int i = 0; i < 3; i++) {
        lw_init(&w[i], l, -1, (char)('a' + i));
        t[i] = SPAWN(t_wait, &w[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abAcBC");
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(w[i].done, 1);
        CHECK_ST(w[i].st_acq, SLP_OK);
        CHECK_ST(w[i].st_wait, SLP_OK);
        CHECK_ST(w[i].st_held, SLP_E_DEADLOCK);
        CHECK_ST(w[i].st_rel, SLP_OK);
        slp_tasklet_release(t[i]);
    }
    /* one waiter w, one acquirer u, main holds: main's release hands the lock to u and wakes
     * w — only w, queued behind u; u's release then hands it to w; w's release wakes nobody */
    lw_init(&w[0], l, -1, 'w');
    log_reset();
    t[0] = SPAWN(t_wait, &w[0]);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t[0]));
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1); /* acquiring wakes nobody */
    struct lk u;
    lk_init(&u, l, 'u');
    slp_tasklet *tu = SPAWN(t_acq, &u);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(tu));
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 2); /* u */
    CHECK(!slp_tasklet_blocked(tu));
    CHECK(slp_tasklet_blocked(t[0])); /* woken, queued behind u */
    /* main acquires again: queued behind w */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    log_c('M');
    CHECK_LOG("wuUWM");
    CHECK_EQ_INT(u.done, 1);
    CHECK_ST(u.st_rel, SLP_OK);
    CHECK_EQ_INT(w[0].done, 1);
    CHECK_ST(w[0].st_wait, SLP_OK);
    CHECK_ST(w[0].st_rel, SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1); /* nobody left to wake */
    slp_tasklet_release(t[0]);
    slp_tasklet_release(tu);
    FREE_OK(l);
}

/* The release inside main's wait wakes the waiter a (queued behind the acquirer u, who gets
 * the lock); u's release wakes main (queued behind a). Timed wait for main, so that §5.3's
 * deadlock rule is not involved here; see wait_forever_by_main_is_not_a_deadlock. */
TEST(release_inside_wait_wakes_one_other_waiter) {
    watchdog(10);
    slp_lock *l = new_lock();
    struct lw w;
    lw_init(&w, l, -1, 'a');
    log_reset();
    slp_tasklet *ta = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(ta));
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    struct lk u;
    lk_init(&u, l, 'u');
    slp_tasklet *tu = SPAWN(t_acq, &u);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(tu));
    CHECK_LOG("au");
    slp_status st = slp_lock_wait(l, 5000 * MS);
    log_c('M');
    CHECK_ST(st, SLP_OK);
    CHECK_LOG("auUAM");
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_EQ_INT(w.done, 1);
    CHECK_ST(w.st_wait, SLP_OK);
    CHECK_ST(w.st_rel, SLP_OK);
    CHECK_EQ_INT(u.done, 1);
    CHECK_ST(u.st_rel, SLP_OK);
    slp_tasklet_release(ta);
    slp_tasklet_release(tu);
    FREE_OK(l);
}

/* A plain thread that publishes its kernel thread id, then acquires and releases. */
struct acq_ktid {
    struct plain_cycle *c;
    long ktid;
};

static void *th_acquire_release_ktid(void *arg) {
    struct acq_ktid *a = arg;
    slp_current();
    xt_set(&a->ktid, xt_gettid());
    return th_acquire_release(a->c);
}

/* main holds the lock, a tasklet waits for it in acquire (or in wait): main's wait(-1) is not
 * a deadlock — its own release hands the lock on, and that holder's release wakes main. */
TEST(wait_forever_by_main_is_not_a_deadlock) {
    watchdog(10);
    slp_lock *l = new_lock();
    /* an acquirer */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    struct lk k;
    lk_init(&k, l, 'a');
    log_reset();
    slp_tasklet *t = SPAWN(t_acq, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    slp_status st = slp_lock_wait(l, -1);
    log_c('M');
    CHECK_ST(st, SLP_OK);
    CHECK_LOG("aAM");
    if (st == SLP_OK) {
        CHECK_ST(slp_lock_release(l), SLP_OK);
    } else {
        /* refused: main still holds it; let the acquirer finish */
        slp_lock_release(l);
        slp_run();
    }
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_rel, SLP_OK);
    slp_tasklet_release(t);
    /* a waiter */
    struct lw w;
    lw_init(&w, l, -1, 'w');
    log_reset();
    t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    st = slp_lock_wait(l, -1);
    log_c('M');
    CHECK_ST(st, SLP_OK);
    CHECK_LOG("wWM");
    if (st == SLP_OK) {
        CHECK_ST(slp_lock_release(l), SLP_OK);
    } else {
        slp_lock_release(l); /* wakes w */
        slp_run();
    }
    CHECK_EQ_INT(w.done, 1);
    slp_tasklet_release(t);
    CHECK_EQ_INT(slp_runcount(), 1);
    /* the acquirer is a plain thread parked in slp_lock_acquire (asleep in libslp without a
     * deadline): main's wait hands it the lock, its release wakes main */
    struct plain_cycle c;
    memset(&c, 0, sizeof c);
    c.l = l;
    c.go = 1;
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    pthread_t th;
    struct acq_ktid ak = {&c, 0};
    CHECK_EQ_INT(pthread_create(&th, NULL, th_acquire_release_ktid, &ak), 0);
    CHECK_WAIT(xt_get(&ak.ktid) != 0 && xt_task_sleeping(xt_get(&ak.ktid)), 2000);
    sleep_ms(20); /* parked in slp_lock_acquire, past any spin */
    st = slp_lock_wait(l, -1);
    CHECK_ST(st, SLP_OK);
    slp_lock_release(l); /* SLP_OK; if the wait was refused this hands the lock to the thread */
    pthread_join(th, NULL);
    CHECK_ST(c.st_acq, SLP_OK);
    CHECK_ST(c.st_rel, SLP_OK);
    check_lock_works(l);
    FREE_OK(l);
}

/* ============================================================================================
 * wait(0): gives the others a turn and returns holding the lock.
 * ========================================================================================== */
TEST(wait_zero_gives_others_a_turn) {
    watchdog(10);
    slp_lock *l = new_lock();
    /* alone: SLP_E_TIMEOUT at once (no deadlock: it is bounded), holding it */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    int64_t t0 = now_ns();
    CHECK_ST(slp_lock_wait(l, 0), SLP_E_TIMEOUT);
    CHECK_MSG(now_ns() - t0 < xt_ms(1000) * MS, "wait(0) took %lld ms", (long long)((now_ns() - t0) / MS));
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK);
    /* with an acquirer: it gets its turn first; main returns holding the lock */
    struct lk k;
    lk_init(&k, l, 'a');
    log_reset();
    slp_tasklet *t = SPAWN(t_acq, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    slp_status st = slp_lock_wait(l, 0);
    log_c('M');
    /* the acquirer's release may count as waking main (SLP_OK) or main's timeout came first */
    CHECK_MSG(st == SLP_OK || st == SLP_E_TIMEOUT, "wait(0) returned %d (%s)", (int)st, harness_status_name(st));
    CHECK_LOG("aAM");
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_rel, SLP_OK);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* holds it */
    slp_tasklet_release(t);
    /* a tasklet's wait(0) with another runnable tasklet: that one runs, wait returns holding */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    struct lw w;
    lw_init(&w, l, 0, 'w');
    log_reset();
    t = SPAWN(t_wait, &w);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(w.done, 1);
    CHECK_ST(w.st_wait, SLP_E_TIMEOUT);
    CHECK_ST(w.st_held, SLP_E_DEADLOCK);
    CHECK_ST(w.st_rel, SLP_OK);
    CHECK_LOG("woW");
    slp_tasklet_release(t);
    slp_tasklet_release(o);
    FREE_OK(l);
}

/* ============================================================================================
 * wait with a timeout: never early; when the timeout passes while someone else holds the lock,
 * it returns SLP_E_TIMEOUT only once it holds the lock again.
 * ========================================================================================== */
TEST(wait_timeout_same_thread_reacquires_after_holder_releases) {
    watchdog(10);
    slp_lock *l = new_lock();
    struct lw w;
    lw_init(&w, l, 20 * MS, 'w');
    log_reset();
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK); /* waits */
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* wait released it */
    /* hold it well past w's timeout (main sleeps: w's timer fires meanwhile) */
    CHECK_ST(slp_sleep(80 * MS), SLP_OK);
    CHECK_EQ_INT(w.done, 0);
    CHECK(slp_tasklet_blocked(t)); /* timed out, waiting to re-acquire */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(w.done, 0);
    int64_t t_rel = now_ns();
    CHECK_ST(slp_lock_release(l), SLP_OK); /* hands it to w */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(w.done, 1);
    CHECK_ST(w.st_wait, SLP_E_TIMEOUT);
    CHECK_ST(w.st_held, SLP_E_DEADLOCK);
    CHECK_ST(w.st_rel, SLP_OK);
    CHECK_MSG(w.t1 >= t_rel, "wait returned %lld us before the holder released", (long long)((t_rel - w.t1) / 1000));
    CHECK_MSG(w.t1 - w.t0 >= 20 * MS, "wait(20 ms) returned after %lld us", (long long)((w.t1 - w.t0) / 1000));
    CHECK_LOG("wW");
    slp_tasklet_release(t);
    /* the waiter's timeout passes with the lock free: it takes it itself, never early */
    static const int64_t lens[] = {1 * MS, 5 * MS, 25 * MS};
    for (int i = 0; i < 3; i++) {
        lw_init(&w, l, lens[i], 0);
        t = SPAWN(t_wait, &w);
        int64_t deadline = now_ns() + xt_ms(3000) * MS;
        while (!w.done && now_ns() < deadline) slp_run_wait(2 * MS);
        CHECK_EQ_INT(w.done, 1);
        CHECK_ST(w.st_wait, SLP_E_TIMEOUT);
        CHECK_ST(w.st_held, SLP_E_DEADLOCK);
        CHECK_MSG(w.t1 - w.t0 >= lens[i], "wait(%lld ns) returned after %lld ns", (long long)lens[i],
                  (long long)(w.t1 - w.t0));
        CHECK_MSG(w.t1 - w.t0 < lens[i] + xt_ms(1000) * MS, "wait(%lld ms) returned after %lld ms",
                  (long long)(lens[i] / MS), (long long)((w.t1 - w.t0) / MS));
        slp_tasklet_release(t);
    }
    FREE_OK(l);
}

/* The same across threads: a worker's tasklet waits 100 ms (scaled); main takes the lock and
 * keeps it 300 ms (scaled) past that; the wait returns SLP_E_TIMEOUT, after main's release. */
static void setup_spawn_wait(void *arg) { slp_tasklet_new(t_wait, arg, NULL); }

TEST(wait_timeout_across_threads_reacquires_after_holder_releases) {
    watchdog(20);
    slp_lock *l = new_lock();
    struct lw w;
    int64_t to = xt_ms(100) * MS;
    lw_init(&w, l, to, 0);
    struct worker wk;
    if (!START_WORKER(&wk, setup_spawn_wait, &w)) return;
    CHECK_WAIT(xt_get(&w.waiting), 2000);
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* once the wait released it */
    int64_t t_acq = now_ns();
    xt_lock();
    int64_t w_t0 = w.t0;
    xt_unlock();
    bool in_time = t_acq - w_t0 < to; /* main got it before the waiter's timeout */
    CHECK_MSG(in_time, "main got the lock only %lld ms after the wait began", (long long)((t_acq - w_t0) / MS));
    sleep_ms(xt_ms(100) + xt_ms(300));
    if (in_time) CHECK_EQ_INT(xt_get(&w.done), 0); /* timed out, still waiting for the lock */
    int64_t t_rel = now_ns();
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_WAIT(xt_get(&w.done), 3000);
    xt_lock();
    CHECK_ST(w.st_wait, SLP_E_TIMEOUT);
    CHECK_ST(w.st_held, SLP_E_DEADLOCK);
    CHECK_ST(w.st_rel, SLP_OK);
    CHECK_MSG(w.t1 >= t_rel, "the wait returned %lld us before main released", (long long)((t_rel - w.t1) / 1000));
    CHECK_MSG(w.t1 - w.t0 >= to, "wait returned after %lld us", (long long)((w.t1 - w.t0) / 1000));
    CHECK_EQ_INT(w.tid, wk.tid);
    xt_unlock();
    STOP_WORKER(&wk);
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    FREE_OK(l);
}

/* ============================================================================================
 * wait woken by another thread's release: a worker's tasklet, a plain thread (its main
 * tasklet parks the OS thread), and this thread's tasklet woken by a plain thread.
 * ========================================================================================== */
struct plain_wait {
    slp_lock *l;
    slp_status st_acq, st_wait, st_held, st_rel;
    long in_wait, done;
    long ktid;
};

static void *th_plain_wait(void *arg) {
    struct plain_wait *p = arg;
    slp_status a = slp_lock_acquire(p->l);
    long ktid = xt_gettid();
    xt_lock();
    p->st_acq = a;
    p->ktid = ktid;
    p->in_wait = 1;
    xt_unlock();
    slp_status w = slp_lock_wait(p->l, -1);
    slp_status h = slp_lock_acquire(p->l);
    slp_status r = slp_lock_release(p->l);
    xt_lock();
    p->st_wait = w;
    p->st_held = h;
    p->st_rel = r;
    p->done = 1;
    xt_unlock();
    return NULL;
}

TEST(wait_woken_by_another_threads_release) {
    watchdog(20);
    slp_lock *l = new_lock();
    /* a worker's tasklet waits; main releases */
    struct lw w;
    lw_init(&w, l, -1, 0);
    struct worker wk;
    if (!START_WORKER(&wk, setup_spawn_wait, &w)) return;
    CHECK_WAIT(xt_get(&w.waiting), 2000);
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* free once it waits (or handed over by its wait) */
    CHECK_EQ_INT(xt_get(&w.done), 0);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_WAIT(xt_get(&w.done), 3000);
    xt_lock();
    CHECK_ST(w.st_acq, SLP_OK);
    CHECK_ST(w.st_wait, SLP_OK);
    CHECK_ST(w.st_held, SLP_E_DEADLOCK);
    CHECK_ST(w.st_rel, SLP_OK);
    CHECK_EQ_INT(w.tid, wk.tid);
    xt_unlock();
    STOP_WORKER(&wk);

    /* a plain thread waits (its OS thread parks); main releases */
    struct plain_wait p;
    memset(&p, 0, sizeof p);
    p.l = l;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_plain_wait, &p), 0);
    CHECK_WAIT(xt_get(&p.in_wait), 2000);
    CHECK_ST(slp_lock_acquire(l), SLP_OK); /* main blocks until the thread's wait releases it */
    CHECK_WAIT(xt_task_sleeping(xt_get(&p.ktid)), 2000);
    sleep_ms(20);
    CHECK_EQ_INT(xt_get(&p.done), 0);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_WAIT(xt_get(&p.done), 3000);
    pthread_join(th, NULL);
    CHECK_ST(p.st_acq, SLP_OK);
    CHECK_ST(p.st_wait, SLP_OK);
    CHECK_ST(p.st_held, SLP_E_DEADLOCK);
    CHECK_ST(p.st_rel, SLP_OK);

    /* this thread's tasklet waits; a plain thread acquires and releases */
    struct plain_cycle c;
    memset(&c, 0, sizeof c);
    c.l = l;
    lw_init(&w, l, -1, 0);
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(pthread_create(&th, NULL, th_acquire_release, &c), 0);
    xt_set(&c.go, 1);
    CHECK(drive_until(&w.done, 3000));
    pthread_join(th, NULL);
    CHECK_ST(c.st_acq, SLP_OK);
    CHECK_ST(c.st_rel, SLP_OK);
    CHECK_ST(w.st_wait, SLP_OK);
    CHECK_ST(w.st_held, SLP_E_DEADLOCK);
    CHECK_ST(w.st_rel, SLP_OK);
    slp_tasklet_release(t);
    FREE_OK(l);
}

/* ============================================================================================
 * kill / throw of a tasklet blocked in acquire: the call returns the code, the tasklet does not
 * hold the lock, the holder keeps it and the lock still works for others.
 * ========================================================================================== */
TEST(kill_and_throw_in_acquire) {
    watchdog(10);
    slp_lock *l = new_lock();
    for (int mode = 0; mode < 4; mode++) { /* kill now, kill pending, throw now, throw pending */
        CHECK_ST(slp_lock_acquire(l), SLP_OK);
        struct lk k;
        lk_init(&k, l, 0);
        slp_tasklet *t = SPAWN(t_acq, &k);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        bool pending = mode & 1;
        if (mode < 2) {
            CHECK_ST(slp_tasklet_kill(t, pending), SLP_OK);
        } else {
            CHECK_ST(slp_tasklet_throw(t, 42, &g_marker, pending), SLP_OK);
        }
        CHECK(!slp_tasklet_blocked(t));
        if (pending) CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(k.done, 1);
        CHECK_ST(k.st_acq, mode < 2 ? SLP_E_KILLED : 42);
        if (mode >= 2) CHECK_EQ_PTR(k.exc, &g_marker);
        CHECK_ST(k.st_rel, SLP_E_STATE); /* it does not hold the lock */
        CHECK(!slp_tasklet_alive(t));
        slp_tasklet_release(t);
        CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* main still holds it */
        CHECK_ST(slp_lock_release(l), SLP_OK);          /* and nobody is queued: free */
        check_lock_works(l);
    }
    /* the killed acquirer was in the middle of the queue: the others keep their order */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    struct lk k[3];
    slp_tasklet *t[3];
    log_reset();
    for (int i = 0; i < 3; i++) {
        lk_init(&k[i], l, (char)('a' + i));
        t[i] = SPAWN(t_acq, &k[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t[1], false), SLP_OK);
    CHECK_ST(k[1].st_acq, SLP_E_KILLED);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abcAC");
    CHECK_ST(k[0].st_rel, SLP_OK);
    CHECK_ST(k[2].st_rel, SLP_OK);
    for (int i = 0; i < 3; i++) slp_tasklet_release(t[i]);
    check_lock_works(l);
    FREE_OK(l);
}

/* ============================================================================================
 * kill / throw of a tasklet blocked in wait: (1) not yet woken, (2) woken by a release and
 * queued to re-acquire behind an acquirer, (3) timed out and queued to re-acquire while main
 * holds the lock. It returns the code without the lock; the lock still works.
 * ========================================================================================== */
TEST(kill_and_throw_in_wait) {
    watchdog(10);
    slp_lock *l = new_lock();
    for (int mode = 0; mode < 4; mode++) {
        bool throw_ = mode & 1;
        bool pending = mode & 2;
        int32_t want = throw_ ? 43 : SLP_E_KILLED;
        /* (1) waiting, not woken: the lock is free */
        struct lw w;
        lw_init(&w, l, -1, 0);
        slp_tasklet *t = SPAWN(t_wait, &w);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        if (throw_) CHECK_ST(slp_tasklet_throw(t, 43, &g_marker, pending), SLP_OK);
        else CHECK_ST(slp_tasklet_kill(t, pending), SLP_OK);
        if (pending) CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(w.done, 1);
        CHECK_ST(w.st_wait, want);
        if (throw_) CHECK_EQ_PTR(w.exc, &g_marker);
        CHECK_ST(w.st_rel, SLP_E_STATE);
        slp_tasklet_release(t);
        check_lock_works(l);
        /* the lock forgot the waiter: a release wakes nobody, free succeeds later */
        CHECK_ST(slp_lock_acquire(l), SLP_OK);
        CHECK_ST(slp_lock_release(l), SLP_OK);
        CHECK_EQ_INT(slp_runcount(), 1);

        /* (2) woken, queued behind acquirer u */
        lw_init(&w, l, -1, 0);
        t = SPAWN(t_wait, &w);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(slp_lock_acquire(l), SLP_OK);
        struct lk u;
        lk_init(&u, l, 0);
        slp_tasklet *tu = SPAWN(t_acq, &u);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(tu));
        CHECK_ST(slp_lock_release(l), SLP_OK); /* hands it to u, wakes w (behind u) */
        CHECK(slp_tasklet_blocked(t));
        if (throw_) CHECK_ST(slp_tasklet_throw(t, 43, &g_marker, pending), SLP_OK);
        else CHECK_ST(slp_tasklet_kill(t, pending), SLP_OK);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(w.done, 1);
        CHECK_ST(w.st_wait, want);
        CHECK_ST(w.st_rel, SLP_E_STATE);
        CHECK_EQ_INT(u.done, 1);
        CHECK_ST(u.st_acq, SLP_OK);
        CHECK_ST(u.st_rel, SLP_OK);
        slp_tasklet_release(t);
        slp_tasklet_release(tu);
        check_lock_works(l);

        /* (3) timed out while main holds the lock: queued to re-acquire */
        lw_init(&w, l, 2 * MS, 0);
        t = SPAWN(t_wait, &w);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(slp_lock_acquire(l), SLP_OK);
        CHECK_ST(slp_sleep(20 * MS), SLP_OK); /* w's timer fires meanwhile */
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(slp_tasklet_blocked(t));
        CHECK_EQ_INT(w.done, 0);
        if (throw_) CHECK_ST(slp_tasklet_throw(t, 43, &g_marker, pending), SLP_OK);
        else CHECK_ST(slp_tasklet_kill(t, pending), SLP_OK);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(w.done, 1);
        CHECK_ST(w.st_wait, want);
        CHECK_ST(w.st_rel, SLP_E_STATE);
        CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* main still holds it */
        CHECK_ST(slp_lock_release(l), SLP_OK);
        CHECK_EQ_INT(slp_runcount(), 1); /* nobody to hand it to */
        slp_tasklet_release(t);
        check_lock_works(l);
    }
    FREE_OK(l);
}

/* kill / throw from another thread: a worker's tasklet blocked in acquire (main holds the
 * lock) and one blocked in wait. */
struct spawn_req {
    slp_tasklet_fn fn;
    void *arg;
    slp_tasklet *t; /* written on the worker before it reports started */
};

static void setup_spawn_keep(void *p) {
    struct spawn_req *r = p;
    slp_tasklet_new(r->fn, r->arg, &r->t);
}

TEST(kill_and_throw_from_another_thread) {
    watchdog(20);
    for (int mode = 0; mode < 2; mode++) {
        /* in acquire */
        slp_lock *l = new_lock();
        CHECK_ST(slp_lock_acquire(l), SLP_OK);
        struct lk k;
        lk_init(&k, l, 0);
        struct spawn_req rq = {t_acq, &k, NULL};
        struct worker wk;
        if (!START_WORKER(&wk, setup_spawn_keep, &rq)) return;
        slp_tasklet *t = rq.t;
        CHECK(t != NULL);
        CHECK_WAIT(xt_get(&k.started) && slp_tasklet_blocked(t), 2000);
        if (mode == 0) CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
        else CHECK_ST(slp_tasklet_throw(t, 44, &g_marker, true), SLP_OK);
        CHECK_WAIT(xt_get(&k.done), 3000);
        xt_lock();
        CHECK_ST(k.st_acq, mode == 0 ? SLP_E_KILLED : 44);
        CHECK_ST(k.st_rel, SLP_E_STATE);
        if (mode == 1) CHECK_EQ_PTR(k.exc, &g_marker);
        xt_unlock();
        CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* main still holds it */
        CHECK_ST(slp_lock_release(l), SLP_OK);
        STOP_WORKER(&wk);
        slp_tasklet_release(t);
        check_lock_works(l);
        FREE_OK(l); /* no acquirer left behind */

        /* in wait */
        l = new_lock();
        struct lw w;
        lw_init(&w, l, -1, 0);
        struct spawn_req rw = {t_wait, &w, NULL};
        if (!START_WORKER(&wk, setup_spawn_keep, &rw)) return;
        t = rw.t;
        CHECK(t != NULL);
        CHECK_WAIT(xt_get(&w.waiting) && slp_tasklet_blocked(t), 2000);
        if (mode == 0) CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
        else CHECK_ST(slp_tasklet_throw(t, 44, &g_marker, true), SLP_OK);
        CHECK_WAIT(xt_get(&w.done), 3000);
        xt_lock();
        CHECK_ST(w.st_wait, mode == 0 ? SLP_E_KILLED : 44);
        CHECK_ST(w.st_rel, SLP_E_STATE);
        xt_unlock();
        STOP_WORKER(&wk);
        slp_tasklet_release(t);
        check_lock_works(l);
        FREE_OK(l); /* no waiter left behind */
    }
}

/* ============================================================================================
 * Thread exit (§5.4) with tasklets blocked in acquire and in wait: they leave the lock, which
 * still works and can be freed.
 * ========================================================================================== */
struct exit_blocked {
    slp_lock *l;
    struct lk k;
    struct lw w;
    slp_tasklet *tk, *tw;
    int kb, wb;
};

static void *th_exit_blocked(void *arg) {
    struct exit_blocked *e = arg;
    slp_tasklet_new(t_wait, &e->w, &e->tw);
    slp_run(); /* w acquires (free) and waits: the lock is free again */
    return NULL; /* exits with w waiting */
}

static void *th_exit_blocked_acq(void *arg) {
    struct exit_blocked *e = arg;
    slp_tasklet_new(t_acq, &e->k, &e->tk);
    slp_run(); /* k blocks: main holds the lock */
    e->kb = slp_tasklet_blocked(e->tk);
    return NULL; /* exits with k blocked */
}

TEST(thread_exit_with_tasklets_blocked_on_the_lock) {
    watchdog(20);
    struct exit_blocked e;
    memset(&e, 0, sizeof e);
    e.l = new_lock();
    lk_init(&e.k, e.l, 0);
    lw_init(&e.w, e.l, -1, 0);
    /* a thread exits with its tasklet waiting */
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_exit_blocked, &e), 0);
    pthread_join(th, NULL);
    CHECK(e.tw != NULL);
    CHECK_EQ_INT(e.w.done, 1);
    CHECK_ST(e.w.st_acq, SLP_OK);
    CHECK_ST(e.w.st_wait, SLP_E_KILLED);
    CHECK_ST(e.w.st_rel, SLP_E_STATE);
    CHECK(!slp_tasklet_alive(e.tw));
    /* a thread exits with its tasklet blocked in acquire (main holds the lock) */
    CHECK_ST(slp_lock_acquire(e.l), SLP_OK);
    CHECK_EQ_INT(pthread_create(&th, NULL, th_exit_blocked_acq, &e), 0);
    pthread_join(th, NULL);
    CHECK(e.tk != NULL);
    CHECK_EQ_INT(e.kb, 1);
    CHECK_EQ_INT(e.k.done, 1);
    CHECK_ST(e.k.st_acq, SLP_E_KILLED);
    CHECK_ST(e.k.st_rel, SLP_E_STATE);
    CHECK(!slp_tasklet_alive(e.tk));
    CHECK_ST(slp_lock_acquire(e.l), SLP_E_DEADLOCK); /* main still holds it */
    CHECK_ST(slp_lock_release(e.l), SLP_OK);          /* nobody to hand it to */
    check_lock_works(e.l);
    slp_tasklet_release(e.tw);
    slp_tasklet_release(e.tk);
    FREE_OK(e.l);
}

/* ============================================================================================
 * Mutual exclusion under load: 3 plain threads x 100,000 increments of a plain (non-atomic)
 * counter under the lock (10,000 each in slow mode: valgrind / TSan): the total is exact and
 * nobody is ever inside with another. Under TSan this also checks that a hand-off orders the
 * previous holder's writes before the next holder's reads.
 * ========================================================================================== */
struct mx_shared {
    slp_lock *l;
    long counter; /* only touched under the slp_lock */
    int inside;   /* likewise */
    long overlap; /* likewise */
    int n;
    long go;
};

struct mx_thread {
    struct mx_shared *sh;
    long errors;
    slp_status first_err;
    char err[256];
};

static void *th_increment(void *arg) {
    struct mx_thread *m = arg;
    struct mx_shared *sh = m->sh;
    slp_current(); /* participates before the start */
    while (!xt_get(&sh->go)) usleep(100);
    long errors = 0;
    for (int i = 0; i < sh->n; i++) {
        slp_status st = slp_lock_acquire(sh->l);
        if (st != SLP_OK) {
            if (errors++ == 0) {
                m->first_err = st;
                snprintf(m->err, sizeof m->err, "%s", slp_last_error());
            }
            break;
        }
        if (++sh->inside != 1) sh->overlap++;
        long c = sh->counter;
        if ((i & 63) == 0) sched_yield(); /* widen the window now and then */
        sh->counter = c + 1;
        if (sh->inside != 1) sh->overlap++;
        sh->inside--;
        st = slp_lock_release(sh->l);
        if (st != SLP_OK && errors++ == 0) {
            m->first_err = st;
            snprintf(m->err, sizeof m->err, "%s", slp_last_error());
        }
    }
    xt_set(&m->errors, errors);
    return NULL;
}

TEST(mutual_exclusion_three_threads_under_load) {
    watchdog(60);
    struct mx_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.l = new_lock();
    sh.n = xt_slow() ? 10000 : 100000;
    struct mx_thread m[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].sh = &sh;
        CHECK_EQ_INT(pthread_create(&th[i], NULL, th_increment, &m[i]), 0);
    }
    int64_t t0 = now_ns();
    xt_set(&sh.go, 1);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    int64_t el = now_ns() - t0;
    printf("    3 threads x %d increments: %lld ms\n", sh.n, (long long)(el / MS));
    for (int i = 0; i < 3; i++)
        CHECK_MSG(m[i].errors == 0, "thread %d: %ld error(s), first %d (%s): %s", i, m[i].errors,
                  (int)m[i].first_err, harness_status_name(m[i].first_err), m[i].err);
    CHECK_ST(slp_lock_acquire(sh.l), SLP_OK); /* free, and orders the threads' writes */
    CHECK_EQ_INT(sh.counter, 3L * sh.n);
    CHECK_EQ_INT(sh.overlap, 0);
    CHECK_ST(slp_lock_release(sh.l), SLP_OK);
    FREE_OK(sh.l);
}

/* Tasklets on two threads contending: each worker runs 3 tasklets that take the lock, yield to
 * their siblings while holding it (the siblings contend and park), increment, release. */
struct tc_shared {
    slp_lock *l;
    long counter; /* under the slp_lock */
    int inside;
    long overlap;
    int n;
};

struct tc_tasklet {
    struct tc_shared *sh;
    long done;
    long errors;
};

static int32_t t_two_thread_contend(void *arg) {
    struct tc_tasklet *c = arg;
    struct tc_shared *sh = c->sh;
    long errors = 0;
    for (int i = 0; i < sh->n; i++) {
        if (slp_lock_acquire(sh->l) != SLP_OK) {
            errors++;
            break;
        }
        if (++sh->inside != 1) sh->overlap++;
        long v = sh->counter;
        slp_schedule(); /* siblings run and block on the lock */
        sh->counter = v + 1;
        if (sh->inside != 1) sh->overlap++;
        sh->inside--;
        if (slp_lock_release(sh->l) != SLP_OK) errors++;
        if (i % 3 == 0) slp_schedule();
    }
    xt_lock();
    c->errors = errors;
    c->done = 1;
    xt_unlock();
    return 0;
}

struct tc_setup {
    struct tc_tasklet *c; /* 3 of them */
};

static void setup_three_contenders(void *arg) {
    struct tc_setup *s = arg;
    for (int i = 0; i < 3; i++) slp_tasklet_new(t_two_thread_contend, &s->c[i], NULL);
}

TEST(mutual_exclusion_tasklets_on_two_threads) {
    watchdog(60);
    struct tc_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.l = new_lock();
    sh.n = xt_slow() ? 300 : 3000;
    struct tc_tasklet c[6];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 6; i++) c[i].sh = &sh;
    struct tc_setup s0 = {&c[0]}, s1 = {&c[3]};
    /* the first worker's tasklets start at once; that is fine, the second joins in */
    struct worker w0, w1;
    if (!START_WORKER(&w0, setup_three_contenders, &s0)) return;
    if (!START_WORKER(&w1, setup_three_contenders, &s1)) {
        STOP_WORKER(&w0);
        return;
    }
    bool all = false;
    WAIT_UNTIL(all,
               xt_get(&c[0].done) && xt_get(&c[1].done) && xt_get(&c[2].done) && xt_get(&c[3].done) &&
                   xt_get(&c[4].done) && xt_get(&c[5].done),
               30000);
    CHECK_MSG(all, "not every contending tasklet finished");
    long errors = 0;
    for (int i = 0; i < 6; i++) errors += xt_get(&c[i].errors);
    CHECK_EQ_INT(errors, 0);
    STOP_WORKER(&w0);
    STOP_WORKER(&w1);
    if (all) {
        CHECK_ST(slp_lock_acquire(sh.l), SLP_OK);
        CHECK_EQ_INT(sh.counter, 6L * sh.n);
        CHECK_EQ_INT(sh.overlap, 0);
        CHECK_ST(slp_lock_release(sh.l), SLP_OK);
        FREE_OK(sh.l);
    }
}

/* ============================================================================================
 * A contending tasklet parks only itself: the other tasklets of its thread keep running.
 * ========================================================================================== */
struct spinner {
    int n;
    int ran;
    long done;
};

static int32_t t_spinner(void *arg) {
    struct spinner *s = arg;
    for (int i = 0; i < s->n; i++) {
        log_c('s');
        s->ran++;
        slp_schedule();
    }
    xt_set(&s->done, 1);
    return 0;
}

struct plain_hold {
    slp_lock *l;
    long holding, release_now, done;
    slp_status st_acq, st_rel;
};

static void *th_hold_until_told(void *arg) {
    struct plain_hold *p = arg;
    slp_status a = slp_lock_acquire(p->l);
    xt_set(&p->holding, 1);
    while (!xt_get(&p->release_now)) usleep(200);
    slp_status r = slp_lock_release(p->l);
    xt_lock();
    p->st_acq = a;
    p->st_rel = r;
    p->done = 1;
    xt_unlock();
    return NULL;
}

/* Sets *flag (under xt_mx) after 50 ms; no libslp call (does not participate). */
static void *th_set_flag_later(void *arg) {
    sleep_ms(50);
    xt_set((long *)arg, 1);
    return NULL;
}

TEST(contending_tasklet_parks_only_itself) {
    watchdog(20);
    slp_lock *l = new_lock();
    /* the holder is main */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    struct lk k;
    lk_init(&k, l, 'a');
    struct spinner sp = {5, 0, 0};
    log_reset();
    slp_tasklet *ta = SPAWN(t_acq, &k);
    slp_tasklet *ts = SPAWN(t_spinner, &sp);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("asssss");
    CHECK_EQ_INT(sp.ran, 5);
    CHECK(slp_tasklet_blocked(ta));
    CHECK_EQ_INT(k.done, 0);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("asssssA");
    CHECK_ST(k.st_rel, SLP_OK);
    slp_tasklet_release(ta);
    slp_tasklet_release(ts);
    /* the holder is another thread */
    struct plain_hold p;
    memset(&p, 0, sizeof p);
    p.l = l;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_hold_until_told, &p), 0);
    CHECK_WAIT(xt_get(&p.holding), 2000);
    lk_init(&k, l, 'a');
    sp.n = 5;
    sp.ran = 0;
    sp.done = 0;
    log_reset();
    ta = SPAWN(t_acq, &k);
    ts = SPAWN(t_spinner, &sp);
    CHECK_ST(slp_run(), SLP_OK); /* a parks; the spinner runs to its end; the run returns */
    CHECK_LOG("asssss");
    CHECK(slp_tasklet_blocked(ta));
    CHECK(!slp_tasklet_alive(ts));
    xt_set(&p.release_now, 1);
    CHECK(drive_until(&k.done, 3000));
    CHECK_LOG("asssssA");
    CHECK_ST(k.st_acq, SLP_OK);
    CHECK_ST(k.st_held, SLP_E_DEADLOCK);
    CHECK_ST(k.st_rel, SLP_OK);
    pthread_join(th, NULL);
    CHECK_ST(p.st_acq, SLP_OK);
    CHECK_ST(p.st_rel, SLP_OK);
    slp_tasklet_release(ta);
    slp_tasklet_release(ts);
    /* a main tasklet with nothing runnable parks its thread, and gets the lock after the
     * holder's release (never before) */
    memset(&p, 0, sizeof p);
    p.l = l;
    CHECK_EQ_INT(pthread_create(&th, NULL, th_hold_until_told, &p), 0);
    CHECK_WAIT(xt_get(&p.holding), 2000);
    int64_t t0 = now_ns();
    pthread_t th2; /* tells the holder to release after 50 ms */
    CHECK_EQ_INT(pthread_create(&th2, NULL, th_set_flag_later, &p.release_now), 0);
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    int64_t el = now_ns() - t0;
    CHECK_EQ_INT(xt_get(&p.release_now), 1);
    CHECK_MSG(el >= 50 * MS, "main got the lock after %lld us, the holder released after >= 50 ms",
              (long long)(el / 1000));
    CHECK_ST(slp_lock_release(l), SLP_OK);
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    FREE_OK(l);
}

/* ============================================================================================
 * §5.3 deadlock rules with locks.
 * Rule 2: main acquires a lock held by a tasklet of its own thread that is blocked on an empty
 * channel, no other participant -> SLP_E_DEADLOCK at once, nothing changed. Likewise main's
 * wait(-1) alone.
 * ========================================================================================== */
struct hold_recv {
    slp_lock *l;
    slp_channel *ch;
    slp_status st_acq, st_recv, st_rel;
    void *v;
    int done;
};

static int32_t t_hold_recv(void *arg) {
    struct hold_recv *h = arg;
    h->st_acq = slp_lock_acquire(h->l);
    h->st_recv = slp_channel_receive(h->ch, &h->v);
    h->st_rel = slp_lock_release(h->l);
    h->done = 1;
    return 0;
}

TEST(deadlock_main_acquires_lock_of_blocked_tasklet) {
    watchdog(10);
    slp_lock *l = new_lock();
    struct hold_recv h;
    memset(&h, 0, sizeof h);
    h.l = l;
    h.ch = NEW_CHANNEL();
    slp_tasklet *t = SPAWN(t_hold_recv, &h);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_acq, SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    int64_t t0 = now_ns();
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_MSG(now_ns() - t0 < xt_ms(1000) * MS, "took %lld ms", (long long)((now_ns() - t0) / MS));
    /* nothing changed: main does not hold it, is not queued, t still holds it */
    CHECK_ST(slp_lock_release(l), SLP_E_STATE);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(h.ch), -1);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* again */
    FREE_REFUSED(l);
    /* t goes on and releases; main is not queued, so the lock ends free */
    CHECK_ST(slp_channel_send(h.ch, IPTR(5)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(h.done, 1);
    CHECK_ST(h.st_recv, SLP_OK);
    CHECK_ST(h.st_rel, SLP_OK);
    slp_tasklet_release(t);
    check_lock_works(l);
    /* main's wait(-1) alone: SLP_E_DEADLOCK, changing nothing (main still holds the lock) */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_ST(slp_lock_wait(l, -1), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_E_STATE);
    slp_channel_release(h.ch);
    FREE_OK(l);
}

/* Rule 3: main blocked in acquire; the holder ends still holding the lock -> main's acquire
 * returns SLP_E_DEADLOCK (main does not hold it). The lock stays locked (a tasklet that ends
 * holding a lock leaves it locked): acquire -> SLP_E_DEADLOCK / SLP_E_WOULD_BLOCK, free
 * refused. The lock is then leaked on purpose (kept reachable). */
static slp_lock *volatile g_orphaned[2]; /* volatile: the stores must stay (LeakSanitizer scans them) */

static int32_t t_acquire_yield_end(void *arg) {
    struct lk *k = arg;
    k->st_acq = slp_lock_acquire(k->l);
    slp_schedule(); /* main blocks on the lock meanwhile */
    k->done = 1;
    return 0; /* ends holding it */
}

TEST(deadlock_holder_ends_while_main_waits_and_lock_stays_locked) {
    watchdog(10);
    uint64_t held0 = locks_held(); /* process-wide: no other thread runs now */
    slp_lock *l = new_lock();
    g_orphaned[0] = l;
    struct lk k;
    lk_init(&k, l, 0);
    slp_tasklet *t = SPAWN(t_acquire_yield_end, &k);
    CHECK_ST(slp_schedule(), SLP_OK); /* t acquires, yields back */
    CHECK_ST(k.st_acq, SLP_OK);
    slp_status st = slp_lock_acquire(l); /* blocks; t ends holding it */
    CHECK_ST(st, SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(k.done, 1);
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_lock_release(l), SLP_E_STATE); /* main does not hold it */
    CHECK_ST(slp_lock_wait(l, 0), SLP_E_STATE);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* rule 2: nothing could release it */
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_lock_acquire(l), SLP_E_WOULD_BLOCK);
    slp_tasklet_set_block_trap(slp_main(), false);
    FREE_REFUSED(l);
    CHECK_EQ_INT(locks_held(), held0 + 1); /* the counters show the orphaned lock */
    slp_tasklet_release(t);
    /* the same for a tasklet that simply ends holding it, nobody waiting */
    slp_lock *l2 = new_lock();
    g_orphaned[1] = l2;
    struct lk k2;
    lk_init(&k2, l2, 0);
    k2.keep = 1;
    t = SPAWN(t_acq, &k2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(k2.st_acq, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    CHECK_ST(slp_lock_release(l2), SLP_E_STATE);
    CHECK_ST(slp_lock_acquire(l2), SLP_E_DEADLOCK);
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_lock_acquire(l2), SLP_E_WOULD_BLOCK);
    slp_tasklet_set_block_trap(slp_main(), false);
    FREE_REFUSED(l2);
    CHECK_EQ_INT(locks_held(), held0 + 2);
    /* a timed wait for it by a tasklet ends in time... and then must re-acquire: it cannot
     * (the owner is dead); not tested: the contract leaves that case to rule 2/4 */
}

/* Rule 4: a tasklet that would block while main is blocked (on a lock) and nothing could wake
 * anyone gets SLP_E_DEADLOCK itself and goes on — on a channel, and on a second lock that main
 * holds; it then releases the first lock, which hands it to main. */
struct rule4 {
    slp_lock *l, *l2;
    slp_channel *ch;
    int use_lock;
    slp_status st_acq, st_block, st_rel;
    int done;
};

static int32_t t_rule4(void *arg) {
    struct rule4 *r = arg;
    r->st_acq = slp_lock_acquire(r->l);
    slp_schedule(); /* main blocks on l meanwhile */
    if (r->use_lock) {
        r->st_block = slp_lock_acquire(r->l2);
    } else {
        void *v = NULL;
        r->st_block = slp_channel_receive(r->ch, &v);
    }
    r->st_rel = slp_lock_release(r->l); /* hands l to main */
    r->done = 1;
    return 0;
}

TEST(deadlock_rule4_tasklet_blocking_while_main_waits_on_lock) {
    watchdog(10);
    for (int use_lock = 0; use_lock < 2; use_lock++) {
        struct rule4 r;
        memset(&r, 0, sizeof r);
        r.l = new_lock();
        r.l2 = new_lock();
        r.ch = NEW_CHANNEL();
        r.use_lock = use_lock;
        CHECK_ST(slp_lock_acquire(r.l2), SLP_OK);
        slp_tasklet *t = SPAWN(t_rule4, &r);
        CHECK_ST(slp_schedule(), SLP_OK); /* t takes l and yields */
        CHECK_ST(r.st_acq, SLP_OK);
        CHECK_ST(slp_lock_acquire(r.l), SLP_OK); /* blocks until t, refused, releases l */
        CHECK_EQ_INT(r.done, 1);
        CHECK_ST(r.st_block, SLP_E_DEADLOCK);
        CHECK_ST(r.st_rel, SLP_OK);
        CHECK_ST(slp_lock_acquire(r.l), SLP_E_DEADLOCK); /* main holds both */
        CHECK_ST(slp_lock_release(r.l), SLP_OK);
        CHECK_ST(slp_lock_release(r.l2), SLP_OK);   /* t was not left queued on l2 */
        CHECK_ST(slp_lock_acquire(r.l2), SLP_OK);
        CHECK_ST(slp_lock_release(r.l2), SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(r.ch), 0);
        CHECK_ST(slp_run(), SLP_OK);
        slp_tasklet_release(t);
        slp_channel_release(r.ch);
        FREE_OK(r.l);
        FREE_OK(r.l2);
    }
}

/* ============================================================================================
 * block_trap and switch_trap: SLP_E_WOULD_BLOCK / SLP_E_SWITCH_TRAP when the call would block,
 * nothing changed (not queued, still holding); calls that do not block are unaffected.
 * ========================================================================================== */
static int32_t t_trapped_acquire(void *arg) {
    struct lk *k = arg;
    slp_tasklet_set_block_trap(slp_current(), true);
    k->st_acq = slp_lock_acquire(k->l);
    slp_tasklet_set_block_trap(slp_current(), false);
    slp_switch_trap(1);
    k->st_held = slp_lock_acquire(k->l);
    slp_switch_trap(-1);
    k->st_rel = slp_lock_release(k->l);
    k->done = 1;
    return 0;
}

TEST(block_trap_and_switch_trap) {
    watchdog(10);
    slp_lock *l = new_lock(), *mine = new_lock();
    struct hold h = {l, 12345, 12345, 0};
    slp_tasklet *th = SPAWN(t_hold_paused, &h); /* holds l, paused */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_acq, SLP_OK);
    /* block_trap on main */
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_lock_acquire(l), SLP_E_WOULD_BLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_acquire(mine), SLP_OK); /* free: does not block */
    CHECK_ST(slp_lock_wait(mine, -1), SLP_E_WOULD_BLOCK);
    CHECK_ST(slp_lock_wait(mine, 10 * MS), SLP_E_WOULD_BLOCK);
    CHECK_ST(slp_lock_acquire(mine), SLP_E_DEADLOCK); /* still holds it */
    CHECK_ST(slp_lock_release(mine), SLP_OK);
    slp_tasklet_set_block_trap(slp_main(), false);
    /* switch_trap */
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_ST(slp_lock_acquire(l), SLP_E_SWITCH_TRAP);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_lock_acquire(mine), SLP_OK);
    CHECK_ST(slp_lock_wait(mine, -1), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_lock_wait(mine, 10 * MS), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_lock_wait(mine, 0), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_lock_acquire(mine), SLP_E_DEADLOCK); /* still holds it */
    CHECK_ST(slp_lock_release(mine), SLP_OK);        /* release never switches */
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    /* block_trap on a tasklet; its switch_trap */
    struct lk k;
    lk_init(&k, l, 0);
    slp_tasklet *tk = SPAWN(t_trapped_acquire, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_acq, SLP_E_WOULD_BLOCK);
    CHECK_ST(k.st_held, SLP_E_SWITCH_TRAP);
    CHECK_ST(k.st_rel, SLP_E_STATE);
    slp_tasklet_release(tk);
    /* nobody was queued: the holder's release leaves l free */
    CHECK_ST(slp_tasklet_insert(th), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_rel, SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(th);
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    slp_tasklet_set_block_trap(slp_main(), false);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    FREE_OK(l);
    FREE_OK(mine);
}

/* ============================================================================================
 * Inside a callback: a lock call that would block or switch returns SLP_E_STATE, and the call
 * in progress completes normally.
 * ========================================================================================== */
struct cb_state {
    slp_lock *held_by_other; /* held by a paused tasklet */
    slp_lock *mine;          /* held by main (the channel callback runs in main's send) */
    int calls;
    slp_status st_acq, st_wait_inf, st_wait_t, st_wait_0;
};

static void on_chan(slp_channel *ch, slp_tasklet *t, bool sending, bool will_block, void *ud) {
    (void)ch, (void)t, (void)sending, (void)will_block;
    struct cb_state *c = ud;
    if (c->calls++ != 0) return;
    c->st_acq = slp_lock_acquire(c->held_by_other);
    c->st_wait_inf = slp_lock_wait(c->mine, -1);
    c->st_wait_t = slp_lock_wait(c->mine, 10 * MS);
    c->st_wait_0 = slp_lock_wait(c->mine, 0);
}

static void on_switch(slp_tasklet *prev, slp_tasklet *next, void *ud) {
    (void)prev, (void)next;
    struct cb_state *c = ud;
    if (c->calls++ != 0) return;
    c->st_acq = slp_lock_acquire(c->held_by_other);
}

TEST(inside_a_callback_is_state) {
    watchdog(10);
    slp_lock *l = new_lock(), *mine = new_lock();
    struct hold h = {l, 12345, 12345, 0};
    slp_tasklet *th = SPAWN(t_hold_paused, &h);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_acq, SLP_OK);
    /* channel callback, called in main's send on a buffered channel (no block, no switch) */
    struct cb_state c;
    memset(&c, 0, sizeof c);
    c.held_by_other = l;
    c.mine = mine;
    c.st_acq = c.st_wait_inf = c.st_wait_t = c.st_wait_0 = 12345;
    CHECK_ST(slp_lock_acquire(mine), SLP_OK);
    slp_channel *ch = NEW_CHANNEL_EX(-1, 1, false);
    CHECK_ST(slp_set_channel_callback(on_chan, &c, NULL, NULL), SLP_OK);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK); /* completes normally */
    CHECK_ST(slp_set_channel_callback(NULL, NULL, NULL, NULL), SLP_OK);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_ST(c.st_acq, SLP_E_STATE);
    CHECK_ST(c.st_wait_inf, SLP_E_STATE);
    CHECK_ST(c.st_wait_t, SLP_E_STATE);
    CHECK_ST(c.st_wait_0, SLP_E_STATE);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    CHECK_ST(slp_lock_acquire(mine), SLP_E_DEADLOCK); /* main still holds it */
    CHECK_ST(slp_lock_release(mine), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1); /* main was not queued on l */
    /* schedule callback */
    memset(&c, 0, sizeof c);
    c.held_by_other = l;
    c.st_acq = 12345;
    CHECK_ST(slp_set_schedule_callback(on_switch, &c, NULL, NULL), SLP_OK);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_set_schedule_callback(NULL, NULL, NULL, NULL), SLP_OK);
    CHECK_LOG("o");
    CHECK(c.calls >= 1);
    CHECK_ST(c.st_acq, SLP_E_STATE);
    slp_tasklet_release(o);
    /* l: still held by th only */
    CHECK_ST(slp_tasklet_insert(th), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_rel, SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(th);
    check_lock_works(l);
    slp_channel_release(ch);
    FREE_OK(l);
    FREE_OK(mine);
}

/* ============================================================================================
 * slp_lock_free: refused while the lock is held (by main, by a tasklet) or waited for (a
 * tasklet in wait, an acquirer); the lock keeps working; accepted once free.
 * ========================================================================================== */
TEST(free_refused_while_held_or_waited_for) {
    watchdog(10);
    slp_lock *l = new_lock();
    /* held by main */
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    FREE_REFUSED(l);
    CHECK_ST(slp_lock_acquire(l), SLP_E_DEADLOCK); /* still valid, still held */
    CHECK_ST(slp_lock_release(l), SLP_OK);
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_OK);
    /* a tasklet in wait (the lock itself is free) */
    struct lw w;
    lw_init(&w, l, -1, 0);
    slp_tasklet *t = SPAWN(t_wait, &w);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    FREE_REFUSED(l);
    CHECK_ST(slp_lock_acquire(l), SLP_OK);
    CHECK_ST(slp_lock_release(l), SLP_OK); /* wakes w */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(w.done, 1);
    CHECK_ST(w.st_wait, SLP_OK);
    CHECK_ST(w.st_rel, SLP_OK);
    slp_tasklet_release(t);
    /* held by a paused tasklet, with an acquirer queued */
    struct hold h = {l, 12345, 12345, 0};
    slp_tasklet *th = SPAWN(t_hold_paused, &h);
    CHECK_ST(slp_run(), SLP_OK);
    FREE_REFUSED(l);
    struct lk k;
    lk_init(&k, l, 0);
    slp_tasklet *tk = SPAWN(t_acq, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(tk));
    FREE_REFUSED(l);
    CHECK_ST(slp_tasklet_insert(th), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(h.st_rel, SLP_OK);
    CHECK_EQ_INT(k.done, 1);
    CHECK_ST(k.st_acq, SLP_OK);
    CHECK_ST(k.st_rel, SLP_OK);
    slp_tasklet_release(th);
    slp_tasklet_release(tk);
    /* held by another thread */
    struct plain_hold p;
    memset(&p, 0, sizeof p);
    p.l = l;
    pthread_t pt;
    CHECK_EQ_INT(pthread_create(&pt, NULL, th_hold_until_told, &p), 0);
    CHECK_WAIT(xt_get(&p.holding), 2000);
    FREE_REFUSED(l);
    xt_set(&p.release_now, 1);
    pthread_join(pt, NULL);
    CHECK_ST(p.st_rel, SLP_OK);
    check_lock_works(l);
    FREE_OK(l);
}
