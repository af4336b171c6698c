/* test_reentry.c - re-entry into libslp from inside its own callbacks.
 *
 * The rule: inside a callback that libslp calls while one of its calls is in progress on this
 * thread - the schedule callback (slp_set_schedule_callback), the channel callback
 * (slp_set_channel_callback), a tasklet's arg_free, and the wake-up callback
 * (slp_set_wakeup_callback, which runs on whichever thread calls it, inside that thread's libslp
 * call) - every call that would switch, block, run, tear down or unregister returns
 * SLP_E_STATE, and slp_last_error() names the callback ("schedule callback", "channel
 * callback", "arg_free", "wake-up callback"). The call in progress then completes normally and
 * the scheduler is intact afterwards: main is current, the run queue holds what it should, a
 * later slp_run works, every value is delivered, every arg_free ran exactly once.
 * Queries, slp_tasklet_new, retain/release, slp_tasklet_insert, pending kills and throws, a send
 * into a buffered channel with room and a send to a waiting receiver with preference 0 stay
 * allowed inside callbacks.
 * Special case: a schedule callback that removes `next` or kills it pending stops the switch
 * to `next` (a never-started `next` killed that way never runs its function).
 *
 * Before this rule existed, such calls re-entered the scheduler in the middle of a switch, a
 * channel operation or a teardown: run queues were corrupted (crashes), schedulers freed under
 * the call that was using them (use after free), threads blocked inside a callback for good.
 * Every scenario therefore runs in a forked child (child_util.h): a crash or a hang fails that
 * scenario alone, and each child prints one verdict line.
 *
 * The scenarios share one "world" on the thread that runs the callback: bystander tasklets in
 * every state (started and paused, blocked on a channel with preference -1, blocked on a
 * channel with preference 0, blocked for a throw, runnable and never started), an empty
 * channel, a buffered channel, and a trigger - the libslp call during which the callback runs:
 *   schedule callback   slp_run switching into the bystanders
 *   channel callback    main's slp_channel_send to a tasklet blocked receiving
 *   arg_free            a tasklet's function returns inside slp_run (arg_free on its stack),
 *                       or main releases the last reference to a never-started tasklet
 *                       (arg_free on main's stack, inside slp_tasklet_release)
 *   wake-up callback    installed by thread A, which waits in pthread code; the world's thread
 *                       sends to A's blocked tasklet, so its send calls A's callback
 * Each scenario makes one call from inside the callback and checks that it was refused without
 * a switch (no tasklet step ran during it), then that the trigger completed and the world drains
 * cleanly. */
#include "harness.h"
#include "common.h"
#include "thread_util.h"
#include "child_util.h"

#define V_SIDE IPTR(0x51)
#define V_P0 IPTR(0x52)
#define V_THR IPTR(0x53)
#define V_TRIG IPTR(0x54)
#define V_BUF IPTR(0x55)
#define V_CB IPTR(0x5c) /* what a callback tries to send */
#define THROW_CODE 42

/* Seconds a scenario child may take before its watchdog calls it a hang. */
#define CASE_SECONDS 2

enum kind { K_SCHED, K_CHAN, K_FREE_END, K_FREE_DISCARD, K_WAKE, K_COUNT };
static const char *const kind_label[K_COUNT] = {
    "schedule callback", "channel callback", "arg_free (function returned)",
    "arg_free (never-started tasklet released)", "wake-up callback"};
/* what slp_last_error() must contain after a refused call */
static const char *const kind_word[K_COUNT] = {"schedule callback", "channel callback", "arg_free", "arg_free",
                                               "wake-up callback"};

enum act {
    A_RUN,
    A_RUN_N,
    A_RUN_FOR,
    A_RUN_WAIT,
    A_SCHEDULE,
    A_SCHEDULE_REMOVE,
    A_TASKLET_RUN,
    A_TASKLET_SWITCH,
    A_KILL_NOW,
    A_THROW_NOW,
    A_RECV_BLOCK,
    A_SEND_BLOCK,
    A_SEND_SWITCH,
    A_SHUTDOWN,
    A_UNREGISTER,
    A_ALLOWED,
    A_COUNT
};
static const char *const act_label[A_COUNT] = {
    "slp_run",
    "slp_run_n(1)",
    "slp_run_for(1 ms)",
    "slp_run_wait(1 ms)",
    "slp_schedule",
    "slp_schedule_remove",
    "slp_tasklet_run(paused local tasklet)",
    "slp_tasklet_switch(paused local tasklet)",
    "slp_tasklet_kill(blocked local tasklet, pending=false)",
    "slp_tasklet_throw(blocked local tasklet, pending=false)",
    "slp_channel_receive that would block",
    "slp_channel_send that would block",
    "slp_channel_send that would switch to a same-thread receiver",
    "slp_scheduler_shutdown",
    "slp_thread_unregister",
    "the allowed calls",
};

/* ---- bystander tasklets ---- */

enum { BY_PLAIN, BY_PAUSE, BY_RECV, BY_SEND };

struct bys {
    int mode;
    slp_channel *ch; /* BY_RECV / BY_SEND */
    void *out;       /* BY_SEND: what it sends */
    char tag;        /* logged when it starts (0: nothing) */
    long steps;      /* steps it ran: 1 when started, 2 when its function is done */
    int done;
    slp_status st;   /* what its operation returned */
    void *val;       /* BY_RECV: what it received (SENTINEL before) */
    int frees;       /* its arg_free ran */
};

static long g_steps; /* every step of every tasklet of the world's thread */

static int32_t t_bys(void *arg) {
    struct bys *b = arg;
    b->steps++;
    g_steps++;
    if (b->tag) log_c(b->tag);
    switch (b->mode) {
    case BY_PAUSE: b->st = slp_schedule_remove(); break;
    case BY_RECV: b->st = slp_channel_receive(b->ch, &b->val); break;
    case BY_SEND: b->st = slp_channel_send(b->ch, b->out); break;
    default: b->st = SLP_OK; break;
    }
    b->steps++;
    g_steps++;
    b->done = 1;
    return 0;
}

static void bys_free(void *arg) { ((struct bys *)arg)->frees++; }

static void bys_init(struct bys *b, int mode, slp_channel *ch) {
    memset(b, 0, sizeof *b);
    b->mode = mode;
    b->ch = ch;
    b->st = 12345;
    b->val = SENTINEL;
}

