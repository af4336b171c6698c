/* test_select.c - slp_select (SPEC §5.5; the API contract's "Select" section, and its
 * "Timeouts" section where they meet select).
 *
 * Covered, one area per block below:
 *   - ready cases: the first ready case in array order wins (a receive ready by a blocked
 *     sender or a buffered item, a send ready by a blocked receiver or buffer room, a channel
 *     closing with nothing to pair: SLP_E_CLOSED); exactly one case completes; *index written
 *     whenever a case completed, untouched otherwise; only the completing receive case's
 *     value is written; user exception codes with slp_exception_data();
 *   - polls (timeout 0): SLP_E_TIMEOUT at once, nothing changed (balances, run queue, no switch);
 *   - blocking selects: the selector counts in every enabled channel's balance (-1 per receive
 *     case, +1 per send case) and leaves the others when one completes; a send case that did not
 *     complete keeps its value (nobody ever receives it);
 *   - preference: a partner pairing with a waiting selector follows the channel's preference
 *     exactly like a plain blocked receiver/sender (SPEC §5.1's two tables as event logs, O a
 *     third runnable tasklet, schedule_all too); the same for a selector that finds its partner
 *     already blocked;
 *   - disabled cases (NULL channel), n == 0, all disabled: SLP_E_DEADLOCK without a finite
 *     timeout, SLP_E_TIMEOUT after it with one;
 *   - buffered channels;
 *   - timeouts: a finite timeout expires with every balance back and nothing sent or received;
 *   - the deadlock rules of §5.3 applied to a selector;
 *   - block_trap, switch_trap, kill and throw of a blocked selector (same thread and from
 *     another thread);
 *   - misuse (SLP_E_INVALID), select inside a callback (SLP_E_STATE when it would block);
 *   - partners on other threads, two threads racing to complete the same selector (exactly one
 *     value delivered, the other stays pending with its sender);
 *   - many rounds over 3 channels with producers/consumers on this thread and on others, every
 *     value arriving exactly once and in order per channel.
 *
 * Every test is bounded: the harness alarm, plus watchdog(n) and bounded polls in the
 * cross-thread tests. The callback scenarios run in forked children (child_util.h). */
#include "harness.h"
#include "common.h"
#include "thread_util.h"
#include "child_util.h"

#include <sched.h>

#define NO_INDEX ((size_t)777)
#define RECV SLP_SELECT_RECEIVE
#define SEND SLP_SELECT_SEND
#define MS(x) ((int64_t)(x) * 1000000LL)

static long g_data, g_data2; /* exception data markers */

static void set_case(slp_select_case *c, int32_t op, slp_channel *ch, void *v) {
    memset(c, 0, sizeof *c);
    c->op = op;
    c->channel = ch;
    c->signal = NULL;
    c->value = v;
}

static uint64_t switches_now(void) {
    slp_counters c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    if (slp_counters_get(&c) != SLP_OK) return (uint64_t)-1;
    return c.switches;
}

/* Main tries a receive with block_trap on: SLP_E_WOULD_BLOCK proves nothing is pending. */
static slp_status trap_receive(slp_channel *ch, void **v) {
    bool old = slp_tasklet_set_block_trap(slp_main(), true);
    slp_status st = slp_channel_receive(ch, v);
    slp_tasklet_set_block_trap(slp_main(), old);
    return st;
}

static slp_status trap_send(slp_channel *ch, void *v) {
    bool old = slp_tasklet_set_block_trap(slp_main(), true);
    slp_status st = slp_channel_send(ch, v);
    slp_tasklet_set_block_trap(slp_main(), old);
    return st;
}

/* ---- a selecting tasklet: results published under xt_mx (it may run on another thread) ---- */
struct sel {
    slp_select_case c[6];
    slp_select_case *cases; /* what is passed (c unless a test overrides it) */
    size_t n;
    int64_t timeout;
    size_t index;            /* NO_INDEX until select writes it */
    slp_status st;
    char tag;                /* logged after the select returns (same-thread tests only) */
    int32_t ret;
    int block_trap;          /* select with block_trap set on itself */
    int switch_trap;         /* select with switch_trap raised */
    slp_channel *then_send;  /* after the select: send then_value here */
    void *then_value;
    slp_status then_st;
    long done;
    void *exc;
    int64_t t_start, t_done;
    long tid;
};

static void sel_init(struct sel *s, int64_t timeout, char tag) {
    memset(s, 0, sizeof *s);
    s->cases = s->c;
    s->timeout = timeout;
    s->index = NO_INDEX;
    s->st = 12345;
    s->then_st = 12345;
    s->tag = tag;
}

static void sel_add(struct sel *s, int32_t op, slp_channel *ch, void *v) {
    set_case(&s->c[s->n], op, ch, v);
    s->n++;
}

static int32_t t_select(void *arg) {
    struct sel *s = arg;
    if (s->block_trap) slp_tasklet_set_block_trap(slp_current(), true);
    if (s->switch_trap) slp_switch_trap(1);
    size_t idx = NO_INDEX;
    int64_t t0 = now_ns();
    slp_status st = slp_select(s->cases, s->n, s->timeout, &idx);
    int64_t t1 = now_ns();
    void *exc = slp_exception_data();
    if (s->switch_trap) slp_switch_trap(-1);
    if (s->block_trap) slp_tasklet_set_block_trap(slp_current(), false);
    long tid = (long)slp_thread_id();
    xt_lock();
    s->st = st;
    s->index = idx;
    s->exc = exc;
    s->t_start = t0;
    s->t_done = t1;
    s->tid = tid;
    s->done = 1;
    xt_unlock();
    if (s->tag) log_c(s->tag);
    if (s->then_send) s->then_st = slp_channel_send(s->then_send, s->then_value);
    return s->ret;
}

static long sel_done(struct sel *s) { return xt_get(&s->done); }

/* A tasklet blocked in `fn` (op_send / op_recv / op_send_exc) on ch: spawned, then run until it
 * blocks. Call only with nothing else runnable. */
static slp_tasklet *blocked_op(slp_tasklet_fn fn, struct op *o, slp_channel *ch, void *v, char tag) {
    op_init(o, ch, v, tag);
    slp_tasklet *t = SPAWN(fn, o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    return t;
}

/* Runs slp_run_wait in slices until `cond` holds or `ms` passed (serves timers). */
#define RUN_WAIT_UNTIL(ok, cond, ms)                                                      \
    do {                                                                                  \
        int64_t rw_dl_ = now_ns() + MS(xt_ms(ms));                                        \
        (ok) = false;                                                                     \
        while (!((ok) = (cond)) && now_ns() < rw_dl_) slp_run_wait(MS(10));               \
    } while (0)

/* ============================================================================================
 * Ready cases: first in array order wins, exactly one completes
 * ========================================================================================== */

TEST(ready_receive_from_blocked_sender_first_ready_in_order_wins) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL(), *ch2 = NEW_CHANNEL();
    struct op s1, s2;
    slp_tasklet *t1 = blocked_op(op_send, &s1, ch1, IPTR(11), 0);
    slp_tasklet *t2 = blocked_op(op_send, &s2, ch2, IPTR(22), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 1);
    CHECK_EQ_INT(slp_channel_balance(ch2), 1);

    slp_select_case c[3];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, ch1, SENTINEL);
    set_case(&c[2], RECV, ch2, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[1].value, IPTR(11));
    CHECK_EQ_PTR(c[0].value, SENTINEL); /* only the completing case's value is written */
    CHECK_EQ_PTR(c[2].value, SENTINEL);
    /* exactly one case completed: the second sender still waits with its value */
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_EQ_INT(slp_channel_balance(ch2), 1);
    CHECK(!slp_tasklet_blocked(t1));
    CHECK(slp_tasklet_blocked(t2));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s1.st, SLP_OK);
    CHECK_EQ_INT(s2.done, 0);

    /* again, as a poll: the remaining ready case */
    c[1].value = SENTINEL;
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, 0, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 2);
    CHECK_EQ_PTR(c[2].value, IPTR(22));
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s2.st, SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch2), 0);

    /* both ready: the first wins, the other stays */
    struct op s3, s4;
    slp_tasklet *t3 = blocked_op(op_send, &s3, ch0, IPTR(3), 0);
    slp_tasklet *t4 = blocked_op(op_send, &s4, ch2, IPTR(4), 0);
    c[0].value = c[1].value = c[2].value = SENTINEL;
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, IPTR(3));
    CHECK_EQ_PTR(c[2].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch2), 1);
    CHECK(slp_tasklet_blocked(t4));
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch2, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(4));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t1);
    slp_tasklet_release(t2);
    slp_tasklet_release(t3);
    slp_tasklet_release(t4);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(ch2);
}

TEST(ready_receive_from_buffered_item) {
    slp_channel *ch0 = NEW_CHANNEL();
    slp_channel *chb = NEW_CHANNEL_EX(-1, 2, false);
    CHECK_ST(slp_channel_send(chb, IPTR(5)), SLP_OK);
    CHECK_ST(slp_channel_send(chb, IPTR(6)), SLP_OK);
    slp_select_case c[2];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, chb, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[1].value, IPTR(5));
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(chb), 1);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[1].value, IPTR(6));
    CHECK_EQ_INT(slp_channel_balance(chb), 0);
    /* drained: a poll finds nothing */
    idx = NO_INDEX;
    c[1].value = SENTINEL;
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_E_TIMEOUT);
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_PTR(c[1].value, SENTINEL);

    /* a buffered item first in order beats a blocked sender later in the array */
    struct op s;
    slp_tasklet *t = blocked_op(op_send, &s, ch0, IPTR(8), 0);
    CHECK_ST(slp_channel_send(chb, IPTR(7)), SLP_OK);
    slp_select_case d[2];
    set_case(&d[0], RECV, chb, SENTINEL);
    set_case(&d[1], RECV, ch0, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(d, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(d[0].value, IPTR(7));
    CHECK_EQ_PTR(d[1].value, SENTINEL);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch0), 1);
    cleanup_tasklet(t);
    slp_channel_release(ch0);
    slp_channel_release(chb);
}

TEST(ready_send_to_blocked_receiver) {
    /* preference 0: the caller continues, so what the select did is visible before anyone runs */
    slp_channel *ch0 = NEW_CHANNEL_EX(0, 0, false);
    slp_channel *ch1 = NEW_CHANNEL_EX(0, 0, false);
    slp_channel *ch2 = NEW_CHANNEL_EX(0, 0, false);
    struct op r1, r2;
    slp_tasklet *t1 = blocked_op(op_recv, &r1, ch1, SENTINEL, 0);
    slp_tasklet *t2 = blocked_op(op_recv, &r2, ch2, SENTINEL, 0);
    slp_select_case c[3];
    set_case(&c[0], SEND, ch0, IPTR(1));
    set_case(&c[1], SEND, ch1, IPTR(2));
    set_case(&c[2], SEND, ch2, IPTR(3));
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    /* send cases' values are the caller's input: left as they were */
    CHECK_EQ_PTR(c[0].value, IPTR(1));
    CHECK_EQ_PTR(c[1].value, IPTR(2));
    CHECK_EQ_PTR(c[2].value, IPTR(3));
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_EQ_INT(slp_channel_balance(ch2), -1);
    CHECK(!slp_tasklet_blocked(t1));
    CHECK(slp_tasklet_blocked(t2));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r1.st, SLP_OK);
    CHECK_EQ_PTR(r1.val, IPTR(2));
    CHECK_EQ_INT(r2.done, 0);
    /* nothing went into ch0: no receiver exists, nothing is pending there */
    void *v = SENTINEL;
    CHECK_ST(trap_receive(ch0, &v), SLP_E_WOULD_BLOCK);
    CHECK_EQ_PTR(v, SENTINEL);
    cleanup_tasklet(t2);
    CHECK_EQ_INT(r2.done, 1);
    CHECK_EQ_PTR(r2.val, SENTINEL);
    slp_tasklet_release(t1);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(ch2);
}

