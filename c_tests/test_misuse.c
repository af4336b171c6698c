/* test_misuse.c - SPEC §2 argument validation: NULL handles and out-params, wrong states,
 * bad options, reference counting misuse, use from the wrong thread. Nothing may crash. */
#include "harness.h"
#include "common.h"

#include <pthread.h>

static int32_t t_nop(void *arg) {
    (void)arg;
    return 0;
}

#define CHECK_INVALID(call)                    \
    do {                                       \
        CHECK_ST((call), SLP_E_INVALID);       \
        CHECK_LAST_ERROR_SET();                \
    } while (0)

TEST(null_tasklet_handles) {
    CHECK_INVALID(slp_tasklet_insert(NULL));
    CHECK_INVALID(slp_tasklet_remove(NULL));
    CHECK_INVALID(slp_tasklet_run(NULL));
    CHECK_INVALID(slp_tasklet_switch(NULL));
    CHECK_INVALID(slp_tasklet_kill(NULL, false));
    CHECK_INVALID(slp_tasklet_kill(NULL, true));
    CHECK_INVALID(slp_tasklet_throw(NULL, 5, NULL, false));
    CHECK_INVALID(slp_tasklet_throw(NULL, 5, NULL, true));
    CHECK_INVALID(slp_tasklet_bind_thread(NULL, slp_thread_id()));
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(null_tasklet_queries) {
    CHECK(slp_tasklet_alive(NULL) == false);
    CHECK(slp_tasklet_blocked(NULL) == false);
    CHECK(slp_tasklet_scheduled(NULL) == false);
    CHECK(slp_tasklet_paused(NULL) == false);
    CHECK(slp_tasklet_is_main(NULL) == false);
    CHECK(slp_tasklet_is_current(NULL) == false);
    CHECK_EQ_INT(slp_tasklet_thread_id(NULL), 0);
    CHECK(slp_tasklet_set_atomic(NULL, true) == false);
    CHECK(slp_tasklet_set_block_trap(NULL, true) == false);
    CHECK(slp_tasklet_name(NULL) == NULL);
    slp_tasklet_retain(NULL);
    slp_tasklet_release(NULL);
    CHECK(1);
}

TEST(null_tasklet_fn) {
    slp_tasklet *t = (slp_tasklet *)SENTINEL;
    CHECK_INVALID(slp_tasklet_new(NULL, NULL, &t));
    CHECK_EQ_PTR(t, SENTINEL);
    CHECK_INVALID(slp_tasklet_new(NULL, NULL, NULL));
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    CHECK_INVALID(slp_tasklet_new_ex(NULL, NULL, &o, &t));
    CHECK_EQ_PTR(t, SENTINEL);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(bad_tasklet_options) {
    int freed = 0;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = count_free;
    slp_tasklet *t = (slp_tasklet *)SENTINEL;
    o.struct_size = 0;
    CHECK_INVALID(slp_tasklet_new_ex(t_nop, &freed, &o, &t));
    o.struct_size = 1;
    CHECK_INVALID(slp_tasklet_new_ex(t_nop, &freed, &o, &t));
    slp_tasklet_options_init(&o);
    o.arg_free = count_free;
    o.flags = 0xFEu;
    CHECK_INVALID(slp_tasklet_new_ex(t_nop, &freed, &o, &t));
    CHECK_EQ_PTR(t, SENTINEL);
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_INT(freed, 0); /* nothing was created, so nothing owns arg */
}

TEST(null_channel_handles) {
    void *v = SENTINEL;
    size_t sent = 999;
    void *vals[1] = {NULL};
    CHECK_INVALID(slp_channel_new(NULL));
    slp_channel_options o;
    slp_channel_options_init(&o);
    CHECK_INVALID(slp_channel_new_ex(&o, NULL));
    CHECK_INVALID(slp_channel_send(NULL, NULL));
    CHECK_INVALID(slp_channel_receive(NULL, &v));
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_INVALID(slp_channel_send_exception(NULL, 5, NULL));
    CHECK_INVALID(slp_channel_close(NULL));
    CHECK_INVALID(slp_channel_open(NULL));
    CHECK_INVALID(slp_channel_shutdown(NULL));
    CHECK_INVALID(slp_channel_send_sequence(NULL, vals, 1, &sent));
    CHECK_EQ_INT(sent, 999);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(null_channel_queries) {
    CHECK_EQ_INT(slp_channel_balance(NULL), 0);
    CHECK_EQ_INT(slp_channel_preference(NULL), 0);
    CHECK(slp_channel_schedule_all(NULL) == false);
    CHECK(slp_channel_closing(NULL) == false);
    CHECK(slp_channel_closed(NULL) == false);
    CHECK(slp_channel_queue(NULL) == NULL);
    CHECK_EQ_INT(slp_channel_capacity(NULL), 0);
    slp_channel_set_preference(NULL, 1);
    slp_channel_set_schedule_all(NULL, true);
    slp_channel_retain(NULL);
    slp_channel_release(NULL);
    CHECK(1);
}

TEST(null_out_params) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK_INVALID(slp_channel_receive(ch, NULL));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    void *vals[2] = {IPTR(1), IPTR(2)};
    CHECK_INVALID(slp_channel_send_sequence(ch, vals, 2, NULL));
    size_t sent = 999;
    CHECK_INVALID(slp_channel_send_sequence(ch, NULL, 2, &sent));
    CHECK_EQ_INT(sent, 999);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    /* NULL out for a receive that would pair with a blocked sender: nothing is taken */
    struct op s;
    op_init(&s, ch, IPTR(7), 0);
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_INVALID(slp_channel_receive(ch, NULL));
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    CHECK(slp_tasklet_blocked(t));
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(7));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(bad_channel_options) {
    slp_channel_options o;
    slp_channel_options_init(&o);
    slp_channel *ch = (slp_channel *)SENTINEL;
    o.struct_size = 0;
    CHECK_INVALID(slp_channel_new_ex(&o, &ch));
    o.struct_size = 1;
    CHECK_INVALID(slp_channel_new_ex(&o, &ch));
    CHECK_EQ_PTR(ch, SENTINEL);
    /* out-of-range preferences are clamped, not rejected */
    slp_channel_options_init(&o);
    o.preference = 100;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_OK);
    CHECK_EQ_INT(slp_channel_preference(ch), 1);
    slp_channel_set_preference(ch, -100);
    CHECK_EQ_INT(slp_channel_preference(ch), -1);
    slp_channel_release(ch);
}

TEST(bad_codes) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK_INVALID(slp_channel_send_exception(ch, 0, NULL));
    CHECK_INVALID(slp_channel_send_exception(ch, -3, NULL));
    slp_tasklet *t = SPAWN(t_nop, NULL);
    CHECK_INVALID(slp_tasklet_throw(t, 0, NULL, false));
    CHECK_INVALID(slp_tasklet_throw(t, -5, NULL, true));
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(wrong_states) {
    /* remove the current tasklet */
    CHECK_ST(slp_tasklet_remove(slp_current()), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    /* insert/run/switch/remove a blocked tasklet */
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    r.ret = SLP_E_KILLED;
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_insert(t), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_run(t), SLP_E_STATE);
    CHECK_ST(slp_tasklet_switch(t), SLP_E_STATE);
    CHECK_ST(slp_tasklet_remove(t), SLP_E_STATE);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    /* bind_thread on a started tasklet */
    CHECK_ST(slp_tasklet_bind_thread(t, slp_thread_id()), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    /* dead */
    CHECK_ST(slp_tasklet_insert(t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_run(t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_switch(t), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_throw(t, 3, NULL, false), SLP_E_DEAD);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(slp_tasklet_bind_thread(t, slp_thread_id()), SLP_E_STATE);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(bind_thread_scheduled_never_started_is_state) {
    slp_tasklet *t = SPAWN(t_nop, NULL);
    CHECK_ST(slp_tasklet_bind_thread(t, slp_thread_id()), SLP_E_STATE);
    CHECK_LAST_ERROR_SET();
    CHECK(slp_tasklet_scheduled(t));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
}

TEST(bind_thread_unknown_id_is_invalid) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *t = SPAWN_EX(t_nop, NULL, &o);
    CHECK_INVALID(slp_tasklet_bind_thread(t, 987654321));
    CHECK_INVALID(slp_tasklet_bind_thread(t, 0));
    CHECK_INVALID(slp_tasklet_bind_thread(t, -1));
    CHECK_EQ_INT(slp_tasklet_thread_id(t), slp_thread_id());
    /* binding to its own thread is fine */
    CHECK_ST(slp_tasklet_bind_thread(t, slp_thread_id()), SLP_OK);
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

static int32_t t_nested_run(void *arg) {
    slp_status *st = arg;
    st[0] = slp_run();
    st[1] = slp_run_n(1);
    st[2] = slp_run_for(0);
    return 0;
}

TEST(run_from_tasklet_is_state) {
    slp_status st[3] = {12345, 12345, 12345};
    slp_tasklet *t = SPAWN(t_nested_run, st);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(st[0], SLP_E_STATE);
    CHECK_ST(st[1], SLP_E_STATE);
    CHECK_ST(st[2], SLP_E_STATE);
    slp_tasklet_release(t);
}

TEST(retain_release_balance) {
    int freed = 0;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = count_free;
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *t = SPAWN_EX(t_nop, &freed, &o);
    slp_tasklet_retain(t);
    slp_tasklet_retain(t);
    slp_tasklet_release(t);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 0); /* one reference left */
    CHECK(slp_tasklet_alive(t));
    slp_tasklet_release(t); /* the last one: a paused never-started tasklet is discarded */
    CHECK_EQ_INT(freed, 1);

    slp_channel *ch = NEW_CHANNEL();
    slp_channel_retain(ch);
    slp_channel_release(ch);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_channel_release(ch);
}

TEST(handles_survive_the_tasklet) {
    slp_tasklet *t = SPAWN(t_nop, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    /* a dead tasklet's handle stays valid until released */
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_STR(slp_tasklet_name(t), "");
    CHECK_EQ_INT(slp_tasklet_thread_id(t), slp_thread_id());
    CHECK(slp_tasklet_set_atomic(t, true) == false);
    slp_tasklet_release(t);
}

/* ------------------------------------------------------------------ other threads */

struct xthread {
    slp_tasklet *target;
    slp_status st_switch, st_run, st_insert;
    int64_t tid;
    int ran_here;
};

static int g_ran_on;
static int64_t g_ran_tid;
static int32_t t_where(void *arg) {
    (void)arg;
    g_ran_on++;
    g_ran_tid = slp_thread_id();
    return 0;
}

static void *thread_switch_to_foreign(void *arg) {
    struct xthread *x = arg;
    x->tid = slp_thread_id();
    x->st_switch = slp_tasklet_switch(x->target);
    x->ran_here = g_ran_on;
    return NULL;
}

TEST(switch_to_other_threads_tasklet_is_wrong_thread) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    g_ran_on = 0;
    struct xthread x;
    memset(&x, 0, sizeof x);
    x.st_switch = 12345;
    x.target = SPAWN_EX(t_where, NULL, &o);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_switch_to_foreign, &x), 0);
    pthread_join(th, NULL);
    CHECK_ST(x.st_switch, SLP_E_WRONG_THREAD);
    CHECK_EQ_INT(x.ran_here, 0);
    CHECK(x.tid != slp_thread_id());
    CHECK(slp_tasklet_paused(x.target));
    CHECK_EQ_INT(slp_tasklet_thread_id(x.target), slp_thread_id());
    cleanup_tasklet(x.target);
}

static void *thread_switch_to_main(void *arg) {
    struct xthread *x = arg;
    x->st_switch = slp_tasklet_switch(x->target);
    return NULL;
}

TEST(switch_to_other_threads_main_is_wrong_thread) {
    struct xthread x;
    memset(&x, 0, sizeof x);
    x.st_switch = 12345;
    x.target = slp_main();
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_switch_to_main, &x), 0);
    pthread_join(th, NULL);
    CHECK_ST(x.st_switch, SLP_E_WRONG_THREAD);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
}

