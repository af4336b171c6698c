/* test_threads.c - SPEC §5.2-§5.4 and §3 across OS threads (issue 3): SPEC §10 scenarios 15-17,
 * cross-thread channel transfers for every preference, tasklet calls from other threads,
 * bind_thread, blocking main tasklets as queues between plain threads, deadlock detection over
 * participating threads, slp_thread_register/unregister, slp_run_wait and
 * slp_scheduler_wakeup, the wake-up callback, idle threads burning no CPU, thread exit and
 * slp_scheduler_shutdown.
 *
 * Every test arms its own short watchdog (watchdog(n)); every wait on another thread is a
 * bounded poll that fails a check instead of hanging. Under valgrind the waits are scaled and
 * the watchdog follows SLP_TEST_TIMEOUT. */
#include "harness.h"
#include "common.h"
#include "thread_util.h"

static long g_marker; /* exception data for throws */

static void setup_spawn_recv(void *arg) { slp_tasklet_new(xop_recv, arg, NULL); }
static void setup_spawn_send(void *arg) { slp_tasklet_new(xop_send, arg, NULL); }

static int32_t balance_of(slp_channel *ch) { return slp_channel_balance(ch); }

/* ============================================================================================
 * SPEC §10 scenario 15: thread B's tasklet blocked receiving, B in slp_run waiting; main sends
 * -> main continues; the value arrives on B.
 * ========================================================================================== */
TEST(scenario15_send_to_tasklet_of_waiting_thread) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    struct xop r;
    xop_init(&r, ch, SENTINEL);
    struct worker b;
    if (!START_WORKER(&b, setup_spawn_recv, &r)) return;
    CHECK_WAIT(balance_of(ch) == -1 && xt_task_sleeping(b.ktid), 2000); /* B asleep in slp_run_wait */
    CHECK_EQ_INT(xop_done(&r), 0);
    CHECK_ST(slp_channel_send(ch, IPTR(15)), SLP_OK);
    /* main continued: nothing switched here, the receiver left the channel */
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_WAIT(xop_done(&r), 2000);
    xt_lock();
    CHECK_ST(r.st, SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(15));
    CHECK_EQ_INT(r.tid, b.tid); /* the value arrived on B */
    CHECK(r.tid != slp_thread_id());
    xt_unlock();
    STOP_WORKER(&b);
    slp_channel_release(ch);
}

/* ============================================================================================
 * SPEC §10 scenario 16: main receives while thread B (participating) is alive; B sends after
 * 50 ms -> main gets the value. B exits without sending -> main gets SLP_E_DEADLOCK, no hang.
 * ========================================================================================== */
struct s16 {
    slp_channel *ch;
    int send; /* send after the delay, or just exit */
    long ready;
    slp_status st;
    int64_t t_exit;
};

static void *s16_thread(void *arg) {
    struct s16 *s = arg;
    slp_current(); /* participates */
    xt_set(&s->ready, 1);
    sleep_ms(xt_ms(50));
    slp_status st = s->send ? slp_channel_send(s->ch, IPTR(16)) : SLP_OK;
    xt_lock();
    s->st = st;
    s->t_exit = now_ns();
    xt_unlock();
    return NULL;
}

TEST(scenario16_main_receive_across_threads_and_deadlock_on_exit) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    for (int send = 1; send >= 0; send--) {
        struct s16 s;
        memset(&s, 0, sizeof s);
        s.ch = ch;
        s.send = send;
        s.st = 12345;
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, s16_thread, &s), 0);
        CHECK_WAIT(xt_get(&s.ready), 2000);
        void *v = SENTINEL;
        int64_t t0 = now_ns();
        slp_status st = slp_channel_receive(ch, &v);
        int64_t waited = now_ns() - t0;
        if (send) {
            CHECK_ST(st, SLP_OK);
            CHECK_EQ_PTR(v, IPTR(16));
        } else {
            CHECK_ST(st, SLP_E_DEADLOCK);
            CHECK_LAST_ERROR_SET();
            CHECK_EQ_PTR(v, SENTINEL);
        }
        /* it really waited for B (B was alive and participating) */
        CHECK_MSG(waited >= 30 * 1000000LL, "returned after %lld us", (long long)(waited / 1000));
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        CHECK(slp_tasklet_is_current(slp_main()));
        pthread_join(th, NULL);
        CHECK_ST(s.st, SLP_OK);
    }
    slp_channel_release(ch);
}

/* ============================================================================================
 * SPEC §10 scenario 17: a thread exits while its tasklet is blocked receiving on ch -> ch
 * balance returns to 0; the tasklet handle reports thread_id -1, not alive.
 * ========================================================================================== */
struct s17 {
    slp_channel *ch;
    struct xop r;
    slp_tasklet *t;
    int32_t balance_before_exit;
    long tid;
};

static void *s17_thread(void *arg) {
    struct s17 *s = arg;
    s->t = spawn_xop(xop_recv, &s->r, 0);
    slp_run(); /* the tasklet blocks, slp_run returns */
    s->balance_before_exit = slp_channel_balance(s->ch);
    s->tid = (long)slp_thread_id();
    return NULL; /* exits with the tasklet blocked */
}

TEST(scenario17_thread_exit_with_blocked_receiver) {
    watchdog(10);
    struct s17 s;
    memset(&s, 0, sizeof s);
    s.ch = NEW_CHANNEL();
    xop_init(&s.r, s.ch, SENTINEL);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, s17_thread, &s), 0);
    pthread_join(th, NULL);
    CHECK(s.t != NULL);
    CHECK_EQ_INT(s.balance_before_exit, -1);
    CHECK_EQ_INT(slp_channel_balance(s.ch), 0);
    CHECK(slp_channel_queue(s.ch) == NULL);
    CHECK_EQ_INT(slp_tasklet_thread_id(s.t), -1);
    CHECK(!slp_tasklet_alive(s.t));
    CHECK(!slp_tasklet_blocked(s.t));
    CHECK(!slp_tasklet_scheduled(s.t));
    /* §5.4: started tasklets are resumed with SLP_E_KILLED until they end; arg_free ran */
    CHECK_EQ_INT(s.r.done, 1);
    CHECK_ST(s.r.st, SLP_E_KILLED);
    CHECK_EQ_PTR(s.r.val, SENTINEL);
    CHECK_EQ_INT(s.r.free_count, 1);
    CHECK_EQ_INT(s.r.free_tid, s.tid);
    /* the dead handle: insert/run/throw SLP_E_DEAD, kill a no-op */
    CHECK_ST(slp_tasklet_insert(s.t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_run(s.t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_throw(s.t, 3, NULL, true), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_kill(s.t, true), SLP_OK);
    /* the channel still works: a new receiver on this thread pairs with a sender */
    struct op snd;
    op_init(&snd, s.ch, IPTR(17), 0);
    slp_tasklet *t2 = SPAWN(op_send, &snd);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(s.ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(17));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t2);
    slp_tasklet_release(s.t);
    CHECK_EQ_INT(s.r.free_count, 1);
    slp_channel_release(s.ch);
}

/* ============================================================================================
 * §5.2: whatever the preference, a transfer to a partner on another thread switches nothing
 * locally: the caller continues, the partner runs on its own thread.
 * The caller is tasklet S on this thread with O runnable behind it; the log is "SO" for every
 * preference (same-thread would give RO S / S O R / O R S ...: "OS" for schedule_all).
 * ========================================================================================== */
TEST(cross_thread_transfer_every_preference_caller_continues) {
    watchdog(20);
    static const char *names[] = {"preference -1", "preference 0", "preference 1", "schedule_all"};
    for (int dir = 0; dir < 2; dir++) {          /* 0: S sends to blocked R; 1: R receives from blocked S */
        for (int mode = 0; mode < 4; mode++) {
            int pref = mode == 3 ? -1 : mode - 1;
            slp_channel *ch = NEW_CHANNEL_EX(pref, 0, mode == 3);
            void *value = IPTR(100 + 10 * dir + mode);
            struct xop partner;
            xop_init(&partner, ch, dir == 0 ? SENTINEL : value);
            struct worker w;
            if (!START_WORKER(&w, dir == 0 ? setup_spawn_recv : setup_spawn_send, &partner)) return;
            CHECK_WAIT(balance_of(ch) == (dir == 0 ? -1 : 1), 2000);
            log_reset();
            struct op me;
            op_init(&me, ch, dir == 0 ? value : SENTINEL, 'S');
            slp_tasklet *s = SPAWN(dir == 0 ? op_send : op_recv, &me);
            slp_tasklet *o = SPAWN(t_log, IPTR('O'));
            CHECK_ST(slp_run(), SLP_OK);
            CHECK_MSG(strcmp(g_log, "SO") == 0, "%s, %s: log \"%s\", expected \"SO\"",
                      dir == 0 ? "send" : "receive", names[mode], g_log);
            CHECK_ST(me.st, SLP_OK);
            if (dir == 1) CHECK_EQ_PTR(me.val, value);
            CHECK_EQ_INT(slp_channel_balance(ch), 0);
            CHECK_WAIT(xop_done(&partner), 2000);
            xt_lock();
            CHECK_ST(partner.st, SLP_OK);
            if (dir == 0) CHECK_EQ_PTR(partner.val, value);
            CHECK_MSG(partner.tid == w.tid, "%s, %s: the partner ran on thread %ld, its owner is %ld",
                      dir == 0 ? "send" : "receive", names[mode], partner.tid, w.tid);
            xt_unlock();
            STOP_WORKER(&w);
            slp_tasklet_release(s);
            slp_tasklet_release(o);
            slp_channel_release(ch);
        }
    }
}

