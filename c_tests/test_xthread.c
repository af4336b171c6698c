/* test_xthread.c - SPEC §3 tasklet calls made from another OS thread (the parts that belong to
 * the core issue): insert/run append to the owner's queue, kill/throw are pending and take the
 * target off its channel before returning, and every thread has its own scheduler. */
#include "harness.h"
#include "common.h"

#include <pthread.h>

struct xthread {
    slp_tasklet *target;
    slp_status st_switch, st_run, st_insert;
    int64_t tid;
    int ran_here;
    char err[256]; /* slp_last_error() of the other thread */
};

static int g_ran_on;
static int64_t g_ran_tid;
static int32_t t_where(void *arg) {
    (void)arg;
    g_ran_on++;
    g_ran_tid = slp_thread_id();
    return 0;
}

static int32_t t_nop(void *arg) {
    (void)arg;
    return 0;
}

static void *thread_run_foreign(void *arg) {
    struct xthread *x = arg;
    x->st_run = slp_tasklet_run(x->target); /* from another thread: like insert */
    snprintf(x->err, sizeof x->err, "%s", slp_last_error());
    x->ran_here = g_ran_on;
    return NULL;
}

TEST(run_from_other_thread_appends_to_owner) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    g_ran_on = 0;
    g_ran_tid = 0;
    struct xthread x;
    memset(&x, 0, sizeof x);
    x.st_run = 12345;
    x.target = SPAWN_EX(t_where, NULL, &o);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_run_foreign, &x), 0);
    pthread_join(th, NULL);
    CHECK_MSG(x.st_run == SLP_OK, "slp_tasklet_run from another thread returned %d: \"%s\"", (int)x.st_run, x.err);
    CHECK_EQ_INT(x.ran_here, 0);
    if (x.st_run != SLP_OK) { /* the rest would only repeat this failure */
        cleanup_tasklet(x.target);
        return;
    }
    CHECK(slp_tasklet_scheduled(x.target));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran_on, 1);
    CHECK_EQ_INT(g_ran_tid, slp_thread_id());
    slp_tasklet_release(x.target);
}

static void *thread_insert_foreign(void *arg) {
    struct xthread *x = arg;
    x->st_insert = slp_tasklet_insert(x->target);
    snprintf(x->err, sizeof x->err, "%s", slp_last_error());
    return NULL;
}

TEST(insert_from_other_thread_appends_to_owner) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    g_ran_on = 0;
    struct xthread x;
    memset(&x, 0, sizeof x);
    x.st_insert = 12345;
    x.target = SPAWN_EX(t_where, NULL, &o);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_insert_foreign, &x), 0);
    pthread_join(th, NULL);
    CHECK_MSG(x.st_insert == SLP_OK, "slp_tasklet_insert from another thread returned %d: \"%s\"", (int)x.st_insert,
              x.err);
    CHECK_EQ_INT(g_ran_on, 0);
    if (x.st_insert != SLP_OK) { /* the rest would only repeat this failure */
        cleanup_tasklet(x.target);
        return;
    }
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran_on, 1);
    CHECK_EQ_INT(g_ran_tid, slp_thread_id());
    slp_tasklet_release(x.target);
}

/* §3 kill: "From another thread a kill is always pending, but the target leaves its channel
 * (balance corrected) before the call returns." The same path for throw. */
struct xkill {
    slp_tasklet *target;
    slp_channel *ch;
    bool use_throw;
    bool pending;
    slp_status st;
    int32_t balance_after;
    bool alive_after;
    char err[256];
};

static void *thread_kill_foreign(void *arg) {
    struct xkill *x = arg;
    x->st = x->use_throw ? slp_tasklet_throw(x->target, 23, &g_ran_on, x->pending)
                         : slp_tasklet_kill(x->target, x->pending);
    snprintf(x->err, sizeof x->err, "%s", slp_last_error());
    x->balance_after = slp_channel_balance(x->ch);
    x->alive_after = slp_tasklet_alive(x->target);
    return NULL;
}

TEST(kill_and_throw_from_other_thread_are_pending) {
    for (int mode = 0; mode < 4; mode++) {
        slp_channel *ch = NEW_CHANNEL();
        struct op r;
        op_init(&r, ch, SENTINEL, 0);
        r.ret = 0;
        slp_tasklet *t = SPAWN(op_recv, &r);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch), -1);
        struct xkill x;
        memset(&x, 0, sizeof x);
        x.target = t;
        x.ch = ch;
        x.use_throw = mode >= 2;
        x.pending = (mode % 2) == 1;
        x.st = 12345;
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, thread_kill_foreign, &x), 0);
        pthread_join(th, NULL);
        CHECK_MSG(x.st == SLP_OK, "mode %d: cross-thread %s returned %d: \"%s\"", mode,
                  x.use_throw ? "throw" : "kill", (int)x.st, x.err);
        if (x.st != SLP_OK) { /* the rest would only repeat this failure */
            cleanup_tasklet(t);
            slp_channel_release(ch);
            continue;
        }
        CHECK_MSG(x.balance_after == 0, "mode %d: balance %d when the call returned", mode, (int)x.balance_after);
        CHECK(x.alive_after);        /* pending: it has not run yet */
        CHECK_EQ_INT(r.done, 0);
        CHECK(slp_tasklet_scheduled(t));
        CHECK(!slp_tasklet_blocked(t));
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(r.st, x.use_throw ? 23 : SLP_E_KILLED);
        if (x.use_throw) CHECK_EQ_PTR(r.exc, &g_ran_on);
        CHECK(!slp_tasklet_alive(t));
        cleanup_tasklet(t);
        slp_channel_release(ch);
    }
}

/* slp_tasklet_new from any thread creates a tasklet owned by that thread (API notes). */
struct own_sched {
    int64_t tid, ran_tid;
    int32_t runcount_before, runcount_after;
    slp_status st_run;
    int ran;
};

static struct own_sched *g_own;
static int32_t t_on_worker(void *arg) {
    (void)arg;
    g_own->ran++;
    g_own->ran_tid = slp_thread_id();
    return 0;
}

static void *thread_own_scheduler(void *arg) {
    struct own_sched *o = arg;
    g_own = o;
    o->tid = slp_thread_id();
    for (int i = 0; i < 3; i++) slp_tasklet_new(t_on_worker, NULL, NULL);
    o->runcount_before = slp_runcount();
    o->st_run = slp_run();
    o->runcount_after = slp_runcount();
    return NULL;
}

TEST(each_thread_has_its_own_scheduler) {
    struct own_sched o;
    memset(&o, 0, sizeof o);
    slp_tasklet *mine = SPAWN(t_nop, NULL);
    CHECK_EQ_INT(slp_runcount(), 2);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_own_scheduler, &o), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(o.runcount_before, 4);
    CHECK_ST(o.st_run, SLP_OK);
    CHECK_EQ_INT(o.runcount_after, 1);
    CHECK_EQ_INT(o.ran, 3);
    CHECK_EQ_INT(o.ran_tid, o.tid);
    CHECK(o.tid != slp_thread_id());
    CHECK_EQ_INT(slp_runcount(), 2); /* ours untouched */
    CHECK(slp_tasklet_alive(mine));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(mine);
}