TEST(ready_send_by_buffer_room) {
    slp_channel *ch0 = NEW_CHANNEL();
    slp_channel *full = NEW_CHANNEL_EX(-1, 1, false);
    slp_channel *room = NEW_CHANNEL_EX(-1, 2, false);
    CHECK_ST(slp_channel_send(full, IPTR(9)), SLP_OK);
    slp_select_case c[3];
    set_case(&c[0], SEND, ch0, IPTR(1));
    set_case(&c[1], SEND, full, IPTR(2));
    set_case(&c[2], SEND, room, IPTR(3));
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 2);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(full), 1);
    CHECK_EQ_INT(slp_channel_balance(room), 1);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(room, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(3));
    CHECK_ST(slp_channel_receive(full, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(9)); /* the full channel did not take case 1's value */
    CHECK_EQ_INT(slp_channel_balance(full), 0);
    /* a poll fills the buffer one value at a time, in array order */
    set_case(&c[0], SEND, room, IPTR(4));
    set_case(&c[1], SEND, full, IPTR(5));
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_INT(slp_channel_balance(room), 1);
    CHECK_EQ_INT(slp_channel_balance(full), 0);
    CHECK_ST(slp_channel_receive(room, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(4));
    slp_channel_release(ch0);
    slp_channel_release(full);
    slp_channel_release(room);
}

TEST(ready_closing_channel_completes_with_closed) {
    slp_channel *ch0 = NEW_CHANNEL();
    slp_channel *chc = NEW_CHANNEL();
    CHECK_ST(slp_channel_close(chc), SLP_OK);
    slp_select_case c[2];
    size_t idx;

    /* receive on a closed channel: that case completes with SLP_E_CLOSED */
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, chc, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_E_CLOSED);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_E_CLOSED); /* ready, so also for a poll */
    CHECK_EQ_INT(idx, 1);

    /* send on a closed channel */
    set_case(&c[0], SEND, ch0, IPTR(1));
    set_case(&c[1], SEND, chc, IPTR(2));
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_E_CLOSED);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_INT(slp_channel_balance(chc), 0);
    CHECK(slp_channel_closed(chc));

    /* array order: a closed case first beats a blocked sender later; the sender stays */
    struct op s;
    slp_tasklet *t = blocked_op(op_send, &s, ch0, IPTR(3), 0);
    set_case(&c[0], RECV, chc, SENTINEL);
    set_case(&c[1], RECV, ch0, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_E_CLOSED);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch0), 1);
    CHECK(slp_tasklet_blocked(t));

    /* closing with a waiter to pair: the case pairs normally */
    CHECK_ST(slp_channel_close(ch0), SLP_OK);
    CHECK(!slp_channel_closed(ch0));
    set_case(&c[0], RECV, ch0, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, IPTR(3));
    CHECK(slp_channel_closed(ch0));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_OK);
    /* now nothing to pair: closed */
    idx = NO_INDEX;
    c[0].value = SENTINEL;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_E_CLOSED);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    slp_tasklet_release(t);

    /* buffered and closing: items can still be received; a send takes no new value */
    slp_channel *chb = NEW_CHANNEL_EX(-1, 2, false);
    CHECK_ST(slp_channel_send(chb, IPTR(9)), SLP_OK);
    CHECK_ST(slp_channel_close(chb), SLP_OK);
    set_case(&c[0], SEND, chb, IPTR(10));
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_E_CLOSED);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_INT(slp_channel_balance(chb), 1);
    set_case(&c[0], RECV, chb, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, IPTR(9));
    c[0].value = SENTINEL;
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_E_CLOSED);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    slp_channel_release(chb);
    slp_channel_release(ch0);
    slp_channel_release(chc);
}

TEST(ready_case_with_user_exception_returns_code_and_data) {
    slp_channel *ch0 = NEW_CHANNEL();
    slp_channel *ch1 = NEW_CHANNEL();
    slp_channel *chb = NEW_CHANNEL_EX(-1, 2, false);
    /* a buffered exception */
    CHECK_ST(slp_channel_send_exception(chb, 9, &g_data), SLP_OK);
    slp_select_case c[2];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, chb, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), 9);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(slp_exception_data(), &g_data);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(chb), 0);
    /* a blocked send_exception */
    struct op s;
    op_init(&s, ch1, &g_data2, 0);
    s.code = 12;
    slp_tasklet *t = SPAWN(op_send_exc, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch1), 1);
    set_case(&c[1], RECV, ch1, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), 12);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(slp_exception_data(), &g_data2);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(chb);
}

/* ============================================================================================
 * Polls: nothing ready + timeout 0 -> SLP_E_TIMEOUT at once, nothing changed
 * ========================================================================================== */

TEST(poll_nothing_ready_times_out_at_once_changing_nothing) {
    slp_channel *ch0 = NEW_CHANNEL();                 /* a receiver waits: receive not ready */
    slp_channel *ch1 = NEW_CHANNEL();                 /* a sender waits: send not ready */
    slp_channel *full = NEW_CHANNEL_EX(-1, 1, false); /* full: send not ready */
    slp_channel *empty = NEW_CHANNEL_EX(-1, 2, false);
    struct op r, s;
    slp_tasklet *tr = blocked_op(op_recv, &r, ch0, SENTINEL, 0);
    slp_tasklet *ts = blocked_op(op_send, &s, ch1, IPTR(1), 0);
    CHECK_ST(slp_channel_send(full, IPTR(2)), SLP_OK);
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    CHECK_EQ_INT(slp_runcount(), 2);
    uint64_t sw = switches_now();

    slp_select_case c[5];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], SEND, ch1, IPTR(3));
    set_case(&c[2], SEND, full, IPTR(4));
    set_case(&c[3], RECV, empty, SENTINEL);
    set_case(&c[4], RECV, NULL, SENTINEL);
    size_t idx = NO_INDEX;
    int64_t t0 = now_ns();
    CHECK_ST(slp_select(c, 5, 0, &idx), SLP_E_TIMEOUT);
    int64_t took = now_ns() - t0;
    CHECK_MSG(took < MS(xt_ms(100)), "a poll took %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch0), -1);
    CHECK_EQ_INT(slp_channel_balance(ch1), 1);
    CHECK_EQ_INT(slp_channel_balance(full), 1);
    CHECK_EQ_INT(slp_channel_balance(empty), 0);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, IPTR(3));
    CHECK_EQ_PTR(c[3].value, SENTINEL);
    CHECK_EQ_PTR(c[4].value, SENTINEL);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK(!slp_tasklet_blocked(slp_main()));
    CHECK_EQ_INT(switches_now(), sw);
    CHECK(slp_tasklet_blocked(tr));
    CHECK(slp_tasklet_blocked(ts));

    /* the same poll from a tasklet: it goes on at once, O runs after it */
    struct sel x;
    sel_init(&x, 0, 'T');
    for (int i = 0; i < 5; i++) x.c[i] = c[i];
    x.n = 5;
    slp_tasklet *tx = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("OT");
    CHECK_ST(x.st, SLP_E_TIMEOUT);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch0), -1);
    CHECK_EQ_INT(slp_channel_balance(ch1), 1);
    /* and with O runnable behind the polling tasklet, O runs only after it */
    log_reset();
    sel_init(&x, 0, 'T');
    for (int i = 0; i < 5; i++) x.c[i] = c[i];
    x.n = 5;
    slp_tasklet *tx2 = SPAWN(t_select, &x);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("TO");
    CHECK_ST(x.st, SLP_E_TIMEOUT);
    cleanup_tasklet(tr);
    cleanup_tasklet(ts);
    slp_tasklet_release(o);
    slp_tasklet_release(o2);
    slp_tasklet_release(tx);
    slp_tasklet_release(tx2);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(full);
    slp_channel_release(empty);
}

/* ============================================================================================
 * Blocking selects: the selector counts in every enabled channel's balance and leaves them
 * ========================================================================================== */

/* T selects on [recv ch0, send ch1 41, disabled, recv ch2]; `how` completes one case. */
static void blocked_selector_case(int how) {
    slp_channel *ch[3] = {NEW_CHANNEL(), NEW_CHANNEL(), NEW_CHANNEL()};
    struct sel x;
    sel_init(&x, -1, 'T');
    sel_add(&x, RECV, ch[0], SENTINEL);
    sel_add(&x, SEND, ch[1], IPTR(41));
    sel_add(&x, RECV, NULL, SENTINEL);
    sel_add(&x, RECV, ch[2], SENTINEL);
    log_reset();
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_alive(t));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_INT(slp_channel_balance(ch[0]), -1);
    CHECK_EQ_INT(slp_channel_balance(ch[1]), 1);
    CHECK_EQ_INT(slp_channel_balance(ch[2]), -1);
    for (int i = 0; i < 3; i++) {
        slp_tasklet *q = slp_channel_queue(ch[i]);
        CHECK_EQ_PTR(q, t);
        slp_tasklet_release(q);
    }
    CHECK_EQ_INT(x.done, 0);
    void *v = SENTINEL;
    size_t want = 0;
    switch (how) {
    case 0:
        CHECK_ST(slp_channel_send(ch[2], IPTR(42)), SLP_OK); /* preference -1: T runs at once */
        CHECK_LOG("T");
        want = 3;
        break;
    case 1:
        CHECK_ST(slp_channel_receive(ch[1], &v), SLP_OK);
        CHECK_EQ_PTR(v, IPTR(41));
        CHECK_ST(slp_run(), SLP_OK);
        want = 1;
        break;
    default:
        CHECK_ST(slp_channel_send(ch[0], IPTR(40)), SLP_OK);
        want = 0;
        break;
    }
    CHECK_EQ_INT(x.done, 1);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, want);
    CHECK_EQ_PTR(x.c[0].value, want == 0 ? IPTR(40) : SENTINEL);
    CHECK_EQ_PTR(x.c[1].value, IPTR(41)); /* a send case's value is never written */
    CHECK_EQ_PTR(x.c[2].value, SENTINEL);
    CHECK_EQ_PTR(x.c[3].value, want == 3 ? IPTR(42) : SENTINEL);
    /* it left the others: every balance back, no waiter anywhere */
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(slp_channel_balance(ch[i]) == 0, "completed by case %zu: channel %d balance %d", want, i,
                  (int)slp_channel_balance(ch[i]));
        CHECK(slp_channel_queue(ch[i]) == NULL);
    }
    /* the send case that did not complete keeps its value: nobody can receive it */
    if (want != 1) {
        v = SENTINEL;
        CHECK_ST(trap_receive(ch[1], &v), SLP_E_WOULD_BLOCK);
        CHECK_EQ_PTR(v, SENTINEL);
    }
    CHECK_ST(trap_send(ch[0], IPTR(1)), SLP_E_WOULD_BLOCK);
    CHECK_ST(trap_send(ch[2], IPTR(1)), SLP_E_WOULD_BLOCK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    for (int i = 0; i < 3; i++) slp_channel_release(ch[i]);
}

TEST(blocked_selector_counts_in_every_balance_and_leaves_them) {
    blocked_selector_case(0); /* completed by a receive case (a sender came) */
    blocked_selector_case(1); /* completed by the send case (a receiver came) */
    blocked_selector_case(2); /* completed by the first case */
}

/* A partner pairs with the selector; before the selector even runs again, it is gone from
 * every other channel: a second partner cannot pair with it. */