static slp_tasklet *spawn_bys(struct bys *b, int mode, slp_channel *ch, uint32_t flags, slp_arg_free_fn f) {
    bys_init(b, mode, ch);
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = flags;
    o.arg_free = f ? f : bys_free;
    return SPAWN_EX(t_bys, b, &o);
}

/* ---- the world ---- */

struct allowed_res {
    bool alive, blocked, cur_ok, scheduled_after_insert;
    int32_t runcount;
    slp_status dump, counters, created, insert, kill_pending, throw_pending, send_buf, send_p0;
    int p0_done_after_send;
};

static struct world {
    enum kind kind;
    enum act act;
    slp_channel *side, *side0, *side_thr, *empty, *buf, *trig_ch;
    struct bys paused, blocked, p0, thr, runnable, trig, spawned;
    slp_tasklet *t_paused, *t_blocked, *t_p0, *t_thr, *t_runnable, *t_trig, *t_spawned;
    slp_tasklet *main0; /* the world thread's main tasklet (retained) */
    slp_status trig_st;
    /* the call made inside the callback */
    int fired, returned;
    slp_status st;
    char msg[512];
    long steps_before, steps_after;
    slp_tasklet *cur_before, *cur_after;
    int32_t bal_empty, bal_side;
    bool blocked_still_blocked, paused_still_paused, main_still_ours, recv_val_untouched;
    struct allowed_res al;
} W;

static void do_allowed(void) {
    struct allowed_res *al = &W.al;
    al->alive = slp_tasklet_alive(W.t_blocked);
    al->blocked = slp_tasklet_blocked(W.t_blocked);
    al->runcount = slp_runcount();
    al->cur_ok = slp_current() != NULL;
    char buf[64];
    size_t need = 0;
    al->dump = slp_dump(buf, sizeof buf, &need);
    slp_counters c = {.struct_size = sizeof c};
    al->counters = slp_counters_get(&c);
    bys_init(&W.spawned, BY_PLAIN, NULL);
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = bys_free;
    al->created = slp_tasklet_new_ex(t_bys, &W.spawned, &o, &W.t_spawned);
    slp_tasklet_retain(W.t_blocked);
    slp_tasklet_release(W.t_blocked);
    al->insert = slp_tasklet_insert(W.t_paused);
    al->scheduled_after_insert = slp_tasklet_scheduled(W.t_paused);
    al->kill_pending = slp_tasklet_kill(W.t_blocked, true);
    al->throw_pending = slp_tasklet_throw(W.t_thr, THROW_CODE, NULL, true);
    al->send_buf = slp_channel_send(W.buf, V_BUF);
    al->send_p0 = slp_channel_send(W.side0, V_P0); /* preference 0: appends t_p0, no switch */
    al->p0_done_after_send = W.p0.done;
}

/* The one call made from inside the callback (first invocation only). */
static void do_action(void) {
    if (W.fired) return;
    W.fired = 1;
    W.cur_before = slp_current();
    W.steps_before = g_steps;
    slp_status st = SLP_OK;
    void *v = SENTINEL;
    switch (W.act) {
    case A_RUN: st = slp_run(); break;
    case A_RUN_N: st = slp_run_n(1); break;
    case A_RUN_FOR: st = slp_run_for(1000000); break;
    case A_RUN_WAIT: st = slp_run_wait(1000000); break;
    case A_SCHEDULE: st = slp_schedule(); break;
    case A_SCHEDULE_REMOVE: st = slp_schedule_remove(); break;
    case A_TASKLET_RUN: st = slp_tasklet_run(W.t_paused); break;
    case A_TASKLET_SWITCH: st = slp_tasklet_switch(W.t_paused); break;
    case A_KILL_NOW: st = slp_tasklet_kill(W.t_blocked, false); break;
    case A_THROW_NOW: st = slp_tasklet_throw(W.t_blocked, THROW_CODE, NULL, false); break;
    case A_RECV_BLOCK: st = slp_channel_receive(W.empty, &v); break;
    case A_SEND_BLOCK: st = slp_channel_send(W.empty, V_CB); break;
    case A_SEND_SWITCH: st = slp_channel_send(W.side, V_CB); break;
    case A_SHUTDOWN: st = slp_scheduler_shutdown(); break;
    case A_UNREGISTER: st = slp_thread_unregister(); break;
    case A_ALLOWED: do_allowed(); break;
    default: break;
    }
    snprintf(W.msg, sizeof W.msg, "%s", slp_last_error());
    W.returned = 1;
    W.st = st;
    W.steps_after = g_steps;
    W.cur_after = slp_current();
    W.recv_val_untouched = v == SENTINEL;
    W.bal_empty = slp_channel_balance(W.empty);
    W.bal_side = slp_channel_balance(W.side);
    W.blocked_still_blocked = slp_tasklet_blocked(W.t_blocked);
    W.paused_still_paused = slp_tasklet_paused(W.t_paused);
    W.main_still_ours = slp_tasklet_alive(W.main0) && slp_tasklet_thread_id(W.main0) == slp_thread_id();
}

static void cb_sched(slp_tasklet *prev, slp_tasklet *next, void *ud) {
    (void)prev;
    (void)next;
    (void)ud;
    do_action();
}

static void cb_chan(slp_channel *ch, slp_tasklet *t, bool sending, bool will_block, void *ud) {
    (void)t;
    (void)sending;
    (void)will_block;
    (void)ud;
    if (ch == W.trig_ch) do_action();
}

/* arg_free of the trigger tasklet (K_FREE_END, K_FREE_DISCARD) */
static void free_action(void *arg) {
    ((struct bys *)arg)->frees++;
    do_action();
}

/* ---- the wake-up callback's host thread (K_WAKE) ---- */

static struct host {
    pthread_t th;
    pthread_t world_thread; /* the callback acts only when it runs there */
    slp_channel *xch;
    struct xop r; /* A's tasklet, blocked receiving on xch */
    slp_tasklet *tr;
    long ready, go, tid, calls_on_world, calls_elsewhere;
    slp_status set_st, run_st;
} H;

static void cb_wake(int64_t tid, void *ud) {
    (void)tid;
    (void)ud;
    if (!pthread_equal(pthread_self(), H.world_thread)) {
        xt_add(&H.calls_elsewhere, 1);
        return;
    }
    xt_add(&H.calls_on_world, 1);
    do_action();
}