/* The caller is a plain main tasklet (not in slp_run), on both sides, with the owner asleep. */
TEST(cross_thread_transfer_main_caller_continues) {
    watchdog(10);
    for (int mode = 0; mode < 4; mode++) {
        int pref = mode == 3 ? -1 : mode - 1;
        slp_channel *ch = NEW_CHANNEL_EX(pref, 0, mode == 3);
        struct xop a, b;
        xop_init(&a, ch, SENTINEL);
        xop_init(&b, ch, IPTR(7));
        struct worker w;
        if (!START_WORKER(&w, setup_spawn_recv, &a)) return;
        CHECK_WAIT(balance_of(ch) == -1, 2000);
        CHECK_ST(slp_channel_send(ch, IPTR(6)), SLP_OK);
        CHECK_EQ_INT(slp_runcount(), 1);
        CHECK_WAIT(xop_done(&a), 2000);
        STOP_WORKER(&w);
        if (!START_WORKER(&w, setup_spawn_send, &b)) return;
        CHECK_WAIT(balance_of(ch) == 1, 2000);
        void *v = SENTINEL;
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, IPTR(7));
        CHECK_EQ_INT(slp_runcount(), 1);
        CHECK_WAIT(xop_done(&b), 2000);
        STOP_WORKER(&w);
        CHECK_EQ_PTR(a.val, IPTR(6));
        CHECK_ST(a.st, SLP_OK);
        CHECK_ST(b.st, SLP_OK);
        CHECK(a.tid > 0 && a.tid != slp_thread_id());
        CHECK(b.tid > 0 && b.tid != slp_thread_id());
        slp_channel_release(ch);
    }
}

/* ============================================================================================
 * §3 from another thread: insert and run append to the owner's queue and wake it; switch and
 * remove are SLP_E_WRONG_THREAD; a blocked target is SLP_E_STATE, a dead one SLP_E_DEAD.
 * ========================================================================================== */
struct xcalls {
    struct xop p1, p2, p3, blk;
    slp_channel *ch;
    slp_tasklet *t1, *t2, *t3, *tb;
};

static int32_t t_mark(void *arg) {
    struct xop *o = arg;
    xop_publish(o, SLP_OK, NULL, false);
    return 0;
}

static void setup_xcalls(void *arg) {
    struct xcalls *x = arg;
    x->t1 = spawn_xop(t_mark, &x->p1, SLP_TASKLET_PAUSED);
    x->t2 = spawn_xop(t_mark, &x->p2, SLP_TASKLET_PAUSED);
    x->t3 = spawn_xop(t_mark, &x->p3, SLP_TASKLET_PAUSED);
    x->tb = spawn_xop(xop_recv, &x->blk, 0);
}

TEST(insert_run_switch_remove_from_another_thread) {
    watchdog(10);
    struct xcalls x;
    memset(&x, 0, sizeof x);
    x.ch = NEW_CHANNEL();
    xop_init(&x.p1, NULL, NULL);
    xop_init(&x.p2, NULL, NULL);
    xop_init(&x.p3, NULL, NULL);
    xop_init(&x.blk, x.ch, SENTINEL);
    struct worker w;
    if (!START_WORKER(&w, setup_xcalls, &x)) return;
    CHECK_WAIT(balance_of(x.ch) == -1 && xt_task_sleeping(w.ktid), 2000); /* the worker sleeps */
    CHECK_EQ_INT(slp_tasklet_thread_id(x.t1), w.tid);
    CHECK(slp_tasklet_paused(x.t1));

    /* insert: appended to the owner's queue, the owner wakes and runs it */
    CHECK_ST(slp_tasklet_insert(x.t1), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_WAIT(xop_done(&x.p1), 2000);
    CHECK_EQ_INT(xt_get(&x.p1.tid), w.tid);

    /* run: like insert, nothing switches here */
    CHECK_ST(slp_tasklet_run(x.t2), SLP_OK);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_WAIT(xop_done(&x.p2), 2000);
    CHECK_EQ_INT(xt_get(&x.p2.tid), w.tid);

    /* switch and remove need the owner */
    CHECK_ST(slp_tasklet_switch(x.t3), SLP_E_WRONG_THREAD);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_remove(x.t3), SLP_E_WRONG_THREAD);
    CHECK_LAST_ERROR_SET();
    sleep_ms(20);
    CHECK_EQ_INT(xop_done(&x.p3), 0); /* t3 never ran */
    CHECK(slp_tasklet_paused(x.t3));

    /* dead (finished on the worker): SLP_E_DEAD; blocked: SLP_E_STATE */
    CHECK_WAIT(!slp_tasklet_alive(x.t1), 2000);
    CHECK_ST(slp_tasklet_insert(x.t1), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_run(x.t1), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_insert(x.tb), SLP_E_STATE);
    CHECK_ST(slp_tasklet_run(x.tb), SLP_E_STATE);
    CHECK(slp_tasklet_blocked(x.tb));
    CHECK_EQ_INT(slp_channel_balance(x.ch), -1);

    /* t3 runs after all, when inserted */
    CHECK_ST(slp_tasklet_insert(x.t3), SLP_OK);
    CHECK_WAIT(xop_done(&x.p3), 2000);
    CHECK_ST(slp_channel_send(x.ch, IPTR(5)), SLP_OK);
    CHECK_WAIT(xop_done(&x.blk), 2000);
    CHECK_EQ_PTR(x.blk.val, IPTR(5));
    STOP_WORKER(&w);
    CHECK_EQ_INT(x.p1.free_count + x.p2.free_count + x.p3.free_count + x.blk.free_count, 4);
    slp_tasklet_release(x.t1);
    slp_tasklet_release(x.t2);
    slp_tasklet_release(x.t3);
    slp_tasklet_release(x.tb);
    slp_channel_release(x.ch);
}

/* ============================================================================================
 * §3 kill/throw from another thread: always pending; a blocked target leaves its channel
 * (balance corrected) before the call returns; the owner delivers it. A never-started target
 * is discarded by its owner (arg_free on the owner's thread).
 * ========================================================================================== */
#define NKT 4
struct xkills {
    slp_channel *ch[NKT];
    struct xop r[NKT];
    slp_tasklet *t[NKT];
    struct xop fresh;   /* never started, paused */
    slp_tasklet *tf;
};

static void setup_xkills(void *arg) {
    struct xkills *k = arg;
    for (int i = 0; i < NKT; i++) k->t[i] = spawn_xop(xop_recv, &k->r[i], 0);
    k->tf = spawn_xop(t_mark, &k->fresh, SLP_TASKLET_PAUSED);
}

TEST(kill_and_throw_from_another_thread_are_pending) {
    watchdog(10);
    struct xkills k;
    memset(&k, 0, sizeof k);
    for (int i = 0; i < NKT; i++) {
        k.ch[i] = NEW_CHANNEL();
        xop_init(&k.r[i], k.ch[i], SENTINEL);
    }
    xop_init(&k.fresh, NULL, NULL);
    struct worker w;
    if (!START_WORKER(&w, setup_xkills, &k)) return;
    for (int i = 0; i < NKT; i++) CHECK_WAIT(balance_of(k.ch[i]) == -1, 2000);
    CHECK_WAIT(xt_task_sleeping(w.ktid), 2000);
    for (int i = 0; i < NKT; i++) {
        bool use_throw = i >= 2, pending = (i % 2) == 1;
        slp_status st = use_throw ? slp_tasklet_throw(k.t[i], 23, &g_marker, pending) : slp_tasklet_kill(k.t[i], pending);
        CHECK_MSG(st == SLP_OK, "%s(pending=%d) returned %d", use_throw ? "throw" : "kill", pending, (int)st);
        /* before the call returned, the target left the channel; nothing switched here */
        CHECK_MSG(slp_channel_balance(k.ch[i]) == 0, "%s(pending=%d): balance %d when the call returned",
                  use_throw ? "throw" : "kill", pending, (int)slp_channel_balance(k.ch[i]));
        CHECK(slp_channel_queue(k.ch[i]) == NULL);
        CHECK(slp_tasklet_is_current(slp_main()));
        CHECK_EQ_INT(slp_runcount(), 1);
    }
    for (int i = 0; i < NKT; i++) {
        CHECK_WAIT(xop_done(&k.r[i]), 2000);
        xt_lock();
        CHECK_ST(k.r[i].st, i >= 2 ? 23 : SLP_E_KILLED);
        if (i >= 2) CHECK_EQ_PTR(k.r[i].exc, &g_marker);
        CHECK_EQ_PTR(k.r[i].val, SENTINEL);
        CHECK_EQ_INT(k.r[i].tid, w.tid);
        xt_unlock();
        CHECK_WAIT(!slp_tasklet_alive(k.t[i]), 2000);
    }
    /* dead targets: kill is a no-op, throw SLP_E_DEAD */
    CHECK_ST(slp_tasklet_kill(k.t[0], false), SLP_OK);
    CHECK_ST(slp_tasklet_throw(k.t[0], 4, NULL, false), SLP_E_DEAD);
    /* a never-started target: ends without running, arg_free runs on its owner */
    CHECK_ST(slp_tasklet_kill(k.tf, false), SLP_OK);
    CHECK_WAIT(!slp_tasklet_alive(k.tf), 2000);
    STOP_WORKER(&w);
    CHECK_EQ_INT(k.fresh.done, 0);
    CHECK_EQ_INT(k.fresh.free_count, 1);
    CHECK_EQ_INT(k.fresh.free_tid, w.tid);
    for (int i = 0; i < NKT; i++) {
        CHECK_EQ_INT(k.r[i].free_count, 1);
        slp_tasklet_release(k.t[i]);
        slp_channel_release(k.ch[i]);
    }
    slp_tasklet_release(k.tf);
}