/* bind_thread to a live thread that has a scheduler: the tasklet then runs there. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_stage;
static int64_t g_worker_tid;
static slp_tasklet *g_bound;
static slp_status g_worker_insert, g_worker_run;
static int g_worker_ran;

static void stage_set(int s) {
    pthread_mutex_lock(&g_mu);
    g_stage = s;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void stage_wait(int s) {
    pthread_mutex_lock(&g_mu);
    while (g_stage < s) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

static void *thread_worker(void *arg) {
    (void)arg;
    (void)slp_current(); /* make sure this thread has a scheduler */
    g_worker_tid = slp_thread_id();
    stage_set(1);
    stage_wait(2); /* main bound g_bound to us */
    g_worker_insert = slp_tasklet_insert(g_bound);
    g_worker_run = slp_run();
    g_worker_ran = g_ran_on;
    stage_set(3);
    return NULL;
}

TEST(bind_thread_moves_never_started_tasklet) {
    g_stage = 0;
    g_ran_on = 0;
    g_ran_tid = 0;
    g_worker_insert = g_worker_run = 12345;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    g_bound = SPAWN_EX(t_where, NULL, &o);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_worker, NULL), 0);
    stage_wait(1);
    CHECK(g_worker_tid > 0 && g_worker_tid != slp_thread_id());
    CHECK_ST(slp_tasklet_bind_thread(g_bound, g_worker_tid), SLP_OK);
    CHECK_EQ_INT(slp_tasklet_thread_id(g_bound), g_worker_tid);
    /* it is not ours any more: switching to it from here is the wrong thread */
    CHECK_ST(slp_tasklet_switch(g_bound), SLP_E_WRONG_THREAD);
    stage_set(2);
    stage_wait(3);
    pthread_join(th, NULL);
    CHECK_ST(g_worker_insert, SLP_OK);
    CHECK_ST(g_worker_run, SLP_OK);
    CHECK_EQ_INT(g_worker_ran, 1);
    CHECK_EQ_INT(g_ran_tid, g_worker_tid);
    CHECK(!slp_tasklet_alive(g_bound));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(g_bound);
}

static void *thread_bad_calls(void *arg) {
    slp_status *st = arg;
    st[0] = slp_tasklet_remove(slp_main());         /* its own main is current: state */
    st[1] = slp_channel_receive(NULL, NULL);        /* invalid */
    st[2] = slp_tasklet_new(NULL, NULL, NULL);      /* invalid */
    st[3] = slp_run();                              /* nothing to run there */
    return NULL;
}

TEST(misuse_from_plain_thread) {
    slp_status st[4] = {12345, 12345, 12345, 12345};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_bad_calls, st), 0);
    pthread_join(th, NULL);
    CHECK_ST(st[0], SLP_E_STATE);
    CHECK_ST(st[1], SLP_E_INVALID);
    CHECK_ST(st[2], SLP_E_INVALID);
    CHECK_ST(st[3], SLP_OK);
}
