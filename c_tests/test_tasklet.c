/* test_tasklet.c - SPEC §3 tasklets: creation, options, flags, insert/remove/run/switch,
 * kill and throw in every form, atomic/block_trap, uncaught errors; §4.3 exception data. */
#include "harness.h"
#include "common.h"

/* ------------------------------------------------------------------ creation */

static int32_t t_fail_42(void *arg) {
    (void)arg;
    log_c('b');
    return 42;
}

static int32_t t_return_closed(void *arg) {
    (void)arg;
    return SLP_E_CLOSED;
}


static int g_ran;
static void *g_arg_seen;
static int32_t t_record(void *arg) {
    g_ran++;
    g_arg_seen = arg;
    return 0;
}

TEST(new_appends_runnable_not_started) {
    g_ran = 0;
    g_arg_seen = NULL;
    int dummy = 0;
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet *t = NULL;
    CHECK_ST(slp_tasklet_new(t_record, &dummy, &t), SLP_OK);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_EQ_INT(g_ran, 0); /* appended, not run */
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK(!slp_tasklet_is_current(t));
    CHECK(!slp_tasklet_is_main(t));
    CHECK_EQ_INT(slp_tasklet_thread_id(t), slp_thread_id());
    CHECK_EQ_STR(slp_tasklet_name(t), "");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    CHECK_EQ_PTR(g_arg_seen, &dummy);
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

TEST(new_appends_in_creation_order) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_EQ_INT(slp_runcount(), 4);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abc");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

TEST(new_with_null_out_is_fire_and_forget) {
    g_ran = 0;
    CHECK_ST(slp_tasklet_new(t_record, NULL, NULL), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(release_right_after_create_still_runs) {
    g_ran = 0;
    slp_tasklet *t = SPAWN(t_record, NULL);
    slp_tasklet_release(t); /* the runtime holds its own reference while runnable */
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
}

TEST(new_ex_name_is_copied) {
    char buf[32];
    strcpy(buf, "worker-1");
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = buf;
    slp_tasklet *t = SPAWN_EX(t_record, NULL, &o);
    if (!t) return;
    strcpy(buf, "XXXXXXXX");
    CHECK_EQ_STR(slp_tasklet_name(t), "worker-1");
    o.name = NULL;
    slp_tasklet *u = SPAWN_EX(t_record, NULL, &o);
    CHECK_EQ_STR(slp_tasklet_name(u), "");
    CHECK_ST(slp_run(), SLP_OK);
    /* the name outlives the run */
    CHECK_EQ_STR(slp_tasklet_name(t), "worker-1");
    slp_tasklet_release(t);
    slp_tasklet_release(u);
}

TEST(new_ex_paused_is_alive_not_scheduled) {
    g_ran = 0;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *t = SPAWN_EX(t_record, NULL, &o);
    if (!t) return;
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_paused(t));
    CHECK(!slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK(slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(new_ex_bad_flags_and_struct_size) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = 0x80000000u;
    slp_tasklet *t = (slp_tasklet *)SENTINEL;
    CHECK_ST(slp_tasklet_new_ex(t_record, NULL, &o, &t), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(t, SENTINEL);
    slp_tasklet_options_init(&o);
    o.struct_size = 0;
    CHECK_ST(slp_tasklet_new_ex(t_record, NULL, &o, &t), SLP_E_INVALID);
    CHECK_EQ_PTR(t, SENTINEL);
    o.struct_size = 3;
    CHECK_ST(slp_tasklet_new_ex(t_record, NULL, &o, &t), SLP_E_INVALID);
    CHECK_EQ_PTR(t, SENTINEL);
    CHECK_EQ_INT(slp_runcount(), 1);
}

/* ------------------------------------------------------------------ arg_free */

static int32_t t_count_run(void *arg) {
    (void)arg;
    g_ran++;
    return 0;
}

static slp_tasklet *spawn_counted(int *freed, uint32_t flags) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = count_free;
    o.flags = flags;
    return SPAWN_EX(t_count_run, freed, &o);
}

TEST(arg_free_once_when_finished) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_EQ_INT(freed, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    CHECK_EQ_INT(freed, 1);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

TEST(arg_free_once_when_fire_and_forget_finishes) {
    int freed = 0;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = count_free;
    CHECK_ST(slp_tasklet_new_ex(t_count_run, &freed, &o, NULL), SLP_OK);
    CHECK_EQ_INT(freed, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(freed, 1);
}

TEST(arg_free_once_when_killed_before_start) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_EQ_INT(freed, 1);
    CHECK_EQ_INT(g_ran, 0);
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

TEST(arg_free_once_when_killed_pending_before_start) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_EQ_INT(freed, 1);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

TEST(arg_free_once_when_paused_tasklet_discarded_by_release) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, SLP_TASKLET_PAUSED);
    CHECK_EQ_INT(freed, 0);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_EQ_INT(freed, 1);
}

TEST(arg_free_once_when_removed_tasklet_discarded_by_release) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_ST(slp_tasklet_remove(t), SLP_OK);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
}

struct killable {
    slp_channel *ch;
    slp_status st;
    int ended;
    char tag;
};

static int32_t t_recv_then_end(void *arg) {
    struct killable *k = arg;
    void *v = NULL;
    k->st = slp_channel_receive(k->ch, &v);
    k->ended = 1;
    return k->st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

static void free_killable(void *arg) {
    struct killable *k = arg;
    k->tag++;
}

TEST(arg_free_once_when_killed_while_blocked) {
    struct killable k = {0};
    k.ch = NEW_CHANNEL();
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = free_killable;
    slp_tasklet *t = SPAWN_EX(t_recv_then_end, &k, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(k.tag, 0);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_EQ_INT(k.ended, 1);
    CHECK_ST(k.st, SLP_E_KILLED);
    CHECK_EQ_INT(k.tag, 1);
    slp_tasklet_release(t);
    CHECK_EQ_INT(k.tag, 1);
    slp_channel_release(k.ch);
}

static int32_t t_remove_self(void *arg) {
    struct killable *k = arg;
    log_c('a');
    k->st = slp_schedule_remove();
    log_c('b');
    k->ended = 1;
    return k->st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

TEST(release_of_paused_started_tasklet_kills_it_pending) {
    struct killable k = {0};
    log_reset();
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = free_killable;
    slp_tasklet *t = SPAWN_EX(t_remove_self, &k, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("a");
    CHECK(slp_tasklet_paused(t));
    CHECK(slp_tasklet_alive(t));
    slp_tasklet_release(t); /* last reference to a paused, started tasklet: killed (pending) */
    CHECK_EQ_INT(k.ended, 0); /* pending: it has not run yet */
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    CHECK_EQ_INT(k.ended, 1);
    CHECK_ST(k.st, SLP_E_KILLED);
    CHECK_EQ_INT(k.tag, 1);
    CHECK_EQ_INT(slp_runcount(), 1);
}

/* ------------------------------------------------------------------ flags */

struct snap {
    slp_tasklet *self;
    bool cur_is_self, is_current, is_main, alive, scheduled, paused, blocked;
    bool main_is_main, main_is_current;
    int64_t tid;
    int taken;
};

static int32_t t_snap(void *arg) {
    struct snap *s = arg;
    slp_tasklet *me = slp_current();
    s->cur_is_self = me == s->self;
    s->is_current = slp_tasklet_is_current(s->self);
    s->is_main = slp_tasklet_is_main(s->self);
    s->alive = slp_tasklet_alive(s->self);
    s->scheduled = slp_tasklet_scheduled(s->self);
    s->paused = slp_tasklet_paused(s->self);
    s->blocked = slp_tasklet_blocked(s->self);
    s->main_is_main = slp_tasklet_is_main(slp_main());
    s->main_is_current = slp_tasklet_is_current(slp_main());
    s->tid = slp_thread_id();
    s->taken = 1;
    return 0;
}

TEST(flags_of_the_current_tasklet) {
    struct snap s;
    memset(&s, 0, sizeof s);
    slp_tasklet *t = SPAWN(t_snap, &s);
    s.self = t;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(s.taken, 1);
    CHECK(s.cur_is_self);
    CHECK(s.is_current);
    CHECK(!s.is_main);
    CHECK(s.alive);
    CHECK(s.scheduled);
    CHECK(!s.paused);
    CHECK(!s.blocked);
    CHECK(s.main_is_main);
    CHECK(!s.main_is_current);
    CHECK_EQ_INT(s.tid, slp_thread_id());
    slp_tasklet_release(t);
}

TEST(flags_of_main) {
    slp_tasklet *m = slp_main();
    CHECK(m != NULL);
    CHECK_EQ_PTR(slp_current(), m);
    CHECK(slp_tasklet_is_main(m));
    CHECK(slp_tasklet_is_current(m));
    CHECK(slp_tasklet_alive(m));
    CHECK(!slp_tasklet_blocked(m));
    CHECK(!slp_tasklet_paused(m));
    CHECK_EQ_INT(slp_tasklet_thread_id(m), slp_thread_id());
}

TEST(flags_of_blocked_and_dead_tasklet) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK(!slp_tasklet_is_current(t));
    CHECK_EQ_INT(slp_runcount(), 1); /* blocked is not runnable */
    CHECK_ST(slp_channel_send(ch, IPTR(5)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(o.done, 1);
    CHECK_EQ_PTR(o.val, IPTR(5));
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK(!slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK_EQ_INT(slp_tasklet_thread_id(t), slp_thread_id());
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ insert / remove */

TEST(insert_semantics) {
    g_ran = 0;
    slp_tasklet *t = SPAWN(t_record, NULL);
    /* already scheduled: no-op, not queued twice */
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    /* dead */
    CHECK_ST(slp_tasklet_insert(t), SLP_E_DEAD);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);

    /* blocked */
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    slp_tasklet *r = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(r));
    CHECK_ST(slp_tasklet_insert(r), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK(slp_tasklet_blocked(r));
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(o.val, IPTR(1));
    slp_tasklet_release(r);
    slp_channel_release(ch);
}

TEST(remove_semantics) {
    g_ran = 0;
    slp_tasklet *t = SPAWN(t_record, NULL);
    CHECK_ST(slp_tasklet_remove(t), SLP_OK);
    CHECK(slp_tasklet_paused(t));
    CHECK(slp_tasklet_alive(t));
    CHECK(!slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    slp_tasklet_release(t);

    /* current (main) */
    CHECK_ST(slp_tasklet_remove(slp_main()), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);

    /* blocked */
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    slp_tasklet *r = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_remove(r), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK(slp_tasklet_blocked(r));
    CHECK(!slp_tasklet_paused(r));
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(2)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(o.val, IPTR(2));
    slp_tasklet_release(r);
    slp_channel_release(ch);
}

static slp_status g_st_remove_self;
static int32_t t_remove_current(void *arg) {
    (void)arg;
    g_st_remove_self = slp_tasklet_remove(slp_current());
    log_c('x');
    return 0;
}

TEST(remove_current_tasklet_is_state_error) {
    log_reset();
    g_st_remove_self = 12345;
    slp_tasklet *t = SPAWN(t_remove_current, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st_remove_self, SLP_E_STATE);
    CHECK_LOG("x");
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

/* ------------------------------------------------------------------ run / switch */

static slp_tasklet *g_target;
static slp_status g_st;

static int32_t t_run_target(void *arg) {
    (void)arg;
    log_c('a');
    g_st = slp_tasklet_run(g_target);
    log_c('A');
    return 0;
}

TEST(run_from_tasklet_caller_keeps_place_target_last) {
    /* queue A, B, C; A runs C: nothing lies between C and A, so C, A, then B */
    log_reset();
    g_st = 12345;
    slp_tasklet *a = SPAWN(t_run_target, NULL);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    g_target = c;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, SLP_OK);
    CHECK_LOG("acAb");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

TEST(run_from_tasklet_between_target_and_caller_run_first) {
    /* queue A, B, C; A runs B: B, then C (between B and A), then A resumes */
    log_reset();
    g_st = 12345;
    slp_tasklet *a = SPAWN(t_run_target, NULL);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    g_target = b;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, SLP_OK);
    CHECK_LOG("abcA");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

TEST(run_paused_tasklet_from_main) {
    log_reset();
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *t = SPAWN_EX(t_log, IPTR('t'), &o);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK_LOG("t"); /* ran before run() returned */
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

TEST(run_dead_and_blocked) {
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_run(t), SLP_E_DEAD);
    CHECK_LAST_ERROR_SET();
    CHECK_LOG("t");
    slp_tasklet_release(t);

    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    slp_tasklet *r = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_run(r), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK(slp_tasklet_blocked(r));
    CHECK_EQ_INT(o.done, 0);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_tasklet_switch(r), SLP_E_STATE);
    CHECK(slp_tasklet_blocked(r));
    CHECK_EQ_INT(o.done, 0);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(o.done, 1);
    CHECK_ST(slp_tasklet_switch(r), SLP_E_DEAD);
    slp_tasklet_release(r);
    slp_channel_release(ch);
}

static int32_t t_switch_target(void *arg) {
    (void)arg;
    log_c('a');
    g_st = slp_tasklet_switch(g_target);
    log_c('A');
    return 0;
}

TEST(switch_pauses_the_caller) {
    log_reset();
    g_st = 12345;
    slp_tasklet *a = SPAWN(t_switch_target, NULL);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    g_target = b;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abc"); /* A was removed: it does not come back by itself */
    CHECK(slp_tasklet_alive(a));
    CHECK(slp_tasklet_paused(a));
    CHECK(!slp_tasklet_scheduled(a));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_tasklet_insert(a), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abcA");
    CHECK_ST(g_st, SLP_OK);
    CHECK(!slp_tasklet_alive(a));
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

static int32_t t_switch_self(void *arg) {
    (void)arg;
    log_c('a');
    g_st = slp_tasklet_switch(slp_current());
    log_c('A');
    return 0;
}

TEST(switch_to_current_is_noop) {
    log_reset();
    g_st = 12345;
    slp_tasklet *a = SPAWN(t_switch_self, NULL);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, SLP_OK);
    CHECK_LOG("aAb");
    CHECK(!slp_tasklet_alive(a));
    CHECK_ST(slp_tasklet_switch(slp_main()), SLP_OK); /* main is current */
    slp_tasklet_release(a);
    slp_tasklet_release(b);
}

TEST(switch_and_insert_dead) {
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_switch(t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_insert(t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_run(t), SLP_E_DEAD);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

/* ------------------------------------------------------------------ kill */

static int32_t t_kill_self(void *arg) {
    bool pending = arg != NULL;
    log_c('a');
    g_st = slp_tasklet_kill(slp_current(), pending);
    log_c('b');
    return g_st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

TEST(kill_current_returns_killed) {
    log_reset();
    g_st = 12345;
    slp_tasklet *t = SPAWN(t_kill_self, NULL);
    CHECK_ST(slp_run(), SLP_OK); /* SLP_E_KILLED is a silent end */
    CHECK_ST(g_st, SLP_E_KILLED);
    CHECK_LOG("ab");
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(kill_current_pending_returns_killed) {
    log_reset();
    g_st = 12345;
    slp_tasklet *t = SPAWN(t_kill_self, IPTR(1));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, SLP_E_KILLED);
    CHECK_LOG("ab");
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(kill_never_started_runs_nothing) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_EQ_INT(freed, 1);
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

TEST(kill_never_started_paused) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, SLP_TASKLET_PAUSED);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_EQ_INT(freed, 1);
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

struct yielder {
    slp_status st;
    int ended;
    int32_t ret_on_kill; /* what to return when the schedule call was interrupted */
};

static int32_t t_yield_once(void *arg) {
    struct yielder *y = arg;
    log_c('a');
    y->st = slp_schedule();
    log_c('b');
    y->ended = 1;
    return y->st == SLP_OK ? 0 : y->ret_on_kill;
}

TEST(kill_runnable_started_now) {
    struct yielder y = {12345, 0, SLP_E_KILLED};
    log_reset();
    slp_tasklet *t = SPAWN(t_yield_once, &y);
    CHECK_ST(slp_tasklet_run(t), SLP_OK); /* runs until its schedule: main is next */
    CHECK_LOG("a");
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(y.st, SLP_E_KILLED);
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

TEST(kill_runnable_started_pending) {
    struct yielder y = {12345, 0, SLP_E_KILLED};
    log_reset();
    slp_tasklet *t = SPAWN(t_yield_once, &y);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK_LOG("a");
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK_LOG("a"); /* pending: the caller continues */
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(y.st, SLP_E_KILLED);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(kill_blocked_now) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 'r');
    o.ret = SLP_E_KILLED;
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_LOG("r");
    CHECK_ST(o.st, SLP_E_KILLED);
    CHECK_EQ_PTR(o.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(kill_blocked_pending) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 'r');
    o.ret = SLP_E_KILLED;
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK_LOG("");
    CHECK(slp_tasklet_alive(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("r");
    CHECK_ST(o.st, SLP_E_KILLED);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(kill_paused_started_now) {
    struct killable k = {0};
    log_reset();
    slp_tasklet *t = SPAWN(t_remove_self, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_paused(t));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(k.st, SLP_E_KILLED);
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_tasklet_paused(t));
    slp_tasklet_release(t);
}

TEST(kill_paused_started_pending) {
    struct killable k = {0};
    log_reset();
    slp_tasklet *t = SPAWN(t_remove_self, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK_LOG("a");
    CHECK(slp_tasklet_alive(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(k.st, SLP_E_KILLED);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(kill_dead_is_noop) {
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("t");
    slp_tasklet_release(t);
}

struct stubborn {
    slp_channel *ch;
    slp_status st1, st2;
    void *v2;
};

static int32_t t_survive_kill(void *arg) {
    struct stubborn *s = arg;
    void *v = NULL;
    s->st1 = slp_channel_receive(s->ch, &v); /* killed */
    log_c('k');
    s->v2 = SENTINEL;
    s->st2 = slp_channel_receive(s->ch, &s->v2); /* the kill was delivered once */
    log_c('r');
    return 0;
}

TEST(kill_is_delivered_once) {
    struct stubborn s;
    memset(&s, 0, sizeof s);
    s.st1 = s.st2 = 12345;
    s.ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_survive_kill, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(s.st1, SLP_E_KILLED);
    CHECK_LOG("k");
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(s.ch), -1);
    CHECK_ST(slp_channel_send(s.ch, IPTR(5)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("kr");
    CHECK_ST(s.st2, SLP_OK);
    CHECK_EQ_PTR(s.v2, IPTR(5));
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(s.ch);
}

static slp_tasklet *g_victim;
static int32_t t_killer(void *arg) {
    bool pending = arg != NULL;
    log_c('K');
    g_st = slp_tasklet_kill(g_victim, pending);
    log_c('k');
    return 0;
}

TEST(kill_from_tasklet_switches_to_target_now) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 't');
    o.ret = SLP_E_KILLED;
    log_reset();
    g_victim = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet *k = SPAWN(t_killer, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("Ktk");
    CHECK_ST(g_st, SLP_OK);
    CHECK_ST(o.st, SLP_E_KILLED);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(g_victim);
    slp_tasklet_release(k);
    slp_channel_release(ch);
}

TEST(kill_pending_from_tasklet_continues) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 't');
    o.ret = SLP_E_KILLED;
    log_reset();
    g_victim = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet *k = SPAWN(t_killer, IPTR(1));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("Kkt");
    CHECK_ST(g_st, SLP_OK);
    CHECK_ST(o.st, SLP_E_KILLED);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_alive(g_victim));
    slp_tasklet_release(g_victim);
    slp_tasklet_release(k);
    slp_channel_release(ch);
}

/* kill(pending=false) switches to the target now; like run(), the caller keeps its place. */
TEST(kill_runnable_target_runs_at_its_place) {
    struct yielder y = {12345, 0, SLP_E_KILLED};
    log_reset();
    slp_tasklet *t = SPAWN(t_yield_once, &y);
    CHECK_ST(slp_tasklet_run(t), SLP_OK); /* 'a', then t waits in schedule(): queue M, t */
    slp_tasklet *a = SPAWN(t_log, IPTR('x'));
    slp_tasklet *b = SPAWN(t_log, IPTR('y'));
    /* queue M, t, x, y: t runs now, then x and y (between t and M), then M resumes */
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    log_c('M');
    CHECK_LOG("abxyM");
    CHECK_ST(y.st, SLP_E_KILLED);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
    slp_tasklet_release(a);
    slp_tasklet_release(b);
}

TEST(kill_blocked_target_is_appended_then_run) {
    /* a blocked target leaves the channel, is appended (just before the caller) and runs now:
     * the caller resumes right after it, the other runnable tasklets come later */
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 'T');
    o.ret = SLP_E_KILLED;
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet *a = SPAWN(t_log, IPTR('x'));
    slp_tasklet *b = SPAWN(t_log, IPTR('y'));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    log_c('M');
    CHECK_LOG("TM");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("TMxy");
    slp_tasklet_release(t);
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_channel_release(ch);
}

static slp_tasklet *g_runner;
static slp_status g_runner_st, g_killer_st;

static int32_t t_kill_runner(void *arg) {
    (void)arg;
    log_c('k');
    g_killer_st = slp_tasklet_kill(g_runner, false);
    log_c('K');
    return 0;
}

static int32_t t_runner(void *arg) {
    slp_tasklet *child = arg;
    log_c('r');
    g_runner_st = slp_tasklet_run(child); /* the child kills us while we keep our place */
    log_c('R');
    return g_runner_st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

TEST(kill_the_tasklet_that_ran_you) {
    log_reset();
    g_runner_st = g_killer_st = 12345;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *k = SPAWN_EX(t_kill_runner, NULL, &o);
    g_runner = SPAWN(t_runner, k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_runner_st, SLP_E_KILLED);
    CHECK_ST(g_killer_st, SLP_OK);
    CHECK_LOG("rkRK");
    CHECK(!slp_tasklet_alive(g_runner));
    CHECK(!slp_tasklet_alive(k));
    slp_tasklet_release(k);
    slp_tasklet_release(g_runner);
}

static slp_tasklet *g_self_handle;

static int32_t t_release_own_handle(void *arg) {
    (void)arg;
    slp_tasklet_release(g_self_handle); /* the creator handed its reference over */
    log_c('a');
    slp_schedule();
    log_c(slp_tasklet_is_current(slp_current()) ? 'b' : '!');
    return 0;
}

TEST(tasklet_releases_its_own_last_user_reference) {
    log_reset();
    g_self_handle = NULL;
    CHECK_ST(slp_tasklet_new(t_release_own_handle, NULL, &g_self_handle), SLP_OK);
    slp_tasklet *u = SPAWN(t_log, IPTR('x'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("axb");
    slp_tasklet_release(u);
}

/* arg_free may call back into libslp (release a channel it owned, create a tasklet). */
struct owned {
    slp_channel *ch;
    int freed;
    int spawned;
};

static void free_owned(void *arg) {
    struct owned *ow = arg;
    ow->freed++;
    slp_channel_release(ow->ch);
    ow->ch = NULL;
    if (slp_tasklet_new(t_log, IPTR('n'), NULL) == SLP_OK) ow->spawned++;
}

static int32_t t_use_owned(void *arg) {
    struct owned *ow = arg;
    void *v = NULL;
    slp_status st = slp_channel_receive(ow->ch, &v);
    log_c('u');
    return st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

TEST(arg_free_may_call_libslp_in_every_path) {
    for (int path = 0; path < 4; path++) {
        /* 0: finished, 1: killed before start, 2: discarded by release, 3: killed while blocked */
        struct owned ow = {NEW_CHANNEL(), 0, 0};
        slp_tasklet_options o;
        slp_tasklet_options_init(&o);
        o.arg_free = free_owned;
        if (path == 2) o.flags = SLP_TASKLET_PAUSED;
        log_reset();
        slp_tasklet *t = SPAWN_EX(t_use_owned, &ow, &o);
        slp_channel *ch = ow.ch;
        slp_channel_retain(ch); /* ours, for sending */
        switch (path) {
        case 0:
            CHECK_ST(slp_run(), SLP_OK);
            CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
            break;
        case 1: CHECK_ST(slp_tasklet_kill(t, false), SLP_OK); break;
        case 2:
            slp_tasklet_release(t);
            t = NULL;
            break;
        default:
            CHECK_ST(slp_run(), SLP_OK);
            CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
            break;
        }
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_MSG(ow.freed == 1, "path %d: arg_free ran %d times", path, ow.freed);
        CHECK_MSG(ow.spawned == 1, "path %d: tasklet created from arg_free: %d", path, ow.spawned);
        CHECK_MSG(strchr(g_log, 'n') != NULL, "path %d: the tasklet created in arg_free did not run (log \"%s\")",
                  path, g_log);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        slp_channel_release(ch);
        slp_tasklet_release(t);
    }
}

/* ------------------------------------------------------------------ throw */

static int g_x, g_y;
static void *g_exc_seen;

static int32_t t_throw_self(void *arg) {
    bool pending = arg != NULL;
    g_st = slp_tasklet_throw(slp_current(), 9, &g_x, pending);
    g_exc_seen = slp_exception_data();
    log_c('t');
    return 0;
}

TEST(throw_current_returns_code) {
    log_reset();
    g_st = 12345;
    g_exc_seen = NULL;
    slp_tasklet *t = SPAWN(t_throw_self, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, 9);
    CHECK_EQ_PTR(g_exc_seen, &g_x);
    CHECK_LOG("t");
    slp_tasklet_release(t);
}

TEST(throw_current_pending_returns_code) {
    log_reset();
    g_st = 12345;
    g_exc_seen = NULL;
    slp_tasklet *t = SPAWN(t_throw_self, IPTR(1));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, 9);
    CHECK_EQ_PTR(g_exc_seen, &g_x);
    slp_tasklet_release(t);
}

TEST(throw_never_started_reports_code_from_throw) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_ST(slp_tasklet_throw(t, 5, &g_x, false), 5);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_EQ_INT(freed, 1);
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_run(), SLP_OK); /* already reported by the throw call */
    CHECK_EQ_INT(g_ran, 0);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

TEST(throw_never_started_pending_reports_code_from_run) {
    int freed = 0;
    g_ran = 0;
    slp_tasklet *t = spawn_counted(&freed, 0);
    CHECK_ST(slp_tasklet_throw(t, 5, &g_x, true), SLP_OK);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_ST(slp_run(), 5);
    CHECK_EQ_INT(g_ran, 0);
    CHECK_EQ_INT(freed, 1);
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_run(), SLP_OK); /* reported once */
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

static int32_t t_yield_record_exc(void *arg) {
    struct yielder *y = arg;
    log_c('a');
    y->st = slp_schedule();
    g_exc_seen = slp_exception_data();
    log_c('b');
    y->ended = 1;
    return 0; /* handled */
}

TEST(throw_runnable_started_now) {
    struct yielder y = {12345, 0, 0};
    log_reset();
    g_exc_seen = NULL;
    slp_tasklet *t = SPAWN(t_yield_record_exc, &y);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK_LOG("a");
    CHECK_ST(slp_tasklet_throw(t, 11, &g_y, false), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(y.st, 11);
    CHECK_EQ_PTR(g_exc_seen, &g_y);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(throw_runnable_started_pending) {
    struct yielder y = {12345, 0, 0};
    log_reset();
    g_exc_seen = NULL;
    slp_tasklet *t = SPAWN(t_yield_record_exc, &y);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 11, &g_y, true), SLP_OK);
    CHECK_LOG("a");
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(y.st, 11);
    CHECK_EQ_PTR(g_exc_seen, &g_y);
    slp_tasklet_release(t);
}

TEST(throw_blocked_now) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 'r');
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 3, &g_x, false), SLP_OK);
    CHECK_LOG("r");
    CHECK_ST(o.st, 3);
    CHECK_EQ_PTR(o.exc, &g_x);
    CHECK_EQ_PTR(o.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(throw_blocked_pending) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 'r');
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 3, &g_x, true), SLP_OK);
    CHECK_LOG("");
    CHECK(slp_tasklet_alive(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("r");
    CHECK_ST(o.st, 3);
    CHECK_EQ_PTR(o.exc, &g_x);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

static int32_t t_remove_self_exc(void *arg) {
    struct killable *k = arg;
    log_c('a');
    k->st = slp_schedule_remove();
    g_exc_seen = slp_exception_data();
    log_c('b');
    k->ended = 1;
    return 0;
}

TEST(throw_paused_now_and_pending) {
    struct killable k = {0};
    log_reset();
    g_exc_seen = NULL;
    slp_tasklet *t = SPAWN(t_remove_self_exc, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_paused(t));
    CHECK_ST(slp_tasklet_throw(t, 4, &g_y, false), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(k.st, 4);
    CHECK_EQ_PTR(g_exc_seen, &g_y);
    slp_tasklet_release(t);

    memset(&k, 0, sizeof k);
    log_reset();
    g_exc_seen = NULL;
    t = SPAWN(t_remove_self_exc, &k);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 6, &g_x, true), SLP_OK);
    CHECK_LOG("a");
    CHECK(slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(k.st, 6);
    CHECK_EQ_PTR(g_exc_seen, &g_x);
    slp_tasklet_release(t);
}

TEST(throw_dead_is_dead_error) {
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 5, NULL, false), SLP_E_DEAD);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_throw(t, 5, NULL, true), SLP_E_DEAD);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

TEST(throw_code_not_positive_is_invalid) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 0, NULL, false), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_throw(t, -1, NULL, true), SLP_E_INVALID);
    CHECK_ST(slp_tasklet_throw(t, SLP_E_KILLED, NULL, false), SLP_E_INVALID);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(o.done, 0);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(o.st, SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(throw_uncaught_by_target_reaches_run) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    o.ret = 13; /* returns the code it got: uncaught */
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 13, NULL, true), SLP_OK);
    CHECK_ST(slp_run(), 13);
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

struct main_waker {
    slp_channel *ch;
    int mode; /* 0: throw (not pending), 1: throw pending, 2: kill, 3: kill pending */
    slp_status st;
};

static int32_t t_wake_main(void *arg) {
    struct main_waker *w = arg;
    log_c('w');
    switch (w->mode) {
    case 0: w->st = slp_tasklet_throw(slp_main(), 17, &g_x, false); break;
    case 1: w->st = slp_tasklet_throw(slp_main(), 17, &g_x, true); break;
    case 2: w->st = slp_tasklet_kill(slp_main(), false); break;
    default: w->st = slp_tasklet_kill(slp_main(), true); break;
    }
    log_c('W');
    return 0;
}

TEST(throw_and_kill_wake_blocked_main) {
    for (int mode = 0; mode < 4; mode++) {
        struct main_waker w = {NEW_CHANNEL(), mode, 12345};
        log_reset();
        slp_tasklet *t = SPAWN(t_wake_main, &w);
        void *v = SENTINEL;
        slp_status st = slp_channel_receive(w.ch, &v);
        log_c('M');
        CHECK_MSG(st == (mode < 2 ? 17 : SLP_E_KILLED), "mode %d: main's receive returned %d", mode, (int)st);
        CHECK_EQ_PTR(v, SENTINEL);
        if (mode < 2) CHECK_EQ_PTR(slp_exception_data(), &g_x);
        CHECK_EQ_INT(slp_channel_balance(w.ch), 0);
        CHECK(!slp_tasklet_blocked(slp_main()));
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_ST(w.st, SLP_OK);
        /* not pending: main runs at once; pending: the thrower goes on first */
        CHECK_MSG(strcmp(g_log, (mode % 2 == 0) ? "wMW" : "wWM") == 0, "mode %d: log \"%s\"", mode, g_log);
        slp_tasklet_release(t);
        slp_channel_release(w.ch);
    }
}

TEST(two_uncaught_errors_are_returned_one_per_run) {
    log_reset();
    slp_tasklet *a = SPAWN(t_fail_42, NULL);
    slp_tasklet *b = SPAWN(t_return_closed, NULL);
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_ST(slp_run(), 42);
    CHECK_ST(slp_run(), SLP_E_CLOSED);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("bc");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

/* ------------------------------------------------------------------ exception data (§4.3) */

struct excs {
    slp_channel *ch;
    slp_status st[3];
    void *val[3];
    void *exc[3];
};

static int32_t t_three_receives(void *arg) {
    struct excs *e = arg;
    for (int i = 0; i < 3; i++) {
        e->val[i] = SENTINEL;
        e->st[i] = slp_channel_receive(e->ch, &e->val[i]);
        e->exc[i] = slp_exception_data();
    }
    return 0;
}

TEST(exception_data_persists_until_next_exception) {
    struct excs e;
    memset(&e, 0, sizeof e);
    e.ch = NEW_CHANNEL();
    void *main_exc_before = slp_exception_data();
    slp_tasklet *t = SPAWN(t_three_receives, &e);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send_exception(e.ch, 7, &g_x), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send(e.ch, IPTR(42)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send_exception(e.ch, 8, &g_y), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(e.st[0], 7);
    CHECK_EQ_PTR(e.val[0], SENTINEL);
    CHECK_EQ_PTR(e.exc[0], &g_x);
    CHECK_ST(e.st[1], SLP_OK);
    CHECK_EQ_PTR(e.val[1], IPTR(42));
    CHECK_EQ_PTR(e.exc[1], &g_x); /* a normal value does not clear it */
    CHECK_ST(e.st[2], 8);
    CHECK_EQ_PTR(e.exc[2], &g_y);
    /* per tasklet: main's own exception data did not change */
    CHECK_EQ_PTR(slp_exception_data(), main_exc_before);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(e.ch);
}

/* ------------------------------------------------------------------ atomic / block_trap */

TEST(set_atomic_returns_old_value) {
    slp_tasklet *m = slp_main();
    CHECK(slp_tasklet_set_atomic(m, true) == false);
    CHECK(slp_tasklet_set_atomic(m, true) == true);
    CHECK(slp_tasklet_set_atomic(m, false) == true);
    CHECK(slp_tasklet_set_atomic(m, false) == false);
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    CHECK(slp_tasklet_set_atomic(t, true) == false);
    CHECK(slp_tasklet_set_atomic(t, false) == true);
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("t");
    slp_tasklet_release(t);
}

TEST(set_block_trap_returns_old_value) {
    slp_tasklet *m = slp_main();
    CHECK(slp_tasklet_set_block_trap(m, true) == false);
    CHECK(slp_tasklet_set_block_trap(m, true) == true);
    CHECK(slp_tasklet_set_block_trap(m, false) == true);
    CHECK(slp_tasklet_set_block_trap(m, false) == false);
}

TEST(block_trap_main_would_block_changes_nothing) {
    slp_channel *ch = NEW_CHANNEL();
    slp_tasklet *m = slp_main();
    slp_tasklet_set_block_trap(m, true);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_WOULD_BLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_channel_send_exception(ch, 5, NULL), SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_blocked(m));
    /* with another runnable tasklet: still nothing changes, nothing runs */
    log_reset();
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_WOULD_BLOCK);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_tasklet_set_block_trap(m, false) == true);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("t");
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

struct trapped {
    slp_channel *ch;
    slp_status st;
    bool set_self;
};

static int32_t t_trapped_receive(void *arg) {
    struct trapped *tr = arg;
    if (tr->set_self) slp_tasklet_set_block_trap(slp_current(), true);
    void *v = SENTINEL;
    tr->st = slp_channel_receive(tr->ch, &v);
    log_c(v == SENTINEL ? 'u' : 'w');
    return 0;
}

TEST(block_trap_tasklet_would_block) {
    struct trapped tr = {NEW_CHANNEL(), 12345, true};
    log_reset();
    slp_tasklet *t = SPAWN(t_trapped_receive, &tr);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(tr.st, SLP_E_WOULD_BLOCK);
    CHECK_LOG("u");
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_channel_balance(tr.ch), 0);
    slp_tasklet_release(t);

    /* set by main on a tasklet that has not started */
    tr.set_self = false;
    tr.st = 12345;
    log_reset();
    t = SPAWN(t_trapped_receive, &tr);
    CHECK(slp_tasklet_set_block_trap(t, true) == false);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(tr.st, SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(slp_channel_balance(tr.ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(tr.ch);
}

TEST(block_trap_does_not_stop_non_blocking_ops) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 'r');
    log_reset();
    slp_tasklet *r = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_channel_send(ch, IPTR(9)), SLP_OK); /* a receiver waits: no block */
    slp_tasklet_set_block_trap(slp_main(), false);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(o.val, IPTR(9));
    slp_tasklet_release(r);
    slp_channel_release(ch);

    /* a buffered channel with room does not block either */
    slp_channel *q = NEW_CHANNEL_EX(-1, 2, false);
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_channel_send(q, IPTR(1)), SLP_OK);
    CHECK_ST(slp_channel_send(q, IPTR(2)), SLP_OK);
    CHECK_ST(slp_channel_send(q, IPTR(3)), SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(slp_channel_balance(q), 2);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(q, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK_ST(slp_channel_receive(q, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(2));
    v = SENTINEL;
    CHECK_ST(slp_channel_receive(q, &v), SLP_E_WOULD_BLOCK);
    CHECK_EQ_PTR(v, SENTINEL);
    slp_tasklet_set_block_trap(slp_main(), false);
    slp_channel_release(q);
}

/* ------------------------------------------------------------------ uncaught errors */


TEST(uncaught_error_returned_by_run_others_stay_scheduled_in_order) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = "bad_tasklet";
    slp_tasklet *b = SPAWN_EX(t_fail_42, NULL, &o);
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_ST(slp_run(), 42);
    const char *e = slp_last_error();
    CHECK_MSG(e && strstr(e, "bad_tasklet") != NULL, "slp_last_error() \"%s\" does not name the tasklet",
              e ? e : "<NULL>");
    CHECK_LOG("ab");
    CHECK(!slp_tasklet_alive(b));
    CHECK(slp_tasklet_alive(a));
    CHECK(slp_tasklet_scheduled(a));
    CHECK(slp_tasklet_scheduled(c));
    CHECK_EQ_INT(slp_runcount(), 3); /* main, c, a */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abcA"); /* c was next, then a resumes */
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}


static int32_t t_return_killed(void *arg) {
    (void)arg;
    return SLP_E_KILLED;
}

TEST(negative_return_other_than_killed_is_uncaught) {
    slp_tasklet *t = SPAWN(t_return_closed, NULL);
    CHECK_ST(slp_run(), SLP_E_CLOSED);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    t = SPAWN(t_return_killed, NULL);
    CHECK_ST(slp_run(), SLP_OK); /* SLP_E_KILLED is a silent end */
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(uncaught_error_wakes_blocked_main) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *b = SPAWN(t_fail_42, NULL);
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), 42);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_blocked(slp_main()));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("bc");
    slp_tasklet_release(b);
    slp_tasklet_release(c);
    slp_channel_release(ch);
}

TEST(uncaught_error_reaches_main_in_schedule_and_run) {
    /* main outside slp_run: its pending switching call returns the error (§3, API notes) */
    log_reset();
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = "failing_one";
    slp_tasklet *b = SPAWN_EX(t_fail_42, NULL, &o);
    CHECK_ST(slp_schedule(), 42);
    const char *e = slp_last_error();
    CHECK_MSG(e && strstr(e, "failing_one") != NULL, "slp_last_error() \"%s\" does not name the tasklet",
              e ? e : "<NULL>");
    CHECK_LOG("b");
    slp_tasklet_release(b);

    b = SPAWN_EX(t_fail_42, NULL, &o);
    CHECK_ST(slp_tasklet_run(b), 42);
    CHECK_LOG("bb");
    CHECK(!slp_tasklet_alive(b));
    CHECK_ST(slp_run(), SLP_OK); /* delivered once */
    slp_tasklet_release(b);
}

TEST(release_of_blocked_tasklet_keeps_it_until_done) {
    slp_channel *ch = NEW_CHANNEL();
    struct op o;
    op_init(&o, ch, SENTINEL, 'r');
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t); /* the runtime keeps a blocked tasklet */
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(8)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("r");
    CHECK_EQ_PTR(o.val, IPTR(8));
    CHECK_ST(o.st, SLP_OK);
    slp_channel_release(ch);
}