TEST(selector_leaves_other_channels_as_soon_as_paired) {
    slp_channel *ch0 = NEW_CHANNEL_EX(0, 0, false), *ch1 = NEW_CHANNEL_EX(0, 0, false);
    struct sel x;
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, RECV, ch1, SENTINEL);
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch0), -1);
    CHECK_EQ_INT(slp_channel_balance(ch1), -1);
    CHECK_ST(slp_channel_send(ch0, IPTR(1)), SLP_OK); /* preference 0: main continues */
    CHECK_EQ_INT(x.done, 0);
    CHECK(!slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_MSG(slp_channel_balance(ch1) == 0, "the paired selector still counts in another channel: balance %d",
              (int)slp_channel_balance(ch1));
    slp_tasklet *q = slp_channel_queue(ch1);
    CHECK_MSG(q == NULL, "slp_channel_queue(ch1) returns the paired selector (blocked: %d)", (int)slp_tasklet_blocked(q));
    slp_tasklet_release(q);
    CHECK_ST(slp_channel_close(ch1), SLP_OK);
    CHECK_MSG(slp_channel_closed(ch1), "a closing channel nobody waits on is not closed");
    CHECK_ST(slp_channel_open(ch1), SLP_OK);
    CHECK_ST(trap_send(ch1, IPTR(2)), SLP_E_WOULD_BLOCK); /* no second pairing */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, 0);
    CHECK_EQ_PTR(x.c[0].value, IPTR(1));
    CHECK_EQ_PTR(x.c[1].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

TEST(main_blocking_select_woken_by_tasklet_on_same_thread) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL();
    /* receive cases; a tasklet sends on ch1 (preference -1: main, the receiver, runs at once) */
    struct op s;
    op_init(&s, ch1, IPTR(7), 'S');
    log_reset();
    slp_tasklet *t = SPAWN(op_send, &s);
    slp_select_case c[2];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, ch1, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[1].value, IPTR(7));
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("S");
    CHECK_ST(s.st, SLP_OK);
    slp_tasklet_release(t);

    /* a send case; a tasklet receives it */
    struct op r;
    op_init(&r, ch1, SENTINEL, 'R');
    log_reset();
    t = SPAWN(op_recv, &r);
    set_case(&c[1], SEND, ch1, IPTR(8));
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_LOG("R"); /* R receives from the blocked main, preference -1: R goes on first */
    CHECK_EQ_PTR(r.val, IPTR(8));
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

TEST(selector_pairs_with_waiting_selector) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL(), *ch2 = NEW_CHANNEL();
    struct sel a, b;
    sel_init(&a, -1, 'a');
    sel_add(&a, RECV, ch0, SENTINEL);
    sel_add(&a, RECV, ch1, SENTINEL);
    sel_init(&b, -1, 'b');
    sel_add(&b, SEND, ch2, IPTR(2));
    sel_add(&b, SEND, ch1, IPTR(1));
    log_reset();
    slp_tasklet *ta = SPAWN(t_select, &a);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(ta));
    slp_tasklet *tb = SPAWN(t_select, &b);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ab"); /* b sends to the blocked a, preference -1: a first */
    CHECK_ST(a.st, SLP_OK);
    CHECK_EQ_INT(a.index, 1);
    CHECK_EQ_PTR(a.c[1].value, IPTR(1));
    CHECK_EQ_PTR(a.c[0].value, SENTINEL);
    CHECK_ST(b.st, SLP_OK);
    CHECK_EQ_INT(b.index, 1);
    for (int i = 0; i < 3; i++) {
        slp_channel *c = i == 0 ? ch0 : i == 1 ? ch1 : ch2;
        CHECK_EQ_INT(slp_channel_balance(c), 0);
    }
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(ch2);
}

/* ============================================================================================
 * Preference (SPEC §5.1's tables) with the blocked partner being a selector
 * ========================================================================================== */

/* What every row of the preference tables checks once its log was compared: case 1 (the one
 * on `ch`) completed, the value `val` passed the right way, both balances are back to 0; the
 * channels are released. */
static void row_outcome(struct sel *x, struct op *p, bool selector_sends, void *val, slp_channel *ch,
                        slp_channel *other) {
    CHECK_ST(x->st, SLP_OK);
    CHECK_EQ_INT(x->index, 1);
    CHECK_ST(p->st, SLP_OK);
    if (selector_sends)
        CHECK_EQ_PTR(p->val, val);
    else
        CHECK_EQ_PTR(x->c[1].value, val);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(slp_channel_balance(other), 0);
    slp_channel_release(ch);
    slp_channel_release(other);
}

/* selector_sends = false: table "S sends to a blocked R", R a selector (waiting on `other` too).
 * selector_sends = true:  table "R receives from a blocked S", S a selector. */
static void waiting_selector_row(bool selector_sends, int pref, bool all, const char *expected) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    slp_channel *other = NEW_CHANNEL();
    struct sel x;
    sel_init(&x, -1, selector_sends ? 'S' : 'R');
    sel_add(&x, selector_sends ? SEND : RECV, other, selector_sends ? IPTR(1) : SENTINEL);
    sel_add(&x, selector_sends ? SEND : RECV, ch, selector_sends ? IPTR(5) : SENTINEL);
    slp_tasklet *tx = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), selector_sends ? 1 : -1);
    CHECK_EQ_INT(slp_channel_balance(other), selector_sends ? 1 : -1);
    log_reset();
    struct op p;
    op_init(&p, ch, selector_sends ? SENTINEL : IPTR(5), selector_sends ? 'R' : 'S');
    slp_tasklet *tp = SPAWN(selector_sends ? op_recv : op_send, &p);
    slp_tasklet *to = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, expected) == 0, "%s, preference %d, schedule_all %d: got \"%s\", expected \"%s\"",
              selector_sends ? "R receives from a blocked selector S" : "S sends to a blocked selector R", pref,
              (int)all, g_log, expected);
    row_outcome(&x, &p, selector_sends, IPTR(5), ch, other);
    slp_tasklet_release(tx);
    slp_tasklet_release(tp);
    slp_tasklet_release(to);
}

TEST(pref_send_to_waiting_selector_follows_table) {
    waiting_selector_row(false, -1, false, "ROS");
    waiting_selector_row(false, 0, false, "SOR");
    waiting_selector_row(false, 1, false, "SOR");
    waiting_selector_row(false, -1, true, "ORS");
    waiting_selector_row(false, 0, true, "ORS");
    waiting_selector_row(false, 1, true, "ORS");
}

TEST(pref_receive_from_waiting_selector_follows_table) {
    waiting_selector_row(true, -1, false, "ROS");
    waiting_selector_row(true, 0, false, "ROS");
    waiting_selector_row(true, 1, false, "SOR");
    waiting_selector_row(true, -1, true, "OSR");
    waiting_selector_row(true, 0, true, "OSR");
    waiting_selector_row(true, 1, true, "OSR");
}

/* The selector is the caller and its partner already waits (a ready case): the transfer is a
 * plain send/receive, so the same tables apply (selector_sends: "S sends to a blocked R"). */
static void ready_selector_row(bool selector_sends, int pref, bool all, const char *expected) {
    slp_channel *ch = NEW_CHANNEL_EX(pref, 0, all);
    slp_channel *other = NEW_CHANNEL();
    struct op p;
    slp_tasklet *tp = blocked_op(selector_sends ? op_recv : op_send, &p, ch, selector_sends ? SENTINEL : IPTR(6),
                                 selector_sends ? 'R' : 'S');
    log_reset();
    struct sel x;
    sel_init(&x, -1, selector_sends ? 'S' : 'R');
    sel_add(&x, selector_sends ? SEND : RECV, other, selector_sends ? IPTR(1) : SENTINEL);
    sel_add(&x, selector_sends ? SEND : RECV, ch, selector_sends ? IPTR(6) : SENTINEL);
    slp_tasklet *tx = SPAWN(t_select, &x);
    slp_tasklet *to = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, expected) == 0,
              "%s, preference %d, schedule_all %d: got \"%s\", expected \"%s\"",
              selector_sends ? "selector S sends to a blocked R" : "selector R receives from a blocked S", pref,
              (int)all, g_log, expected);
    row_outcome(&x, &p, selector_sends, IPTR(6), ch, other);
    slp_tasklet_release(tx);
    slp_tasklet_release(tp);
    slp_tasklet_release(to);
}

TEST(pref_ready_selector_follows_tables) {
    ready_selector_row(true, -1, false, "ROS");
    ready_selector_row(true, 0, false, "SOR");
    ready_selector_row(true, 1, false, "SOR");
    ready_selector_row(true, -1, true, "ORS");
    ready_selector_row(false, -1, false, "ROS");
    ready_selector_row(false, 0, false, "ROS");
    ready_selector_row(false, 1, false, "SOR");
    ready_selector_row(false, -1, true, "OSR");
}

/* ============================================================================================
 * Disabled cases, n == 0, nothing enabled
 * ========================================================================================== */

TEST(disabled_cases_are_never_chosen) {
    slp_channel *ch0 = NEW_CHANNEL();
    struct op s;
    slp_tasklet *t = blocked_op(op_send, &s, ch0, IPTR(3), 0);
    slp_select_case c[3];
    set_case(&c[0], RECV, NULL, SENTINEL);
    set_case(&c[1], SEND, NULL, IPTR(9));
    set_case(&c[2], RECV, ch0, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 2);
    CHECK_EQ_PTR(c[2].value, IPTR(3));
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, IPTR(9));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    /* disabled + not ready: a poll times out */
    idx = NO_INDEX;
    c[2].value = SENTINEL;
    CHECK_ST(slp_select(c, 3, 0, &idx), SLP_E_TIMEOUT);
    CHECK_EQ_INT(idx, NO_INDEX);
    /* a blocked selector with disabled cases waits only on the enabled one */
    struct sel x;
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, NULL, SENTINEL);
    sel_add(&x, SEND, NULL, IPTR(1));
    sel_add(&x, RECV, ch0, SENTINEL);
    slp_tasklet *tx = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(tx));
    CHECK_EQ_INT(slp_channel_balance(ch0), -1);
    CHECK_ST(slp_channel_send(ch0, IPTR(4)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, 2);
    CHECK_EQ_PTR(x.c[2].value, IPTR(4));
    CHECK_EQ_PTR(x.c[0].value, SENTINEL);
    slp_tasklet_release(tx);
    slp_channel_release(ch0);
}

TEST(nothing_enabled_without_finite_timeout_is_deadlock) {
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(NULL, 0, -1, &idx), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK(!slp_tasklet_blocked(slp_main()));
    slp_select_case c[2];
    set_case(&c[0], RECV, NULL, SENTINEL);
    set_case(&c[1], SEND, NULL, IPTR(1));
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_E_DEADLOCK);
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    /* a poll with nothing enabled: nothing ready, SLP_E_TIMEOUT */
    CHECK_ST(slp_select(NULL, 0, 0, &idx), SLP_E_TIMEOUT);
    CHECK_ST(slp_select(c, 2, 0, &idx), SLP_E_TIMEOUT);
    CHECK_EQ_INT(idx, NO_INDEX);
    /* from a tasklet, even with another tasklet runnable: nothing could ever complete it */
    struct sel x;
    sel_init(&x, -1, 'T');
    x.cases = NULL;
    x.n = 0;
    log_reset();
    slp_tasklet *t = SPAWN(t_select, &x);
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_E_DEADLOCK);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK(!slp_tasklet_alive(t));
    CHECK_LOG("TO");
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, NULL, SENTINEL);
    slp_tasklet *t2 = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_E_DEADLOCK);
    CHECK(!slp_tasklet_alive(t2));
    slp_tasklet_release(t);
    slp_tasklet_release(t2);
    slp_tasklet_release(o);
}

