/* test_channel.c - SPEC §5 / §5.1 same-thread channels: balance, FIFO, both preference tables,
 * schedule_all, close/open/shutdown, buffered channels, send_exception, send_sequence, queue,
 * kill/throw of waiters, reference counting. */
#include "harness.h"
#include "common.h"

TEST(new_channel_defaults) {
    slp_channel *ch = NULL;
    CHECK_ST(slp_channel_new(&ch), SLP_OK);
    CHECK(ch != NULL);
    if (!ch) return;
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(slp_channel_preference(ch), -1);
    CHECK(!slp_channel_schedule_all(ch));
    CHECK(!slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch));
    CHECK_EQ_INT(slp_channel_capacity(ch), 0);
    CHECK(slp_channel_queue(ch) == NULL);
    slp_channel_release(ch);
}

TEST(new_ex_options_are_applied) {
    slp_channel_options o;
    slp_channel_options_init(&o);
    o.preference = 0;
    o.capacity = 4;
    o.schedule_all = true;
    slp_channel *ch = NULL;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_OK);
    if (!ch) return;
    CHECK_EQ_INT(slp_channel_preference(ch), 0);
    CHECK_EQ_INT(slp_channel_capacity(ch), 4);
    CHECK(slp_channel_schedule_all(ch));
    slp_channel_release(ch);

    o.preference = 1;
    o.capacity = 0;
    o.schedule_all = false;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_OK);
    CHECK_EQ_INT(slp_channel_preference(ch), 1);
    CHECK_EQ_INT(slp_channel_capacity(ch), 0);
    CHECK(!slp_channel_schedule_all(ch));
    slp_channel_release(ch);
}

TEST(new_ex_preference_is_clamped) {
    slp_channel_options o;
    slp_channel_options_init(&o);
    slp_channel *ch = NULL;
    o.preference = 7;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_OK);
    CHECK_EQ_INT(slp_channel_preference(ch), 1);
    slp_channel_release(ch);
    ch = NULL;
    o.preference = -9;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_OK);
    CHECK_EQ_INT(slp_channel_preference(ch), -1);
    slp_channel_release(ch);
}

TEST(new_ex_bad_struct_size) {
    slp_channel_options o;
    slp_channel_options_init(&o);
    o.struct_size = 0;
    slp_channel *ch = (slp_channel *)SENTINEL;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(ch, SENTINEL);
    o.struct_size = 2;
    CHECK_ST(slp_channel_new_ex(&o, &ch), SLP_E_INVALID);
    CHECK_EQ_PTR(ch, SENTINEL);
}

TEST(set_preference_clamps) {
    slp_channel *ch = NEW_CHANNEL();
    slp_channel_set_preference(ch, 0);
    CHECK_EQ_INT(slp_channel_preference(ch), 0);
    slp_channel_set_preference(ch, 1);
    CHECK_EQ_INT(slp_channel_preference(ch), 1);
    slp_channel_set_preference(ch, -1);
    CHECK_EQ_INT(slp_channel_preference(ch), -1);
    slp_channel_set_preference(ch, 5);
    CHECK_EQ_INT(slp_channel_preference(ch), 1);
    slp_channel_set_preference(ch, -7);
    CHECK_EQ_INT(slp_channel_preference(ch), -1);
    slp_channel_set_preference(ch, INT32_MAX);
    CHECK_EQ_INT(slp_channel_preference(ch), 1);
    slp_channel_set_preference(ch, INT32_MIN);
    CHECK_EQ_INT(slp_channel_preference(ch), -1);
    slp_channel_release(ch);
}