/* ============================================================================================
 * §3 bind_thread: a never-started, unscheduled tasklet created here is re-bound to a worker;
 * inserting it (from this thread) runs it there.
 * ========================================================================================== */
static void *exit_at_once(void *arg) {
    long *tid = arg;
    slp_current();
    *tid = (long)slp_thread_id();
    return NULL;
}

TEST(bind_thread_moves_never_started_tasklet_to_worker) {
    watchdog(10);
    struct xop o;
    xop_init(&o, NULL, NULL);
    slp_tasklet *t = spawn_xop(t_mark, &o, SLP_TASKLET_PAUSED);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_EQ_INT(slp_tasklet_thread_id(t), slp_thread_id());
    struct worker w;
    if (!START_WORKER(&w, NULL, NULL)) return;
    CHECK_ST(slp_tasklet_bind_thread(t, w.tid), SLP_OK);
    CHECK_EQ_INT(slp_tasklet_thread_id(t), w.tid);
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_paused(t));
    CHECK_ST(slp_tasklet_insert(t), SLP_OK); /* from this (now foreign) thread */
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_WAIT(xop_done(&o), 2000);
    CHECK_EQ_INT(xt_get(&o.tid), w.tid);
    CHECK_WAIT(!slp_tasklet_alive(t), 2000);
    CHECK_WAIT(xt_get(&o.free_tid) == w.tid, 2000);
    /* started/dead: SLP_E_STATE */
    CHECK_ST(slp_tasklet_bind_thread(t, slp_thread_id()), SLP_E_STATE);
    slp_tasklet_release(t);

    /* scheduled (runnable, never started): SLP_E_STATE */
    struct xop o2;
    xop_init(&o2, NULL, NULL);
    slp_tasklet *t2 = spawn_xop(t_mark, &o2, 0);
    CHECK_ST(slp_tasklet_bind_thread(t2, w.tid), SLP_E_STATE);
    CHECK_EQ_INT(slp_tasklet_thread_id(t2), slp_thread_id());
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(o2.tid, slp_thread_id());
    slp_tasklet_release(t2);

    /* unknown ids, and the id of a thread that has exited: SLP_E_INVALID */
    struct xop o4;
    xop_init(&o4, NULL, NULL);
    slp_tasklet *t4 = spawn_xop(t_mark, &o4, SLP_TASKLET_PAUSED);
    CHECK_ST(slp_tasklet_bind_thread(t4, INT64_MAX), SLP_E_INVALID);
    CHECK_ST(slp_tasklet_bind_thread(t4, 0), SLP_E_INVALID);
    CHECK_ST(slp_tasklet_bind_thread(t4, -1), SLP_E_INVALID);
    long gone = 0;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, exit_at_once, &gone), 0);
    pthread_join(th, NULL);
    CHECK(gone > 0);
    CHECK_ST(slp_tasklet_bind_thread(t4, gone), SLP_E_INVALID);
    CHECK_EQ_INT(slp_tasklet_thread_id(t4), slp_thread_id());
    /* bound to the worker, then the worker exits before anyone inserted it */
    CHECK_ST(slp_tasklet_bind_thread(t4, w.tid), SLP_OK);
    STOP_WORKER(&w);
    CHECK_EQ_INT(o4.done, 0);
    CHECK(!slp_tasklet_alive(t4));
    CHECK_EQ_INT(slp_tasklet_thread_id(t4), -1);
    CHECK_ST(slp_tasklet_insert(t4), SLP_E_DEAD);
    slp_tasklet_release(t4);
    CHECK_EQ_INT(o4.done, 0);
    CHECK_EQ_INT(o4.free_count, 1);
}

/* A started, paused tasklet cannot be re-bound. */
static int32_t t_pause_self(void *arg) {
    struct xop *o = arg;
    slp_status st = slp_schedule_remove();
    xop_publish(o, st, NULL, false);
    return 0;
}