TEST(nothing_enabled_with_finite_timeout_times_out_after_it) {
    size_t idx = NO_INDEX;
    int64_t t0 = now_ns();
    CHECK_ST(slp_select(NULL, 0, MS(30), &idx), SLP_E_TIMEOUT);
    int64_t took = now_ns() - t0;
    CHECK_MSG(took >= MS(29), "returned after %lld us, before its 30 ms timeout", (long long)(took / 1000));
    CHECK_MSG(took < MS(xt_ms(2000)), "returned after %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(idx, NO_INDEX);
    slp_select_case c[1];
    set_case(&c[0], RECV, NULL, SENTINEL);
    t0 = now_ns();
    CHECK_ST(slp_select(c, 1, MS(30), &idx), SLP_E_TIMEOUT);
    took = now_ns() - t0;
    CHECK_MSG(took >= MS(29), "returned after %lld us, before its 30 ms timeout", (long long)(took / 1000));
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_PTR(c[0].value, SENTINEL);

    /* a tasklet: it waits (other tasklets run meanwhile) and times out */
    struct sel x;
    sel_init(&x, MS(30), 'T');
    x.cases = NULL;
    log_reset();
    slp_tasklet *t = SPAWN(t_select, &x);
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("O");
    CHECK(slp_tasklet_blocked(t));
    bool ok;
    RUN_WAIT_UNTIL(ok, x.done, 2000);
    CHECK_MSG(ok, "the tasklet's select did not time out");
    CHECK_ST(x.st, SLP_E_TIMEOUT);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK_MSG(x.t_done - x.t_start >= MS(29), "the tasklet's select returned after %lld us",
              (long long)((x.t_done - x.t_start) / 1000));
    CHECK_LOG("OT");
    if (!ok) cleanup_tasklet(t);
    else slp_tasklet_release(t);
    slp_tasklet_release(o);
}

/* ============================================================================================
 * Buffered channels with a blocked selector
 * ========================================================================================== */

TEST(buffered_channels_with_blocked_selector) {
    slp_channel *ch0 = NEW_CHANNEL();
    slp_channel *full = NEW_CHANNEL_EX(-1, 1, false);
    CHECK_ST(slp_channel_send(full, IPTR(1)), SLP_OK);
    struct sel x;
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, SEND, full, IPTR(2));
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(full), 2); /* 1 item + the waiting selector */
    CHECK_EQ_INT(slp_channel_balance(ch0), -1);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(full, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(1));
    /* the selector's value moved into the buffer: it completed */
    CHECK(!slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(full), 1);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, 1);
    CHECK_EQ_PTR(x.c[0].value, SENTINEL);
    CHECK_ST(slp_channel_receive(full, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(2));
    CHECK_EQ_INT(slp_channel_balance(full), 0);
    slp_tasklet_release(t);

    /* an empty buffered channel: the waiting selector gets the value directly */
    slp_channel *chb = NEW_CHANNEL_EX(-1, 2, false);
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, RECV, chb, SENTINEL);
    t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(chb), -1);
    CHECK_ST(slp_channel_send(chb, IPTR(3)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, 1);
    CHECK_EQ_PTR(x.c[1].value, IPTR(3));
    CHECK_EQ_INT(slp_channel_balance(chb), 0); /* not buffered: it went to the selector */
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    slp_tasklet_release(t);
    slp_channel_release(chb);
    slp_channel_release(ch0);
    slp_channel_release(full);
}

/* shutdown of one channel while the selector waits: that case completes with SLP_E_CLOSED */
TEST(shutdown_while_selecting_completes_that_case_with_closed) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL(), *ch2 = NEW_CHANNEL();
    struct sel x;
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, SEND, ch1, IPTR(1));
    sel_add(&x, RECV, ch2, SENTINEL);
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_shutdown(ch1), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_E_CLOSED);
    CHECK_EQ_INT(x.index, 1);
    CHECK_EQ_PTR(x.c[0].value, SENTINEL);
    CHECK_EQ_PTR(x.c[2].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch2), 0);
    CHECK(slp_channel_closed(ch1));
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(ch2);
}

/* ============================================================================================
 * Timeouts
 * ========================================================================================== */

TEST(main_blocking_select_finite_timeout_expires) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL();
    slp_select_case c[2];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], SEND, ch1, IPTR(1));
    size_t idx = NO_INDEX;
    int64_t t0 = now_ns();
    /* main alone, but with a finite timeout: never SLP_E_DEADLOCK, it waits out the deadline */
    CHECK_ST(slp_select(c, 2, MS(30), &idx), SLP_E_TIMEOUT);
    int64_t took = now_ns() - t0;
    CHECK_MSG(took >= MS(29), "returned after %lld us, before its 30 ms timeout", (long long)(took / 1000));
    CHECK_MSG(took < MS(xt_ms(2000)), "returned after %lld us", (long long)(took / 1000));
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, IPTR(1));
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK(slp_channel_queue(ch0) == NULL);
    CHECK(slp_channel_queue(ch1) == NULL);
    CHECK(!slp_tasklet_blocked(slp_main()));
    void *v = SENTINEL;
    CHECK_ST(trap_receive(ch1, &v), SLP_E_WOULD_BLOCK);
    CHECK_EQ_PTR(v, SENTINEL);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

TEST(tasklet_blocking_select_finite_timeout_expires) {
    slp_channel *ch[3] = {NEW_CHANNEL(), NEW_CHANNEL(), NEW_CHANNEL()};
    struct sel x;
    sel_init(&x, MS(40), 0);
    sel_add(&x, RECV, ch[0], SENTINEL);
    sel_add(&x, SEND, ch[1], IPTR(1));
    sel_add(&x, RECV, ch[2], SENTINEL);
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch[0]), -1);
    CHECK_EQ_INT(slp_channel_balance(ch[1]), 1);
    CHECK_EQ_INT(slp_channel_balance(ch[2]), -1);
    bool ok;
    RUN_WAIT_UNTIL(ok, x.done, 2000);
    CHECK_MSG(ok, "the select did not time out");
    CHECK_ST(x.st, SLP_E_TIMEOUT);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK_MSG(x.t_done - x.t_start >= MS(39), "timed out after %lld us, before its 40 ms",
              (long long)((x.t_done - x.t_start) / 1000));
    CHECK_EQ_PTR(x.c[0].value, SENTINEL);
    CHECK_EQ_PTR(x.c[2].value, SENTINEL);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(slp_channel_balance(ch[i]), 0);
        CHECK(slp_channel_queue(ch[i]) == NULL);
    }
    void *v = SENTINEL;
    CHECK_ST(trap_receive(ch[1], &v), SLP_E_WOULD_BLOCK); /* nothing was sent */
    CHECK_EQ_PTR(v, SENTINEL);
    if (!ok) cleanup_tasklet(t);
    else slp_tasklet_release(t);

    /* completed before its deadline: the timer does not fire later */
    sel_init(&x, MS(50), 0);
    sel_add(&x, RECV, ch[0], SENTINEL);
    sel_add(&x, RECV, ch[1], SENTINEL);
    t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send(ch[1], IPTR(2)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, 1);
    CHECK_EQ_PTR(x.c[1].value, IPTR(2));
    CHECK(!slp_tasklet_alive(t));
    CHECK_ST(slp_run_wait(MS(80)), SLP_E_TIMEOUT); /* past the old deadline: nothing happens */
    CHECK_EQ_INT(slp_channel_balance(ch[0]), 0);
    CHECK_EQ_INT(slp_channel_balance(ch[1]), 0);
    slp_tasklet_release(t);
    for (int i = 0; i < 3; i++) slp_channel_release(ch[i]);
}

/* ============================================================================================
 * Deadlock rules (§5.3) for a selector
 * ========================================================================================== */

TEST(main_select_alone_is_deadlock_balances_unchanged) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL();
    struct op r;
    slp_tasklet *tr = blocked_op(op_recv, &r, ch1, SENTINEL, 0); /* blocked: cannot wake main */
    slp_select_case c[3];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, ch1, SENTINEL);
    set_case(&c[2], SEND, NULL, IPTR(1));
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), -1);
    CHECK(slp_channel_queue(ch0) == NULL);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_PTR(c[1].value, SENTINEL);
    CHECK(!slp_tasklet_blocked(slp_main()));
    CHECK(slp_tasklet_blocked(tr));
    cleanup_tasklet(tr);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

TEST(tasklet_select_while_main_in_run_returns_the_run) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL();
    struct sel x;
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, SEND, ch1, IPTR(5));
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(x.done, 0);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch0), -1);
    CHECK_EQ_INT(slp_channel_balance(ch1), 1);
    CHECK_ST(slp_run(), SLP_OK); /* again: still blocked */
    CHECK(slp_tasklet_blocked(t));
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch1, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(5));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_OK);
    CHECK_EQ_INT(x.index, 1);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

/* Rule 4: main blocks outside slp_run; a tasklet's select that would block gets
 * SLP_E_DEADLOCK (changing nothing) and can go on to wake main. */
TEST(tasklet_select_while_main_blocked_outside_run_is_deadlock) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL(), *chm = NEW_CHANNEL();
    struct sel x;
    sel_init(&x, -1, 'T');
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, SEND, ch1, IPTR(3));
    x.then_send = chm;
    x.then_value = IPTR(42);
    log_reset();
    slp_tasklet *t = SPAWN(t_select, &x);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(chm, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(42));
    CHECK_ST(x.st, SLP_E_DEADLOCK);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.then_st, SLP_OK);
    CHECK_LOG("T");
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(chm);
}

/* ============================================================================================
 * block_trap, switch_trap
 * ========================================================================================== */

TEST(block_trap_select_would_block_changes_nothing) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL(), *ch2 = NEW_CHANNEL();
    slp_channel *chb = NEW_CHANNEL_EX(-1, 1, false);
    struct op r;
    slp_tasklet *tr = blocked_op(op_recv, &r, ch1, SENTINEL, 0);
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    slp_select_case c[3];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], RECV, ch1, SENTINEL);
    set_case(&c[2], SEND, ch2, IPTR(1));
    CHECK(!slp_tasklet_set_block_trap(slp_main(), true));
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 3, -1, &idx), SLP_E_WOULD_BLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_ST(slp_select(c, 3, MS(10), &idx), SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), -1);
    CHECK_EQ_INT(slp_channel_balance(ch2), 0);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    /* a ready case does not block: allowed under block_trap */
    CHECK_ST(slp_channel_send(chb, IPTR(7)), SLP_OK);
    set_case(&c[1], RECV, chb, SENTINEL);
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[1].value, IPTR(7));
    CHECK(slp_tasklet_set_block_trap(slp_main(), false));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("O");

    /* a tasklet with block_trap set */
    struct sel x;
    sel_init(&x, -1, 'T');
    x.block_trap = 1;
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, SEND, ch2, IPTR(2));
    log_reset();
    slp_tasklet *t = SPAWN(t_select, &x);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK_LOG("TO");
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch2), 0);
    cleanup_tasklet(tr);
    slp_tasklet_release(t);
    slp_tasklet_release(o);
    slp_tasklet_release(o2);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(ch2);
    slp_channel_release(chb);
}

