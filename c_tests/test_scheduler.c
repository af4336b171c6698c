/* test_scheduler.c - SPEC §1 and §4.1: current/main/runcount/thread_id, schedule,
 * schedule_remove, run/run_n/run_for, order kept across calls, switch_trap, flat runs, scale. */
#include "harness.h"
#include "common.h"

#include <pthread.h>

TEST(current_and_main_outside_run) {
    slp_tasklet *m = slp_main();
    CHECK(m != NULL);
    CHECK(slp_current() != NULL);
    CHECK_EQ_PTR(slp_current(), m);
    CHECK(slp_tasklet_is_main(m));
    CHECK(slp_tasklet_is_current(m));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK(slp_thread_id() > 0);
    CHECK_EQ_INT(slp_tasklet_thread_id(m), slp_thread_id());
    /* stable */
    CHECK_EQ_PTR(slp_main(), m);
    CHECK_EQ_INT(slp_thread_id(), slp_thread_id());
}

struct inside {
    slp_tasklet *cur, *main;
    int32_t runcount;
};

static int32_t t_inside(void *arg) {
    struct inside *in = arg;
    in->cur = slp_current();
    in->main = slp_main();
    in->runcount = slp_runcount();
    return 0;
}

TEST(runcount_does_not_count_main_inside_run) {
    struct inside a = {0}, b = {0}, c = {0};
    slp_tasklet *ta = SPAWN(t_inside, &a);
    slp_tasklet *tb = SPAWN(t_inside, &b);
    slp_tasklet *tc = SPAWN(t_inside, &c);
    CHECK_EQ_INT(slp_runcount(), 4); /* main + 3 */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(a.runcount, 3); /* a, b, c: main is not in the queue while inside slp_run */
    CHECK_EQ_INT(b.runcount, 2);
    CHECK_EQ_INT(c.runcount, 1);
    CHECK_EQ_PTR(a.cur, ta);
    CHECK_EQ_PTR(b.cur, tb);
    CHECK_EQ_PTR(c.cur, tc);
    CHECK_EQ_PTR(a.main, slp_main());
    CHECK_EQ_PTR(c.main, slp_main());
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_PTR(slp_current(), slp_main());
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_tasklet_release(tc);
}

static int32_t t_inside_from_main_schedule(void *arg) {
    struct inside *in = arg;
    in->runcount = slp_runcount();
    return 0;
}