TEST(bind_thread_refuses_started_paused_tasklet) {
    watchdog(10);
    struct xop o;
    xop_init(&o, NULL, NULL);
    slp_tasklet *t = spawn_xop(t_pause_self, &o, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_paused(t));
    struct worker w;
    if (!START_WORKER(&w, NULL, NULL)) return;
    CHECK_ST(slp_tasklet_bind_thread(t, w.tid), SLP_E_STATE);
    CHECK_EQ_INT(slp_tasklet_thread_id(t), slp_thread_id());
    STOP_WORKER(&w);
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(o.st, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

/* ============================================================================================
 * §5.3: the main tasklet blocking on a channel is a blocking queue between OS threads: plain
 * threads (no tasklets at all) send and receive.
 * ========================================================================================== */
struct q_side {
    slp_channel *ch;
    int id;
    long n;           /* values to send / receive */
    long base;        /* first value sent */
    long errors;
    slp_status first_err;
    long out_of_order;
    unsigned char *seen; /* receivers: seen[value]++ (under xt_mx) */
    long last;
};

static void *q_producer(void *arg) {
    struct q_side *q = arg;
    for (long i = 0; i < q->n; i++) {
        slp_status st = slp_channel_send(q->ch, IPTR(q->base + i));
        if (st != SLP_OK) {
            xt_lock();
            if (q->errors++ == 0) q->first_err = st;
            xt_unlock();
        }
    }
    return NULL;
}

static void *q_consumer(void *arg) {
    struct q_side *q = arg;
    long last = -1;
    for (long i = 0; i < q->n; i++) {
        void *v = NULL;
        slp_status st = slp_channel_receive(q->ch, &v);
        if (st != SLP_OK) {
            xt_lock();
            if (q->errors++ == 0) q->first_err = st;
            xt_unlock();
            continue;
        }
        long x = (long)(intptr_t)v;
        xt_lock();
        if (x <= last) q->out_of_order++;
        last = x;
        if (q->seen) q->seen[x]++;
        xt_unlock();
    }
    return NULL;
}

TEST(main_tasklets_as_blocking_queue_between_plain_threads) {
    watchdog(20);
    const long N = xt_slow() ? 2000 : 50000;
    for (int cap = 0; cap <= 8; cap += 8) {
        /* one producer, one consumer: FIFO order kept */
        slp_channel *ch = NEW_CHANNEL_EX(-1, (uint32_t)cap, false);
        struct q_side p = {.ch = ch, .n = N, .base = 1};
        struct q_side c = {.ch = ch, .n = N};
        pthread_t tp, tc;
        int64_t t0 = now_ns();
        CHECK_EQ_INT(pthread_create(&tc, NULL, q_consumer, &c), 0);
        CHECK_EQ_INT(pthread_create(&tp, NULL, q_producer, &p), 0);
        pthread_join(tp, NULL);
        pthread_join(tc, NULL);
        int64_t dt = now_ns() - t0;
        CHECK_MSG(p.errors == 0, "producer: %ld errors, first %d", p.errors, (int)p.first_err);
        CHECK_MSG(c.errors == 0, "consumer: %ld errors, first %d", c.errors, (int)c.first_err);
        CHECK_EQ_INT(c.out_of_order, 0);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        printf("    plain-thread queue, capacity %d: %ld values in %.1f ms (%.0f ns/value)\n", cap, N, dt / 1e6,
               (double)dt / (double)N);
        slp_channel_release(ch);

        /* two producers, two consumers: every value exactly once */
        ch = NEW_CHANNEL_EX(-1, (uint32_t)cap, false);
        unsigned char *seen = calloc((size_t)(2 * N + 1), 1);
        struct q_side ps[2], cs[2];
        pthread_t tps[2], tcs[2];
        for (int i = 0; i < 2; i++) {
            ps[i] = (struct q_side){.ch = ch, .n = N / 2, .base = 1 + i * N};
            cs[i] = (struct q_side){.ch = ch, .n = N / 2, .seen = seen};
            CHECK_EQ_INT(pthread_create(&tcs[i], NULL, q_consumer, &cs[i]), 0);
        }
        for (int i = 0; i < 2; i++) CHECK_EQ_INT(pthread_create(&tps[i], NULL, q_producer, &ps[i]), 0);
        for (int i = 0; i < 2; i++) {
            pthread_join(tps[i], NULL);
            pthread_join(tcs[i], NULL);
        }
        long missing = 0, dup = 0;
        for (int i = 0; i < 2; i++) {
            CHECK_EQ_INT(ps[i].errors, 0);
            CHECK_EQ_INT(cs[i].errors, 0);
            for (long k = 0; k < N / 2; k++) {
                unsigned char s = seen[ps[i].base + k];
                if (s == 0) missing++;
                if (s > 1) dup++;
            }
        }
        CHECK_EQ_INT(missing, 0);
        CHECK_EQ_INT(dup, 0);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        free(seen);
        slp_channel_release(ch);
    }
}

/* ============================================================================================
 * §5.3 deadlock detection over participating threads. T1 receives on a (only T2 would send),
 * T2 then receives on b (only T1 would send): T2 blocks last and gets SLP_E_DEADLOCK at once,
 * changing nothing, while T1 stays blocked; when T2 exits, T1 is re-checked and gets
 * SLP_E_DEADLOCK too. This thread unregisters first so that it does not count as awake.
 * ========================================================================================== */
struct dl {
    slp_channel *a, *b;
    long ready1, ready2;
    long ktid1;
    struct xop r1, r2;
    long t1_blocked_after_t2_failed;
    int32_t b_balance_after;
    int64_t t2_exit;
    int unregister_instead; /* T2 unregisters (and lingers) instead of exiting */
    long unreg_st;
};

static void *dl_t1(void *arg) {
    struct dl *d = arg;
    slp_current();
    xt_set(&d->ktid1, xt_gettid());
    xt_set(&d->ready1, 1);
    bool ok;
    WAIT_UNTIL(ok, xt_get(&d->ready2), 2000);
    (void)ok;
    xop_recv(&d->r1);
    return NULL;
}

static void *dl_t2(void *arg) {
    struct dl *d = arg;
    slp_current();
    xt_set(&d->ready2, 1);
    bool ok;
    /* T1 is blocked, and parked (past the spin): T2 is certainly the last to block */
    WAIT_UNTIL(ok, slp_channel_balance(d->a) == -1 && xt_task_sleeping(xt_get(&d->ktid1)), 2000);
    (void)ok;
    xop_recv(&d->r2);                                        /* T2 blocks last */
    int32_t bal = slp_channel_balance(d->b);
    sleep_ms(xt_ms(50));
    long still = slp_channel_balance(d->a) == -1 && !xop_done(&d->r1);
    xt_lock();
    d->b_balance_after = bal;
    d->t1_blocked_after_t2_failed = still;
    xt_unlock();
    if (d->unregister_instead) {
        slp_status st = slp_thread_unregister();
        xt_set(&d->unreg_st, st);
        sleep_ms(xt_ms(300));
    }
    xt_lock();
    d->t2_exit = now_ns();
    xt_unlock();
    return NULL;
}

static void run_crossed_deadlock(int unregister_instead) {
    struct dl d;
    memset(&d, 0, sizeof d);
    d.unregister_instead = unregister_instead;
    d.unreg_st = 12345;
    d.a = NEW_CHANNEL();
    d.b = NEW_CHANNEL();
    xop_init(&d.r1, d.a, SENTINEL);
    xop_init(&d.r2, d.b, SENTINEL);
    CHECK_ST(slp_thread_unregister(), SLP_OK); /* this thread no longer counts as awake */
    pthread_t t1, t2;
    CHECK_EQ_INT(pthread_create(&t1, NULL, dl_t1, &d), 0);
    CHECK_EQ_INT(pthread_create(&t2, NULL, dl_t2, &d), 0);
    bool ok2, ok1;
    WAIT_UNTIL(ok2, xop_done(&d.r2), 3000);
    CHECK_MSG(ok2, "the thread that blocked last did not get SLP_E_DEADLOCK (hangs)");
    WAIT_UNTIL(ok1, xop_done(&d.r1), 3000);
    CHECK_MSG(ok1, "the first blocker was not re-checked when the other thread %s",
              unregister_instead ? "unregistered" : "exited");
    xt_lock();
    int64_t t1_done = d.r1.t_done;
    xt_unlock();
    /* rescue so that a failure does not hang the program */
    if (!ok2) slp_channel_send(d.b, IPTR(1));
    if (!ok1) slp_channel_send(d.a, IPTR(1));
    pthread_join(t2, NULL);
    pthread_join(t1, NULL);
    CHECK_ST(d.r2.st, SLP_E_DEADLOCK);
    CHECK_EQ_INT(d.b_balance_after, 0); /* changing nothing */
    CHECK_EQ_PTR(d.r2.val, SENTINEL);
    CHECK_MSG(d.t1_blocked_after_t2_failed, "T1 was not blocked any more after T2 got SLP_E_DEADLOCK");
    CHECK_ST(d.r1.st, SLP_E_DEADLOCK);
    CHECK_EQ_PTR(d.r1.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(d.a), 0);
    CHECK_EQ_INT(slp_channel_balance(d.b), 0);
    if (unregister_instead) {
        CHECK_ST(d.unreg_st, SLP_OK);
        /* re-checked at the unregister, not only when T2 finally exited */
        CHECK_MSG(t1_done < d.t2_exit, "T1 got its answer only when T2 exited");
    }
    slp_channel_release(d.a);
    slp_channel_release(d.b);
}

TEST(deadlock_across_threads_last_blocker_then_recheck_on_exit) {
    watchdog(15);
    run_crossed_deadlock(0);
}

TEST(deadlock_recheck_when_participating_thread_unregisters) {
    watchdog(15);
    run_crossed_deadlock(1);
}

/* A blocked main is re-checked when a participating thread exits, also while a third thread
 * runs outside libslp without participating. */
static void *sleeper_not_participating(void *arg) {
    (void)arg;
    sleep_ms(xt_ms(400));
    return NULL;
}

TEST(blocked_main_rechecked_when_participating_thread_exits) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    pthread_t bystander;
    CHECK_EQ_INT(pthread_create(&bystander, NULL, sleeper_not_participating, NULL), 0);
    struct s16 s;
    memset(&s, 0, sizeof s);
    s.ch = ch;
    s.send = 0;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, s16_thread, &s), 0);
    CHECK_WAIT(xt_get(&s.ready), 2000);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    int64_t t_answer = now_ns();
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    pthread_join(th, NULL);
    CHECK(s.t_exit <= t_answer);
    pthread_join(bystander, NULL); /* it was still sleeping: non-participating threads do not count */
    slp_channel_release(ch);
}

/* ============================================================================================
 * slp_set_deadlock_detection(false): a real deadlock (two threads each receiving on the
 * channel only the other would send to) waits; a third thread breaks it after a delay.
 * ========================================================================================== */
TEST(deadlock_detection_off_real_deadlock_waits) {
    watchdog(15);
    CHECK(slp_set_deadlock_detection(false) == true); /* default on */
    CHECK(slp_set_deadlock_detection(false) == false);
    struct dl d;
    memset(&d, 0, sizeof d);
    d.a = NEW_CHANNEL();
    d.b = NEW_CHANNEL();
    xop_init(&d.r1, d.a, SENTINEL);
    xop_init(&d.r2, d.b, SENTINEL);
    /* this thread stops participating too: with detection on, T2 would fail at once */
    CHECK_ST(slp_thread_unregister(), SLP_OK);
    pthread_t t1, t2;
    CHECK_EQ_INT(pthread_create(&t1, NULL, dl_t1, &d), 0);
    CHECK_EQ_INT(pthread_create(&t2, NULL, dl_t2, &d), 0);
    /* both blocked: the balances say so (read without creating a scheduler here) */
    bool ok;
    WAIT_UNTIL(ok, slp_channel_balance(d.a) == -1 && slp_channel_balance(d.b) == -1, 2000);
    CHECK_MSG(ok, "both threads did not block (balances %d, %d; done %ld, %ld)", (int)slp_channel_balance(d.a),
              (int)slp_channel_balance(d.b), xop_done(&d.r1), xop_done(&d.r2));
    sleep_ms(xt_ms(200));
    CHECK_EQ_INT(xop_done(&d.r1), 0);
    CHECK_EQ_INT(xop_done(&d.r2), 0);
    /* the breaker (this thread, outside libslp until now) sends to both */
    CHECK_ST(slp_channel_send(d.b, IPTR(2)), SLP_OK);
    CHECK_ST(slp_channel_send(d.a, IPTR(1)), SLP_OK);
    CHECK_WAIT(xop_done(&d.r1) && xop_done(&d.r2), 2000);
    pthread_join(t2, NULL);
    pthread_join(t1, NULL);
    CHECK_ST(d.r1.st, SLP_OK);
    CHECK_ST(d.r2.st, SLP_OK);
    CHECK_EQ_PTR(d.r1.val, IPTR(1));
    CHECK_EQ_PTR(d.r2.val, IPTR(2));
    CHECK(slp_set_deadlock_detection(true) == false);
    /* on again: a lone main receive is a deadlock again */
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(d.a, &v), SLP_E_DEADLOCK);
    slp_channel_release(d.a);
    slp_channel_release(d.b);
}

/* With detection off, a lone main waits for a thread libslp cannot see. */
struct breaker {
    slp_channel *ch;
    int64_t delay_ms;
    long st;
};

static void *breaker_thread(void *arg) {
    struct breaker *b = arg;
    sleep_ms(b->delay_ms); /* not participating until the send */
    slp_status st = slp_channel_send(b->ch, IPTR(9));
    xt_set(&b->st, st);
    return NULL;
}