TEST(set_schedule_all) {
    slp_channel *ch = NEW_CHANNEL();
    slp_channel_set_schedule_all(ch, true);
    CHECK(slp_channel_schedule_all(ch));
    slp_channel_set_schedule_all(ch, false);
    CHECK(!slp_channel_schedule_all(ch));
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ balance and FIFO */

TEST(balance_counts_blocked_senders) {
    slp_channel *ch = NEW_CHANNEL();
    struct op o[3];
    slp_tasklet *t[3];
    for (int i = 0; i < 3; i++) {
        op_init(&o[i], ch, IPTR(10 + i), (char)('a' + i));
        t[i] = SPAWN(op_send, &o[i]);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch), i + 1);
        CHECK(slp_tasklet_blocked(t[i]));
    }
    log_reset();
    for (int i = 0; i < 3; i++) {
        void *v = NULL;
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, IPTR(10 + i)); /* FIFO */
        CHECK_EQ_INT(slp_channel_balance(ch), 2 - i);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abc");
    for (int i = 0; i < 3; i++) {
        CHECK_ST(o[i].st, SLP_OK);
        slp_tasklet_release(t[i]);
    }
    slp_channel_release(ch);
}

TEST(balance_counts_blocked_receivers) {
    slp_channel *ch = NEW_CHANNEL();
    struct op o[3];
    slp_tasklet *t[3];
    for (int i = 0; i < 3; i++) {
        op_init(&o[i], ch, SENTINEL, 0);
        t[i] = SPAWN(op_recv, &o[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -3);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(slp_channel_send(ch, IPTR(20 + i)), SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch), -2 + i);
    }
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(o[i].st, SLP_OK);
        CHECK_EQ_PTR(o[i].val, IPTR(20 + i));
        slp_tasklet_release(t[i]);
    }
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ preference tables (§5.1) */

/* S sends to a blocked R, O is a third runnable tasklet; events logged after each op. */
static void send_case(int pref, bool all, const char *expected) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    struct op r, s;
    op_init(&r, ch, SENTINEL, 'R');
    op_init(&s, ch, IPTR(77), 'S');
    slp_tasklet *tr = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    log_reset();
    slp_tasklet *ts = SPAWN(op_send, &s);
    slp_tasklet *to = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, expected) == 0, "preference %d schedule_all %d: S->blocked R order \"%s\", expected \"%s\"",
              pref, (int)all, g_log, expected);
    CHECK_ST(s.st, SLP_OK);
    CHECK_ST(r.st, SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(77));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(tr);
    slp_tasklet_release(ts);
    slp_tasklet_release(to);
    slp_channel_release(ch);
}

/* R receives from a blocked S, O is a third runnable tasklet. */
static void receive_case(int pref, bool all, const char *expected) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    struct op r, s;
    op_init(&r, ch, SENTINEL, 'R');
    op_init(&s, ch, IPTR(88), 'S');
    slp_tasklet *ts = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    log_reset();
    slp_tasklet *tr = SPAWN(op_recv, &r);
    slp_tasklet *to = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, expected) == 0, "preference %d schedule_all %d: R<-blocked S order \"%s\", expected \"%s\"",
              pref, (int)all, g_log, expected);
    CHECK_ST(s.st, SLP_OK);
    CHECK_ST(r.st, SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(88));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(tr);
    slp_tasklet_release(ts);
    slp_tasklet_release(to);
    slp_channel_release(ch);
}

TEST(pref_send_to_blocked_receiver_minus1_R_O_S) { send_case(-1, false, "ROS"); }
TEST(pref_send_to_blocked_receiver_0_S_O_R) { send_case(0, false, "SOR"); }
TEST(pref_send_to_blocked_receiver_1_S_O_R) { send_case(1, false, "SOR"); }
TEST(pref_send_to_blocked_receiver_schedule_all_O_R_S) {
    send_case(-1, true, "ORS");
    send_case(0, true, "ORS");
    send_case(1, true, "ORS");
}
TEST(pref_receive_from_blocked_sender_minus1_R_O_S) { receive_case(-1, false, "ROS"); }
TEST(pref_receive_from_blocked_sender_0_R_O_S) { receive_case(0, false, "ROS"); }
TEST(pref_receive_from_blocked_sender_1_S_O_R) { receive_case(1, false, "SOR"); }
TEST(pref_receive_from_blocked_sender_schedule_all_O_S_R) {
    receive_case(-1, true, "OSR");
    receive_case(0, true, "OSR");
    receive_case(1, true, "OSR");
}