TEST(switch_trap_select_changes_nothing) {
    slp_channel *ch0 = NEW_CHANNEL();
    slp_channel *chp0 = NEW_CHANNEL_EX(0, 0, false);
    slp_channel *chm1 = NEW_CHANNEL();
    struct op r0, r1;
    slp_tasklet *t0 = blocked_op(op_recv, &r0, chp0, SENTINEL, 0);
    slp_tasklet *t1 = blocked_op(op_recv, &r1, chm1, SENTINEL, 0);
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('O'));
    slp_select_case c[2];
    set_case(&c[0], RECV, ch0, SENTINEL);
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    size_t idx = NO_INDEX;
    /* would block (and switch to O) */
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_E_SWITCH_TRAP);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    /* a ready send to a receiver with preference -1 would switch to it */
    set_case(&c[1], SEND, chm1, IPTR(1));
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_E_SWITCH_TRAP);
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK(slp_tasklet_blocked(t1));
    CHECK_EQ_INT(slp_channel_balance(chm1), -1);
    /* a ready send with preference 0 switches nothing: allowed */
    set_case(&c[1], SEND, chp0, IPTR(2));
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK(!slp_tasklet_blocked(t0));
    CHECK_LOG("");
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r0.val, IPTR(2));
    CHECK_LOG("O");

    /* a tasklet selecting under switch_trap */
    struct sel x;
    sel_init(&x, -1, 'T');
    x.switch_trap = 1;
    sel_add(&x, RECV, ch0, SENTINEL);
    log_reset();
    slp_tasklet *t = SPAWN(t_select, &x);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('O'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_E_SWITCH_TRAP);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK_LOG("TO");
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    cleanup_tasklet(t1);
    slp_tasklet_release(t0);
    slp_tasklet_release(t);
    slp_tasklet_release(o);
    slp_tasklet_release(o2);
    slp_channel_release(ch0);
    slp_channel_release(chp0);
    slp_channel_release(chm1);
}

/* ============================================================================================
 * kill and throw of a blocked selector
 * ========================================================================================== */

static slp_tasklet *start_three_way_selector(struct sel *x, slp_channel **ch) {
    sel_init(x, -1, 0);
    sel_add(x, RECV, ch[0], SENTINEL);
    sel_add(x, SEND, ch[1], IPTR(1));
    sel_add(x, RECV, ch[2], SENTINEL);
    slp_tasklet *t = SPAWN(t_select, x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(ch[0]), -1);
    CHECK_EQ_INT(slp_channel_balance(ch[1]), 1);
    CHECK_EQ_INT(slp_channel_balance(ch[2]), -1);
    return t;
}

static void check_all_left(struct sel *x, slp_channel **ch, const char *what) {
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(slp_channel_balance(ch[i]) == 0, "%s: channel %d balance %d", what, i,
                  (int)slp_channel_balance(ch[i]));
        CHECK(slp_channel_queue(ch[i]) == NULL);
    }
    void *v = SENTINEL;
    CHECK_ST(trap_receive(ch[1], &v), SLP_E_WOULD_BLOCK);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_PTR(x->c[0].value, SENTINEL);
    CHECK_EQ_PTR(x->c[2].value, SENTINEL);
}

TEST(kill_blocked_selector_leaves_every_channel) {
    slp_channel *ch[3] = {NEW_CHANNEL(), NEW_CHANNEL(), NEW_CHANNEL()};
    struct sel x;
    slp_tasklet *t = start_three_way_selector(&x, ch);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(x.st, SLP_E_KILLED);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK(!slp_tasklet_alive(t));
    check_all_left(&x, ch, "kill");
    slp_tasklet_release(t);

    t = start_three_way_selector(&x, ch);
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    check_all_left(&x, ch, "pending kill");
    CHECK(slp_tasklet_alive(t));
    CHECK(!slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(x.done, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, SLP_E_KILLED);
    CHECK_EQ_INT(x.index, NO_INDEX);
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    for (int i = 0; i < 3; i++) slp_channel_release(ch[i]);
}

TEST(throw_to_blocked_selector_returns_code) {
    slp_channel *ch[3] = {NEW_CHANNEL(), NEW_CHANNEL(), NEW_CHANNEL()};
    struct sel x;
    slp_tasklet *t = start_three_way_selector(&x, ch);
    CHECK_ST(slp_tasklet_throw(t, 33, &g_data, false), SLP_OK);
    CHECK_ST(x.st, 33);
    CHECK_EQ_PTR(x.exc, &g_data);
    CHECK_EQ_INT(x.index, NO_INDEX);
    check_all_left(&x, ch, "throw");
    slp_tasklet_release(t);

    t = start_three_way_selector(&x, ch);
    CHECK_ST(slp_tasklet_throw(t, 34, &g_data2, true), SLP_OK);
    check_all_left(&x, ch, "pending throw");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, 34);
    CHECK_EQ_PTR(x.exc, &g_data2);
    CHECK_EQ_INT(x.index, NO_INDEX);
    slp_tasklet_release(t);
    for (int i = 0; i < 3; i++) slp_channel_release(ch[i]);
}

/* send_exception to a selecting receiver */
TEST(send_exception_to_waiting_selector) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL();
    struct sel x;
    sel_init(&x, -1, 0);
    sel_add(&x, RECV, ch0, SENTINEL);
    sel_add(&x, RECV, ch1, SENTINEL);
    slp_tasklet *t = SPAWN(t_select, &x);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_channel_send_exception(ch1, 7, &g_data), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(x.st, 7);
    CHECK_EQ_INT(x.index, 1);
    CHECK_EQ_PTR(x.exc, &g_data);
    CHECK_EQ_PTR(x.c[0].value, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

/* ============================================================================================
 * Misuse
 * ========================================================================================== */

TEST(misuse_is_invalid_and_changes_nothing) {
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL();
    struct op s;
    slp_tasklet *t = blocked_op(op_send, &s, ch1, IPTR(5), 0); /* case 0 below is ready */
    slp_select_case c[2];
    set_case(&c[0], RECV, ch1, SENTINEL);
    set_case(&c[1], RECV, ch0, SENTINEL);
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(NULL, 1, -1, &idx), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_select(NULL, 2, 0, &idx), SLP_E_INVALID);
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_ST(slp_select(c, 2, -1, NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_select(c, 2, 0, NULL), SLP_E_INVALID);
    const int32_t bad_ops[] = {0, 4, -1, 99, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_ops / sizeof bad_ops[0]; i++) {
        set_case(&c[1], bad_ops[i], ch0, SENTINEL);
        CHECK_MSG(slp_select(c, 2, -1, &idx) == SLP_E_INVALID, "op %d not refused", (int)bad_ops[i]);
        CHECK_LAST_ERROR_SET();
        set_case(&c[1], bad_ops[i], ch0, SENTINEL);
        CHECK_MSG(slp_select(c, 2, 0, &idx) == SLP_E_INVALID, "op %d not refused by a poll", (int)bad_ops[i]);
    }
    /* a SIGNAL case with a NULL signal is a disabled case (like a NULL channel): a poll over
     * it alone finds nothing ready */
    set_case(&c[0], SLP_SELECT_SIGNAL, NULL, SENTINEL);
    CHECK_ST(slp_select(c, 1, 0, &idx), SLP_E_TIMEOUT);
    /* nothing happened: the ready case was not consumed, nothing written */
    CHECK_EQ_INT(idx, NO_INDEX);
    CHECK_EQ_INT(slp_channel_balance(ch1), 1);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(s.done, 0);
    /* an invalid case where the rest would block (here: deadlock) is still SLP_E_INVALID */
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], 7, ch0, SENTINEL);
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_E_INVALID);
    CHECK_EQ_INT(idx, NO_INDEX);
    /* the valid select works afterwards */
    set_case(&c[0], RECV, ch1, SENTINEL);
    CHECK_ST(slp_select(c, 1, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, IPTR(5));
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
}

/* ============================================================================================
 * Select inside a callback (forked children): blocking -> SLP_E_STATE; a poll or a ready
 * buffered case neither blocks nor switches and is allowed.
 * ========================================================================================== */
static struct {
    slp_channel *empty, *buf;
    int calls;
    slp_status st_block, st_timed, st_poll, st_ready;
    size_t idx_block, idx_ready;
    void *v_ready;
    char err[512];
} g_cb;

static void cb_do_selects(void) {
    slp_select_case c[2];
    set_case(&c[0], RECV, g_cb.empty, SENTINEL);
    size_t idx = NO_INDEX;
    g_cb.st_block = slp_select(c, 1, -1, &idx);
    snprintf(g_cb.err, sizeof g_cb.err, "%s", slp_last_error());
    g_cb.st_timed = slp_select(c, 1, MS(10), &idx);
    g_cb.idx_block = idx;
    g_cb.st_poll = slp_select(c, 1, 0, &idx);
    set_case(&c[1], RECV, g_cb.buf, SENTINEL);
    idx = NO_INDEX;
    g_cb.st_ready = slp_select(c, 2, -1, &idx);
    g_cb.idx_ready = idx;
    g_cb.v_ready = c[1].value;
}

static void cb_sched(slp_tasklet *prev, slp_tasklet *next, void *ud) {
    (void)prev;
    (void)next;
    (void)ud;
    if (g_cb.calls++ == 0) cb_do_selects();
}

static void cb_chan(slp_channel *ch, slp_tasklet *t, bool sending, bool will_block, void *ud) {
    (void)ch;
    (void)t;
    (void)sending;
    (void)will_block;
    (void)ud;
    if (g_cb.calls++ == 0) cb_do_selects();
}

static void callback_child(void *arg) {
    int kind = (int)(intptr_t)arg; /* 0 schedule callback, 1 channel callback */
    memset(&g_cb, 0, sizeof g_cb);
    g_cb.st_block = g_cb.st_timed = g_cb.st_poll = g_cb.st_ready = 12345;
    g_cb.empty = NEW_CHANNEL();
    g_cb.buf = NEW_CHANNEL_EX(-1, 2, false);
    slp_channel *trig = NEW_CHANNEL();
    CHECK_ST(slp_channel_send(g_cb.buf, IPTR(9)), SLP_OK);
    log_reset();
    slp_tasklet *t;
    struct op r;
    if (kind == 0) {
        t = SPAWN(t_log, IPTR('a'));
        CHECK_ST(slp_set_schedule_callback(cb_sched, NULL, NULL, NULL), SLP_OK);
        CHECK_ST(slp_run(), SLP_OK);
        slp_set_schedule_callback(NULL, NULL, NULL, NULL);
        CHECK_LOG("a");
    } else {
        t = blocked_op(op_recv, &r, trig, SENTINEL, 'r');
        CHECK_ST(slp_set_channel_callback(cb_chan, NULL, NULL, NULL), SLP_OK);
        CHECK_ST(slp_channel_send(trig, IPTR(3)), SLP_OK); /* the trigger completes normally */
        slp_set_channel_callback(NULL, NULL, NULL, NULL);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_LOG("r");
        CHECK_EQ_PTR(r.val, IPTR(3));
    }
    const char *word = kind == 0 ? "schedule callback" : "channel callback";
    CHECK(g_cb.calls >= 1);
    CHECK_ST(g_cb.st_block, SLP_E_STATE);
    CHECK_MSG(strstr(g_cb.err, word) != NULL, "slp_last_error \"%s\" does not name the %s", g_cb.err, word);
    CHECK_ST(g_cb.st_timed, SLP_E_STATE);
    CHECK_EQ_INT(g_cb.idx_block, NO_INDEX);
    CHECK_ST(g_cb.st_poll, SLP_E_TIMEOUT);
    CHECK_ST(g_cb.st_ready, SLP_OK);
    CHECK_EQ_INT(g_cb.idx_ready, 1);
    CHECK_EQ_PTR(g_cb.v_ready, IPTR(9));
    CHECK_EQ_INT(slp_channel_balance(g_cb.empty), 0);
    CHECK_EQ_INT(slp_channel_balance(g_cb.buf), 0);
    CHECK(!slp_tasklet_alive(t));
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(t);
    slp_channel_release(trig);
    slp_channel_release(g_cb.empty);
    slp_channel_release(g_cb.buf);
}