static void *host_main(void *arg) {
    (void)arg;
    slp_thread_register("reentry host");
    H.set_st = slp_set_wakeup_callback(cb_wake, NULL);
    H.tr = spawn_xop(xop_recv, &H.r, 0);
    slp_run(); /* the receiver blocks */
    xt_lock();
    H.tid = (long)slp_thread_id();
    H.ready = 1;
    xt_unlock();
    bool ok; /* outside libslp (pthread code) until the world thread has sent */
    WAIT_UNTIL(ok, xt_get(&H.go), 4000);
    (void)ok;
    H.run_st = slp_run(); /* the receiver takes its value */
    slp_set_wakeup_callback(NULL, NULL);
    slp_tasklet_release(H.tr);
    slp_thread_unregister();
    return NULL;
}

/* ---- world setup, trigger, checks ---- */

static void world_setup(enum kind k, enum act a) {
    memset(&W, 0, sizeof W);
    W.kind = k;
    W.act = a;
    W.st = 12345;
    g_steps = 0;
    log_reset();
    W.main0 = slp_main();
    slp_tasklet_retain(W.main0);
    W.side = NEW_CHANNEL();                /* preference -1: a send switches to the receiver */
    W.side0 = NEW_CHANNEL_EX(0, 0, false); /* preference 0: a send appends the receiver */
    W.side_thr = NEW_CHANNEL();
    W.empty = NEW_CHANNEL();
    W.buf = NEW_CHANNEL_EX(-1, 4, false);
    W.t_paused = spawn_bys(&W.paused, BY_PAUSE, NULL, 0, NULL);
    W.t_blocked = spawn_bys(&W.blocked, BY_RECV, W.side, 0, NULL);
    W.t_p0 = spawn_bys(&W.p0, BY_RECV, W.side0, 0, NULL);
    W.t_thr = spawn_bys(&W.thr, BY_RECV, W.side_thr, 0, NULL);
    if (k == K_CHAN) {
        W.trig_ch = NEW_CHANNEL();
        W.t_trig = spawn_bys(&W.trig, BY_RECV, W.trig_ch, 0, NULL);
    }
    CHECK_ST(slp_run(), SLP_OK); /* everyone reaches its blocking point */
    CHECK(slp_tasklet_paused(W.t_paused));
    CHECK(slp_tasklet_blocked(W.t_blocked) && slp_tasklet_blocked(W.t_p0) && slp_tasklet_blocked(W.t_thr));
    W.t_runnable = spawn_bys(&W.runnable, BY_PLAIN, NULL, 0, NULL); /* runnable, never started */
    if (k == K_SCHED) W.t_trig = spawn_bys(&W.trig, BY_PLAIN, NULL, 0, NULL);
    if (k == K_FREE_END) W.t_trig = spawn_bys(&W.trig, BY_PLAIN, NULL, 0, free_action);
    if (k == K_FREE_DISCARD) W.t_trig = spawn_bys(&W.trig, BY_PLAIN, NULL, SLP_TASKLET_PAUSED, free_action);
}

static void world_trigger(void) {
    switch (W.kind) {
    case K_SCHED:
        CHECK_ST(slp_set_schedule_callback(cb_sched, NULL, NULL, NULL), SLP_OK);
        W.trig_st = slp_run();
        slp_set_schedule_callback(NULL, NULL, NULL, NULL);
        break;
    case K_CHAN:
        CHECK_ST(slp_set_channel_callback(cb_chan, NULL, NULL, NULL), SLP_OK);
        W.trig_st = slp_channel_send(W.trig_ch, V_TRIG);
        slp_set_channel_callback(NULL, NULL, NULL, NULL);
        break;
    case K_FREE_END:
        W.trig_st = slp_run();
        break;
    case K_FREE_DISCARD:
        slp_tasklet_release(W.t_trig); /* the last reference: discarded, arg_free runs */
        W.t_trig = NULL;
        W.trig_st = SLP_OK;
        break;
    case K_WAKE: {
        memset(&H, 0, sizeof H);
        H.world_thread = pthread_self();
        H.xch = NEW_CHANNEL();
        xop_init(&H.r, H.xch, SENTINEL);
        if (pthread_create(&H.th, NULL, host_main, NULL) != 0) {
            CHECK_MSG(0, "pthread_create failed");
            return;
        }
        CHECK_WAIT(xt_get(&H.ready) && slp_channel_balance(H.xch) == -1, 2000);
        W.trig_st = slp_channel_send(H.xch, V_TRIG); /* calls A's wake-up callback here */
        xt_set(&H.go, 1);
        pthread_join(H.th, NULL);
        break;
    }
    default: break;
    }
}

static void check_refused(void) {
    enum act a = W.act;
    const char *what = act_label[a], *where = kind_label[W.kind];
    if (!W.returned) {
        CHECK_MSG(0, "%s inside the %s never returned: its caller was suspended inside the callback for good", what,
                  where);
        return;
    }
    CHECK_MSG(W.st == SLP_E_STATE, "%s inside the %s returned %d (%s), expected SLP_E_STATE", what, where,
              (int)W.st, harness_status_name(W.st));
    CHECK_MSG(strstr(W.msg, kind_word[W.kind]) != NULL,
              "slp_last_error() after %s inside the %s does not name \"%s\": \"%s\"", what, where, kind_word[W.kind],
              W.msg);
    /* refused means: nothing switched, nothing changed */
    CHECK_MSG(W.steps_after == W.steps_before, "%ld tasklet step(s) ran during %s inside the %s",
              W.steps_after - W.steps_before, what, where);
    CHECK_MSG(W.cur_after == W.cur_before, "the current tasklet changed across %s inside the %s", what, where);
    switch (a) {
    case A_RECV_BLOCK:
        CHECK_EQ_INT(W.bal_empty, 0);
        CHECK(W.recv_val_untouched);
        break;
    case A_SEND_BLOCK: CHECK_EQ_INT(W.bal_empty, 0); break;
    case A_SEND_SWITCH:
    case A_KILL_NOW:
    case A_THROW_NOW:
        CHECK_EQ_INT(W.bal_side, -1);
        CHECK_MSG(W.blocked_still_blocked, "the receiver blocked on `side` was disturbed by %s", what);
        break;
    case A_TASKLET_RUN:
    case A_TASKLET_SWITCH:
        CHECK_MSG(W.paused_still_paused, "the paused tasklet is no longer paused after %s", what);
        break;
    case A_SHUTDOWN:
    case A_UNREGISTER:
        CHECK_MSG(W.main_still_ours, "the scheduler was torn down by %s inside the %s", what, where);
        break;
    default: break;
    }
}

