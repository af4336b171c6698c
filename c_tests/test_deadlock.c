/* test_deadlock.c - SPEC §5.3 rules 1-4 on a single thread (no other participating thread). */
#include "harness.h"
#include "common.h"

/* Rule 1: a tasklet blocks under slp_run with nothing runnable → slp_run returns, the blocker
 * stays blocked. */
TEST(rule1_run_returns_blocker_stays_blocked) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 'r');
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("");
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_alive(t));
    CHECK_EQ_INT(r.done, 0);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    /* calling slp_run again changes nothing */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_run_n(3), SLP_OK);
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("r");
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(rule1_many_blocked_run_returns) {
    slp_channel *ch = NEW_CHANNEL();
    struct op s[3];
    slp_tasklet *t[3];
    for (int i = 0; i < 3; i++) {
        op_init(&s[i], ch, IPTR(i), 0);
        t[i] = SPAWN(op_send, &s[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 3);
    CHECK_ST(slp_channel_shutdown(ch), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(s[i].st, SLP_E_CLOSED);
        slp_tasklet_release(t[i]);
    }
    slp_channel_release(ch);
}

/* Rule 2: main blocks itself, nothing could wake it → SLP_E_DEADLOCK, changing nothing. */
TEST(rule2_main_receive_alone) {
    slp_channel *ch = NEW_CHANNEL();
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_blocked(slp_main()));
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    /* the channel still works afterwards */
    struct op s;
    op_init(&s, ch, IPTR(3), 0);
    slp_tasklet *t = SPAWN(op_send, &s);
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(3));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(rule2_main_send_alone) {
    slp_channel *ch = NEW_CHANNEL();
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_channel_send_exception(ch, 4, NULL), SLP_E_DEADLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_queue(ch) == NULL);
    slp_channel_release(ch);
}

TEST(rule2_others_blocked_without_deadline) {
    slp_channel *ch = NEW_CHANNEL();
    slp_channel *other = NEW_CHANNEL();
    struct op r;
    op_init(&r, other, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(slp_channel_balance(other), -1); /* unchanged */
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(r.done, 0);
    cleanup_tasklet(t);
    slp_channel_release(ch);
    slp_channel_release(other);
}

TEST(rule2_paused_tasklet_cannot_wake_main) {
    slp_channel *ch = NEW_CHANNEL();
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    struct op s;
    op_init(&s, ch, IPTR(1), 0);
    slp_tasklet *t = SPAWN_EX(op_send, &s, &o);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_EQ_INT(s.done, 0);
    CHECK(slp_tasklet_paused(t));
    cleanup_tasklet(t);
    slp_channel_release(ch);
}

TEST(rule2_same_channel_blocked_receiver_cannot_help) {
    /* a tasklet already receives on ch; main receives too: both receivers, no sender possible */
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    slp_tasklet *q = slp_channel_queue(ch);
    CHECK_EQ_PTR(q, t); /* main did not stay in the queue */
    slp_tasklet_release(q);
    cleanup_tasklet(t);
    slp_channel_release(ch);
}

TEST(schedule_is_not_a_deadlock) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_schedule(), SLP_OK); /* main alone runnable: returns at once */
    CHECK(slp_tasklet_blocked(t));
    cleanup_tasklet(t);
    slp_channel_release(ch);
}

/* Sanity: main blocked, a runnable tasklet sends → main gets the value. */
static slp_channel *g_ch;
static int32_t t_send_later(void *arg) {
    log_c('a');
    slp_schedule();
    log_c('b');
    return slp_channel_send(g_ch, arg) == SLP_OK ? 0 : 1;
}

TEST(main_receive_woken_by_tasklet) {
    g_ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_send_later, IPTR(17));
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(g_ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(17));
    CHECK_LOG("ab");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(g_ch);
}

/* Rule 3: a tasklet that ends while main is blocked and nothing could wake main. */
static int32_t t_end_with(void *arg) {
    log_c('T');
    return (int32_t)(intptr_t)arg;
}

TEST(rule3_tasklet_ends_without_sending) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_end_with, IPTR(0));
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_LOG("T");
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(rule3_tasklet_returns_error) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_end_with, IPTR(42));
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), 42);
    CHECK_LOG("T");
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(!slp_tasklet_blocked(slp_main()));
    slp_tasklet_release(t);
    slp_channel_release(ch);
}

TEST(rule3_several_tasklets_end_then_deadlock) {
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_LOG("abAB"); /* every runnable tasklet got its turn first */
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_channel_release(ch);
}

TEST(rule3_tasklet_blocks_elsewhere_then_deadlock) {
    /* T blocks on another channel while main is blocked: main's call fails (rule 4 does not
     * apply to main's own call: T's receive fails first and T then ends). */
    slp_channel *ch = NEW_CHANNEL();
    slp_channel *other = NEW_CHANNEL();
    struct op r;
    op_init(&r, other, SENTINEL, 'r');
    log_reset();
    slp_tasklet *t = SPAWN(op_recv, &r);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_ST(r.st, SLP_E_DEADLOCK); /* rule 4 for T */
    CHECK_LOG("r");
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(slp_channel_balance(other), 0);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(ch);
    slp_channel_release(other);
}