TEST(pref_set_after_creation_takes_effect) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 'R');
    slp_tasklet *tr = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    slp_channel_set_preference(ch, 0);
    log_reset();
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_LOG(""); /* preference 0: the caller (main) continues */
    CHECK(slp_tasklet_scheduled(tr));
    CHECK(!slp_tasklet_blocked(tr));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("R");
    slp_tasklet_release(tr);
    slp_channel_release(ch);
}

TEST(main_send_default_preference_receiver_runs_at_once) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 'R');
    slp_tasklet *tr = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    log_reset();
    CHECK_ST(slp_channel_send(ch, IPTR(3)), SLP_OK);
    CHECK_LOG("R");
    CHECK(!slp_tasklet_alive(tr));
    CHECK_EQ_PTR(r.val, IPTR(3));
    slp_tasklet_release(tr);
    slp_channel_release(ch);
}

TEST(main_receive_preference_1_sender_runs_at_once) {
    slp_channel *ch = NEW_CHANNEL_EX(1, 0, false);
    struct op s;
    op_init(&s, ch, IPTR(4), 'S');
    slp_tasklet *ts = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    log_reset();
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(4));
    CHECK_LOG("S");
    CHECK(!slp_tasklet_alive(ts));
    slp_tasklet_release(ts);
    slp_channel_release(ch);
}

TEST(main_blocked_sending_woken_by_tasklet) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 'R');
    log_reset();
    slp_tasklet *tr = SPAWN(op_recv, &r);
    CHECK_ST(slp_channel_send(ch, IPTR(6)), SLP_OK);
    log_c('M');
    CHECK_LOG("RM"); /* receive, preference -1: the receiver continues, main after */
    CHECK_EQ_PTR(r.val, IPTR(6));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(tr);
    slp_channel_release(ch);
}

/* Main as the sender (outside slp_run: main is in the queue), O runnable: queue M, O. */
static void main_send_case(int pref, bool all, const char *after_send, const char *after_run) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    struct op r;
    op_init(&r, ch, SENTINEL, 'R');
    slp_tasklet *tr = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    log_reset();
    slp_tasklet *to = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_MSG(strcmp(g_log, after_send) == 0, "pref %d all %d: after main's send \"%s\", expected \"%s\"", pref,
              (int)all, g_log, after_send);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, after_run) == 0, "pref %d all %d: after slp_run \"%s\", expected \"%s\"", pref,
              (int)all, g_log, after_run);
    CHECK_EQ_PTR(r.val, IPTR(1));
    slp_tasklet_release(tr);
    slp_tasklet_release(to);
    slp_channel_release(ch);
}

TEST(main_sends_with_third_tasklet_all_preferences) {
    main_send_case(-1, false, "RO", "RO"); /* R, O, S */
    main_send_case(0, false, "", "OR");    /* S, O, R */
    main_send_case(1, false, "", "OR");    /* S, O, R */
    main_send_case(-1, true, "OR", "OR");  /* O, R, S */
}

/* Main as the receiver from a blocked sender, O runnable. */
static void main_receive_case(int pref, bool all, const char *after_receive, const char *after_run) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    struct op s;
    op_init(&s, ch, IPTR(2), 'S');
    slp_tasklet *ts = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    log_reset();
    slp_tasklet *to = SPAWN(t_log, IPTR('O'));
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(2));
    CHECK_MSG(strcmp(g_log, after_receive) == 0, "pref %d all %d: after main's receive \"%s\", expected \"%s\"",
              pref, (int)all, g_log, after_receive);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, after_run) == 0, "pref %d all %d: after slp_run \"%s\", expected \"%s\"", pref,
              (int)all, g_log, after_run);
    slp_tasklet_release(ts);
    slp_tasklet_release(to);
    slp_channel_release(ch);
}

TEST(main_receives_with_third_tasklet_all_preferences) {
    main_receive_case(-1, false, "", "OS");   /* R, O, S */
    main_receive_case(0, false, "", "OS");    /* R, O, S */
    main_receive_case(1, false, "SO", "SO");  /* S, O, R */
    main_receive_case(-1, true, "OS", "OS");  /* O, S, R */
}