TEST(select_inside_callback_that_would_block_is_state) {
    CHECK_CHILD("select in schedule callback", callback_child, IPTR(0), 5);
    CHECK_CHILD("select in channel callback", callback_child, IPTR(1), 5);
}

/* ============================================================================================
 * Across threads
 * ========================================================================================== */

/* a plain thread that participates, waits `delay_ms`, then sends or receives once */
struct later {
    slp_channel *ch;
    int receive;
    int64_t delay_ms;
    void *val;
    long ready;
    slp_status st;
    long done;
};

static void *later_thread(void *arg) {
    struct later *l = arg;
    slp_current(); /* participates from here */
    xt_set(&l->ready, 1);
    sleep_ms(l->delay_ms);
    void *v = SENTINEL;
    slp_status st = l->receive ? slp_channel_receive(l->ch, &v) : slp_channel_send(l->ch, l->val);
    xt_lock();
    l->st = st;
    if (l->receive) l->val = v;
    l->done = 1;
    xt_unlock();
    return NULL;
}

TEST(main_selector_woken_by_partner_on_another_thread) {
    watchdog(10);
    slp_channel *ch[3] = {NEW_CHANNEL(), NEW_CHANNEL(), NEW_CHANNEL()};
    for (int dir = 0; dir < 2; dir++) { /* 0: B sends on ch1; 1: B receives main's send case on ch2 */
        struct later l;
        memset(&l, 0, sizeof l);
        l.ch = dir == 0 ? ch[1] : ch[2];
        l.receive = dir;
        l.delay_ms = xt_ms(30);
        l.val = IPTR(77);
        l.st = 12345;
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, later_thread, &l), 0);
        CHECK_WAIT(xt_get(&l.ready), 2000);
        slp_select_case c[3];
        set_case(&c[0], RECV, ch[0], SENTINEL);
        set_case(&c[1], RECV, ch[1], SENTINEL);
        set_case(&c[2], SEND, ch[2], IPTR(88));
        size_t idx = NO_INDEX;
        int64_t t0 = now_ns();
        CHECK_ST(slp_select(c, 3, -1, &idx), SLP_OK);
        int64_t took = now_ns() - t0;
        CHECK_EQ_INT(idx, dir == 0 ? 1 : 2);
        CHECK_EQ_PTR(c[0].value, SENTINEL);
        CHECK_EQ_PTR(c[1].value, dir == 0 ? IPTR(77) : SENTINEL);
        CHECK_MSG(took >= MS(10), "returned after %lld us: it did not wait for B", (long long)(took / 1000));
        for (int i = 0; i < 3; i++) CHECK_EQ_INT(slp_channel_balance(ch[i]), 0);
        pthread_join(th, NULL);
        CHECK_ST(l.st, SLP_OK);
        if (dir == 1) CHECK_EQ_PTR(l.val, IPTR(88));
        CHECK_EQ_INT(slp_runcount(), 1);
    }
    /* with a finite timeout, the partner arrives before it */
    struct later l;
    memset(&l, 0, sizeof l);
    l.ch = ch[0];
    l.delay_ms = xt_ms(20);
    l.val = IPTR(66);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, later_thread, &l), 0);
    CHECK_WAIT(xt_get(&l.ready), 2000);
    slp_select_case c[2];
    set_case(&c[0], RECV, ch[0], SENTINEL);
    set_case(&c[1], SEND, ch[1], IPTR(1));
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, MS(xt_ms(3000)), &idx), SLP_OK);
    CHECK_EQ_INT(idx, 0);
    CHECK_EQ_PTR(c[0].value, IPTR(66));
    CHECK_EQ_INT(slp_channel_balance(ch[1]), 0);
    pthread_join(th, NULL);
    for (int i = 0; i < 3; i++) slp_channel_release(ch[i]);
}

/* a worker thread's tasklet selects; partners on this thread: nothing switches locally
 * whatever the preference (the caller S continues, O after it: "SO") */
static void setup_spawn_select(void *arg) { slp_tasklet_new(t_select, arg, NULL); }

/* the same, keeping a reference to the selector for the test (read after START_WORKER) */
static slp_tasklet *g_kept;
static void setup_spawn_select_keep(void *arg) {
    g_kept = NULL;
    slp_tasklet_new(t_select, arg, &g_kept);
}

TEST(selector_on_worker_paired_from_this_thread_every_preference) {
    watchdog(20);
    static const char *names[] = {"preference -1", "preference 0", "preference 1", "schedule_all"};
    for (int dir = 0; dir < 2; dir++) { /* 0: we send to its receive case; 1: we receive its send case */
        for (int mode = 0; mode < 4; mode++) {
            int pref = mode == 3 ? -1 : mode - 1;
            slp_channel *ch = NEW_CHANNEL_EX(pref, 0, mode == 3);
            slp_channel *other = NEW_CHANNEL();
            static struct sel x;
            sel_init(&x, -1, 0);
            sel_add(&x, dir == 0 ? RECV : SEND, other, dir == 0 ? SENTINEL : IPTR(1));
            sel_add(&x, dir == 0 ? RECV : SEND, ch, dir == 0 ? SENTINEL : IPTR(200 + mode));
            struct worker w;
            if (!START_WORKER(&w, setup_spawn_select, &x)) return;
            int want = dir == 0 ? -1 : 1;
            CHECK_WAIT(slp_channel_balance(ch) == want && slp_channel_balance(other) == want, 2000);
            log_reset();
            struct op me;
            op_init(&me, ch, dir == 0 ? IPTR(100 + mode) : SENTINEL, 'S');
            slp_tasklet *s = SPAWN(dir == 0 ? op_send : op_recv, &me);
            slp_tasklet *o = SPAWN(t_log, IPTR('O'));
            CHECK_ST(slp_run(), SLP_OK);
            CHECK_MSG(strcmp(g_log, "SO") == 0, "%s, %s: log \"%s\", expected \"SO\"",
                      dir == 0 ? "send to a selector" : "receive from a selector", names[mode], g_log);
            CHECK_ST(me.st, SLP_OK);
            if (dir == 1) CHECK_EQ_PTR(me.val, IPTR(200 + mode));
            CHECK_EQ_INT(slp_channel_balance(ch), 0);
            CHECK_WAIT(sel_done(&x), 2000);
            xt_lock();
            CHECK_ST(x.st, SLP_OK);
            CHECK_EQ_INT(x.index, 1);
            if (dir == 0) CHECK_EQ_PTR(x.c[1].value, IPTR(100 + mode));
            CHECK_EQ_PTR(x.c[0].value, dir == 0 ? SENTINEL : IPTR(1));
            CHECK_EQ_INT(x.tid, w.tid);
            xt_unlock();
            CHECK_WAIT(slp_channel_balance(other) == 0, 2000);
            STOP_WORKER(&w);
            slp_tasklet_release(s);
            slp_tasklet_release(o);
            slp_channel_release(ch);
            slp_channel_release(other);
        }
    }
}

/* the selector's partner is already blocked on another thread: the case is ready, it completes
 * at once, nothing switches here, the partner runs on its own thread */
struct two_xops {
    struct xop r, s;
};

static void setup_recv_and_send(void *arg) {
    struct two_xops *p = arg;
    slp_tasklet_new(xop_recv, &p->r, NULL);
    slp_tasklet_new(xop_send, &p->s, NULL);
}

TEST(selector_with_partner_blocked_on_another_thread) {
    watchdog(10);
    slp_channel *ch0 = NEW_CHANNEL(), *ch1 = NEW_CHANNEL(), *ch2 = NEW_CHANNEL();
    static struct two_xops p;
    xop_init(&p.r, ch1, SENTINEL);
    xop_init(&p.s, ch2, IPTR(32));
    struct worker w;
    if (!START_WORKER(&w, setup_recv_and_send, &p)) return;
    CHECK_WAIT(slp_channel_balance(ch1) == -1 && slp_channel_balance(ch2) == 1, 2000);
    /* a send case whose receiver waits on B */
    slp_select_case c[2];
    set_case(&c[0], RECV, ch0, SENTINEL);
    set_case(&c[1], SEND, ch1, IPTR(31));
    size_t idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK(slp_tasklet_is_current(slp_main()));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_INT(slp_channel_balance(ch0), 0);
    CHECK_EQ_INT(slp_channel_balance(ch1), 0);
    CHECK_WAIT(xop_done(&p.r), 2000);
    xt_lock();
    CHECK_ST(p.r.st, SLP_OK);
    CHECK_EQ_PTR(p.r.val, IPTR(31));
    CHECK_EQ_INT(p.r.tid, w.tid);
    xt_unlock();
    /* a receive case whose sender waits on B */
    set_case(&c[1], RECV, ch2, SENTINEL);
    idx = NO_INDEX;
    CHECK_ST(slp_select(c, 2, -1, &idx), SLP_OK);
    CHECK_EQ_INT(idx, 1);
    CHECK_EQ_PTR(c[1].value, IPTR(32));
    CHECK_EQ_PTR(c[0].value, SENTINEL);
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK_EQ_INT(slp_channel_balance(ch2), 0);
    CHECK_WAIT(xop_done(&p.s), 2000);
    xt_lock();
    CHECK_ST(p.s.st, SLP_OK);
    CHECK_EQ_INT(p.s.tid, w.tid);
    xt_unlock();
    STOP_WORKER(&w);
    slp_channel_release(ch0);
    slp_channel_release(ch1);
    slp_channel_release(ch2);
}

/* a blocked selector on a worker, killed / thrown to from this thread: once its thread applied
 * the kill, every balance is back and its select returned SLP_E_KILLED / the code */
TEST(selector_on_another_thread_killed_and_thrown_to) {
    watchdog(10);
    for (int use_throw = 0; use_throw < 2; use_throw++) {
        slp_channel *ch[3] = {NEW_CHANNEL(), NEW_CHANNEL(), NEW_CHANNEL()};
        static struct sel x;
        static slp_tasklet *tx;
        sel_init(&x, -1, 0);
        sel_add(&x, RECV, ch[0], SENTINEL);
        sel_add(&x, SEND, ch[1], IPTR(1));
        sel_add(&x, RECV, ch[2], SENTINEL);
        tx = NULL;
        struct worker w;
        if (!START_WORKER(&w, setup_spawn_select_keep, &x)) return;
        tx = g_kept;
        CHECK(tx != NULL);
        CHECK_WAIT(slp_channel_balance(ch[0]) == -1 && slp_channel_balance(ch[1]) == 1 &&
                       slp_channel_balance(ch[2]) == -1,
                   2000);
        slp_status st = use_throw ? slp_tasklet_throw(tx, 35, &g_data, false) : slp_tasklet_kill(tx, false);
        CHECK_ST(st, SLP_OK);
        CHECK(slp_tasklet_is_current(slp_main()));
        CHECK_WAIT(sel_done(&x), 2000);
        xt_lock();
        CHECK_ST(x.st, use_throw ? 35 : SLP_E_KILLED);
        CHECK_EQ_INT(x.index, NO_INDEX);
        CHECK_EQ_INT(x.tid, w.tid);
        if (use_throw) CHECK_EQ_PTR(x.exc, &g_data);
        CHECK_EQ_PTR(x.c[0].value, SENTINEL);
        CHECK_EQ_PTR(x.c[2].value, SENTINEL);
        xt_unlock();
        for (int i = 0; i < 3; i++) {
            CHECK_WAIT(slp_channel_balance(ch[i]) == 0, 2000);
            CHECK(slp_channel_queue(ch[i]) == NULL);
        }
        void *v = SENTINEL;
        CHECK_ST(trap_receive(ch[1], &v), SLP_E_WOULD_BLOCK);
        CHECK_WAIT(!slp_tasklet_alive(tx), 2000);
        STOP_WORKER(&w);
        slp_tasklet_release(tx);
        for (int i = 0; i < 3; i++) slp_channel_release(ch[i]);
    }
}