TEST(deadlock_detection_off_lone_main_waits_for_invisible_waker) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    CHECK(slp_set_deadlock_detection(false) == true);
    struct breaker b = {ch, xt_ms(100), 12345};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, breaker_thread, &b), 0);
    void *v = SENTINEL;
    int64_t t0 = now_ns();
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK(now_ns() - t0 >= 80 * 1000000LL);
    CHECK_EQ_PTR(v, IPTR(9));
    pthread_join(th, NULL);
    CHECK_ST(b.st, SLP_OK);
    CHECK(slp_set_deadlock_detection(true) == false);
    slp_channel_release(ch);
}

/* ============================================================================================
 * slp_thread_register / slp_thread_unregister of a host thread.
 * ========================================================================================== */
struct reg {
    slp_status reg1, reg2, reg_null, unreg1, unreg2, unreg_none;
    long tid;
    slp_channel *ch;
    struct xop r;
    slp_tasklet *t;
    int32_t bal_blocked, bal_after;
    long t_alive_after, t_tid_after;
    slp_status new_sched_st;
};

static int32_t t_nop(void *arg) {
    (void)arg;
    return 0;
}

static void *reg_thread(void *arg) {
    struct reg *g = arg;
    g->unreg_none = slp_thread_unregister(); /* no scheduler yet */
    g->reg1 = slp_thread_register("host-1");
    g->reg2 = slp_thread_register("host-1");
    g->tid = (long)slp_thread_id();
    g->t = spawn_xop(xop_recv, &g->r, 0);
    slp_run();
    g->bal_blocked = slp_channel_balance(g->ch);
    g->unreg1 = slp_thread_unregister(); /* like thread exit: the blocked tasklet is killed */
    g->bal_after = slp_channel_balance(g->ch);
    g->t_alive_after = slp_tasklet_alive(g->t);
    g->t_tid_after = (long)slp_tasklet_thread_id(g->t);
    g->unreg2 = slp_thread_unregister();
    g->reg_null = slp_thread_register(NULL); /* again, unnamed */
    slp_tasklet_new(t_nop, NULL, NULL);
    g->new_sched_st = slp_run();
    slp_thread_unregister();
    return NULL;
}

TEST(register_and_unregister_host_thread) {
    watchdog(10);
    struct reg g;
    memset(&g, 0, sizeof g);
    g.ch = NEW_CHANNEL();
    xop_init(&g.r, g.ch, SENTINEL);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, reg_thread, &g), 0);
    pthread_join(th, NULL);
    CHECK_ST(g.unreg_none, SLP_E_STATE);
    CHECK_ST(g.reg1, SLP_OK);
    CHECK_ST(g.reg2, SLP_E_STATE);
    CHECK(g.tid > 0 && g.tid != slp_thread_id());
    CHECK_EQ_INT(g.bal_blocked, -1);
    CHECK_ST(g.unreg1, SLP_OK);
    CHECK_EQ_INT(g.bal_after, 0);
    CHECK_ST(g.r.st, SLP_E_KILLED);
    CHECK_EQ_INT(g.r.free_count, 1);
    CHECK_EQ_INT(g.t_alive_after, 0);
    CHECK_EQ_INT(g.t_tid_after, -1);
    CHECK_ST(g.unreg2, SLP_E_STATE);
    CHECK_ST(g.reg_null, SLP_OK);
    CHECK_ST(g.new_sched_st, SLP_OK);
    CHECK_EQ_INT(slp_tasklet_thread_id(g.t), -1);
    slp_tasklet_release(g.t);
    slp_channel_release(g.ch);
}

/* A registered host thread counts as a possible waker: main blocks on a receive and gets the
 * value from a thread that registered, then (without sending) unregistered -> DEADLOCK at the
 * unregister, while that thread is still running. */
struct reg2 {
    slp_channel *ch;
    long ready;
    int send;
    int64_t t_unreg, t_exit;
};

static void *reg2_thread(void *arg) {
    struct reg2 *g = arg;
    slp_thread_register("host-2");
    xt_set(&g->ready, 1);
    sleep_ms(xt_ms(50));
    if (g->send) slp_channel_send(g->ch, IPTR(42));
    int64_t tu = now_ns();
    slp_thread_unregister();
    sleep_ms(xt_ms(300)); /* keeps running outside libslp */
    xt_lock();
    g->t_unreg = tu;
    g->t_exit = now_ns();
    xt_unlock();
    return NULL;
}

TEST(registered_thread_counts_until_unregister) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    for (int send = 1; send >= 0; send--) {
        struct reg2 g;
        memset(&g, 0, sizeof g);
        g.ch = ch;
        g.send = send;
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, reg2_thread, &g), 0);
        CHECK_WAIT(xt_get(&g.ready), 2000);
        void *v = SENTINEL;
        slp_status st = slp_channel_receive(ch, &v);
        int64_t t_answer = now_ns();
        CHECK_ST(st, send ? SLP_OK : SLP_E_DEADLOCK);
        CHECK_EQ_PTR(v, send ? IPTR(42) : SENTINEL);
        pthread_join(th, NULL);
        if (!send) CHECK_MSG(t_answer < g.t_exit, "main was answered only when the thread exited");
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
    }
    slp_channel_release(ch);
}

/* ============================================================================================
 * slp_run_wait on a worker: sleeps, wakes on cross-thread work, SLP_E_TIMEOUT on timeout,
 * SLP_OK after slp_scheduler_wakeup; from a tasklet SLP_E_STATE.
 * ========================================================================================== */
struct rw {
    slp_channel *ch;
    struct xop r;
    long ready;
    long tid;
    slp_status st;
    int64_t elapsed;
    int64_t timeout;
    int wait_for_go;
    long go;
};

static void *rw_thread(void *arg) {
    struct rw *w = arg;
    slp_current();
    if (w->ch) slp_tasklet_new(xop_recv, &w->r, NULL);
    xt_lock();
    w->tid = (long)slp_thread_id();
    w->ready = 1;
    xt_unlock();
    if (w->wait_for_go) {
        bool ok;
        WAIT_UNTIL(ok, xt_get(&w->go), 3000);
        (void)ok;
    }
    int64_t t0 = now_ns();
    slp_status st = slp_run_wait(w->timeout);
    int64_t el = now_ns() - t0;
    xt_lock();
    w->st = st;
    w->elapsed = el;
    xt_unlock();
    return NULL;
}

TEST(run_wait_wakes_on_cross_thread_send) {
    watchdog(10);
    struct rw w;
    memset(&w, 0, sizeof w);
    w.ch = NEW_CHANNEL();
    w.timeout = xt_ms(5000) * 1000000LL;
    xop_init(&w.r, w.ch, SENTINEL);
    w.r.wake_self = 1; /* the receiver ends the wait with slp_scheduler_wakeup(own id) */
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, rw_thread, &w), 0);
    CHECK_WAIT(balance_of(w.ch) == -1, 2000);
    sleep_ms(100);
    int64_t t_send = now_ns();
    CHECK_ST(slp_channel_send(w.ch, IPTR(3)), SLP_OK);
    pthread_join(th, NULL);
    CHECK_ST(w.st, SLP_OK);
    CHECK_ST(w.r.st, SLP_OK);
    CHECK_EQ_PTR(w.r.val, IPTR(3));
    CHECK_EQ_INT(w.r.tid, w.tid);
    int64_t lat = w.r.t_done - t_send;
    CHECK_MSG(lat < xt_ms(100) * 1000000LL, "the sleeping worker took %lld us to wake", (long long)(lat / 1000));
    CHECK_MSG(w.elapsed < xt_ms(2000) * 1000000LL, "slp_run_wait took %lld ms", (long long)(w.elapsed / 1000000));
    slp_channel_release(w.ch);
}

TEST(run_wait_timeout) {
    watchdog(10);
    /* on a worker with nothing at all */
    struct rw w;
    memset(&w, 0, sizeof w);
    w.timeout = 50 * 1000000LL;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, rw_thread, &w), 0);
    pthread_join(th, NULL);
    CHECK_ST(w.st, SLP_E_TIMEOUT);
    CHECK_MSG(w.elapsed >= 50 * 1000000LL, "returned after %lld us", (long long)(w.elapsed / 1000));
    CHECK_MSG(w.elapsed < xt_ms(1000) * 1000000LL, "returned after %lld ms", (long long)(w.elapsed / 1000000));

    /* on a worker with a tasklet blocked forever: a finite timeout is not a deadlock */
    memset(&w, 0, sizeof w);
    w.ch = NEW_CHANNEL();
    xop_init(&w.r, w.ch, SENTINEL);
    w.timeout = 30 * 1000000LL;
    CHECK_EQ_INT(pthread_create(&th, NULL, rw_thread, &w), 0);
    pthread_join(th, NULL);
    CHECK_ST(w.st, SLP_E_TIMEOUT);
    CHECK(w.elapsed >= 30 * 1000000LL);
    /* the thread exited: its receiver was killed and left the channel */
    CHECK_ST(w.r.st, SLP_E_KILLED);
    CHECK_EQ_INT(slp_channel_balance(w.ch), 0);
    slp_channel_release(w.ch);

    /* here, alone: timeout 0 runs what is runnable, then SLP_E_TIMEOUT */
    log_reset();
    slp_tasklet_new(t_log_yield, IPTR('a'), NULL);
    slp_tasklet_new(t_log_yield, IPTR('b'), NULL);
    CHECK_ST(slp_run_wait(0), SLP_E_TIMEOUT);
    CHECK_LOG("abAB");
    CHECK_EQ_INT(slp_runcount(), 1);
    int64_t t0 = now_ns();
    CHECK_ST(slp_run_wait(20 * 1000000LL), SLP_E_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * 1000000LL);
}