static void check_allowed(void) {
    struct allowed_res *al = &W.al;
    CHECK_MSG(W.returned, "the allowed calls inside the %s never returned", kind_label[W.kind]);
    CHECK(al->alive);
    CHECK(al->blocked);
    CHECK(al->cur_ok);
    CHECK(al->runcount >= 0); /* a query: it answers (the exact count depends on the trigger) */
    CHECK_MSG(al->dump == SLP_OK || al->dump == SLP_E_NOMEM, "slp_dump returned %d", (int)al->dump);
    CHECK_ST(al->counters, SLP_OK);
    CHECK_ST(al->created, SLP_OK);
    CHECK_ST(al->insert, SLP_OK);
    CHECK(al->scheduled_after_insert);
    CHECK_ST(al->kill_pending, SLP_OK);
    CHECK_ST(al->throw_pending, SLP_OK);
    CHECK_ST(al->send_buf, SLP_OK);
    CHECK_ST(al->send_p0, SLP_OK);
    CHECK_MSG(al->p0_done_after_send == 0, "the preference-0 send switched to its receiver");
    CHECK_MSG(W.steps_after == W.steps_before, "%ld tasklet step(s) ran during the allowed calls inside the %s",
              W.steps_after - W.steps_before, kind_label[W.kind]);
    CHECK(W.cur_after == W.cur_before);
}

static void check_bys(const char *name, struct bys *b, slp_status st, void *val) {
    CHECK_MSG(b->done == 1, "%s: its function did not finish (steps %ld)", name, b->steps);
    CHECK_MSG(b->st == st, "%s: its operation returned %d (%s), expected %d (%s)", name, (int)b->st,
              harness_status_name(b->st), (int)st, harness_status_name(st));
    if (val != NULL) CHECK_MSG(b->val == val, "%s: received %p, expected %p", name, b->val, val);
    CHECK_MSG(b->frees == 1, "%s: arg_free ran %d times", name, b->frees);
}

/* The call in progress completed, the world drains, the scheduler works afterwards. */
static void world_finish(void) {
    bool allowed = W.act == A_ALLOWED;
    CHECK_MSG(W.fired, "the %s was never called", kind_label[W.kind]);
    if (W.fired) {
        if (allowed)
            check_allowed();
        else
            check_refused();
    }
    CHECK_MSG(W.trig_st == SLP_OK, "the call in progress (trigger) returned %d (%s)", (int)W.trig_st,
              harness_status_name(W.trig_st));
    CHECK(slp_current() == slp_main());
    if (slp_main() != W.main0 || slp_tasklet_thread_id(W.t_blocked) == -1) {
        /* the world was torn down under the callback: what follows would only repeat it */
        CHECK_MSG(0, "the thread's scheduler was shut down during the %s", kind_label[W.kind]);
        return;
    }
    /* the bystanders get what they wait for, then everything runs to its end */
    if (slp_tasklet_paused(W.t_paused)) CHECK_ST(slp_tasklet_insert(W.t_paused), SLP_OK);
    if (slp_tasklet_blocked(W.t_blocked)) CHECK_ST(slp_channel_send(W.side, V_SIDE), SLP_OK);
    if (slp_tasklet_blocked(W.t_p0)) CHECK_ST(slp_channel_send(W.side0, V_P0), SLP_OK);
    if (slp_tasklet_blocked(W.t_thr)) CHECK_ST(slp_channel_send(W.side_thr, V_THR), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_current() == slp_main());
    CHECK_EQ_INT(slp_runcount(), 1);
    check_bys("paused bystander", &W.paused, SLP_OK, NULL);
    check_bys("blocked bystander", &W.blocked, allowed ? SLP_E_KILLED : SLP_OK, allowed ? NULL : V_SIDE);
    check_bys("preference-0 receiver", &W.p0, SLP_OK, V_P0);
    check_bys("throw target", &W.thr, allowed ? THROW_CODE : SLP_OK, allowed ? NULL : V_THR);
    check_bys("runnable bystander", &W.runnable, SLP_OK, NULL);
    switch (W.kind) {
    case K_SCHED:
    case K_FREE_END: check_bys("trigger tasklet", &W.trig, SLP_OK, NULL); break;
    case K_CHAN: check_bys("trigger receiver", &W.trig, SLP_OK, V_TRIG); break;
    case K_FREE_DISCARD:
        CHECK_MSG(W.trig.steps == 0, "the released never-started tasklet ran");
        CHECK_EQ_INT(W.trig.frees, 1);
        break;
    case K_WAKE:
        CHECK_ST(H.set_st, SLP_OK);
        CHECK_MSG(H.calls_on_world >= 1, "A's wake-up callback was not called by the sending thread");
        CHECK_ST(H.run_st, SLP_OK);
        CHECK_EQ_INT(H.r.done, 1);
        CHECK_ST(H.r.st, SLP_OK);
        CHECK_EQ_PTR(H.r.val, V_TRIG);
        CHECK_EQ_INT(H.r.tid, H.tid);
        CHECK_EQ_INT(H.r.free_count, 1);
        break;
    default: break;
    }
    if (allowed) {
        check_bys("tasklet created in the callback", &W.spawned, SLP_OK, NULL);
        void *v = SENTINEL;
        CHECK_ST(slp_channel_receive(W.buf, &v), SLP_OK);
        CHECK_EQ_PTR(v, V_BUF);
    }
    slp_channel *chs[] = {W.side, W.side0, W.side_thr, W.empty, W.buf, W.trig_ch, H.xch};
    for (size_t i = 0; i < sizeof chs / sizeof chs[0]; i++)
        if (chs[i]) CHECK_MSG(slp_channel_balance(chs[i]) == 0, "channel %zu: balance %d", i, slp_channel_balance(chs[i]));
    /* a later run works */
    struct bys later;
    slp_tasklet *tl = spawn_bys(&later, BY_PLAIN, NULL, 0, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(later.done, 1);
    slp_tasklet_release(tl);
    slp_tasklet *ts[] = {W.t_paused, W.t_blocked, W.t_p0, W.t_thr, W.t_runnable, W.t_trig, W.t_spawned};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) slp_tasklet_release(ts[i]);
    CHECK_MSG(W.paused.frees == 1 && W.blocked.frees == 1 && W.p0.frees == 1 && W.thr.frees == 1 &&
                  W.runnable.frees == 1 && later.frees == 1,
              "an arg_free ran again when its handle was released");
    for (size_t i = 0; i < sizeof chs / sizeof chs[0]; i++) slp_channel_release(chs[i]);
    slp_tasklet_release(W.main0);
}