/* Rule 4: a tasklet that blocks while main is blocked (outside slp_run) and nothing could wake
 * anyone: its call fails with SLP_E_DEADLOCK, it stays current and can go on (wake main). */
struct rule4 {
    slp_channel *main_ch, *other;
    slp_status st_block;
    bool was_current;
    bool main_blocked;
    int32_t balance_other;
    slp_status st_wake;
};

static int32_t t_rule4(void *arg) {
    struct rule4 *r = arg;
    void *v = SENTINEL;
    log_c('a');
    r->st_block = slp_channel_receive(r->other, &v);
    r->was_current = slp_tasklet_is_current(slp_current()) && !slp_tasklet_is_main(slp_current());
    r->main_blocked = slp_tasklet_blocked(slp_main());
    r->balance_other = slp_channel_balance(r->other);
    log_c('b');
    r->st_wake = slp_channel_send(r->main_ch, IPTR(99)); /* wakes main */
    log_c('c');
    return 0;
}

TEST(rule4_tasklet_blocking_while_main_blocked_gets_deadlock) {
    struct rule4 r;
    memset(&r, 0, sizeof r);
    r.st_block = r.st_wake = 12345;
    r.main_ch = NEW_CHANNEL();
    r.other = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_rule4, &r);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(r.main_ch, &v), SLP_OK);
    log_c('M');
    CHECK_EQ_PTR(v, IPTR(99));
    CHECK_ST(r.st_block, SLP_E_DEADLOCK);
    CHECK(r.was_current);
    CHECK(r.main_blocked);
    CHECK_EQ_INT(r.balance_other, 0);
    /* default preference: the send to blocked main switches to main at once */
    CHECK_LOG("abM");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abMc");
    CHECK_ST(r.st_wake, SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(r.main_ch);
    slp_channel_release(r.other);
}

static int32_t t_rule4_same_channel(void *arg) {
    struct rule4 *r = arg;
    void *v = SENTINEL;
    /* main is blocked receiving on main_ch; this tasklet receives on it too */
    r->st_block = slp_channel_receive(r->main_ch, &v);
    r->balance_other = slp_channel_balance(r->main_ch);
    log_c('d');
    return 0;
}

TEST(rule4_then_rule3_main_gets_deadlock) {
    struct rule4 r;
    memset(&r, 0, sizeof r);
    r.st_block = 12345;
    r.main_ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_rule4_same_channel, &r);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(r.main_ch, &v), SLP_E_DEADLOCK);
    CHECK_ST(r.st_block, SLP_E_DEADLOCK);
    CHECK_EQ_INT(r.balance_other, -1); /* only main waited when the tasklet's call failed */
    CHECK_LOG("d");
    CHECK_EQ_INT(slp_channel_balance(r.main_ch), 0);
    CHECK_EQ_PTR(v, SENTINEL);
    slp_tasklet_release(t);
    slp_channel_release(r.main_ch);
}

static int32_t t_rule4_remove(void *arg) {
    struct rule4 *r = arg;
    /* schedule_remove while main is blocked and nothing else could run: nobody could ever
     * insert this tasklet again */
    r->st_block = slp_schedule_remove();
    /* Killed by cleanup_tasklet (the rule 3 outcome): end now. Going on to block in the send
     * would leave it alive until the thread's exit kills it again, long after `r` (on the
     * test's stack) is gone: ASan's stack-use-after-return check caught that write. */
    if (r->st_block == SLP_E_KILLED) return 0;
    log_c('e');
    r->st_wake = slp_channel_send(r->main_ch, IPTR(5));
    return 0;
}

TEST(rule4_schedule_remove_while_main_blocked) {
    struct rule4 r;
    memset(&r, 0, sizeof r);
    r.st_block = r.st_wake = 12345;
    r.main_ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *t = SPAWN(t_rule4_remove, &r);
    void *v = SENTINEL;
    slp_status st = slp_channel_receive(r.main_ch, &v);
    /* Either the tasklet's schedule_remove failed with SLP_E_DEADLOCK (rule 4) and it woke
     * main with 5, or it is paused and main's receive failed with SLP_E_DEADLOCK (rule 3). */
    if (r.st_block == SLP_E_DEADLOCK) {
        CHECK_ST(st, SLP_OK);
        CHECK_EQ_PTR(v, IPTR(5));
    } else {
        CHECK_ST(st, SLP_E_DEADLOCK);
        CHECK(slp_tasklet_paused(t));
    }
    CHECK(slp_tasklet_alive(t) || r.st_wake == SLP_OK);
    cleanup_tasklet(t);
    slp_channel_release(r.main_ch);
}