TEST(run_wait_returns_ok_after_scheduler_wakeup) {
    watchdog(10);
    /* during the wait */
    struct rw w;
    memset(&w, 0, sizeof w);
    w.timeout = -1;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, rw_thread, &w), 0);
    CHECK_WAIT(xt_get(&w.ready), 2000);
    sleep_ms(50);
    CHECK_ST(slp_scheduler_wakeup(xt_get(&w.tid)), SLP_OK);
    pthread_join(th, NULL);
    CHECK_ST(w.st, SLP_OK);
    CHECK(w.elapsed >= 40 * 1000000LL);

    /* before the wait: the next slp_run_wait returns SLP_OK at once */
    memset(&w, 0, sizeof w);
    w.timeout = xt_ms(5000) * 1000000LL;
    w.wait_for_go = 1;
    CHECK_EQ_INT(pthread_create(&th, NULL, rw_thread, &w), 0);
    CHECK_WAIT(xt_get(&w.ready), 2000);
    CHECK_ST(slp_scheduler_wakeup(xt_get(&w.tid)), SLP_OK);
    xt_set(&w.go, 1);
    pthread_join(th, NULL);
    CHECK_ST(w.st, SLP_OK);
    CHECK_MSG(w.elapsed < xt_ms(500) * 1000000LL, "took %lld ms", (long long)(w.elapsed / 1000000));

    /* here: a wakeup is consumed by one slp_run_wait */
    CHECK_ST(slp_scheduler_wakeup(slp_thread_id()), SLP_OK);
    CHECK_ST(slp_run_wait(-1), SLP_OK);
    CHECK_ST(slp_run_wait(10 * 1000000LL), SLP_E_TIMEOUT);

    /* unknown ids */
    CHECK_ST(slp_scheduler_wakeup(INT64_MAX), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_scheduler_wakeup(0), SLP_E_INVALID);
    CHECK_ST(slp_scheduler_wakeup(-1), SLP_E_INVALID);
    CHECK(w.tid > 0);
    CHECK_ST(slp_scheduler_wakeup(w.tid), SLP_E_INVALID); /* that thread has exited */
}

static slp_status g_rw_in_tasklet = 12345;
static int32_t t_run_wait(void *arg) {
    (void)arg;
    g_rw_in_tasklet = slp_run_wait(0);
    return 0;
}

TEST(run_wait_from_tasklet_is_state_and_alone_forever_is_deadlock) {
    watchdog(10);
    slp_tasklet_new(t_run_wait, NULL, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_rw_in_tasklet, SLP_E_STATE);
    /* no other participating thread, no timeout, a tasklet blocked forever: nothing could wake */
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run_wait(-1), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* ============================================================================================
 * §5.2 wake-up callback: a host thread that runs its own loop (slp_run, then waits on its own
 * condition variable) gets fn(its id, user_data) called FROM THE WAKING THREAD when work
 * arrives (a channel partner, an insert) while it is outside libslp; not while it waits in
 * slp_run_wait.
 * ========================================================================================== */
struct host {
    int in_host_wait;
    pthread_mutex_t mx;
    pthread_cond_t cv;
    int events;          /* posted by the callback */
    long calls;          /* callback calls */
    long cb_tid;         /* the thread_id argument */
    void *cb_ud;
    pthread_t cb_thread; /* who called it */
    long cb_from_self;   /* called on the host thread itself */
    long tid, ktid;
    long ready, phase2_ready;
    slp_channel *ch;
    struct xop r, r2, p;
    slp_tasklet *tp;
    slp_status set_st, clear_st, rw_st;
    long calls_before_phase2, calls_after_phase2;
    slp_status rw3_st;
    long loop_timeouts;
    pthread_t self;
};

static int32_t t_wake_self(void *arg) {
    (void)arg;
    slp_scheduler_wakeup(slp_thread_id());
    return 0;
}

static void host_cb(int64_t tid, void *ud) {
    struct host *h = ud;
    pthread_mutex_lock(&h->mx);
    h->calls++;
    h->cb_tid = (long)tid;
    h->cb_ud = ud;
    h->cb_thread = pthread_self();
    if (pthread_equal(pthread_self(), h->self)) h->cb_from_self++;
    h->events++;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mx);
}

/* the host's own loop: wait for an event (bounded), then slp_run */
static void host_loop_until(struct host *h, struct xop *until) {
    int64_t deadline = now_ns() + xt_ms(3000) * 1000000LL;
    while (!xop_done(until) && now_ns() < deadline) {
        pthread_mutex_lock(&h->mx);
        while (h->events == 0 && now_ns() < deadline) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            h->in_host_wait = 1; /* outside libslp, parked in the host's own loop */
            if (pthread_cond_timedwait(&h->cv, &h->mx, &ts) == ETIMEDOUT) h->loop_timeouts++;
            h->in_host_wait = 0;
        }
        h->events = 0;
        pthread_mutex_unlock(&h->mx);
        slp_run();
    }
}

static void *host_thread(void *arg) {
    struct host *h = arg;
    h->self = pthread_self();
    xt_set(&h->ktid, xt_gettid());
    slp_thread_register("host");
    h->set_st = slp_set_wakeup_callback(host_cb, h);
    h->tp = spawn_xop(t_mark, &h->p, SLP_TASKLET_PAUSED);
    slp_tasklet_new(xop_recv, &h->r, NULL);
    slp_run(); /* the receiver blocks */
    xt_lock();
    h->tid = (long)slp_thread_id();
    h->ready = 1;
    xt_unlock();
    host_loop_until(h, &h->r);  /* woken by the send */
    host_loop_until(h, &h->p);  /* woken by the insert */
    /* phase 2: waiting inside libslp, the thread is woken directly, no callback */
    pthread_mutex_lock(&h->mx);
    h->calls_before_phase2 = h->calls;
    pthread_mutex_unlock(&h->mx);
    slp_tasklet_new(xop_recv, &h->r2, NULL);
    xt_set(&h->phase2_ready, 1);
    h->rw_st = slp_run_wait(xt_ms(400) * 1000000LL); /* the receive completes inside, then timeout */
    pthread_mutex_lock(&h->mx);
    h->calls_after_phase2 = h->calls;
    pthread_mutex_unlock(&h->mx);
    /* phase 3: a tasklet of this thread asks its own slp_run_wait to return: no work arrives
     * from another thread and the thread is inside libslp, so no callback either */
    slp_tasklet_new(t_wake_self, NULL, NULL);
    h->rw3_st = slp_run_wait(xt_ms(3000) * 1000000LL);
    h->clear_st = slp_set_wakeup_callback(NULL, NULL);
    slp_thread_unregister();
    return NULL;
}

TEST(wakeup_callback_called_from_waking_thread) {
    watchdog(10);
    struct host h;
    memset(&h, 0, sizeof h);
    pthread_mutex_init(&h.mx, NULL);
    pthread_cond_init(&h.cv, NULL);
    h.ch = NEW_CHANNEL();
    xop_init(&h.r, h.ch, SENTINEL);
    xop_init(&h.r2, h.ch, SENTINEL);
    xop_init(&h.p, NULL, NULL);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, host_thread, &h), 0);
    CHECK_WAIT(xt_get(&h.ready), 2000);
    CHECK_EQ_INT(slp_channel_balance(h.ch), -1);
    sleep_ms(20);
    pthread_mutex_lock(&h.mx);
    long calls0 = h.calls;
    pthread_mutex_unlock(&h.mx);
    CHECK_EQ_INT(calls0, 0);
    CHECK_ST(slp_channel_send(h.ch, IPTR(77)), SLP_OK);
    pthread_mutex_lock(&h.mx);
    long calls1 = h.calls;
    int from_me = calls1 > 0 && pthread_equal(h.cb_thread, pthread_self());
    long cb_tid = h.cb_tid;
    void *cb_ud = h.cb_ud;
    pthread_mutex_unlock(&h.mx);
    /* called during the send, on this (the waking) thread */
    CHECK_MSG(calls1 >= 1, "the callback was not called by the time slp_channel_send returned");
    CHECK(from_me);
    CHECK_EQ_INT(cb_tid, xt_get(&h.tid));
    CHECK_EQ_PTR(cb_ud, &h);
    CHECK_WAIT(xop_done(&h.r), 2000);
    CHECK_EQ_PTR(h.r.val, IPTR(77));
    CHECK_EQ_INT(xt_get(&h.r.tid), xt_get(&h.tid));
    /* an insert from here: the callback again, once the host thread is back in its own loop
     * (while its slp_run is still returning, it sees the work itself and needs no callback) */
    int host_waits = 0;
    for (int i = 0; i < 2000 && !host_waits; i++) {
        pthread_mutex_lock(&h.mx);
        host_waits = h.in_host_wait;
        pthread_mutex_unlock(&h.mx);
        if (!host_waits) sleep_ms(1);
    }
    CHECK(host_waits);
    CHECK_ST(slp_tasklet_insert(h.tp), SLP_OK);
    pthread_mutex_lock(&h.mx);
    long calls2 = h.calls;
    int from_me2 = pthread_equal(h.cb_thread, pthread_self());
    pthread_mutex_unlock(&h.mx);
    CHECK(calls2 > calls1);
    CHECK(from_me2);
    CHECK_WAIT(xop_done(&h.p), 2000);
    CHECK_EQ_INT(xt_get(&h.p.tid), xt_get(&h.tid));
    /* phase 2 */
    CHECK_WAIT(xt_get(&h.phase2_ready) && slp_channel_balance(h.ch) == -1 && xt_task_sleeping(xt_get(&h.ktid)),
               2000); /* parked inside slp_run_wait */
    CHECK_ST(slp_channel_send(h.ch, IPTR(78)), SLP_OK);
    pthread_join(th, NULL);
    CHECK_ST(h.set_st, SLP_OK);
    CHECK_ST(h.clear_st, SLP_OK);
    CHECK_ST(h.rw_st, SLP_E_TIMEOUT);
    CHECK_EQ_PTR(h.r2.val, IPTR(78));
    CHECK_EQ_INT(h.r2.tid, h.tid);
    CHECK_MSG(h.calls_after_phase2 == h.calls_before_phase2,
              "callback called %ld time(s) by a send while the thread waited in slp_run_wait",
              h.calls_after_phase2 - h.calls_before_phase2);
    CHECK_ST(h.rw3_st, SLP_OK);
    CHECK_MSG(h.calls == h.calls_after_phase2 && h.cb_from_self == 0,
              "callback called %ld time(s) (%ld on the host thread itself) by slp_scheduler_wakeup(own id) "
              "from a tasklet running inside slp_run_wait",
              h.calls - h.calls_after_phase2, h.cb_from_self);
    printf("    host loop: %ld callback call(s), %ld idle 20 ms timeouts\n", h.calls, h.loop_timeouts);
    slp_tasklet_release(h.tp);
    slp_channel_release(h.ch);
    pthread_mutex_destroy(&h.mx);
    pthread_cond_destroy(&h.cv);
}