/* Two threads race to complete the same blocked selector (main selecting on two channels, each
 * racer sending on one of them at the same moment): exactly one value is delivered to the
 * select, the other stays pending with its sender and is received afterwards by a plain
 * receive. Many rounds. */
struct racer {
    slp_channel *ch[2];
    int which;
    long rounds;
    long *round;            /* the round main has announced (shared, under xt_mx); > rounds: stop */
    long *arrivals;         /* both racers arrived for this round: a barrier with a deadline */
    long sent;              /* rounds whose send returned */
    slp_status first_err;
    long errors;
};

static void *racer_thread(void *arg) {
    struct racer *r = arg;
    slp_current(); /* participates */
    for (long k = 0; k < r->rounds; k++) {
        /* wait until main selects in round k: both channels count it */
        int64_t dl = now_ns() + MS(xt_ms(3000));
        while (!(xt_get(r->round) == k && slp_channel_balance(r->ch[0]) == -1 &&
                 slp_channel_balance(r->ch[1]) == -1)) {
            if (now_ns() > dl || xt_get(r->round) > r->rounds) return NULL;
            sched_yield();
        }
        xt_add(r->arrivals, 1);
        /* a pure spin (no yield) so that both leave together and really race */
        while (xt_get(r->arrivals) < 2 * (k + 1)) {
            if (now_ns() > dl || xt_get(r->round) > r->rounds) return NULL;
        }
        slp_status st = slp_channel_send(r->ch[r->which], IPTR(1 + 2 * k + r->which));
        xt_lock();
        if (st != SLP_OK && r->errors++ == 0) r->first_err = st;
        r->sent = k + 1;
        xt_unlock();
    }
    return NULL;
}

TEST(two_threads_race_to_complete_one_selector) {
    watchdog(30);
    long rounds = xt_slow() ? 40 : 300;
    slp_channel *ch[2] = {NEW_CHANNEL(), NEW_CHANNEL()};
    static long round, arrivals;
    round = -1;
    arrivals = 0;
    struct racer rc[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&rc[i], 0, sizeof rc[i]);
        rc[i].ch[0] = ch[0];
        rc[i].ch[1] = ch[1];
        rc[i].which = i;
        rc[i].rounds = rounds;
        rc[i].round = &round;
        rc[i].arrivals = &arrivals;
        CHECK_EQ_INT(pthread_create(&th[i], NULL, racer_thread, &rc[i]), 0);
    }
    long wins[2] = {0, 0}, bad = 0;
    for (long k = 0; k < rounds && !bad; k++) {
        xt_set(&round, k);
        slp_select_case c[2];
        set_case(&c[0], RECV, ch[0], SENTINEL);
        set_case(&c[1], RECV, ch[1], SENTINEL);
        size_t idx = NO_INDEX;
        slp_status st = slp_select(c, 2, MS(xt_ms(5000)), &idx);
        if (st != SLP_OK || idx > 1) {
            CHECK_MSG(0, "round %ld: select returned %d (%s), index %zu", k, (int)st, harness_status_name(st), idx);
            bad++;
            break;
        }
        size_t other = 1 - idx;
        wins[idx]++;
        if (c[idx].value != IPTR(1 + 2 * k + (long)idx) || c[other].value != SENTINEL) {
            CHECK_MSG(0, "round %ld: case %zu got %p, other case holds %p", k, idx, c[idx].value, c[other].value);
            bad++;
        }
        /* the loser's value is still with its sender: a plain receive gets it, once */
        void *v = SENTINEL;
        st = slp_channel_receive(ch[other], &v);
        if (st != SLP_OK || v != IPTR(1 + 2 * k + (long)other)) {
            CHECK_MSG(0, "round %ld: the pending value on channel %zu: status %d, value %p (expected %p)", k, other,
                      (int)st, v, IPTR(1 + 2 * k + (long)other));
            bad++;
        }
        /* both sends returned before the next round */
        bool ok;
        WAIT_UNTIL(ok, xt_get(&rc[0].sent) == k + 1 && xt_get(&rc[1].sent) == k + 1, 3000);
        if (!ok) {
            CHECK_MSG(0, "round %ld: a racer's send did not return", k);
            bad++;
        }
        if (slp_channel_balance(ch[0]) != 0 || slp_channel_balance(ch[1]) != 0) {
            CHECK_MSG(0, "round %ld: balances %d %d after the round", k, (int)slp_channel_balance(ch[0]),
                      (int)slp_channel_balance(ch[1]));
            bad++;
        }
    }
    if (bad) {
        /* unblock the racers so that the program can go on */
        xt_set(&round, rounds + 1);
        slp_channel_shutdown(ch[0]);
        slp_channel_shutdown(ch[1]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(rc[0].errors, 0);
    CHECK_EQ_INT(rc[1].errors, 0);
    CHECK_EQ_INT(wins[0] + wins[1], bad ? wins[0] + wins[1] : rounds);
    printf("    %ld rounds: case 0 won %ld, case 1 won %ld\n", rounds, wins[0], wins[1]);
    slp_channel_release(ch[0]);
    slp_channel_release(ch[1]);
}

/* A select's timeout racing a partner on another thread: main selects with a 1 ms timeout
 * while the partner sends at about that moment. Either the select got the value (SLP_OK) or
 * it timed out and the value is still with its sender (a plain receive gets it): never lost,
 * never twice. Many rounds. */
struct to_racer {
    slp_channel *ch;
    long rounds;
    long round;  /* announced by main */
    long sent;   /* rounds whose send returned */
    long errors;
    long ready;
};

static void *to_racer_thread(void *arg) {
    struct to_racer *r = arg;
    slp_current();
    xt_set(&r->ready, 1);
    unsigned seed = 12345;
    for (long k = 0; k < r->rounds; k++) {
        int64_t dl = now_ns() + MS(xt_ms(3000));
        while (xt_get(&r->round) != k) {
            if (now_ns() > dl || xt_get(&r->round) > r->rounds) return NULL;
        }
        seed = seed * 1103515245u + 12345u;
        int64_t until = now_ns() + (int64_t)((seed >> 8) % 2000) * 1000; /* 0..2 ms */
        while (now_ns() < until) {
        }
        slp_status st = slp_channel_send(r->ch, IPTR(k + 1));
        xt_lock();
        if (st != SLP_OK) r->errors++;
        r->sent = k + 1;
        xt_unlock();
    }
    return NULL;
}

TEST(select_timeout_racing_partner_never_loses_a_value) {
    watchdog(30);
    long rounds = xt_slow() ? 30 : 300;
    slp_channel *ch = NEW_CHANNEL();
    static struct to_racer r;
    memset(&r, 0, sizeof r);
    r.ch = ch;
    r.rounds = rounds;
    r.round = -1;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, to_racer_thread, &r), 0);
    CHECK_WAIT(xt_get(&r.ready), 2000);
    long got_in_select = 0, timed_out = 0, bad = 0;
    for (long k = 0; k < rounds && !bad; k++) {
        xt_set(&r.round, k);
        slp_select_case c[1];
        set_case(&c[0], RECV, ch, SENTINEL);
        size_t idx = NO_INDEX;
        slp_status st = slp_select(c, 1, MS(1), &idx);
        if (st == SLP_OK) {
            got_in_select++;
            if (idx != 0 || c[0].value != IPTR(k + 1)) {
                CHECK_MSG(0, "round %ld: index %zu, value %p", k, idx, c[0].value);
                bad++;
            }
        } else if (st == SLP_E_TIMEOUT) {
            timed_out++;
            if (idx != NO_INDEX || c[0].value != SENTINEL) {
                CHECK_MSG(0, "round %ld: timed out but index %zu, value %p written", k, idx, c[0].value);
                bad++;
            }
            void *v = SENTINEL;
            slp_status st2 = slp_channel_receive(ch, &v); /* the value is still with its sender */
            if (st2 != SLP_OK || v != IPTR(k + 1)) {
                CHECK_MSG(0, "round %ld: after the timeout, receive returned %d with %p (expected %p)", k, (int)st2,
                          v, IPTR(k + 1));
                bad++;
            }
        } else {
            CHECK_MSG(0, "round %ld: select returned %d (%s): %s", k, (int)st, harness_status_name(st),
                      slp_last_error());
            bad++;
        }
        bool ok;
        WAIT_UNTIL(ok, xt_get(&r.sent) == k + 1, 3000);
        if (!ok) {
            CHECK_MSG(0, "round %ld: the partner's send did not return", k);
            bad++;
        }
        if (slp_channel_balance(ch) != 0) {
            CHECK_MSG(0, "round %ld: balance %d after the round", k, (int)slp_channel_balance(ch));
            bad++;
        }
    }
    if (bad) {
        xt_set(&r.round, rounds + 1);
        slp_channel_shutdown(ch);
    }
    pthread_join(th, NULL);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(r.errors, 0);
    printf("    %ld rounds: %ld received by the select, %ld after its timeout\n", rounds, got_in_select, timed_out);
    slp_channel_release(ch);
}

/* The smallest cross-thread loop: one plain thread sends values one by one on one channel,
 * main takes each with a one-case select (and, the other way, main's one-case select sends
 * to a plain thread receiving). The partner is always about to send/receive again, so main's
 * select must never return SLP_E_DEADLOCK (a plain receive/send loop does not). */
struct pp_loop {
    slp_channel *ch;
    long n, done_n, ready;
    int receive;
    long err;
};

static void *pp_loop_thread(void *arg) {
    struct pp_loop *l = arg;
    slp_current();
    xt_set(&l->ready, 1);
    for (long k = 0; k < l->n; k++) {
        void *v = NULL;
        slp_status st = l->receive ? slp_channel_receive(l->ch, &v) : slp_channel_send(l->ch, IPTR(k + 1));
        if (st == SLP_OK && l->receive && v != IPTR(k + 1)) st = SLP_E_INVALID;
        if (st != SLP_OK) {
            xt_set(&l->err, st);
            return NULL;
        }
        xt_set(&l->done_n, k + 1);
    }
    return NULL;
}

TEST(select_loop_with_partner_thread_never_reports_false_deadlock) {
    watchdog(20);
    long n = xt_slow() ? 200 : 2000;
    for (int dir = 0; dir < 2; dir++) { /* 0: main's select receives; 1: it sends */
        slp_channel *ch = NEW_CHANNEL();
        struct pp_loop l;
        memset(&l, 0, sizeof l);
        l.ch = ch;
        l.n = n;
        l.receive = dir;
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, pp_loop_thread, &l), 0);
        CHECK_WAIT(xt_get(&l.ready), 2000);
        long k = 0;
        slp_status st = SLP_OK;
        for (; k < n; k++) {
            slp_select_case c[1];
            set_case(&c[0], dir == 0 ? RECV : SEND, ch, dir == 0 ? SENTINEL : IPTR(k + 1));
            size_t idx = NO_INDEX;
            st = slp_select(c, 1, -1, &idx);
            if (st != SLP_OK) break;
            if (idx != 0 || (dir == 0 && c[0].value != IPTR(k + 1))) {
                CHECK_MSG(0, "%s: value %ld: index %zu, value %p", dir == 0 ? "receive" : "send", k + 1, idx,
                          c[0].value);
                break;
            }
        }
        CHECK_MSG(st == SLP_OK, "%s loop: main's select returned %d (%s) at value %ld of %ld, channel balance %d "
                                "(the partner thread is %s): \"%s\"",
                  dir == 0 ? "receive" : "send", (int)st, harness_status_name(st), k + 1, n,
                  (int)slp_channel_balance(ch), dir == 0 ? "blocked sending the next value" : "blocked receiving",
                  slp_last_error());
        if (st != SLP_OK) slp_channel_shutdown(ch); /* release the partner */
        pthread_join(th, NULL);
        if (st == SLP_OK) {
            CHECK_ST(l.err, SLP_OK);
            CHECK_EQ_INT(l.done_n, n);
        }
        slp_channel_release(ch);
    }
}