/* ------------------------------------------------------------------ close / open / shutdown */

TEST(close_empty_channel) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK(slp_channel_closed(ch));
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_CLOSED);
    CHECK_LAST_ERROR_SET();
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_CLOSED);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_ST(slp_channel_send_exception(ch, 3, NULL), SLP_E_CLOSED);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_channel_close(ch), SLP_OK); /* idempotent */
    CHECK_ST(slp_channel_open(ch), SLP_OK);
    CHECK(!slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch));
    /* open again: a receive blocks (here: main alone → deadlock, not closed) */
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    slp_channel_release(ch);
}

TEST(close_in_tasklet_would_block_returns_closed) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    struct op r, s;
    op_init(&r, ch, SENTINEL, 'r');
    op_init(&s, ch, IPTR(1), 's');
    log_reset();
    slp_tasklet *tr = SPAWN(op_recv, &r);
    slp_tasklet *ts = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("rs");
    CHECK_ST(r.st, SLP_E_CLOSED);
    CHECK_ST(s.st, SLP_E_CLOSED);
    CHECK_EQ_PTR(r.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(tr);
    slp_tasklet_release(ts);
    slp_channel_release(ch);
}

TEST(close_with_waiter_pairs_existing_then_closed) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r1, r2;
    op_init(&r1, ch, SENTINEL, 0);
    op_init(&r2, ch, SENTINEL, 0);
    slp_tasklet *t1 = SPAWN(op_recv, &r1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch)); /* balance -1 */
    CHECK(slp_tasklet_blocked(t1)); /* close wakes nobody */
    /* a new receiver would block: closed for it */
    slp_tasklet *t2 = SPAWN(op_recv, &r2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r2.st, SLP_E_CLOSED);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    /* the existing waiter can still be paired */
    CHECK_ST(slp_channel_send(ch, IPTR(5)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r1.st, SLP_OK);
    CHECK_EQ_PTR(r1.val, IPTR(5));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_closed(ch));
    slp_tasklet_release(t1);
    slp_tasklet_release(t2);
    slp_channel_release(ch);
}

TEST(shutdown_wakes_blocked_receivers_with_closed) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r[2];
    slp_tasklet *t[2];
    for (int i = 0; i < 2; i++) {
        op_init(&r[i], ch, SENTINEL, (char)('a' + i));
        t[i] = SPAWN(op_recv, &r[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -2);
    log_reset();
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_closed(ch));
    CHECK(!slp_tasklet_blocked(t[0]));
    CHECK(!slp_tasklet_blocked(t[1]));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab");
    for (int i = 0; i < 2; i++) {
        CHECK_ST(r[i].st, SLP_E_CLOSED);
        CHECK_EQ_PTR(r[i].val, SENTINEL);
        CHECK(!slp_tasklet_alive(t[i]));
        slp_tasklet_release(t[i]);
    }
    slp_channel_release(ch);
}

TEST(shutdown_wakes_blocked_senders_with_closed) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s[2];
    slp_tasklet *t[2];
    for (int i = 0; i < 2; i++) {
        op_init(&s[i], ch, IPTR(i), 0);
        t[i] = SPAWN(op_send, &s[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 2);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_ST(s[i].st, SLP_E_CLOSED);
        slp_tasklet_release(t[i]);
    }
    CHECK(slp_channel_closed(ch));
    CHECK_ST(slp_channel_open(ch), SLP_OK);
    CHECK(!slp_channel_closing(ch));
    slp_channel_release(ch);
}

struct drain {
    slp_channel *ch;
    int count;
    int sum;
    slp_status last;
};

static int32_t t_receive_until_closed(void *arg) {
    struct drain *d = arg;
    for (;;) {
        void *v = NULL;
        slp_status st = slp_channel_receive(d->ch, &v);
        if (st != SLP_OK) {
            d->last = st;
            break;
        }
        d->count++;
        d->sum = d->sum * 10 + PTRI(v);
    }
    return 0;
}