struct rcase {
    enum kind kind;
    enum act act;
};

static void reentry_body(void *arg) {
    struct rcase *c = arg;
    world_setup(c->kind, c->act);
    world_trigger();
    world_finish();
}

static void reentry_case(enum kind k, enum act a) {
    static char label[256];
    snprintf(label, sizeof label, "%s: %s inside the %s", harness_current, act_label[a], kind_label[k]);
    struct rcase c = {k, a};
    CHECK_CHILD(label, reentry_body, &c, CASE_SECONDS);
}

/* The arg_free cases run with both triggers: on the tasklet's stack after its function
 * returned (inside slp_run), and on main's stack inside slp_tasklet_release. */
static void reentry_free_cases(enum act a) {
    reentry_case(K_FREE_END, a);
    reentry_case(K_FREE_DISCARD, a);
}

/* Every switching call not given its own test below, for one callback kind. */
static const enum act other_switching_calls[] = {A_RUN_N,        A_RUN_FOR,        A_RUN_WAIT, A_SCHEDULE_REMOVE,
                                                 A_TASKLET_RUN,  A_TASKLET_SWITCH, A_KILL_NOW, A_THROW_NOW,
                                                 A_SEND_BLOCK,   A_SEND_SWITCH};
#define N_OTHER (sizeof other_switching_calls / sizeof other_switching_calls[0])

/* ============================================================================================
 * Schedule callback: shutdown, unregister, run, schedule, blocking receive are refused.
 * (Shutdown there freed the scheduler in the middle of a switch; slp_run re-entered the
 * dispatch loop and unlinked main twice; a receive parked main while it was not queued.)
 * ========================================================================================== */
TEST(schedule_callback_shutdown_is_refused) { reentry_case(K_SCHED, A_SHUTDOWN); }
TEST(schedule_callback_unregister_is_refused) { reentry_case(K_SCHED, A_UNREGISTER); }
TEST(schedule_callback_run_is_refused) { reentry_case(K_SCHED, A_RUN); }
TEST(schedule_callback_schedule_is_refused) { reentry_case(K_SCHED, A_SCHEDULE); }
TEST(schedule_callback_blocking_receive_is_refused) { reentry_case(K_SCHED, A_RECV_BLOCK); }
TEST(schedule_callback_other_switching_calls_are_refused) {
    for (size_t i = 0; i < N_OTHER; i++) reentry_case(K_SCHED, other_switching_calls[i]);
}
TEST(schedule_callback_allowed_calls_work) { reentry_case(K_SCHED, A_ALLOWED); }

/* ============================================================================================
 * Channel callback (called before the operation): the same calls are refused, and the
 * operation it announced then completes.
 * ========================================================================================== */
TEST(channel_callback_shutdown_is_refused) { reentry_case(K_CHAN, A_SHUTDOWN); }
TEST(channel_callback_unregister_is_refused) { reentry_case(K_CHAN, A_UNREGISTER); }
TEST(channel_callback_run_is_refused) { reentry_case(K_CHAN, A_RUN); }
TEST(channel_callback_schedule_is_refused) { reentry_case(K_CHAN, A_SCHEDULE); }
TEST(channel_callback_blocking_receive_is_refused) { reentry_case(K_CHAN, A_RECV_BLOCK); }
TEST(channel_callback_other_switching_calls_are_refused) {
    for (size_t i = 0; i < N_OTHER; i++) reentry_case(K_CHAN, other_switching_calls[i]);
}
TEST(channel_callback_allowed_calls_work) { reentry_case(K_CHAN, A_ALLOWED); }

/* ============================================================================================
 * arg_free: the same calls are refused, whether arg_free runs on the tasklet's stack after its
 * function returned or on main's stack when the last reference to a never-started tasklet
 * goes. (Shutdown from arg_free inside slp_tasklet_release freed the scheduler that the
 * release was still using.)
 * ========================================================================================== */
TEST(arg_free_shutdown_is_refused) { reentry_free_cases(A_SHUTDOWN); }
TEST(arg_free_unregister_is_refused) { reentry_free_cases(A_UNREGISTER); }
TEST(arg_free_run_is_refused) { reentry_free_cases(A_RUN); }
TEST(arg_free_schedule_is_refused) { reentry_free_cases(A_SCHEDULE); }
TEST(arg_free_blocking_receive_is_refused) { reentry_free_cases(A_RECV_BLOCK); }
TEST(arg_free_other_switching_calls_are_refused) {
    for (size_t i = 0; i < N_OTHER; i++) reentry_free_cases(other_switching_calls[i]);
}
TEST(arg_free_allowed_calls_work) { reentry_free_cases(A_ALLOWED); }

/* ============================================================================================
 * Wake-up callback: thread A (waiting in pthread code, outside libslp) installed it; this
 * thread's send to A's blocked tasklet calls it here, inside the send. Calls on this thread's
 * scheduler that would switch, block or tear it down are refused; the send completes and A's
 * tasklet gets the value on A. The run case is the one the contract names: slp_run on the
 * waking thread returns SLP_E_STATE naming the wake-up callback.
 * ========================================================================================== */
TEST(wakeup_callback_shutdown_is_refused) { reentry_case(K_WAKE, A_SHUTDOWN); }
TEST(wakeup_callback_unregister_is_refused) { reentry_case(K_WAKE, A_UNREGISTER); }
TEST(wakeup_callback_run_on_waking_thread_is_refused) { reentry_case(K_WAKE, A_RUN); }
TEST(wakeup_callback_schedule_is_refused) { reentry_case(K_WAKE, A_SCHEDULE); }
TEST(wakeup_callback_blocking_receive_is_refused) { reentry_case(K_WAKE, A_RECV_BLOCK); }
TEST(wakeup_callback_other_switching_calls_are_refused) {
    for (size_t i = 0; i < N_OTHER; i++) reentry_case(K_WAKE, other_switching_calls[i]);
}
TEST(wakeup_callback_allowed_calls_work) { reentry_case(K_WAKE, A_ALLOWED); }