/* ============================================================================================
 * An idle thread burns no CPU: a worker in slp_run_wait(-1), and a plain thread's main tasklet
 * blocked in receive, each for 300 ms, use < 20 ms of CPU time (CLOCK_THREAD_CPUTIME_ID of
 * that thread).
 * ========================================================================================== */
struct idle {
    slp_channel *ch;
    long ready;
    long tid;
    int64_t cpu, wall;
    slp_status st;
    void *v;
};

static void *idle_run_wait(void *arg) {
    struct idle *d = arg;
    slp_current();
    xt_lock();
    d->tid = (long)slp_thread_id();
    d->ready = 1;
    xt_unlock();
    int64_t c0 = thread_cpu_ns(), w0 = now_ns();
    slp_status st = slp_run_wait(-1);
    int64_t c1 = thread_cpu_ns(), w1 = now_ns();
    xt_lock();
    d->st = st;
    d->cpu = c1 - c0;
    d->wall = w1 - w0;
    xt_unlock();
    return NULL;
}

static void *idle_receive(void *arg) {
    struct idle *d = arg;
    slp_current();
    xt_set(&d->ready, 1);
    int64_t c0 = thread_cpu_ns(), w0 = now_ns();
    void *v = NULL;
    slp_status st = slp_channel_receive(d->ch, &v);
    int64_t c1 = thread_cpu_ns(), w1 = now_ns();
    xt_lock();
    d->st = st;
    d->v = v;
    d->cpu = c1 - c0;
    d->wall = w1 - w0;
    xt_unlock();
    return NULL;
}

TEST(idle_threads_burn_no_cpu) {
    watchdog(10);
    const int64_t limit = 20 * 1000000LL;
    for (int kind = 0; kind < 2; kind++) {
        struct idle d;
        memset(&d, 0, sizeof d);
        d.ch = NEW_CHANNEL();
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, kind == 0 ? idle_run_wait : idle_receive, &d), 0);
        CHECK_WAIT(xt_get(&d.ready), 2000);
        sleep_ms(300);
        if (kind == 0) {
            CHECK_ST(slp_scheduler_wakeup(xt_get(&d.tid)), SLP_OK);
        } else {
            CHECK_WAIT(slp_channel_balance(d.ch) == -1, 1000);
            CHECK_ST(slp_channel_send(d.ch, IPTR(8)), SLP_OK);
        }
        pthread_join(th, NULL);
        CHECK_ST(d.st, SLP_OK);
        if (kind == 1) CHECK_EQ_PTR(d.v, IPTR(8));
        CHECK(d.wall >= 250 * 1000000LL);
        printf("    %s: %lld ms asleep, %lld us of CPU\n", kind == 0 ? "slp_run_wait(-1)" : "main blocked in receive",
               (long long)(d.wall / 1000000), (long long)(d.cpu / 1000));
        if (!xt_slow())
            CHECK_MSG(d.cpu < limit, "%s used %lld us of CPU in %lld ms", kind == 0 ? "slp_run_wait" : "receive",
                      (long long)(d.cpu / 1000), (long long)(d.wall / 1000000));
        slp_channel_release(d.ch);
    }
}

/* ============================================================================================
 * §5.4 thread exit: a started paused tasklet and a started runnable one are resumed with
 * SLP_E_KILLED and clean up; a blocked one leaves its channel; never-started ones are discarded
 * (arg_free, function never runs); every handle then reports thread_id -1 and not alive.
 * slp_scheduler_shutdown does the same on demand, and the thread can use libslp again.
 * ========================================================================================== */
struct exits {
    slp_channel *ch;
    struct xop blocked, paused, runnable, fresh_runnable, fresh_paused;
    slp_tasklet *tb, *tp, *tr, *tfr, *tfp;
    long tid;
    int use_shutdown;
    /* results seen on the thread right after slp_scheduler_shutdown */
    slp_status shutdown_st, shutdown_in_tasklet;
    int32_t bal_before, bal_after;
    long tids_after[5], alive_after[5];
    int done_after[5], freed_after[5];
    slp_status again_st;
    long again_ran;
    void *again_val;
    slp_status again_recv;
};

static int32_t t_yield_once(void *arg) {
    struct xop *o = arg;
    slp_status st = slp_schedule(); /* main is next: we stay runnable, started */
    xop_publish(o, st, NULL, false);
    return st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

static int32_t t_shutdown_inside(void *arg) {
    struct exits *e = arg;
    e->shutdown_in_tasklet = slp_scheduler_shutdown();
    return 0;
}

static int32_t t_again(void *arg) {
    struct exits *e = arg;
    e->again_ran++;
    return 0;
}

static void *exits_thread(void *arg) {
    struct exits *e = arg;
    e->tid = (long)slp_thread_id();
    if (e->use_shutdown) {
        slp_tasklet_new(t_shutdown_inside, e, NULL);
        slp_run();
    }
    e->tb = spawn_xop(xop_recv, &e->blocked, 0);
    e->tp = spawn_xop(t_pause_self, &e->paused, 0);
    e->tr = spawn_xop(t_yield_once, &e->runnable, SLP_TASKLET_PAUSED);
    e->tfr = spawn_xop(t_mark, &e->fresh_runnable, SLP_TASKLET_PAUSED);
    e->tfp = spawn_xop(t_mark, &e->fresh_paused, SLP_TASKLET_PAUSED);
    slp_run(); /* tb blocks, tp pauses itself */
    slp_tasklet_run(e->tr); /* tr yields back to main: started and runnable */
    slp_tasklet_insert(e->tfr); /* never started, runnable */
    e->bal_before = slp_channel_balance(e->ch);
    if (!e->use_shutdown) return NULL; /* thread exit does the rest */

    e->shutdown_st = slp_scheduler_shutdown();
    e->bal_after = slp_channel_balance(e->ch);
    slp_tasklet *ts[5] = {e->tb, e->tp, e->tr, e->tfr, e->tfp};
    struct xop *os[5] = {&e->blocked, &e->paused, &e->runnable, &e->fresh_runnable, &e->fresh_paused};
    for (int i = 0; i < 5; i++) {
        e->tids_after[i] = (long)slp_tasklet_thread_id(ts[i]);
        e->alive_after[i] = slp_tasklet_alive(ts[i]);
        e->done_after[i] = (int)os[i]->done;
        e->freed_after[i] = os[i]->free_count;
    }
    /* a new scheduler: tasklets and channels work again */
    slp_tasklet_new(t_again, e, NULL);
    e->again_st = slp_run();
    struct xop s;
    xop_init(&s, e->ch, IPTR(31));
    slp_tasklet *t = spawn_xop(xop_send, &s, 0);
    e->again_recv = slp_channel_receive(e->ch, &e->again_val);
    slp_run();
    slp_tasklet_release(t);
    return NULL;
}

static void check_exits(struct exits *e) {
    struct xop *os[5] = {&e->blocked, &e->paused, &e->runnable, &e->fresh_runnable, &e->fresh_paused};
    slp_tasklet *ts[5] = {e->tb, e->tp, e->tr, e->tfr, e->tfp};
    static const char *nm[5] = {"blocked", "started paused", "started runnable", "never-started runnable",
                                "never-started paused"};
    CHECK_EQ_INT(e->bal_before, -1);
    CHECK_EQ_INT(slp_channel_balance(e->ch), 0);
    CHECK(slp_channel_queue(e->ch) == NULL);
    for (int i = 0; i < 5; i++) {
        CHECK_MSG(slp_tasklet_thread_id(ts[i]) == -1, "%s: thread_id %lld", nm[i],
                  (long long)slp_tasklet_thread_id(ts[i]));
        CHECK_MSG(!slp_tasklet_alive(ts[i]), "%s: still alive", nm[i]);
        CHECK(!slp_tasklet_scheduled(ts[i]));
        CHECK(!slp_tasklet_blocked(ts[i]));
        CHECK_ST(slp_tasklet_insert(ts[i]), SLP_E_DEAD);
    }
    /* started ones: resumed with SLP_E_KILLED, they cleaned up (published), arg_free ran */
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(os[i]->done == 1, "%s: never resumed", nm[i]);
        CHECK_MSG(os[i]->st == SLP_E_KILLED, "%s: resumed with %d, not SLP_E_KILLED", nm[i], (int)os[i]->st);
        CHECK_MSG(os[i]->free_count == 1, "%s: arg_free ran %d times", nm[i], os[i]->free_count);
    }
    /* never-started: function never ran; the runnable one was discarded with arg_free */
    CHECK_EQ_INT(e->fresh_runnable.done, 0);
    CHECK_EQ_INT(e->fresh_runnable.free_count, 1);
    CHECK_EQ_INT(e->fresh_paused.done, 0);
    for (int i = 0; i < 5; i++) slp_tasklet_release(ts[i]);
    /* the paused never-started one: arg_free at the latest when its last reference went */
    CHECK_EQ_INT(e->fresh_paused.free_count, 1);
    CHECK_EQ_INT(e->fresh_paused.done, 0);
}