/* ============================================================================================
 * Many rounds over 3 channels: every value arrives exactly once, in order per channel
 * ========================================================================================== */
#define NCH 3

struct producer {
    slp_channel *ch;
    long base, n;
    long sent;
    slp_status err;
};

static int32_t t_producer(void *arg) {
    struct producer *p = arg;
    for (long k = 0; k < p->n; k++) {
        slp_status st = slp_channel_send(p->ch, IPTR(p->base + k + 1));
        if (st != SLP_OK) {
            p->err = st;
            return 0;
        }
        p->sent++;
    }
    return 0;
}

struct consumer {
    slp_channel *ch[NCH];
    long n[NCH];        /* values expected per channel */
    long base[NCH];
    long got[NCH];
    long bad;           /* out of order / duplicates / wrong index */
    slp_status err;
    long selects;
};

/* receive side: selects over every channel that still has values to come */
static void consume_all(struct consumer *c) {
    long total = 0, want = 0;
    for (int i = 0; i < NCH; i++) want += c->n[i];
    while (total < want) {
        slp_select_case cs[NCH];
        for (int i = 0; i < NCH; i++) set_case(&cs[i], RECV, c->got[i] < c->n[i] ? c->ch[i] : NULL, SENTINEL);
        size_t idx = NO_INDEX;
        slp_status st = slp_select(cs, NCH, -1, &idx);
        c->selects++;
        if (st != SLP_OK || idx >= NCH) {
            c->err = st == SLP_OK ? SLP_E_INVALID : st;
            return;
        }
        for (int i = 0; i < NCH; i++)
            if ((size_t)i != idx && cs[i].value != SENTINEL) c->bad++;
        if (cs[idx].value != IPTR(c->base[idx] + c->got[idx] + 1)) c->bad++;
        c->got[idx]++;
        total++;
    }
}

static int32_t t_consumer(void *arg) {
    consume_all(arg);
    return 0;
}

/* send side: one select over the channels that still have values to send */
struct sender_sel {
    slp_channel *ch[NCH];
    long n[NCH], base[NCH], sent[NCH];
    long bad;
    slp_status err;
};

static void send_all(struct sender_sel *s) {
    long total = 0, want = 0;
    for (int i = 0; i < NCH; i++) want += s->n[i];
    while (total < want) {
        slp_select_case cs[NCH];
        for (int i = 0; i < NCH; i++)
            set_case(&cs[i], SEND, s->sent[i] < s->n[i] ? s->ch[i] : NULL, IPTR(s->base[i] + s->sent[i] + 1));
        size_t idx = NO_INDEX;
        slp_status st = slp_select(cs, NCH, -1, &idx);
        if (st != SLP_OK || idx >= NCH) {
            s->err = st == SLP_OK ? SLP_E_INVALID : st;
            return;
        }
        if (s->sent[idx] >= s->n[idx]) s->bad++; /* a disabled case was chosen */
        s->sent[idx]++;
        total++;
    }
}

static int32_t t_send_all(void *arg) {
    send_all(arg);
    return 0;
}

struct recv_n {
    slp_channel *ch;
    long base, n, got, bad;
    slp_status err;
};

static int32_t t_recv_n(void *arg) {
    struct recv_n *r = arg;
    for (long k = 0; k < r->n; k++) {
        void *v = NULL;
        slp_status st = slp_channel_receive(r->ch, &v);
        if (st != SLP_OK) {
            xt_lock();
            r->err = st;
            xt_unlock();
            return 0;
        }
        xt_lock();
        if (v != IPTR(r->base + k + 1)) r->bad++;
        r->got++;
        xt_unlock();
    }
    return 0;
}

static slp_channel *mk_round_channel(int i) {
    /* a mix: preference -1 rendezvous, preference 0 with schedule_all, preference 1 buffered */
    if (i == 0) return NEW_CHANNEL_EX(-1, 0, false);
    if (i == 1) return NEW_CHANNEL_EX(0, 0, true);
    return NEW_CHANNEL_EX(1, 3, false);
}

TEST(many_selects_over_three_channels_same_thread) {
    watchdog(20);
    long n = xt_slow() ? 300 : 3000;
    slp_channel *ch[NCH];
    for (int i = 0; i < NCH; i++) ch[i] = mk_round_channel(i);

    /* a selecting consumer against 3 producer tasklets */
    static struct producer p[NCH];
    static struct consumer c;
    memset(&c, 0, sizeof c);
    slp_tasklet *tp[NCH];
    slp_tasklet *tc = SPAWN(t_consumer, &c);
    for (int i = 0; i < NCH; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].ch = ch[i];
        p[i].base = (i + 1) * 1000000L;
        p[i].n = n - i * 7; /* different lengths: channels drop out at different times */
        c.ch[i] = ch[i];
        c.n[i] = p[i].n;
        c.base[i] = p[i].base;
        tp[i] = SPAWN(t_producer, &p[i]);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!slp_tasklet_alive(tc));
    CHECK_ST(c.err, SLP_OK);
    CHECK_EQ_INT(c.bad, 0);
    for (int i = 0; i < NCH; i++) {
        CHECK_EQ_INT(c.got[i], p[i].n);
        CHECK_EQ_INT(p[i].sent, p[i].n);
        CHECK_ST(p[i].err, SLP_OK);
        CHECK(!slp_tasklet_alive(tp[i]));
        CHECK_EQ_INT(slp_channel_balance(ch[i]), 0);
        slp_tasklet_release(tp[i]);
    }
    slp_tasklet_release(tc);

    /* a selecting sender against 3 consumer tasklets */
    static struct sender_sel s;
    static struct recv_n r[NCH];
    memset(&s, 0, sizeof s);
    slp_tasklet *tr[NCH];
    for (int i = 0; i < NCH; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].ch = ch[i];
        r[i].base = (i + 1) * 1000000L;
        r[i].n = n - i * 5;
        s.ch[i] = ch[i];
        s.n[i] = r[i].n;
        s.base[i] = r[i].base;
        tr[i] = SPAWN(t_recv_n, &r[i]);
    }
    slp_tasklet *ts = SPAWN(t_send_all, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!slp_tasklet_alive(ts));
    CHECK_ST(s.err, SLP_OK);
    CHECK_EQ_INT(s.bad, 0);
    for (int i = 0; i < NCH; i++) {
        CHECK_EQ_INT(s.sent[i], r[i].n);
        CHECK_EQ_INT(r[i].got, r[i].n);
        CHECK_EQ_INT(r[i].bad, 0);
        CHECK_ST(r[i].err, SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch[i]), 0);
        slp_tasklet_release(tr[i]);
    }
    slp_tasklet_release(ts);
    for (int i = 0; i < NCH; i++) slp_channel_release(ch[i]);
}

/* producers on other threads (plain threads sending), main selecting; then main's select
 * sending to consumer tasklets on a worker thread */
struct prod_thread {
    slp_channel *ch;
    long base, n, sent;
    slp_status err;
    long ready;
};

static void *producer_thread(void *arg) {
    struct prod_thread *p = arg;
    slp_current(); /* participates from here: main may block on it */
    xt_set(&p->ready, 1);
    for (long k = 0; k < p->n; k++) {
        slp_status st = slp_channel_send(p->ch, IPTR(p->base + k + 1));
        if (st != SLP_OK) {
            xt_lock();
            p->err = st;
            xt_unlock();
            return NULL;
        }
        xt_lock();
        p->sent++;
        xt_unlock();
    }
    return NULL;
}

static struct recv_n g_xr[NCH];
static void setup_recv_n(void *arg) {
    (void)arg;
    for (int i = 0; i < NCH; i++) slp_tasklet_new(t_recv_n, &g_xr[i], NULL);
}

TEST(many_selects_over_three_channels_cross_thread) {
    watchdog(30);
    long n = xt_slow() ? 200 : 2000;
    slp_channel *ch[NCH];
    for (int i = 0; i < NCH; i++) ch[i] = mk_round_channel(i);

    static struct prod_thread p[NCH];
    static struct consumer c;
    memset(&c, 0, sizeof c);
    pthread_t th[NCH];
    for (int i = 0; i < NCH; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].ch = ch[i];
        p[i].base = (i + 1) * 1000000L;
        p[i].n = n - i * 3;
        c.ch[i] = ch[i];
        c.n[i] = p[i].n;
        c.base[i] = p[i].base;
    }
    for (int i = 0; i < NCH; i++) CHECK_EQ_INT(pthread_create(&th[i], NULL, producer_thread, &p[i]), 0);
    for (int i = 0; i < NCH; i++) CHECK_WAIT(xt_get(&p[i].ready), 2000);
    consume_all(&c); /* main selects */
    if (c.err != SLP_OK) {
        long total = 0;
        for (int i = 0; i < NCH; i++) total += c.got[i];
        CHECK_MSG(0, "main's select failed after %ld values: %d (%s): %s", total, (int)c.err,
                  harness_status_name(c.err), slp_last_error());
        for (int i = 0; i < NCH; i++) slp_channel_shutdown(ch[i]); /* unblock the producers */
    }
    for (int i = 0; i < NCH; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(c.bad, 0);
    for (int i = 0; i < NCH && c.err == SLP_OK; i++) {
        CHECK_EQ_INT(c.got[i], p[i].n);
        CHECK_EQ_INT(p[i].sent, p[i].n);
        CHECK_ST(p[i].err, SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch[i]), 0);
    }
    if (c.err != SLP_OK) { /* the channels were shut down: start the second half afresh */
        for (int i = 0; i < NCH; i++) {
            slp_channel_release(ch[i]);
            ch[i] = mk_round_channel(i);
        }
    }

    /* main's select sends to 3 consumer tasklets on a worker */
    struct sender_sel s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < NCH; i++) {
        memset(&g_xr[i], 0, sizeof g_xr[i]);
        g_xr[i].ch = ch[i];
        g_xr[i].base = (i + 1) * 1000000L;
        g_xr[i].n = n - i * 5;
        s.ch[i] = ch[i];
        s.n[i] = g_xr[i].n;
        s.base[i] = g_xr[i].base;
    }
    struct worker w;
    if (!START_WORKER(&w, setup_recv_n, NULL)) return;
    send_all(&s);
    if (s.err != SLP_OK) {
        long total = 0;
        for (int i = 0; i < NCH; i++) total += s.sent[i];
        CHECK_MSG(0, "main's select failed after sending %ld values: %d (%s): %s", total, (int)s.err,
                  harness_status_name(s.err), slp_last_error());
    }
    CHECK_EQ_INT(s.bad, 0);
    for (int i = 0; i < NCH && s.err == SLP_OK; i++) {
        CHECK_WAIT(xt_get(&g_xr[i].got) == g_xr[i].n, 3000);
        xt_lock();
        CHECK_EQ_INT(g_xr[i].bad, 0);
        CHECK_ST(g_xr[i].err, SLP_OK);
        xt_unlock();
        CHECK_EQ_INT(s.sent[i], g_xr[i].n);
    }
    STOP_WORKER(&w);
    for (int i = 0; i < NCH; i++) {
        CHECK_EQ_INT(slp_channel_balance(ch[i]), 0);
        slp_channel_release(ch[i]);
    }
}