/* ============================================================================================
 * Schedule callback and `next`: kill(next, false) is refused (it would switch) and next then
 * runs normally; remove(next) and kill(next, true) are allowed and stop the switch to next:
 * a removed next does not run until inserted again, a never-started next killed pending never
 * runs its function (arg_free runs once), a started one gets SLP_E_KILLED later; the scheduler
 * goes on with the rest. (The dispatch loop had already picked next: a removed next ran anyway
 * and was dead when inserted; a discarded next was resumed without a coroutine.)
 * ========================================================================================== */
enum { NX_KILL_NOW, NX_REMOVE, NX_KILL_PENDING, NX_KILL_PENDING_STARTED };

static struct nx {
    int mode;
    slp_tasklet *target;
    int switches_in; /* times the callback saw next == target */
    int fired;
    slp_status st;
    char msg[512];
} NX;

static int32_t t_log_twice(void *arg) {
    struct bys *b = arg;
    b->steps++;
    log_c(b->tag);
    b->st = slp_schedule();
    b->steps++;
    log_c((char)(b->tag - 'a' + 'A'));
    b->done = 1;
    return 0;
}

static void cb_next(slp_tasklet *prev, slp_tasklet *next, void *ud) {
    (void)prev;
    (void)ud;
    if (next != NX.target || NX.fired) return;
    NX.switches_in++;
    if (NX.mode == NX_KILL_PENDING_STARTED && NX.switches_in < 2) return; /* let it start first */
    NX.fired = 1;
    switch (NX.mode) {
    case NX_KILL_NOW: NX.st = slp_tasklet_kill(next, false); break;
    case NX_REMOVE: NX.st = slp_tasklet_remove(next); break;
    default: NX.st = slp_tasklet_kill(next, true); break;
    }
    snprintf(NX.msg, sizeof NX.msg, "%s", slp_last_error());
}