TEST(runcount_counts_main_when_tasklet_runs_outside_run) {
    /* main called slp_schedule(), not slp_run(): it stays in the queue and is counted */
    struct inside a = {0};
    slp_tasklet *t = SPAWN(t_inside_from_main_schedule, &a);
    CHECK_ST(slp_schedule(), SLP_OK);
    CHECK_EQ_INT(a.runcount, 2);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

TEST(runcount_ignores_paused_and_blocked) {
    struct op o;
    slp_channel *ch = NEW_CHANNEL();
    op_init(&o, ch, SENTINEL, 0);
    slp_tasklet *r = SPAWN(op_recv, &o);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_options opt;
    slp_tasklet_options_init(&opt);
    opt.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *p = SPAWN_EX(t_log, IPTR('p'), &opt);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet *q = SPAWN(t_log, IPTR('q'));
    CHECK_EQ_INT(slp_runcount(), 2);
    log_reset();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("q");
    cleanup_tasklet(r);
    cleanup_tasklet(p);
    slp_tasklet_release(q);
    slp_channel_release(ch);
}

TEST(schedule_alone_returns_at_once) {
    CHECK_ST(slp_schedule(), SLP_OK);
    CHECK_EQ_PTR(slp_current(), slp_main());
    CHECK_EQ_INT(slp_runcount(), 1);
}

static int32_t t_schedule_alone(void *arg) {
    (void)arg;
    log_c('a');
    if (slp_schedule() != SLP_OK) log_c('!');
    log_c('b');
    if (slp_schedule() != SLP_OK) log_c('!');
    log_c('c');
    return 0;
}

TEST(schedule_alone_inside_run_returns_at_once) {
    log_reset();
    slp_tasklet *t = SPAWN(t_schedule_alone, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abc");
    slp_tasklet_release(t);
}

TEST(schedule_round_robin_under_run) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log_yield, IPTR('c'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abcABC");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

TEST(schedule_from_main_runs_one_round) {
    /* queue M, a, b: main's schedule runs a and b up to their yields, then main again */
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    CHECK_ST(slp_schedule(), SLP_OK);
    log_c('M');
    CHECK_LOG("abM");
    CHECK_EQ_INT(slp_runcount(), 3);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abMAB");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
}

static slp_status g_st;
static int32_t t_remove_and_come_back(void *arg) {
    (void)arg;
    log_c('a');
    g_st = slp_schedule_remove();
    log_c('b');
    return 0;
}

static int32_t t_spawner(void *arg) {
    (void)arg;
    log_c('a');
    if (slp_tasklet_new(t_log, IPTR('c'), NULL) != SLP_OK) log_c('!');
    log_c('A');
    return 0;
}

TEST(new_from_tasklet_appends_at_tail) {
    log_reset();
    slp_tasklet *a = SPAWN(t_spawner, NULL);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("aAbc");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
}

TEST(run_current_is_noop) {
    CHECK_ST(slp_tasklet_run(slp_main()), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(schedule_remove_pauses_until_inserted) {
    log_reset();
    g_st = 12345;
    slp_tasklet *t = SPAWN(t_remove_and_come_back, NULL);
    slp_tasklet *u = SPAWN(t_log, IPTR('u'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("au");
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_paused(t));
    CHECK(!slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("au");
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("aub");
    CHECK_ST(g_st, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_tasklet_release(u);
}

static int32_t t_insert_main(void *arg) {
    (void)arg;
    log_c('t');
    g_st = slp_tasklet_insert(slp_main());
    log_c('u');
    return 0;
}

TEST(main_schedule_remove_until_a_tasklet_inserts_it) {
    log_reset();
    g_st = 12345;
    slp_tasklet *t = SPAWN(t_insert_main, NULL);
    CHECK_ST(slp_schedule_remove(), SLP_OK);
    log_c('M');
    CHECK_ST(g_st, SLP_OK);
    CHECK_LOG("tuM");
    CHECK(!slp_tasklet_paused(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
}

TEST(main_schedule_remove_alone_is_deadlock) {
    /* §5.3 rule 2: main would leave the queue and nothing could ever insert it again */
    CHECK_ST(slp_schedule_remove(), SLP_E_DEADLOCK);
    CHECK(!slp_tasklet_paused(slp_main()));
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(run_under_switch_trap) {
    log_reset();
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    slp_switch_trap(1);
    CHECK_ST(slp_run(), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_run_n(1), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_run_for(0), SLP_E_SWITCH_TRAP);
    CHECK_LOG("");
    slp_switch_trap(-1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("t");
    slp_tasklet_release(t);
}

TEST(run_n_switches_into_at_most_n) {
    log_reset();
    slp_tasklet *t[5];
    for (int i = 0; i < 5; i++) t[i] = SPAWN(t_log, IPTR('a' + i));
    CHECK_ST(slp_run_n(2), SLP_OK);
    CHECK_LOG("ab");
    CHECK_EQ_INT(slp_runcount(), 4);
    CHECK_ST(slp_run_n(0), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(slp_run_n(1), SLP_OK);
    CHECK_LOG("abc");
    CHECK_ST(slp_run_n(100), SLP_OK);
    CHECK_LOG("abcde");
    CHECK_EQ_INT(slp_runcount(), 1);
    for (int i = 0; i < 5; i++) slp_tasklet_release(t[i]);
}

TEST(run_n_keeps_order_across_calls) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log_yield, IPTR('c'));
    CHECK_ST(slp_run_n(1), SLP_OK);
    CHECK_LOG("a");
    CHECK_ST(slp_run_n(1), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(slp_run_n(2), SLP_OK);
    CHECK_LOG("abcA");
    CHECK_EQ_INT(slp_runcount(), 3);
    /* a plain schedule from main also continues where the run stopped */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abcABC");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

TEST(run_n_then_schedule_from_main_keeps_order) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_ST(slp_run_n(1), SLP_OK);
    CHECK_LOG("a");
    CHECK_ST(slp_schedule(), SLP_OK); /* b is next, then c, then main */
    CHECK_LOG("abc");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

TEST(run_for_zero_runs_exactly_one) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("a");
    CHECK_EQ_INT(slp_runcount(), 3);
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(slp_run_for(1000000000LL), SLP_OK);
    CHECK_LOG("abc");
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

static int g_busy_ran;
static int32_t t_busy_5ms(void *arg) {
    (void)arg;
    int64_t end = now_ns() + 5000000;
    while (now_ns() < end) {
    }
    g_busy_ran++;
    return 0;
}

TEST(run_for_stops_after_budget) {
    g_busy_ran = 0;
    slp_tasklet *t[6];
    for (int i = 0; i < 6; i++) t[i] = SPAWN(t_busy_5ms, NULL);
    int64_t t0 = now_ns();
    CHECK_ST(slp_run_for(12000000LL), SLP_OK);
    int64_t elapsed = now_ns() - t0;
    /* Each tasklet busy-waits >= 5 ms of wall time, so after 3 of them the 12 ms budget has
     * surely passed: at most 3 run (a loaded machine may stretch one past the budget: then
     * fewer). At least one always runs, and stopping before all 6 means the budget elapsed. */
    CHECK_MSG(g_busy_ran >= 1 && g_busy_ran <= 3, "%d tasklets ran", g_busy_ran);
    CHECK_MSG(elapsed >= 12000000LL, "run_for returned after %lld ns, before its budget", (long long)elapsed);
    CHECK_EQ_INT(slp_runcount(), 1 + 6 - g_busy_ran);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_busy_ran, 6);
    for (int i = 0; i < 6; i++) slp_tasklet_release(t[i]);
}

TEST(run_for_keeps_order_across_calls) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("a");
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("abA");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abAB");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
}

TEST(run_with_nothing_runnable_returns_ok) {
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_run_n(5), SLP_OK);
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(switch_trap_levels) {
    CHECK_EQ_INT(slp_switch_trap(0), 0);
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_EQ_INT(slp_switch_trap(0), 1);
    CHECK_EQ_INT(slp_switch_trap(1), 1);
    CHECK_EQ_INT(slp_switch_trap(0), 2);
    CHECK_EQ_INT(slp_switch_trap(-1), 2);
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_EQ_INT(slp_switch_trap(0), 0);
}

TEST(switch_trap_blocks_every_local_switch) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_log_yield, IPTR('a'));
    CHECK_ST(slp_tasklet_run(t), SLP_OK); /* started: 'a', now waits in its schedule() */
    CHECK_LOG("a");
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *p = SPAWN_EX(t_log, IPTR('p'), &o);
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_ST(slp_schedule(), SLP_E_SWITCH_TRAP);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_run(t), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_tasklet_switch(t), SLP_E_SWITCH_TRAP);
    CHECK(!slp_tasklet_paused(slp_main()));
    CHECK(slp_tasklet_scheduled(slp_main()));
    CHECK_ST(slp_tasklet_run(p), SLP_E_SWITCH_TRAP);
    CHECK(slp_tasklet_paused(p)); /* not even appended */
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_SWITCH_TRAP);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_SWITCH_TRAP);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_E_SWITCH_TRAP);
    CHECK(slp_tasklet_alive(t));
    CHECK_ST(slp_schedule_remove(), SLP_E_SWITCH_TRAP);
    CHECK(!slp_tasklet_paused(slp_main()));
    CHECK_LOG("a");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_ST(slp_schedule(), SLP_OK);
    CHECK_LOG("aA");
    cleanup_tasklet(p);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

static int32_t t_trap_inside(void *arg) {
    (void)arg;
    slp_switch_trap(1);
    g_st = slp_schedule();
    log_c('x');
    slp_switch_trap(-1);
    return 0;
}

TEST(switch_trap_inside_tasklet) {
    log_reset();
    g_st = 12345;
    slp_tasklet *a = SPAWN(t_trap_inside, NULL);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(g_st, SLP_E_SWITCH_TRAP);
    CHECK_LOG("xb");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
}

struct nested_run {
    slp_status run, run_n, run_for;
};

static int32_t t_nested_run(void *arg) {
    struct nested_run *n = arg;
    n->run = slp_run();
    n->run_n = slp_run_n(1);
    n->run_for = slp_run_for(0);
    log_c('n');
    return 0;
}

TEST(run_from_non_main_tasklet_is_state_error) {
    struct nested_run n = {12345, 12345, 12345};
    log_reset();
    slp_tasklet *t = SPAWN(t_nested_run, &n);
    slp_tasklet *u = SPAWN(t_log, IPTR('u'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(n.run, SLP_E_STATE);
    CHECK_ST(n.run_n, SLP_E_STATE);
    CHECK_ST(n.run_for, SLP_E_STATE);
    CHECK_LOG("nu"); /* the nested calls ran nothing */
    slp_tasklet_release(t);
    slp_tasklet_release(u);
}

static int g_resumed[256];
static int g_nresumed;

static int32_t t_nested(void *arg) {
    int depth = (int)(intptr_t)arg;
    if (depth < 200) {
        slp_tasklet *child = NULL;
        if (slp_tasklet_new(t_nested, IPTR(depth + 1), &child) != SLP_OK) return 1;
        slp_status st = slp_tasklet_run(child);
        slp_tasklet_release(child);
        if (st != SLP_OK) return 2;
    }
    g_resumed[g_nresumed++] = depth;
    return 0;
}

TEST(nested_run_chain_200_deep_unwinds_in_reverse) {
    /* each tasklet runs a new child; nothing lies between the child and its caller, so the
     * deepest ends first and every caller resumes right after its child */
    g_nresumed = 0;
    CHECK_ST(slp_tasklet_new(t_nested, IPTR(1), NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_nresumed, 200);
    int ok = 1;
    for (int i = 0; i < g_nresumed; i++)
        if (g_resumed[i] != 200 - i) ok = 0;
    CHECK_MSG(ok, "resume order wrong: first %d, second %d", g_resumed[0], g_resumed[1]);
}

static long g_count;
static int32_t t_count(void *arg) {
    (void)arg;
    g_count++;
    return 0;
}

TEST(ten_thousand_tasklets_created_then_run) {
    g_count = 0;
    int created = 0;
    for (int i = 0; i < 10000; i++)
        if (slp_tasklet_new(t_count, NULL, NULL) == SLP_OK) created++;
    CHECK_EQ_INT(created, 10000);
    CHECK_EQ_INT(slp_runcount(), 10001);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_count, 10000);
    CHECK_EQ_INT(slp_runcount(), 1);
}

static int32_t t_chain(void *arg) {
    long left = (long)(intptr_t)arg;
    g_count++;
    if (left > 1) {
        slp_status st = slp_tasklet_new(t_chain, IPTR(left - 1), NULL);
        if (st != SLP_OK) return 99;
    }
    return 0;
}

TEST(ten_thousand_tasklets_chained) {
    g_count = 0;
    CHECK_ST(slp_tasklet_new(t_chain, IPTR(10000), NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_count, 10000);
}

TEST(thousands_blocked_then_released_in_fifo_order) {
    enum { N = 3000 };
    slp_channel *ch = NEW_CHANNEL();
    static struct op ops[N];
    slp_tasklet *ts[N];
    for (int i = 0; i < N; i++) {
        op_init(&ops[i], ch, SENTINEL, 0);
        ts[i] = NULL;
        if (slp_tasklet_new(op_recv, &ops[i], &ts[i]) != SLP_OK) break;
    }
    CHECK(ts[N - 1] != NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -N);
    int sent_ok = 0;
    for (int i = 0; i < N; i++)
        if (slp_channel_send(ch, IPTR(i + 1)) == SLP_OK) sent_ok++;
    CHECK_EQ_INT(sent_ok, N);
    CHECK_ST(slp_run(), SLP_OK);
    int in_order = 0;
    for (int i = 0; i < N; i++)
        if (ops[i].st == SLP_OK && ops[i].val == IPTR(i + 1)) in_order++;
    CHECK_EQ_INT(in_order, N);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    for (int i = 0; i < N; i++) slp_tasklet_release(ts[i]);
    slp_channel_release(ch);
}

static int32_t t_many_yields(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++)
        if (slp_schedule() != SLP_OK) return 1;
    g_count++;
    return 0;
}

TEST(hundred_tasklets_thousand_yields_each) {
    g_count = 0;
    for (int i = 0; i < 100; i++) CHECK_ST(slp_tasklet_new(t_many_yields, NULL, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_count, 100);
}

static int64_t g_tid_a, g_tid_b;
static void *thread_get_id(void *arg) {
    *(int64_t *)arg = slp_thread_id();
    return NULL;
}

TEST(thread_ids_differ_and_are_not_reused) {
    pthread_t th;
    g_tid_a = g_tid_b = 0;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_get_id, &g_tid_a), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_get_id, &g_tid_b), 0);
    pthread_join(th, NULL);
    CHECK(g_tid_a > 0);
    CHECK(g_tid_b > 0);
    CHECK(g_tid_a != slp_thread_id());
    CHECK(g_tid_b != slp_thread_id());
    CHECK(g_tid_a != g_tid_b);
}