TEST(receive_until_closed_idiom) {
    slp_channel *ch = NEW_CHANNEL();
    struct drain d = {ch, 0, 0, 12345};
    slp_tasklet *t = SPAWN(t_receive_until_closed, &d);
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 1; i <= 3; i++) CHECK_ST(slp_channel_send(ch, IPTR(i)), SLP_OK);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(d.count, 3);
    CHECK_EQ_INT(d.sum, 123);
    CHECK_ST(d.last, SLP_E_CLOSED);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ buffered channels */

TEST(buffered_send_does_not_block_until_full) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 3, false);
    CHECK_EQ_INT(slp_channel_capacity(ch), 3);
    for (int i = 1; i <= 3; i++) {
        CHECK_ST(slp_channel_send(ch, IPTR(i)), SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch), i);
    }
    /* full: main would block with nothing to wake it */
    CHECK_ST(slp_channel_send(ch, IPTR(4)), SLP_E_DEADLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), 3);
    for (int i = 1; i <= 3; i++) {
        void *v = NULL;
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, IPTR(i));
        CHECK_EQ_INT(slp_channel_balance(ch), 3 - i);
    }
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_channel_release(ch);
}

struct bsender {
    slp_channel *ch;
    int n;
    slp_status st[8];
};

static int32_t t_send_n(void *arg) {
    struct bsender *b = arg;
    for (int i = 0; i < b->n; i++) {
        b->st[i] = slp_channel_send(b->ch, IPTR(i + 1));
        log_c((char)('1' + i));
    }
    return 0;
}

TEST(buffered_sender_blocks_when_full_balance_counts_items) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 3, false);
    struct bsender b = {ch, 4, {0}};
    log_reset();
    slp_tasklet *t = SPAWN(t_send_n, &b);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("123"); /* the 4th send blocks */
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch), 4); /* 3 buffered + 1 waiting sender */
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK(!slp_tasklet_blocked(t)); /* its item moved into the buffer */
    CHECK_EQ_INT(slp_channel_balance(ch), 3);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("1234");
    for (int i = 0; i < 4; i++) CHECK_ST(b.st[i], SLP_OK);
    for (int i = 2; i <= 4; i++) {
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, IPTR(i));
    }
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(buffered_blocked_receiver_gets_value_directly) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    struct op r;
    op_init(&r, ch, SENTINEL, 'R');
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(9)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("R");
    CHECK_EQ_PTR(r.val, IPTR(9));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(buffered_shutdown_lets_receivers_drain_first) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 4, false);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_channel_send(ch, IPTR(2)), SLP_OK);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch)); /* balance 2 */
    CHECK_EQ_INT(slp_channel_balance(ch), 2);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(2));
    CHECK(slp_channel_closed(ch));
    v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_CLOSED);
    CHECK_EQ_PTR(v, SENTINEL);
    slp_channel_release(ch);
}

/* Stackless close(): "prevents the channel queue from growing"; a closed channel (closing and
 * balance 0) must not become un-closed by a send that lands in the buffer. */
TEST(buffered_send_after_close_is_closed) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 4, false);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK_ST(slp_channel_send(ch, IPTR(2)), SLP_E_CLOSED);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK(slp_channel_closed(ch));
    CHECK_ST(slp_channel_send(ch, IPTR(3)), SLP_E_CLOSED);
    CHECK(slp_channel_closed(ch));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_channel_release(ch);

    ch = NEW_CHANNEL_EX(-1, 4, false);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK(slp_channel_closed(ch));
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_CLOSED);
    CHECK_ST(slp_channel_send_exception(ch, 3, NULL), SLP_E_CLOSED);
    CHECK(slp_channel_closed(ch));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    /* drain whatever a broken implementation buffered */
    slp_tasklet_set_block_trap(slp_main(), true);
    while (slp_channel_receive(ch, &v) >= 0 && slp_channel_balance(ch) > 0) {
    }
    slp_tasklet_set_block_trap(slp_main(), false);
    slp_channel_release(ch);
}