static void next_body(void *arg) {
    int mode = *(int *)arg;
    memset(&NX, 0, sizeof NX);
    NX.mode = mode;
    NX.st = 12345;
    log_reset();
    struct bys a, b, c;
    slp_tasklet *ta;
    if (mode == NX_KILL_PENDING_STARTED) {
        bys_init(&a, BY_PLAIN, NULL);
        slp_tasklet_options o;
        slp_tasklet_options_init(&o);
        o.arg_free = bys_free;
        ta = SPAWN_EX(t_log_twice, &a, &o);
    } else {
        ta = spawn_bys(&a, BY_PLAIN, NULL, 0, NULL);
    }
    slp_tasklet *tb = spawn_bys(&b, BY_PLAIN, NULL, 0, NULL);
    slp_tasklet *tc = spawn_bys(&c, BY_PLAIN, NULL, 0, NULL);
    a.tag = 'a';
    b.tag = 'b';
    c.tag = 'c';
    NX.target = ta;
    CHECK_ST(slp_set_schedule_callback(cb_next, NULL, NULL, NULL), SLP_OK);
    slp_status run = slp_run();
    slp_set_schedule_callback(NULL, NULL, NULL, NULL);
    CHECK(NX.fired);
    CHECK_ST(run, SLP_OK);
    CHECK(slp_current() == slp_main());
    switch (mode) {
    case NX_KILL_NOW:
        CHECK_ST(NX.st, SLP_E_STATE);
        CHECK_MSG(strstr(NX.msg, "schedule callback") != NULL, "slp_last_error(): \"%s\"", NX.msg);
        CHECK_LOG("abc"); /* refused: next then runs as if nothing happened */
        CHECK_EQ_INT(a.done, 1);
        CHECK_EQ_INT(a.frees, 1);
        break;
    case NX_REMOVE:
        CHECK_ST(NX.st, SLP_OK);
        CHECK_LOG("bc"); /* a did not run */
        CHECK_EQ_INT(a.steps, 0);
        CHECK(slp_tasklet_alive(ta));
        CHECK(slp_tasklet_paused(ta));
        CHECK(!slp_tasklet_scheduled(ta));
        CHECK_EQ_INT(a.frees, 0);
        CHECK_EQ_INT(slp_runcount(), 1);
        CHECK_ST(slp_tasklet_insert(ta), SLP_OK); /* it runs once inserted again */
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_LOG("bca");
        CHECK_EQ_INT(a.done, 1);
        CHECK_EQ_INT(a.frees, 1);
        break;
    case NX_KILL_PENDING:
        CHECK_ST(NX.st, SLP_OK);
        CHECK_LOG("bc");
        CHECK_MSG(a.steps == 0, "the killed never-started tasklet ran its function");
        CHECK(!slp_tasklet_alive(ta));
        CHECK_EQ_INT(a.frees, 1);
        break;
    case NX_KILL_PENDING_STARTED:
        CHECK_ST(NX.st, SLP_OK);
        CHECK_ST(a.st, SLP_E_KILLED); /* its slp_schedule returned the kill */
        CHECK_EQ_INT(a.done, 1);
        CHECK(!slp_tasklet_alive(ta));
        CHECK_EQ_INT(a.frees, 1);
        break;
    default: break;
    }
    CHECK_EQ_INT(b.done, 1);
    CHECK_EQ_INT(c.done, 1);
    CHECK_EQ_INT(b.frees + c.frees, 2);
    CHECK_EQ_INT(slp_runcount(), 1);
    struct bys later; /* a later run works */
    slp_tasklet *tl = spawn_bys(&later, BY_PLAIN, NULL, 0, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(later.done, 1);
    slp_tasklet_release(tl);
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_tasklet_release(tc);
    CHECK_EQ_INT(a.frees + b.frees + c.frees, 3);
}

static void next_case(int mode, const char *what) {
    static char label[256];
    snprintf(label, sizeof label, "%s: %s", harness_current, what);
    CHECK_CHILD(label, next_body, &mode, CASE_SECONDS);
}

TEST(schedule_callback_kill_next_not_pending_is_refused) {
    next_case(NX_KILL_NOW, "slp_tasklet_kill(next, false) inside the schedule callback");
}
TEST(schedule_callback_remove_next_stops_the_switch) {
    next_case(NX_REMOVE, "slp_tasklet_remove(next) inside the schedule callback");
}
TEST(schedule_callback_kill_next_pending_stops_the_switch) {
    next_case(NX_KILL_PENDING, "slp_tasklet_kill(never-started next, true) inside the schedule callback");
    next_case(NX_KILL_PENDING_STARTED, "slp_tasklet_kill(started next, true) inside the schedule callback");
}

/* ============================================================================================
 * An arg_free that calls slp_scheduler_shutdown() while the scheduler is being shut down (a
 * never-started tasklet discarded by the shutdown): SLP_E_STATE naming arg_free, no second
 * teardown, no double free; the outer shutdown completes. The same when the shutdown is the
 * thread's exit. (The nested call tore the scheduler down and freed it under the outer one.)
 * ========================================================================================== */
static struct sd {
    int frees;
    slp_status inner;
    char msg[512];
} SD;

static void free_calls_shutdown(void *arg) {
    (void)arg;
    SD.frees++;
    SD.inner = slp_scheduler_shutdown();
    snprintf(SD.msg, sizeof SD.msg, "%s", slp_last_error());
}

static void shutdown_in_shutdown_body(void *arg) {
    (void)arg;
    memset(&SD, 0, sizeof SD);
    SD.inner = 12345;
    slp_channel *ch = NEW_CHANNEL();
    struct bys blk, fresh;
    slp_tasklet *tb = spawn_bys(&blk, BY_RECV, ch, 0, NULL);
    CHECK_ST(slp_run(), SLP_OK); /* blocks receiving */
    slp_tasklet *tf = spawn_bys(&fresh, BY_PLAIN, NULL, 0, free_calls_shutdown); /* never started */
    slp_tasklet *m0 = slp_main();
    slp_tasklet_retain(m0);
    CHECK_ST(slp_scheduler_shutdown(), SLP_OK);
    CHECK_EQ_INT(SD.frees, 1);
    CHECK_ST(SD.inner, SLP_E_STATE);
    CHECK_MSG(strstr(SD.msg, "arg_free") != NULL, "slp_last_error() in arg_free: \"%s\"", SD.msg);
    CHECK_EQ_INT(fresh.steps, 0);
    CHECK(!slp_tasklet_alive(tf));
    CHECK_EQ_INT(slp_tasklet_thread_id(tf), -1);
    CHECK_EQ_INT(slp_tasklet_thread_id(m0), -1);
    CHECK_ST(blk.st, SLP_E_KILLED); /* the rest of the shutdown happened */
    CHECK_EQ_INT(blk.frees, 1);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    /* a new scheduler */
    CHECK(slp_current() == slp_main());
    CHECK_EQ_INT(slp_runcount(), 1);
    struct bys later;
    slp_tasklet *tl = spawn_bys(&later, BY_PLAIN, NULL, 0, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(later.done, 1);
    slp_tasklet_release(tl);
    slp_tasklet_release(tb);
    slp_tasklet_release(tf);
    slp_tasklet_release(m0);
    CHECK_EQ_INT(SD.frees, 1);
    slp_channel_release(ch);
}

static struct bys g_exit_fresh;
static slp_tasklet *g_exit_t;
static long g_exit_tid;

static void *exit_with_shutdown_in_arg_free(void *arg) {
    (void)arg;
    g_exit_tid = (long)slp_thread_id();
    /* runnable, never started; the handle outlives the thread */
    g_exit_t = spawn_bys(&g_exit_fresh, BY_PLAIN, NULL, 0, free_calls_shutdown);
    return NULL; /* thread exit: the never-started tasklet is discarded, its arg_free runs */
}

static void shutdown_in_thread_exit_body(void *arg) {
    (void)arg;
    memset(&SD, 0, sizeof SD);
    SD.inner = 12345;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, exit_with_shutdown_in_arg_free, NULL), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(SD.frees, 1);
    CHECK_ST(SD.inner, SLP_E_STATE);
    CHECK_MSG(strstr(SD.msg, "arg_free") != NULL, "slp_last_error() in arg_free: \"%s\"", SD.msg);
    CHECK_EQ_INT(g_exit_fresh.steps, 0);
    CHECK(!slp_tasklet_alive(g_exit_t));
    CHECK_EQ_INT(slp_tasklet_thread_id(g_exit_t), -1);
    slp_tasklet_release(g_exit_t);
    CHECK_EQ_INT(SD.frees, 1);
}

TEST(arg_free_shutdown_while_scheduler_shuts_down_is_refused) {
    static char l1[256], l2[256];
    snprintf(l1, sizeof l1, "%s: slp_scheduler_shutdown discards a tasklet whose arg_free calls it", harness_current);
    CHECK_CHILD(l1, shutdown_in_shutdown_body, NULL, CASE_SECONDS);
    snprintf(l2, sizeof l2, "%s: thread exit discards a tasklet whose arg_free calls slp_scheduler_shutdown",
             harness_current);
    CHECK_CHILD(l2, shutdown_in_thread_exit_body, NULL, CASE_SECONDS);
}

/* ============================================================================================
 * Cross-thread: thread B kills V, a tasklet of thread A blocked on c1, while A's main tasklet
 * is blocked in slp_channel_receive(c2). The kill is applied inside A's blocking call; V ends
 * and its arg_free runs there, inside that call: a receive on an empty channel and slp_run are
 * refused (SLP_E_STATE naming arg_free). A's receive completes when B sends. (V's arg_free
 * blocked on the empty channel until A's thread exit killed it again.)
 * ========================================================================================== */
static struct xk {
    slp_channel *c1, *c2, *c3;
    slp_tasklet *victim;
    long ready, tid, ktid;
    long frees, free_done;
    slp_status free_recv, free_run;
    char free_recv_msg[256], free_run_msg[256];
    slp_status victim_st;
    long victim_done;
    slp_status a_recv;
    void *a_val;
    long a_done;
} XK;

static int32_t xk_victim(void *arg) {
    (void)arg;
    void *v = SENTINEL;
    slp_status st = slp_channel_receive(XK.c1, &v);
    xt_lock();
    XK.victim_st = st;
    XK.victim_done = 1;
    xt_unlock();
    return st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

static void xk_free(void *arg) {
    (void)arg;
    void *v = SENTINEL;
    slp_status r1 = slp_channel_receive(XK.c3, &v);
    char m1[256];
    snprintf(m1, sizeof m1, "%s", slp_last_error());
    slp_status r2 = slp_run();
    xt_lock();
    XK.frees++;
    XK.free_recv = r1;
    XK.free_run = r2;
    snprintf(XK.free_recv_msg, sizeof XK.free_recv_msg, "%s", m1);
    snprintf(XK.free_run_msg, sizeof XK.free_run_msg, "%s", slp_last_error());
    XK.free_done = 1;
    xt_unlock();
}

static void *xk_thread_a(void *arg) {
    (void)arg;
    slp_thread_register("A");
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = xk_free;
    slp_tasklet *v = NULL;
    slp_tasklet_new_ex(xk_victim, NULL, &o, &v);
    slp_run(); /* V blocks receiving on c1 */
    long ktid = xt_gettid();
    xt_lock();
    XK.victim = v;
    XK.tid = (long)slp_thread_id();
    XK.ktid = ktid;
    XK.ready = 1;
    xt_unlock();
    void *val = SENTINEL;
    slp_status st = slp_channel_receive(XK.c2, &val); /* the kill is applied in here */
    xt_lock();
    XK.a_recv = st;
    XK.a_val = val;
    XK.a_done = 1;
    xt_unlock();
    return NULL;
}

static void cross_thread_body(void *arg) {
    (void)arg;
    memset(&XK, 0, sizeof XK);
    XK.free_recv = XK.free_run = XK.victim_st = XK.a_recv = 12345;
    XK.c1 = NEW_CHANNEL();
    XK.c2 = NEW_CHANNEL();
    XK.c3 = NEW_CHANNEL();
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, xk_thread_a, NULL), 0);
    /* A's main is blocked in its receive, asleep */
    CHECK_WAIT(xt_get(&XK.ready) && slp_channel_balance(XK.c2) == -1 && xt_task_sleeping(xt_get(&XK.ktid)), 2000);
    CHECK_EQ_INT(slp_channel_balance(XK.c1), -1);
    CHECK_ST(slp_tasklet_kill(XK.victim, true), SLP_OK); /* from another thread: pending */
    CHECK_EQ_INT(slp_channel_balance(XK.c1), 0);
    /* V's arg_free runs on A, inside A's blocking receive, and returns */
    CHECK_WAIT(xt_get(&XK.free_done), 1000);
    CHECK_MSG(xt_get(&XK.a_done) == 0, "A's receive returned before anything was sent");
    CHECK_ST(slp_channel_send(XK.c2, IPTR(2)), SLP_OK);
    pthread_join(th, NULL);
    CHECK_ST(XK.a_recv, SLP_OK);
    CHECK_EQ_PTR(XK.a_val, IPTR(2));
    CHECK_ST(XK.victim_st, SLP_E_KILLED);
    CHECK_EQ_INT(XK.frees, 1);
    CHECK_MSG(XK.free_recv == SLP_E_STATE, "slp_channel_receive(empty) in arg_free returned %d (%s)",
              (int)XK.free_recv, harness_status_name(XK.free_recv));
    CHECK_MSG(strstr(XK.free_recv_msg, "arg_free") != NULL, "its slp_last_error(): \"%s\"", XK.free_recv_msg);
    CHECK_MSG(XK.free_run == SLP_E_STATE, "slp_run in arg_free returned %d (%s)", (int)XK.free_run,
              harness_status_name(XK.free_run));
    CHECK_MSG(strstr(XK.free_run_msg, "arg_free") != NULL, "its slp_last_error(): \"%s\"", XK.free_run_msg);
    CHECK_EQ_INT(slp_channel_balance(XK.c1), 0);
    CHECK_EQ_INT(slp_channel_balance(XK.c2), 0);
    CHECK_EQ_INT(slp_channel_balance(XK.c3), 0);
    CHECK(!slp_tasklet_alive(XK.victim));
    CHECK_EQ_INT(slp_tasklet_thread_id(XK.victim), -1);
    slp_tasklet_release(XK.victim);
    CHECK_EQ_INT(XK.frees, 1);
    slp_channel_release(XK.c1);
    slp_channel_release(XK.c2);
    slp_channel_release(XK.c3);
}

