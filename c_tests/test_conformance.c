/* test_conformance.c - SPEC §10 conformance scenarios 1-14 (the single-thread ones), one test
 * each, named after the scenario. */
#include "harness.h"
#include "common.h"

/* 1. T sends 1 on ch; slp_tasklet_run(T) → T blocked, balance 1. Same with receive → −1. */
TEST(s01_run_blocks_sender_and_receiver_balance) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s;
    op_init(&s, ch, IPTR(1), 0);
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_OK);
    slp_tasklet_release(t);

    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    t = SPAWN(op_recv, &r);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(2)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(2));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 2. Receivers a, b, c block (balance −3); main sends 0, 1, 2 → a got 0, b 1, c 2. */
TEST(s02_receivers_served_fifo) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r[3];
    slp_tasklet *t[3];
    for (int i = 0; i < 3; i++) {
        op_init(&r[i], ch, SENTINEL, 0);
        t[i] = SPAWN(op_recv, &r[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -3);
    for (int i = 0; i < 3; i++) CHECK_ST(slp_channel_send(ch, IPTR(i)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(r[i].st, SLP_OK);
        CHECK_EQ_PTR(r[i].val, IPTR(i));
        slp_tasklet_release(t[i]);
    }
    slp_channel_release(ch);
}

/* 3. The two preference tables of 5.1, as event logs, with O = a third runnable tasklet. */
static void table_row(bool sender_blocked, int pref, bool all, const char *expected) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    struct op r, s;
    op_init(&r, ch, SENTINEL, 'R');
    op_init(&s, ch, IPTR(5), 'S');
    slp_tasklet *first = SPAWN(sender_blocked ? op_send : op_recv, sender_blocked ? (void *)&s : (void *)&r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), sender_blocked ? 1 : -1);
    log_reset();
    slp_tasklet *second = SPAWN(sender_blocked ? op_recv : op_send, sender_blocked ? (void *)&r : (void *)&s);
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, expected) == 0, "%s, preference %d, schedule_all %d: got \"%s\", expected \"%s\"",
              sender_blocked ? "R receives from blocked S" : "S sends to blocked R", pref, (int)all, g_log,
              expected);
    CHECK_EQ_PTR(r.val, IPTR(5));
    slp_tasklet_release(first);
    slp_tasklet_release(second);
    slp_tasklet_release(o);
    slp_channel_release(ch);
}

TEST(s03_preference_tables) {
    /* S sends to a blocked R */
    table_row(false, -1, false, "ROS");
    table_row(false, 0, false, "SOR");
    table_row(false, 1, false, "SOR");
    table_row(false, -1, true, "ORS");
    /* R receives from a blocked S */
    table_row(true, -1, false, "ROS");
    table_row(true, 0, false, "ROS");
    table_row(true, 1, false, "SOR");
    table_row(true, -1, true, "OSR");
}

/* 4. Main receives on a fresh channel, single thread, nothing else → SLP_E_DEADLOCK, balance 0. */
TEST(s04_main_receive_alone_deadlock) {
    slp_channel *ch = NEW_CHANNEL();
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK(slp_channel_queue(ch) == NULL);
    CHECK(!slp_tasklet_blocked(slp_main()));
    slp_channel_release(ch);
}

/* 5. T ends without sending while main is blocked receiving → main's receive returns
 *    SLP_E_DEADLOCK; if T returned error 42 instead, main's receive returns 42. */
static int32_t t_end_with(void *arg) {
    log_c('T');
    return (int32_t)(intptr_t)arg;
}