TEST(buffered_drain_idiom_in_tasklet) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 8, false);
    for (int i = 1; i <= 5; i++) CHECK_ST(slp_channel_send(ch, IPTR(i)), SLP_OK);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    struct drain d = {ch, 0, 0, 12345};
    slp_tasklet *t = SPAWN(t_receive_until_closed, &d);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(d.count, 5);
    CHECK_EQ_INT(d.sum, 12345);
    CHECK_ST(d.last, SLP_E_CLOSED);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(buffered_shutdown_wakes_blocked_receiver) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, SLP_E_CLOSED);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(buffered_close_keeps_items) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK(slp_channel_closing(ch));
    CHECK(!slp_channel_closed(ch));
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK(slp_channel_closed(ch));
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_CLOSED);
    slp_channel_release(ch);
}

TEST(buffered_exception_is_queued_in_order) {
    static int data;
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_channel_send_exception(ch, 9, &data), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 2);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), 9);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_PTR(slp_exception_data(), &data);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ send_exception */

TEST(send_exception_code_not_positive_is_invalid) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send_exception(ch, 0, NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_channel_send_exception(ch, -1, NULL), SLP_E_INVALID);
    CHECK_ST(slp_channel_send_exception(ch, SLP_E_CLOSED, NULL), SLP_E_INVALID);
    CHECK_ST(slp_channel_send_exception(ch, INT32_MIN, NULL), SLP_E_INVALID);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_channel_send_exception(ch, 1, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, 1);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(send_exception_blocks_like_send_until_received) {
    static int data;
    slp_channel *ch = NEW_CHANNEL();
    struct op s;
    op_init(&s, ch, &data, 's');
    s.code = 12;
    log_reset();
    slp_tasklet *t = SPAWN(op_send_exc, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), 12);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_PTR(slp_exception_data(), &data);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_OK);
    CHECK_LOG("s");
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ send_sequence */

TEST(send_sequence_to_receiver_loop) {
    slp_channel *ch = NEW_CHANNEL();
    struct drain d = {ch, 0, 0, 12345};
    slp_tasklet *t = SPAWN(t_receive_until_closed, &d);
    CHECK_ST(slp_run(), SLP_OK);
    void *vals[5] = {IPTR(1), IPTR(2), IPTR(3), IPTR(4), IPTR(5)};
    size_t sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, vals, 5, &sent), SLP_OK);
    CHECK_EQ_INT(sent, 5);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(d.count, 5);
    CHECK_EQ_INT(d.sum, 12345);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(send_sequence_empty_and_buffered) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 10, false);
    size_t sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, NULL, 0, &sent), SLP_OK);
    CHECK_EQ_INT(sent, 0);
    void *vals[3] = {IPTR(7), IPTR(8), IPTR(9)};
    sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, vals, 3, &sent), SLP_OK);
    CHECK_EQ_INT(sent, 3);
    CHECK_EQ_INT(slp_channel_balance(ch), 3);
    for (int i = 0; i < 3; i++) {
        void *v = NULL;
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, vals[i]);
    }
    slp_channel_release(ch);
}

/* The one exception to "out-parameters only on success": a failed send_sequence writes how
 * many values were sent, so the caller knows which values are still its own. */
TEST(send_sequence_error_reports_how_many_were_sent) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    void *vals[5] = {IPTR(1), IPTR(2), IPTR(3), IPTR(4), IPTR(5)};
    size_t sent = 999;
    /* two fit, the third would block main forever */
    CHECK_ST(slp_channel_send_sequence(ch, vals, 5, &sent), SLP_E_DEADLOCK);
    CHECK_EQ_INT(sent, 2);
    const char *e = slp_last_error();
    CHECK_MSG(e && strchr(e, '2') != NULL, "slp_last_error() \"%s\" does not say 2 were sent", e ? e : "");
    CHECK_EQ_INT(slp_channel_balance(ch), 2);
    slp_channel_release(ch);

    ch = NEW_CHANNEL();
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, vals, 5, &sent), SLP_E_CLOSED);
    CHECK_EQ_INT(sent, 0);
    /* invalid arguments: nothing written */
    sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, NULL, 2, &sent), SLP_E_INVALID);
    CHECK_ST(slp_channel_send_sequence(ch, vals, 2, NULL), SLP_E_INVALID);
    CHECK_EQ_INT(sent, 999);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ queue */