TEST(cross_thread_kill_applied_in_blocking_call_arg_free_cannot_block_or_run) {
    static char label[256];
    snprintf(label, sizeof label, "%s: kill from thread B, V's arg_free inside A's blocked receive", harness_current);
    CHECK_CHILD(label, cross_thread_body, NULL, 4);
}

/* ============================================================================================
 * A channel callback that sends on the same channel, where that send would block (main is about
 * to receive and no receiver waits yet): refused; main's receive then gets the sender
 * tasklet's value, not the callback's. (Main blocked as a sender inside its own receive.)
 * ========================================================================================== */
static struct cs {
    slp_channel *ch;
    int fired;
    slp_status st;
    char msg[512];
    int32_t bal;
} CS;

static void cb_send_same(slp_channel *ch, slp_tasklet *t, bool sending, bool will_block, void *ud) {
    (void)t;
    (void)sending;
    (void)will_block;
    (void)ud;
    if (ch != CS.ch || CS.fired) return;
    CS.fired = 1;
    CS.st = slp_channel_send(ch, V_CB);
    snprintf(CS.msg, sizeof CS.msg, "%s", slp_last_error());
    CS.bal = slp_channel_balance(ch);
}

static void chan_send_same_body(void *arg) {
    (void)arg;
    memset(&CS, 0, sizeof CS);
    CS.st = 12345;
    CS.ch = NEW_CHANNEL();
    struct bys s;
    slp_tasklet *ts = spawn_bys(&s, BY_SEND, CS.ch, 0, NULL);
    s.out = V_SIDE;
    CHECK_ST(slp_set_channel_callback(cb_send_same, NULL, NULL, NULL), SLP_OK);
    void *v = SENTINEL;
    slp_status r = slp_channel_receive(CS.ch, &v); /* the callback fires first, will_block */
    slp_set_channel_callback(NULL, NULL, NULL, NULL);
    CHECK(CS.fired);
    CHECK_ST(CS.st, SLP_E_STATE);
    CHECK_MSG(strstr(CS.msg, "channel callback") != NULL, "slp_last_error(): \"%s\"", CS.msg);
    CHECK_EQ_INT(CS.bal, 0);
    CHECK_ST(r, SLP_OK);
    CHECK_EQ_PTR(v, V_SIDE);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(s.done, 1);
    CHECK_ST(s.st, SLP_OK);
    CHECK_EQ_INT(s.frees, 1);
    CHECK_EQ_INT(slp_channel_balance(CS.ch), 0);
    CHECK(slp_current() == slp_main());
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(ts);
    slp_channel_release(CS.ch);
}

TEST(channel_callback_send_on_same_channel_that_would_block_is_refused) {
    static char label[256];
    snprintf(label, sizeof label, "%s: send on the announced channel inside the channel callback", harness_current);
    CHECK_CHILD(label, chan_send_same_body, NULL, CASE_SECONDS);
}