TEST(thread_exit_kills_and_discards_every_tasklet) {
    watchdog(10);
    struct exits e;
    memset(&e, 0, sizeof e);
    e.ch = NEW_CHANNEL();
    xop_init(&e.blocked, e.ch, SENTINEL);
    xop_init(&e.paused, NULL, NULL);
    xop_init(&e.runnable, NULL, NULL);
    xop_init(&e.fresh_runnable, NULL, NULL);
    xop_init(&e.fresh_paused, NULL, NULL);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, exits_thread, &e), 0);
    pthread_join(th, NULL);
    /* arg_free of the ones that were alive at exit ran on the exiting thread */
    CHECK_EQ_INT(e.blocked.free_tid, e.tid);
    CHECK_EQ_INT(e.fresh_runnable.free_tid, e.tid);
    check_exits(&e);
    slp_channel_release(e.ch);
}

TEST(scheduler_shutdown_on_demand) {
    watchdog(10);
    struct exits e;
    memset(&e, 0, sizeof e);
    e.use_shutdown = 1;
    e.shutdown_in_tasklet = 12345;
    e.ch = NEW_CHANNEL();
    xop_init(&e.blocked, e.ch, SENTINEL);
    xop_init(&e.paused, NULL, NULL);
    xop_init(&e.runnable, NULL, NULL);
    xop_init(&e.fresh_runnable, NULL, NULL);
    xop_init(&e.fresh_paused, NULL, NULL);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, exits_thread, &e), 0);
    pthread_join(th, NULL);
    CHECK_ST(e.shutdown_in_tasklet, SLP_E_STATE);
    CHECK_ST(e.shutdown_st, SLP_OK);
    /* seen on the thread right after the call */
    CHECK_EQ_INT(e.bal_after, 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(e.tids_after[i], -1);
        CHECK_EQ_INT(e.alive_after[i], 0);
    }
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(e.done_after[i], 1);
    CHECK_EQ_INT(e.freed_after[0] + e.freed_after[1] + e.freed_after[2] + e.freed_after[3], 4);
    CHECK_EQ_INT(e.done_after[3] + e.done_after[4], 0);
    /* and afterwards a new scheduler on the same thread */
    CHECK_ST(e.again_st, SLP_OK);
    CHECK_EQ_INT(e.again_ran, 1);
    CHECK_ST(e.again_recv, SLP_OK);
    CHECK_EQ_PTR(e.again_val, IPTR(31));
    check_exits(&e);
    slp_channel_release(e.ch);
}

/* slp_scheduler_shutdown on this (the test's main) thread, with a blocked and a fresh tasklet. */
TEST(scheduler_shutdown_on_main_thread) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    struct xop r, f;
    xop_init(&r, ch, SENTINEL);
    xop_init(&f, NULL, NULL);
    slp_tasklet *tr = spawn_xop(xop_recv, &r, 0);
    slp_tasklet *tf = spawn_xop(t_mark, &f, 0);
    CHECK_ST(slp_run_n(1), SLP_OK); /* tr blocks, tf stays runnable */
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_EQ_INT(slp_runcount(), 2);
    slp_tasklet *old_main = slp_main();
    slp_tasklet_retain(old_main);
    CHECK_ST(slp_scheduler_shutdown(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(r.st, SLP_E_KILLED);
    CHECK_EQ_INT(r.free_count, 1);
    CHECK_EQ_INT(f.done, 0);
    CHECK_EQ_INT(f.free_count, 1);
    CHECK_EQ_INT(slp_tasklet_thread_id(tr), -1);
    CHECK_EQ_INT(slp_tasklet_thread_id(tf), -1);
    CHECK_EQ_INT(slp_tasklet_thread_id(old_main), -1);
    CHECK(!slp_tasklet_alive(old_main));
    /* a new scheduler */
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK(slp_main() != NULL);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_tasklet_thread_id(slp_main()), slp_thread_id());
    slp_tasklet_release(old_main);
    slp_tasklet_release(tr);
    slp_tasklet_release(tf);
    slp_channel_release(ch);
}

/* §5.4 "bounded": a tasklet that ignores SLP_E_KILLED does not keep its thread from exiting
 * (it is reported on stderr and its stack leaked). Last in the file. */
static long g_refusals;
static int32_t t_refuse_kill(void *arg) {
    (void)arg;
    for (;;) {
        slp_status st = slp_schedule_remove();
        if (st == SLP_E_KILLED) {
            if (xt_add(&g_refusals, 1) > 1000) return SLP_E_KILLED; /* give up at last */
        }
    }
}

static void *refuser_thread(void *arg) {
    slp_tasklet **out = arg;
    slp_tasklet_new(t_refuse_kill, NULL, out);
    slp_run();
    return NULL;
}

TEST(thread_exit_is_bounded_with_a_tasklet_that_refuses_to_die) {
    watchdog(10);
    slp_tasklet *t = NULL;
    g_refusals = 0;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, refuser_thread, &t), 0);
    pthread_join(th, NULL);
    long n = xt_get(&g_refusals);
    CHECK(n >= 1);
    CHECK_MSG(n <= 100, "the refusing tasklet was resumed %ld times", n);
    CHECK_EQ_INT(slp_tasklet_thread_id(t), -1);
    slp_tasklet_release(t);
}

/* ---- regression: a ping-pong between two plain threads never reports a false deadlock ---- */

struct pp { slp_channel *ping, *pong; long n; slp_status err; pthread_barrier_t started; };

static void *pp_partner(void *arg) {
    struct pp *p = arg;
    slp_thread_register("pp_partner"); /* participates before main first blocks */
    pthread_barrier_wait(&p->started);
    for (long i = 0; i < p->n; i++) {
        void *v = NULL;
        slp_status st = slp_channel_receive(p->ping, &v);
        if (st == SLP_OK) st = slp_channel_send(p->pong, v);
        if (st != SLP_OK) {
            xt_lock();
            p->err = st;
            xt_unlock();
            break;
        }
    }
    return NULL;
}

/* Each side blocks with nothing runnable on every hop, so each hop runs the deadlock check
 * while the partner is between counting itself asleep and noticing the value that just
 * arrived: a window in which a miscount reports SLP_E_DEADLOCK (found by the ping-pong
 * benchmark). */
TEST(ping_pong_between_plain_threads_never_reports_a_false_deadlock) {
    watchdog(20);
    struct pp p = {.ping = NEW_CHANNEL(), .pong = NEW_CHANNEL(), .n = xt_slow() ? 2000 : 200000};
    pthread_barrier_init(&p.started, NULL, 2);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, pp_partner, &p), 0);
    pthread_barrier_wait(&p.started);
    slp_status st = SLP_OK;
    long i = 0;
    for (; i < p.n && st == SLP_OK; i++) {
        st = slp_channel_send(p.ping, IPTR(i + 1));
        void *v = NULL;
        if (st == SLP_OK) st = slp_channel_receive(p.pong, &v);
        if (st == SLP_OK && PTRI(v) != (int)(i + 1)) st = SLP_E_STATE;
    }
    if (st != SLP_OK) slp_channel_shutdown(p.ping); /* let the partner out */
    pthread_join(t, NULL);
    CHECK_MSG(st == SLP_OK, "main side failed at round trip %ld: %d (%s)", i, (int)st, slp_last_error());
    CHECK_MSG(p.err == SLP_OK, "partner failed: %d", (int)p.err);
    pthread_barrier_destroy(&p.started);
    slp_channel_release(p.ping);
    slp_channel_release(p.pong);
}