TEST(channel_queue_returns_new_reference_to_first_waiter) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK(slp_channel_queue(ch) == NULL);
    struct op r1, r2;
    op_init(&r1, ch, SENTINEL, 0);
    op_init(&r2, ch, SENTINEL, 0);
    slp_tasklet *t1 = SPAWN(op_recv, &r1);
    slp_tasklet *t2 = SPAWN(op_recv, &r2);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet *q = slp_channel_queue(ch);
    CHECK_EQ_PTR(q, t1);
    /* a new reference: our handle stays valid after we drop t1 */
    slp_tasklet_release(t1);
    CHECK(slp_tasklet_blocked(q));
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK(!slp_tasklet_alive(q));
    slp_tasklet_release(q);
    q = slp_channel_queue(ch);
    CHECK_EQ_PTR(q, t2);
    slp_tasklet_release(q);
    CHECK_ST(slp_channel_send(ch, IPTR(2)), SLP_OK);
    CHECK(slp_channel_queue(ch) == NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r1.val, IPTR(1));
    CHECK_EQ_PTR(r2.val, IPTR(2));
    slp_tasklet_release(t2);
    slp_channel_release(ch);
}

TEST(channel_queue_sender) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s;
    op_init(&s, ch, IPTR(1), 0);
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet *q = slp_channel_queue(ch);
    CHECK_EQ_PTR(q, t);
    slp_tasklet_release(q);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ kill / throw waiters */

TEST(kill_middle_waiter_keeps_fifo) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r[3];
    slp_tasklet *t[3];
    for (int i = 0; i < 3; i++) {
        op_init(&r[i], ch, SENTINEL, 0);
        r[i].ret = SLP_E_KILLED;
        t[i] = SPAWN(op_recv, &r[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -3);
    CHECK_ST(slp_tasklet_kill(t[1], false), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -2);
    CHECK_ST(r[1].st, SLP_E_KILLED);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_channel_send(ch, IPTR(2)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r[0].val, IPTR(1));
    CHECK_EQ_PTR(r[2].val, IPTR(2));
    CHECK_EQ_PTR(r[1].val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    for (int i = 0; i < 3; i++) slp_tasklet_release(t[i]);
    slp_channel_release(ch);
}

TEST(throw_to_blocked_sender_corrects_balance) {
    static int data;
    slp_channel *ch = NEW_CHANNEL();
    struct op s;
    op_init(&s, ch, IPTR(1), 0);
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    CHECK_ST(slp_tasklet_throw(t, 21, &data, false), SLP_OK);
    CHECK_ST(s.st, 21);
    CHECK_EQ_PTR(s.exc, &data);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_queue(ch) == NULL);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(kill_pending_waiter_leaves_channel_at_once) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s;
    op_init(&s, ch, IPTR(1), 0);
    s.ret = SLP_E_KILLED;
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_queue(ch) == NULL);
    /* the value was not passed: a receive would block (deadlock for lone main) */
    void *v = SENTINEL;
    slp_tasklet_set_block_trap(slp_main(), true);
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_WOULD_BLOCK);
    slp_tasklet_set_block_trap(slp_main(), false);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_E_KILLED);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(kill_blocked_sender_on_full_buffered_channel) {
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    struct bsender b = {ch, 3, {0}};
    log_reset();
    slp_tasklet *t = SPAWN(t_send_n, &b);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("12");
    CHECK_EQ_INT(slp_channel_balance(ch), 3);
    slp_tasklet *q = slp_channel_queue(ch);
    CHECK_EQ_PTR(q, t);
    slp_tasklet_release(q);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(b.st[2], SLP_E_KILLED);
    CHECK_EQ_INT(slp_channel_balance(ch), 2); /* its value was not buffered */
    CHECK(slp_channel_queue(ch) == NULL);      /* buffered items are not waiters */
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(2));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