TEST(s05_tasklet_ends_while_main_blocked) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_end_with, IPTR(0));
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_LOG("T");
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);

    log_reset();
    t = SPAWN(t_end_with, IPTR(42));
    CHECK_ST(slp_channel_receive(ch, &v), 42);
    CHECK_LOG("T");
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 6. send_exception(ch, 7, p) to a blocked receiver → its receive returns 7 and it can read p. */
TEST(s06_send_exception_to_blocked_receiver) {
    static int payload;
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send_exception(ch, 7, &payload), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, 7);
    CHECK_EQ_PTR(r.exc, &payload);
    CHECK_EQ_PTR(r.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 7. Two senders blocked; kill each → balance 2, 1, 0; the killed tasklets' sends return
 *    SLP_E_KILLED. */
TEST(s07_kill_blocked_senders) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s[2];
    slp_tasklet *t[2];
    for (int i = 0; i < 2; i++) {
        op_init(&s[i], ch, IPTR(i), 0);
        s[i].ret = SLP_E_KILLED;
        t[i] = SPAWN(op_send, &s[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 2);
    CHECK_ST(slp_tasklet_kill(t[0], false), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    CHECK_ST(slp_tasklet_kill(t[1], false), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_ST(s[i].st, SLP_E_KILLED);
        CHECK(!slp_tasklet_alive(t[i]));
        slp_tasklet_release(t[i]);
    }
    slp_channel_release(ch);
}

/* 8. Blocked sender; close → closing, not closed; kill the sender → closed; open → neither. */
TEST(s08_close_with_blocked_sender) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s;
    op_init(&s, ch, IPTR(1), 0);
    s.ret = SLP_E_KILLED;
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK(slp_channel_closed(ch));
    CHECK_ST(slp_channel_open(ch), SLP_OK);
    CHECK(!slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 9. Close an empty channel; send and receive → SLP_E_CLOSED. Shutdown with a blocked
 *    receiver → it returns SLP_E_CLOSED. */
TEST(s09_closed_channel_and_shutdown) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_CLOSED);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_CLOSED);
    CHECK_EQ_PTR(v, SENTINEL);
    slp_channel_release(ch);

    ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, SLP_E_CLOSED);
    CHECK(!slp_tasklet_alive(t));
    CHECK(slp_channel_closed(ch));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 10. Kill a never-started tasklet → its function never runs, arg_free runs once, not alive. */
static int g_ran10;
static int32_t t_must_not_run(void *arg) {
    (void)arg;
    g_ran10++;
    return 0;
}

TEST(s10_kill_never_started) {
    int freed = 0;
    g_ran10 = 0;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = count_free;
    slp_tasklet *t = SPAWN_EX(t_must_not_run, &freed, &o);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_EQ_INT(freed, 1);
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran10, 0);
    slp_tasklet_release(t);
    CHECK_EQ_INT(freed, 1);
}

/* 11. kill(T, pending=true) on a blocked T → T alive, runnable, balance restored; after
 *     slp_run, T's receive returned SLP_E_KILLED and T is dead. */
TEST(s11_pending_kill_of_blocked) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    r.ret = SLP_E_KILLED;
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK(slp_tasklet_alive(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(r.done, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, SLP_E_KILLED);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 12. slp_schedule_remove() in the only tasklet under slp_run → slp_run returns, T paused;
 *     slp_tasklet_insert(T); slp_run → T finishes. */
static slp_status g_st12;
static int32_t t_remove12(void *arg) {
    (void)arg;
    log_c('a');
    g_st12 = slp_schedule_remove();
    log_c('b');
    return 0;
}

TEST(s12_schedule_remove_then_insert) {
    log_reset();
    g_st12 = 12345;
    slp_tasklet *t = SPAWN(t_remove12, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("a");
    CHECK(slp_tasklet_paused(t));
    CHECK(slp_tasklet_alive(t));
    CHECK_ST(slp_tasklet_insert(t), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(g_st12, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
}

/* 13. switch_trap(1): schedule, send-that-would-block, slp_tasklet_run → SLP_E_SWITCH_TRAP,
 *     nothing changed; switch_trap(-1) restores. */
TEST(s13_switch_trap) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_log, IPTR('t'));
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_ST(slp_schedule(), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_SWITCH_TRAP);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_tasklet_run(t), SLP_E_SWITCH_TRAP);
    CHECK_LOG("");
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_ST(slp_tasklet_run(t), SLP_OK);
    CHECK_LOG("t");
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* 14. Queue M, a, b, c; slp_tasklet_run(b) from M → order b, c, M, then a later. */
TEST(s14_run_keeps_callers_place) {
    log_reset();
    slp_tasklet *a = SPAWN(t_log, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_ST(slp_tasklet_run(b), SLP_OK);
    log_c('M');
    CHECK_LOG("bcM");
    CHECK(slp_tasklet_alive(a));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("bcMa");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}