/* ------------------------------------------------------------------ reference counting */

TEST(retain_release_balance) {
    slp_channel *ch = NEW_CHANNEL();
    slp_channel_retain(ch);
    slp_channel_retain(ch);
    slp_channel_release(ch);
    slp_channel_release(ch);
    CHECK_EQ_INT(slp_channel_balance(ch), 0); /* still one reference */
    slp_channel_release(ch);
    slp_channel_release(NULL);
    CHECK(1);
}

TEST(released_channel_with_waiter_stays_alive) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 'r');
    r.ret = SLP_E_KILLED;
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    slp_channel_release(ch); /* the runtime keeps it while t waits */
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_alive(t));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK); /* leaves the channel, which then goes */
    CHECK_ST(r.st, SLP_E_KILLED);
    CHECK_LOG("r");
    slp_tasklet_release(t);
}

static slp_channel *g_shared;
static int32_t t_send_on_shared(void *arg) {
    (void)arg;
    slp_status st = slp_channel_send(g_shared, IPTR(31));
    slp_channel_release(g_shared); /* this tasklet owned one reference */
    return st;
}

TEST(released_channel_with_waiter_still_delivers) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    slp_channel_retain(ch);
    g_shared = ch;            /* the sender owns this reference */
    slp_channel_release(ch);  /* ours */
    slp_tasklet *s = SPAWN(t_send_on_shared, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(31));
    CHECK(!slp_tasklet_alive(t));
    CHECK(!slp_tasklet_alive(s));
    slp_tasklet_release(t);
    slp_tasklet_release(s);
}

/* ------------------------------------------------------------------ stress */

struct ring_node {
    slp_channel *in, *out;
    long hops;
    long limit;
};

static long g_ring_total;

static int32_t t_ring(void *arg) {
    struct ring_node *n = arg;
    for (;;) {
        void *v = NULL;
        slp_status st = slp_channel_receive(n->in, &v);
        if (st != SLP_OK) return st == SLP_E_CLOSED ? 0 : st;
        long token = (long)(intptr_t)v;
        n->hops++;
        g_ring_total++;
        if (token >= n->limit) {
            /* done: the next node's receive returns SLP_E_CLOSED */
            return slp_channel_shutdown(n->out) == SLP_OK ? 0 : 1;
        }
        st = slp_channel_send(n->out, IPTR(token + 1));
        if (st != SLP_OK) return st == SLP_E_CLOSED ? 0 : st;
    }
}

TEST(ring_of_100_tasklets_passes_token_100000_hops) {
    enum { N = 100 };
    static struct ring_node nodes[N];
    slp_channel *chs[N];
    slp_tasklet *ts[N];
    for (int i = 0; i < N; i++) chs[i] = NEW_CHANNEL();
    g_ring_total = 0;
    for (int i = 0; i < N; i++) {
        nodes[i].in = chs[i];
        nodes[i].out = chs[(i + 1) % N];
        nodes[i].hops = 0;
        nodes[i].limit = 100000;
        ts[i] = NULL;
        CHECK_ST(slp_tasklet_new(t_ring, &nodes[i], &ts[i]), SLP_OK);
    }
    CHECK_ST(slp_run(), SLP_OK); /* all block receiving */
    CHECK_ST(slp_channel_send(chs[0], IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ring_total, 100000);
    long sum = 0;
    for (int i = 0; i < N; i++) sum += nodes[i].hops;
    CHECK_EQ_INT(sum, 100000);
    CHECK_EQ_INT(nodes[0].hops, 1000);
    for (int i = 0; i < N; i++) {
        slp_channel_shutdown(chs[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < N; i++) {
        CHECK(!slp_tasklet_alive(ts[i]));
        slp_tasklet_release(ts[i]);
        slp_channel_release(chs[i]);
    }
}
