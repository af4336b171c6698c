/* test_watchdog.c - preemption (SPEC §6, the seed "Pre-emptive Multitasking"): slp_run_watchdog
 * and slp_tick. SPEC §10 scenarios 18 (the seed's preemptive() loop), 19 (atomic defers the
 * interrupt into set_atomic(false)) and 20 (slp_run_for(0) runs exactly one tasklet); hard and
 * soft stops; per-slice and SLP_WATCHDOG_TOTAL budgets; SLP_WATCHDOG_TIME budgets (on the
 * default clock and, deterministically, on a host clock the tasklet advances); tick accounting
 * (the interrupt happens inside the slp_tick call that reaches or passes the budget);
 * cooperative tasklets are never interrupted; kill and throw to an interrupted tasklet; an
 * uncaught error ends the run; budget 0 is slp_run; slp_tick outside a watchdog run; misuse;
 * run queue order after an interrupt; the interrupted tasklet's state and reference count.
 *
 * Spinning tasklets are bounded (SPIN_CAP slp_tick calls) so that a library that never
 * interrupts fails a check instead of hanging; every test also arms its own watchdog alarm.
 * Timing checks: "never early" strictly, "not late" only with wide margins. */
#include "harness.h"
#include "common.h"
#include "thread_util.h"

/* a spinner gives up after this many slp_tick calls (a library that never interrupts) */
#define SPIN_CAP 20000000L

/* ---- a tasklet that calls slp_tick(n) in a loop ---- */
struct spin {
    char tag;           /* logged when it starts (0: nothing) */
    char end_tag;       /* logged when it ends normally (0: nothing) */
    uint32_t n;         /* ticks per slp_tick call */
    long limit;         /* stop after this many calls; 0: until a tick fails (or SPIN_CAP) */
    long yield_every;   /* slp_schedule() after every yield_every calls (0: never) */
    long yield_at;      /* slp_schedule() once, after call yield_at (0: never) */
    long calls;         /* slp_tick calls started */
    long returned;      /* slp_tick calls returned */
    long not_ok;        /* calls that returned something else than SLP_OK */
    slp_status bad;     /* the first such status */
    long bad_at;        /* at which call (1-based) */
    void *exc;          /* slp_exception_data() right after it */
    slp_status yield_st;
    int capped;         /* gave up after SPIN_CAP calls */
    int started;
    int done;
    int freed;          /* arg_free calls */
    int32_t ret;        /* returned when it ends normally */
    int64_t *fake;      /* if set: *fake += fake_step before every call (a host clock) */
    int64_t fake_step;
    int atomic;         /* set atomic around the loop; clear it at the end (scenario 19) */
    int atomic_old_set, atomic_old_clear;
    int after_clear;    /* set right after set_atomic(false) returned */
};

static void spin_init(struct spin *s, char tag, uint32_t n, long limit) {
    memset(s, 0, sizeof *s);
    s->tag = tag;
    s->n = n;
    s->limit = limit;
    s->bad = 12345;
    s->yield_st = 12345;
}

static int32_t t_spin(void *arg) {
    struct spin *s = arg;
    s->started = 1;
    if (s->tag) log_c(s->tag);
    if (s->atomic) s->atomic_old_set = slp_tasklet_set_atomic(slp_current(), true);
    for (;;) {
        if (s->limit && s->calls >= s->limit) break;
        if (s->calls >= SPIN_CAP) {
            s->capped = 1;
            break;
        }
        if (s->fake) *s->fake += s->fake_step;
        s->calls++;
        slp_status st = slp_tick(s->n);
        s->returned++;
        if (st != SLP_OK) {
            if (s->not_ok++ == 0) {
                s->bad = st;
                s->bad_at = s->calls;
                s->exc = slp_exception_data();
            }
            s->done = 1;
            return st == SLP_E_KILLED ? SLP_E_KILLED : 0; /* handled */
        }
        if ((s->yield_every && s->calls % s->yield_every == 0) || (s->yield_at && s->calls == s->yield_at)) {
            slp_status y = slp_schedule();
            if (y != SLP_OK) {
                s->yield_st = y;
                s->done = 1;
                return y == SLP_E_KILLED ? SLP_E_KILLED : 0;
            }
        }
    }
    if (s->atomic) {
        s->atomic_old_clear = slp_tasklet_set_atomic(slp_current(), false);
        s->after_clear = 1;
    }
    if (s->end_tag) log_c(s->end_tag);
    s->done = 1;
    return s->ret;
}

static void spin_free(void *arg) { ((struct spin *)arg)->freed++; }

/* Creates a spinner (with arg_free = spin_free); returns the handle. */
static slp_tasklet *spawn_spin(struct spin *s) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = spin_free;
    return SPAWN_EX(t_spin, s, &o);
}

/* A placeholder for *interrupted, to see whether a call wrote it. */
static slp_tasklet *const NOT_WRITTEN = (slp_tasklet *)(intptr_t)0x7e7e7e70;

/* Checks the state of a tasklet returned by an interrupt: alive, paused, not blocked. */
#define CHECK_INTERRUPTED_STATE(t)                      \
    do {                                                \
        CHECK(slp_tasklet_alive(t));                    \
        CHECK(slp_tasklet_paused(t));                   \
        CHECK(!slp_tasklet_scheduled(t));               \
        CHECK(!slp_tasklet_blocked(t));                 \
        CHECK(!slp_tasklet_is_current(t));              \
    } while (0)

/* The header defines only SLP_-prefixed macros: a host's own TIME, SOFT or TOTAL must not clash
 * with the watchdog flags. */
TEST(header_has_no_unprefixed_watchdog_macros) {
#if defined(TIME)
    CHECK_MSG(0, "slp.h defines a macro named TIME (only SLP_WATCHDOG_TIME is meant)");
#endif
#if defined(SOFT)
    CHECK_MSG(0, "slp.h defines a macro named SOFT (only SLP_WATCHDOG_SOFT is meant)");
#endif
#if defined(TOTAL)
    CHECK_MSG(0, "slp.h defines a macro named TOTAL (only SLP_WATCHDOG_TOTAL is meant)");
#endif
    CHECK_EQ_INT(SLP_WATCHDOG_TIME, 1);
    CHECK_EQ_INT(SLP_WATCHDOG_SOFT, 2);
    CHECK_EQ_INT(SLP_WATCHDOG_TOTAL, 4);
}

/* ============================================================================================
 * SPEC §10 scenario 18: a tasklet spinning on slp_tick(1) forever and one that logs; the seed's
 * preemptive() loop -> the other tasklet runs; the spinner comes back alive and paused each time,
 * as a new reference (the loop inserts and releases it).
 * ========================================================================================== */
TEST(scenario18_preemptive_loop) {
    watchdog(10);
    log_reset();
    struct spin s;
    spin_init(&s, 0, 1, 0);
    slp_tasklet *sp = spawn_spin(&s);
    slp_tasklet *p = SPAWN(t_log, IPTR('P'));
    int interrupts = 0, rounds = 0, wrong = 0;
    long calls_at[8] = {0};
    while (slp_runcount() > 1 && rounds < 20) {
        rounds++;
        slp_tasklet *t = NOT_WRITTEN;
        CHECK_ST(slp_run_watchdog(1000, 0, &t), SLP_OK);
        if (t == NOT_WRITTEN) {
            CHECK_MSG(0, "*interrupted not written on SLP_OK");
            break;
        }
        if (t) {
            if (t != sp) wrong++;
            CHECK_INTERRUPTED_STATE(t);
            if (interrupts < 8) calls_at[interrupts] = s.calls;
            interrupts++;
            if (interrupts == 5) {
                /* enough: kill it (pending makes it runnable; its slp_tick returns KILLED) */
                CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
            } else {
                CHECK_ST(slp_tasklet_insert(t), SLP_OK);
            }
            slp_tasklet_release(t); /* the seed loop: t is a new reference */
        }
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(interrupts, 5);
    CHECK_EQ_INT(rounds, 6); /* 5 interrupts, then the killed spinner ends: *t NULL */
    CHECK_LOG("P");          /* the other tasklet ran, once */
    CHECK_EQ_INT(s.capped, 0);
    /* every interrupt came inside the 1000th slp_tick(1) of its slice */
    for (int i = 0; i < 5 && i < interrupts; i++)
        CHECK_MSG(calls_at[i] == 1000L * (i + 1), "interrupt %d at call %ld, expected %ld", i, calls_at[i],
                  1000L * (i + 1));
    CHECK_ST(s.bad, SLP_E_KILLED);
    CHECK_EQ_INT(s.bad_at, 5000); /* the interrupted call itself returned KILLED */
    CHECK_EQ_INT(s.returned, 5000);
    CHECK_EQ_INT(s.not_ok, 1);
    CHECK(!slp_tasklet_alive(sp));
    CHECK_EQ_INT(s.freed, 1);
    CHECK_EQ_INT(slp_runcount(), 1);
    slp_tasklet_release(sp);
    slp_tasklet_release(p);
    CHECK_EQ_INT(s.freed, 1);
}

/* ============================================================================================
 * SPEC §10 scenario 19: inside set_atomic(true) a long slp_tick loop is not interrupted; the
 * interrupt fires inside the set_atomic(false) call, which returns true once resumed.
 * ========================================================================================== */
TEST(scenario19_atomic_defers_interrupt_into_set_atomic_false) {
    watchdog(10);
    log_reset();
    struct spin s;
    spin_init(&s, 'a', 1, 50000); /* 50 x the budget */
    s.atomic = 1;
    s.end_tag = 'A';
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1000, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_LOG("a");               /* 'o' did not run: the run returned at the interrupt */
    CHECK_EQ_INT(s.calls, 50000);  /* the whole atomic loop ran */
    CHECK_EQ_INT(s.returned, 50000);
    CHECK_EQ_INT(s.not_ok, 0);     /* every tick returned SLP_OK */
    CHECK_EQ_INT(s.atomic_old_set, 0);
    CHECK_EQ_INT(s.after_clear, 0); /* interrupted inside set_atomic(false) */
    if (t && t != NOT_WRITTEN) {
        CHECK_INTERRUPTED_STATE(t);
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    /* the order is kept: 'o' (next) runs first, then the resumed tasklet */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("aoA");
    CHECK_EQ_INT(s.after_clear, 1);
    CHECK_EQ_INT(s.atomic_old_clear, 1); /* set_atomic(false) returned the old value, true */
    CHECK(!slp_tasklet_alive(t0));
    slp_tasklet_release(t0);
    slp_tasklet_release(o);

    /* atomic and the budget never used up: set_atomic(false) does not interrupt */
    log_reset();
    spin_init(&s, 'b', 1, 10);
    s.atomic = 1;
    s.end_tag = 'B';
    t0 = spawn_spin(&s);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1000, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("bB");
    CHECK_EQ_INT(s.atomic_old_clear, 1);
    slp_tasklet_release(t0);

    /* atomic also holds off a time budget (1 ns) */
    log_reset();
    spin_init(&s, 'c', 0, 2000);
    s.atomic = 1;
    s.end_tag = 'C';
    t0 = spawn_spin(&s);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1, SLP_WATCHDOG_TIME, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_LOG("c");
    CHECK_EQ_INT(s.calls, 2000);
    CHECK_EQ_INT(s.after_clear, 0);
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("cC");
    CHECK_EQ_INT(s.atomic_old_clear, 1);
    slp_tasklet_release(t0);
}

/* ============================================================================================
 * SPEC §10 scenario 20: slp_run_for(0) with three runnable tasklets -> exactly one ran.
 * ========================================================================================== */
TEST(scenario20_run_for_zero_runs_exactly_one) {
    watchdog(10);
    log_reset();
    slp_tasklet *a = SPAWN(t_log, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("a");
    CHECK_EQ_INT(slp_runcount(), 3);
    CHECK(!slp_tasklet_alive(a));
    CHECK(slp_tasklet_scheduled(b));
    CHECK(slp_tasklet_scheduled(c));
    CHECK_ST(slp_run_for(0), SLP_OK);
    CHECK_LOG("ab");
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abc");
    slp_tasklet_release(a);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

/* ============================================================================================
 * Tick accounting: the interrupt happens inside the slp_tick call that reaches (or passes) the
 * budget; ticks are summed; slp_tick(0) adds nothing; the interrupted call returns SLP_OK when
 * the tasklet is resumed.
 * ========================================================================================== */
TEST(tick_accounting_interrupts_at_the_call_that_reaches_the_budget) {
    watchdog(10);
    static const struct {
        uint32_t n;
        uint64_t budget;
        long expect_call; /* the call (1-based) inside which the interrupt happens */
    } cases[] = {
        {1, 1, 1},   {1, 5, 5},    {3, 10, 4}, {3, 9, 3}, {10, 10, 1},
        {7, 1, 1},   {2, 11, 6},   {1000, 2500, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct spin s;
        spin_init(&s, 0, cases[i].n, 100);
        s.end_tag = 'E';
        log_reset();
        slp_tasklet *t0 = spawn_spin(&s);
        slp_tasklet *t = NOT_WRITTEN;
        CHECK_ST(slp_run_watchdog(cases[i].budget, 0, &t), SLP_OK);
        CHECK_EQ_PTR(t, t0);
        CHECK_MSG(s.calls == cases[i].expect_call && s.returned == cases[i].expect_call - 1,
                  "tick(%u), budget %llu: interrupted in call %ld (%ld returned), expected in call %ld",
                  cases[i].n, (unsigned long long)cases[i].budget, s.calls, s.returned,
                  cases[i].expect_call);
        if (t && t != NOT_WRITTEN) {
            CHECK_INTERRUPTED_STATE(t);
            /* resumed by a plain slp_run: the interrupted tick returns SLP_OK, the rest too */
            CHECK_ST(slp_tasklet_insert(t), SLP_OK);
            slp_tasklet_release(t);
        }
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_EQ_INT(s.not_ok, 0);
        CHECK_EQ_INT(s.calls, 100);
        CHECK_EQ_INT(s.returned, 100);
        CHECK_LOG("E");
        slp_tasklet_release(t0);
    }

    /* slp_tick(0) adds no ticks: 1000 of them under budget 1 are never interrupted */
    struct spin s;
    spin_init(&s, 0, 0, 1000);
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_EQ_INT(s.calls, 1000);
    CHECK(!slp_tasklet_alive(t0));
    slp_tasklet_release(t0);

    /* a huge tick passes any budget at once; the budget sum does not overflow */
    spin_init(&s, 0, UINT32_MAX, 10);
    t0 = spawn_spin(&s);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(UINT64_MAX, 0, &t), SLP_OK);
    CHECK(t == NULL); /* 10 * 2^32 < 2^64: never reached */
    CHECK_EQ_INT(s.calls, 10);
    slp_tasklet_release(t0);
}

/* ============================================================================================
 * The budget resets at every switch into a tasklet; SLP_WATCHDOG_TOTAL shares one budget for
 * the whole call.
 * ========================================================================================== */
TEST(per_slice_budget_resets_at_every_switch) {
    watchdog(10);
    /* two tasklets, each: 6 ticks, yield, 6 ticks, yield, 6 ticks (18 in all): budget 10 per
     * slice -> none interrupted */
    struct spin a, b;
    spin_init(&a, 'a', 1, 18);
    spin_init(&b, 'b', 1, 18);
    a.yield_every = b.yield_every = 6;
    a.end_tag = 'A';
    b.end_tag = 'B';
    log_reset();
    slp_tasklet *ta = spawn_spin(&a);
    slp_tasklet *tb = spawn_spin(&b);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("abAB");
    CHECK_EQ_INT(a.calls, 18);
    CHECK_EQ_INT(b.calls, 18);
    CHECK_EQ_INT(a.not_ok + b.not_ok, 0);
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);

    /* the second slice of a: 6, yield, then 20: interrupted at the 10th call of that slice */
    spin_init(&a, 'a', 1, 26);
    spin_init(&b, 'b', 1, 6);
    a.yield_at = 6;
    a.end_tag = 'A';
    b.end_tag = 'B';
    log_reset();
    ta = spawn_spin(&a);
    tb = spawn_spin(&b);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, ta);
    CHECK_LOG("abB");
    CHECK_MSG(a.calls == 16, "a interrupted in call %ld, expected 16 (6 + 10)", a.calls);
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    /* the next call gives a fresh budget: a has 10 calls left (17..26), the 10th of them
     * (call 26) reaches the budget */
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK_MSG(a.calls == 26 && a.returned == 25, "a at call %ld (%ld returned), expected in call 26", a.calls,
              a.returned);
    CHECK_EQ_PTR(t, ta);
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("abBA");
    CHECK(!slp_tasklet_alive(ta));
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
}

TEST(total_budget_is_shared_by_every_tasklet) {
    watchdog(10);
    /* each ticks 6 (one at a time) and ends: per slice nothing is interrupted... */
    struct spin a, b;
    spin_init(&a, 'a', 1, 6);
    spin_init(&b, 'b', 1, 6);
    a.end_tag = 'A';
    b.end_tag = 'B';
    log_reset();
    slp_tasklet *ta = spawn_spin(&a);
    slp_tasklet *tb = spawn_spin(&b);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("aAbB");
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);

    /* ...with SLP_WATCHDOG_TOTAL the second is interrupted at its 4th tick (6 + 4 = 10) */
    spin_init(&a, 'a', 1, 6);
    spin_init(&b, 'b', 1, 6);
    a.end_tag = 'A';
    b.end_tag = 'B';
    log_reset();
    ta = spawn_spin(&a);
    tb = spawn_spin(&b);
    slp_tasklet *c = SPAWN(t_log, IPTR('c'));
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, SLP_WATCHDOG_TOTAL, &t), SLP_OK);
    CHECK_EQ_PTR(t, tb);
    CHECK_LOG("aAb");
    CHECK_EQ_INT(a.calls, 6);
    CHECK_MSG(b.calls == 4 && b.returned == 3, "b interrupted in call %ld, expected 4", b.calls);
    if (t && t != NOT_WRITTEN) {
        CHECK_INTERRUPTED_STATE(t);
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    /* a new call, a new total budget: c, then b's last 2 ticks */
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, SLP_WATCHDOG_TOTAL, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("aAbcB");
    CHECK_EQ_INT(b.calls, 6);
    CHECK_EQ_INT(b.not_ok, 0);
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_tasklet_release(c);

    /* TOTAL counts across the slices of the same tasklets: two tasklets ticking 3 then
     * yielding, budget 10: a 1-3, b 1-3, a 4-6, b 4 -> b interrupted in its 4th call */
    spin_init(&a, 'a', 1, 30);
    spin_init(&b, 'b', 1, 30);
    a.yield_every = b.yield_every = 3;
    log_reset();
    ta = spawn_spin(&a);
    tb = spawn_spin(&b);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, SLP_WATCHDOG_TOTAL, &t), SLP_OK);
    CHECK_EQ_PTR(t, tb);
    CHECK_EQ_INT(a.calls, 6);
    CHECK_EQ_INT(b.calls, 4);
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t); /* paused, still referenced by tb */
    cleanup_tasklet(ta);
    cleanup_tasklet(tb);
}

/* ============================================================================================
 * SLP_WATCHDOG_SOFT: nothing is removed; the tasklet goes on until it next switches away, then
 * the run returns SLP_OK with *t NULL; the tasklet stays runnable.
 * ========================================================================================== */
static int32_t t_soft_block(void *arg) {
    slp_channel *ch = arg;
    log_c('s');
    for (int i = 0; i < 25; i++)
        if (slp_tick(1) != SLP_OK) log_c('!');
    log_c('S');
    void *v = NULL;
    slp_status st = slp_channel_receive(ch, &v); /* the switch away */
    log_c(st == SLP_OK ? 'R' : '?');
    return 0;
}

TEST(soft_stop_returns_at_the_next_switch) {
    watchdog(10);
    /* the tasklet blocks: the run returns then, before 'o' runs */
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *s = SPAWN(t_soft_block, ch);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, SLP_WATCHDOG_SOFT, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("sS"); /* not interrupted at tick 10: it ran on until it blocked */
    CHECK(slp_tasklet_blocked(s));
    CHECK(slp_tasklet_scheduled(o));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("sSo");
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("sSoR");
    slp_tasklet_release(s);
    slp_tasklet_release(o);
    slp_channel_release(ch);

    /* the tasklet ends: the run returns then, before 'o' runs */
    struct spin a;
    spin_init(&a, 'a', 1, 25);
    a.end_tag = 'A';
    log_reset();
    slp_tasklet *ta = spawn_spin(&a);
    o = SPAWN(t_log, IPTR('o'));
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, SLP_WATCHDOG_SOFT, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("aA");
    CHECK_EQ_INT(a.calls, 25);
    CHECK_EQ_INT(a.not_ok, 0);
    CHECK(slp_tasklet_scheduled(o));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("aAo");
    slp_tasklet_release(ta);
    slp_tasklet_release(o);

    /* the tasklet yields (slp_schedule): the run returns at that switch, before 'o' runs; the
     * tasklet stays runnable. Its yield put it behind 'o', and SPEC §4.1 keeps the order across
     * a watchdog stop (the tasklet that would have run next, 'o', is first in the next call) */
    spin_init(&a, 'a', 1, 30);
    a.yield_every = 25;
    a.end_tag = 'A';
    log_reset();
    ta = spawn_spin(&a);
    o = SPAWN(t_log, IPTR('o'));
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, SLP_WATCHDOG_SOFT, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("a");
    CHECK_EQ_INT(a.calls, 25);
    CHECK(slp_tasklet_scheduled(ta));
    CHECK(!slp_tasklet_paused(ta));
    CHECK(slp_tasklet_scheduled(o));
    CHECK_EQ_INT(slp_runcount(), 3);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(strcmp(g_log, "aoA") == 0,
              "log \"%s\": expected \"aoA\" ('o', next when the run stopped, first in the next run)", g_log);
    CHECK_EQ_INT(a.not_ok, 0);
    CHECK_EQ_INT(a.yield_st, 12345);
    slp_tasklet_release(ta);
    slp_tasklet_release(o);

    /* soft with a time budget: never interrupted, returns when it blocks */
    ch = NEW_CHANNEL();
    log_reset();
    s = SPAWN(t_soft_block, ch);
    o = SPAWN(t_log, IPTR('o'));
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1, SLP_WATCHDOG_SOFT | SLP_WATCHDOG_TIME, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("sS");
    CHECK_ST(slp_tasklet_kill(s, true), SLP_OK); /* appended behind o */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("sSo?");
    slp_tasklet_release(s);
    slp_tasklet_release(o);
    slp_channel_release(ch);
}

/* ============================================================================================
 * SLP_WATCHDOG_TIME: the budget is nanoseconds of the scheduler's clock, checked at slp_tick.
 * ========================================================================================== */
TEST(time_budget_interrupts_a_spinner_not_a_quick_yielder) {
    watchdog(10);
    /* a tasklet spinning on slp_tick(0) with a 2 ms budget is interrupted, never early */
    struct spin s;
    spin_init(&s, 0, 0, 0);
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet *t = NOT_WRITTEN;
    int64_t c0 = now_ns();
    CHECK_ST(slp_run_watchdog(2000000, SLP_WATCHDOG_TIME, &t), SLP_OK);
    int64_t el = now_ns() - c0;
    CHECK_EQ_PTR(t, t0);
    CHECK_EQ_INT(s.capped, 0);
    CHECK_MSG(el >= 2000000, "interrupted after %lld us, budget 2000 us", (long long)(el / 1000));
    CHECK_MSG(el < xt_ms(500) * 1000000LL, "interrupted after %lld ms", (long long)(el / 1000000));
    if (t && t != NOT_WRITTEN) {
        CHECK_INTERRUPTED_STATE(t);
        slp_tasklet_release(t);
    }
    CHECK_ST(slp_tasklet_kill(t0, false), SLP_OK);
    CHECK_ST(s.bad, SLP_E_KILLED);
    CHECK_EQ_INT(s.freed, 1);
    slp_tasklet_release(t0);

    /* tasklets that yield quickly (every 100 ticks of 0) are never interrupted with a per-slice
     * budget far above a slice's length */
    struct spin a, b;
    spin_init(&a, 0, 0, 20000);
    spin_init(&b, 0, 0, 20000);
    a.yield_every = b.yield_every = 100;
    slp_tasklet *ta = spawn_spin(&a);
    slp_tasklet *tb = spawn_spin(&b);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(500000000, SLP_WATCHDOG_TIME, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_EQ_INT(a.calls, 20000);
    CHECK_EQ_INT(b.calls, 20000);
    CHECK(!slp_tasklet_alive(ta) && !slp_tasklet_alive(tb));
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);

    /* ...but a TOTAL time budget of 5 ms stops them, never before 5 ms */
    spin_init(&a, 0, 0, 0);
    spin_init(&b, 0, 0, 0);
    a.yield_every = b.yield_every = 100;
    ta = spawn_spin(&a);
    tb = spawn_spin(&b);
    t = NOT_WRITTEN;
    c0 = now_ns();
    CHECK_ST(slp_run_watchdog(5000000, SLP_WATCHDOG_TIME | SLP_WATCHDOG_TOTAL, &t), SLP_OK);
    el = now_ns() - c0;
    CHECK(t == ta || t == tb);
    CHECK_EQ_INT(a.capped + b.capped, 0);
    CHECK_MSG(el >= 5000000, "stopped after %lld us, budget 5000 us", (long long)(el / 1000));
    CHECK_MSG(el < xt_ms(500) * 1000000LL, "stopped after %lld ms", (long long)(el / 1000000));
    if (t && t != NOT_WRITTEN) {
        CHECK_INTERRUPTED_STATE(t);
        slp_tasklet_release(t);
    }
    cleanup_tasklet(ta);
    cleanup_tasklet(tb);
}

/* the time budget runs on the scheduler's clock: a host clock advanced by the tasklet itself
 * makes the interrupt point exact */
static int64_t fake_clock_fn(void *ud) { return *(int64_t *)ud; }

TEST(time_budget_uses_the_schedulers_clock) {
    watchdog(10);
    static int64_t fake = 1000000;
    CHECK_ST(slp_set_clock(fake_clock_fn, &fake), SLP_OK);
    struct spin s;
    spin_init(&s, 0, 0, 100);
    s.fake = &fake;
    s.fake_step = 30; /* 30, 60, 90, 120: the 4th call passes a budget of 100 */
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(100, SLP_WATCHDOG_TIME, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_MSG(s.calls == 4 && s.returned == 3, "interrupted in call %ld, expected 4", s.calls);
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    /* a fresh slice: 4 more calls (5..8) */
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(100, SLP_WATCHDOG_TIME, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_MSG(s.calls == 8, "interrupted in call %ld, expected 8", s.calls);
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t);
    /* game time paused (the tasklet no longer advances it): a real-time wait is not spent */
    s.fake_step = 0;
    s.limit = 5000;
    CHECK_ST(slp_tasklet_insert(t0), SLP_OK);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(100, SLP_WATCHDOG_TIME, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_EQ_INT(s.calls, 5000);
    CHECK(!slp_tasklet_alive(t0));
    slp_tasklet_release(t0);
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
}

/* ============================================================================================
 * Cooperative tasklets (no slp_tick, or yielding before the budget is used) are never
 * interrupted.
 * ========================================================================================== */
static volatile long g_sink;
static int32_t t_busy_no_tick(void *arg) {
    log_c((char)(intptr_t)arg);
    for (long i = 0; i < 2000000; i++) g_sink += i; /* CPU work, no slp_tick */
    slp_schedule();
    log_c((char)((char)(intptr_t)arg - 'a' + 'A'));
    return 0;
}

TEST(cooperative_tasklets_are_never_interrupted) {
    watchdog(10);
    log_reset();
    slp_tasklet *a = SPAWN(t_busy_no_tick, IPTR('a'));
    slp_tasklet *b = SPAWN(t_busy_no_tick, IPTR('b'));
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("abAB");
    slp_tasklet_release(a);
    slp_tasklet_release(b);

    log_reset();
    a = SPAWN(t_busy_no_tick, IPTR('a'));
    b = SPAWN(t_busy_no_tick, IPTR('b'));
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1, SLP_WATCHDOG_TIME | SLP_WATCHDOG_TOTAL, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("abAB");
    slp_tasklet_release(a);
    slp_tasklet_release(b);

    /* ticking, but yielding every 9 ticks under a budget of 10: many slices, never interrupted */
    struct spin x, y;
    spin_init(&x, 'x', 1, 900);
    spin_init(&y, 'y', 1, 900);
    x.yield_every = y.yield_every = 9;
    x.end_tag = 'X';
    y.end_tag = 'Y';
    log_reset();
    slp_tasklet *tx = spawn_spin(&x);
    slp_tasklet *ty = spawn_spin(&y);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_LOG("xyXY");
    CHECK_EQ_INT(x.not_ok + y.not_ok, 0);
    slp_tasklet_release(tx);
    slp_tasklet_release(ty);

    /* a tasklet that blocks before its budget is used: not interrupted, the run returns */
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 'r');
    slp_tasklet *tr = SPAWN(op_recv, &r);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK(slp_tasklet_blocked(tr));
    CHECK_ST(slp_channel_send(ch, IPTR(5)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(5));
    slp_tasklet_release(tr);
    slp_channel_release(ch);

    /* nothing runnable at all: SLP_OK, *t NULL */
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK(t == NULL);
}

/* ============================================================================================
 * Kill and throw to an interrupted tasklet: the interrupted slp_tick returns SLP_E_KILLED (or
 * the code) when it resumes; arg_free runs once.
 * ========================================================================================== */
static long g_marker;

TEST(kill_and_throw_to_an_interrupted_tasklet) {
    watchdog(10);
    /* pending kill, then a run */
    struct spin s;
    spin_init(&s, 0, 1, 0);
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(50, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_EQ_INT(s.calls, 50);
    CHECK_ST(slp_tasklet_kill(t0, true), SLP_OK);
    CHECK(slp_tasklet_scheduled(t0));
    CHECK_EQ_INT(s.freed, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.bad, SLP_E_KILLED);
    CHECK_EQ_INT(s.bad_at, 50); /* the interrupted call itself returned KILLED */
    CHECK_EQ_INT(s.returned, 50);
    CHECK(!slp_tasklet_alive(t0));
    CHECK_EQ_INT(s.freed, 1);
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t);
    slp_tasklet_release(t0);
    CHECK_EQ_INT(s.freed, 1);

    /* kill without pending, from main: switches to it now */
    spin_init(&s, 0, 1, 0);
    t0 = spawn_spin(&s);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(7, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_ST(slp_tasklet_kill(t0, false), SLP_OK);
    CHECK_ST(s.bad, SLP_E_KILLED);
    CHECK_EQ_INT(s.bad_at, 7);
    CHECK(!slp_tasklet_alive(t0));
    CHECK_EQ_INT(s.freed, 1);
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t);
    slp_tasklet_release(t0);

    /* a pending throw: the interrupted tick returns the code, with its data */
    spin_init(&s, 0, 1, 0);
    s.end_tag = 'E';
    t0 = spawn_spin(&s);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(3, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, t0);
    CHECK_ST(slp_tasklet_throw(t0, 42, &g_marker, true), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK); /* the tasklet handles it and returns 0 */
    CHECK_ST(s.bad, 42);
    CHECK_EQ_INT(s.bad_at, 3);
    CHECK_EQ_PTR(s.exc, &g_marker);
    CHECK_EQ_INT(s.freed, 1);
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t);
    slp_tasklet_release(t0);

    /* a throw without pending from main: the tasklet runs now and sees the code */
    spin_init(&s, 0, 1, 0);
    t0 = spawn_spin(&s);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(3, 0, &t), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t0, 9, NULL, false), SLP_OK);
    CHECK_ST(s.bad, 9);
    CHECK(!slp_tasklet_alive(t0));
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t);
    slp_tasklet_release(t0);
}

/* ============================================================================================
 * The interrupted tasklet: paused (not scheduled, not blocked), a new reference; released by
 * everyone it is killed (pending) like any unreferenced paused tasklet, arg_free once.
 * ========================================================================================== */
TEST(interrupted_tasklet_state_and_reference_count) {
    watchdog(10);
    struct spin s;
    spin_init(&s, 0, 1, 0);
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet_release(t0); /* only the runtime holds it now */
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(100, 0, &t), SLP_OK);
    CHECK(t != NULL && t != NOT_WRITTEN);
    if (!t || t == NOT_WRITTEN) return;
    CHECK_INTERRUPTED_STATE(t);
    CHECK_EQ_INT(slp_runcount(), 1);
    /* a second reference of ours, dropped again: still ours (t) */
    slp_tasklet_retain(t);
    slp_tasklet_release(t);
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_paused(t));
    CHECK_EQ_INT(s.freed, 0);
    /* the last reference goes: killed (pending), so it can clean up */
    slp_tasklet_release(t);
    CHECK_EQ_INT(s.done, 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(s.done, 1);
    CHECK_ST(s.bad, SLP_E_KILLED);
    CHECK_EQ_INT(s.bad_at, 100);
    CHECK_EQ_INT(s.freed, 1);
    CHECK_EQ_INT(slp_runcount(), 1);

    /* several interrupts of the same tasklet: every *t a new reference, all released at the
     * end (the spawn handle kept too) */
    spin_init(&s, 0, 1, 0);
    t0 = spawn_spin(&s);
    slp_tasklet *got[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        t = NOT_WRITTEN;
        CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
        CHECK_EQ_PTR(t, t0);
        got[i] = (t == NOT_WRITTEN) ? NULL : t;
        if (got[i]) CHECK_ST(slp_tasklet_insert(got[i]), SLP_OK);
    }
    CHECK_EQ_INT(s.calls, 40);
    for (int i = 0; i < 4; i++) slp_tasklet_release(got[i]);
    CHECK(slp_tasklet_alive(t0));
    CHECK(slp_tasklet_scheduled(t0));
    CHECK_ST(slp_tasklet_kill(t0, false), SLP_OK);
    CHECK_EQ_INT(s.freed, 1);
    slp_tasklet_release(t0);
    CHECK_EQ_INT(s.freed, 1);
}

/* ============================================================================================
 * After a hard interrupt the run queue's order is kept: the tasklet that would have run next is
 * first in the next run call.
 * ========================================================================================== */
TEST(run_queue_order_kept_after_interrupt) {
    watchdog(10);
    log_reset();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    struct spin s;
    spin_init(&s, 's', 1, 0);
    slp_tasklet *sp = spawn_spin(&s);
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    slp_tasklet *c = SPAWN(t_log_yield, IPTR('c'));
    slp_tasklet *t = NOT_WRITTEN;
    /* a runs and yields (queue: s b c a), s is interrupted (queue: b c a) */
    CHECK_ST(slp_run_watchdog(5, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, sp);
    CHECK_LOG("as");
    CHECK_EQ_INT(slp_runcount(), 4);
    /* slp_run_n(1): b runs first */
    CHECK_ST(slp_run_n(1), SLP_OK);
    CHECK_LOG("asb");
    /* re-insert s: it goes to the tail (c a s) */
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(5, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, sp); /* c yields, a ends, s interrupted again, then c is next */
    CHECK_LOG("asbcA");
    if (t && t != NOT_WRITTEN) slp_tasklet_release(t);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("asbcAC");
    CHECK(slp_tasklet_paused(sp));
    CHECK_ST(slp_tasklet_kill(sp, false), SLP_OK);
    CHECK_ST(s.bad, SLP_E_KILLED);
    slp_tasklet_release(a);
    slp_tasklet_release(sp);
    slp_tasklet_release(b);
    slp_tasklet_release(c);
}

/* ============================================================================================
 * An uncaught error of a tasklet ends the run with that error (as slp_run); *t is not written.
 * ========================================================================================== */
TEST(uncaught_error_ends_the_run) {
    watchdog(10);
    log_reset();
    struct spin e;
    spin_init(&e, 'e', 1, 3);
    e.ret = 33;
    slp_tasklet *te = spawn_spin(&e);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1000, 0, &t), 33);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(t, NOT_WRITTEN);
    CHECK_LOG("e");
    CHECK(slp_tasklet_scheduled(o));
    CHECK(!slp_tasklet_alive(te));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("eo");
    slp_tasklet_release(te);
    slp_tasklet_release(o);

    /* with a total time budget too */
    log_reset();
    spin_init(&e, 'e', 0, 3);
    e.ret = 77;
    te = spawn_spin(&e);
    o = SPAWN(t_log, IPTR('o'));
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(1000000000, SLP_WATCHDOG_TIME | SLP_WATCHDOG_TOTAL, &t), 77);
    CHECK_EQ_PTR(t, NOT_WRITTEN);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("eo");
    slp_tasklet_release(te);
    slp_tasklet_release(o);
}

/* ============================================================================================
 * budget 0: no limit, exactly like slp_run (*t NULL).
 * ========================================================================================== */
TEST(budget_zero_is_run) {
    watchdog(10);
    static const uint32_t flags[] = {0, SLP_WATCHDOG_TOTAL, SLP_WATCHDOG_TIME, SLP_WATCHDOG_SOFT,
                                     SLP_WATCHDOG_TIME | SLP_WATCHDOG_TOTAL | SLP_WATCHDOG_SOFT};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct spin s;
        spin_init(&s, 's', 1, 100000);
        s.end_tag = 'S';
        s.yield_every = 50000;
        log_reset();
        slp_tasklet *ts = spawn_spin(&s);
        slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
        slp_tasklet *t = NOT_WRITTEN;
        CHECK_ST(slp_run_watchdog(0, flags[i], &t), SLP_OK);
        CHECK(t == NULL);
        CHECK_MSG(strcmp(g_log, "saAS") == 0, "flags %u: log \"%s\", expected \"saAS\"", flags[i], g_log);
        CHECK_EQ_INT(s.not_ok, 0);
        CHECK_EQ_INT(s.calls, 100000);
        CHECK_EQ_INT(slp_runcount(), 1);
        slp_tasklet_release(ts);
        slp_tasklet_release(a);
    }
}

/* ============================================================================================
 * slp_tick outside a watchdog run (plain slp_run, slp_run_n, slp_run_for, from main): SLP_OK,
 * nothing happens.
 * ========================================================================================== */
TEST(tick_outside_a_watchdog_run_does_nothing) {
    watchdog(10);
    CHECK_ST(slp_tick(0), SLP_OK);
    CHECK_ST(slp_tick(1), SLP_OK);
    CHECK_ST(slp_tick(UINT32_MAX), SLP_OK);
    for (int i = 0; i < 100000; i++)
        if (slp_tick(1000) != SLP_OK) {
            CHECK_MSG(0, "slp_tick from main failed at %d", i);
            break;
        }
    CHECK(slp_tasklet_is_current(slp_main()));

    struct spin s;
    spin_init(&s, 's', 1000, 100000);
    s.end_tag = 'S';
    log_reset();
    slp_tasklet *ts = spawn_spin(&s);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("sSo");
    CHECK_EQ_INT(s.not_ok, 0);
    slp_tasklet_release(ts);
    slp_tasklet_release(o);

    spin_init(&s, 's', UINT32_MAX, 1000);
    s.end_tag = 'S';
    log_reset();
    ts = spawn_spin(&s);
    o = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run_n(1), SLP_OK);
    CHECK_LOG("sS");
    CHECK_ST(slp_run_for(-1), SLP_OK);
    CHECK_LOG("sSo");
    CHECK_EQ_INT(s.not_ok, 0);
    slp_tasklet_release(ts);
    slp_tasklet_release(o);

    /* after a watchdog run that interrupted someone, a plain run no longer interrupts */
    spin_init(&s, 0, 1, 5000);
    s.end_tag = 'S';
    log_reset();
    ts = spawn_spin(&s);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK_EQ_PTR(t, ts);
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_insert(t), SLP_OK);
        slp_tasklet_release(t);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("S");
    CHECK_EQ_INT(s.calls, 5000);
    CHECK_EQ_INT(s.not_ok, 0);
    slp_tasklet_release(ts);
}

/* ============================================================================================
 * Misuse: interrupted NULL, unknown flags -> SLP_E_INVALID; from a tasklet (also inside another
 * watchdog run) -> SLP_E_STATE; switch_trap -> SLP_E_SWITCH_TRAP. Nothing runs, *t untouched.
 * ========================================================================================== */
static slp_status g_inner_st;
static slp_tasklet *g_inner_t;
static int32_t t_call_watchdog(void *arg) {
    (void)arg;
    log_c('w');
    g_inner_t = NOT_WRITTEN;
    g_inner_st = slp_run_watchdog(10, 0, &g_inner_t);
    return 0;
}

TEST(misuse) {
    watchdog(10);
    log_reset();
    slp_tasklet *a = SPAWN(t_log, IPTR('a'));
    CHECK_ST(slp_run_watchdog(10, 0, NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 8, &t), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(t, NOT_WRITTEN);
    CHECK_ST(slp_run_watchdog(10, 0x80000000u, &t), SLP_E_INVALID);
    CHECK_ST(slp_run_watchdog(10, UINT32_MAX, &t), SLP_E_INVALID);
    CHECK_ST(slp_run_watchdog(0, 16, &t), SLP_E_INVALID);
    CHECK_EQ_PTR(t, NOT_WRITTEN);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);

    /* switch_trap */
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_E_SWITCH_TRAP);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(t, NOT_WRITTEN);
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_LOG("");
    CHECK(slp_tasklet_scheduled(a));

    /* from a tasklet inside a plain run, and inside another watchdog run */
    g_inner_st = 12345;
    slp_tasklet *w = SPAWN(t_call_watchdog, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("aw");
    CHECK_ST(g_inner_st, SLP_E_STATE);
    CHECK_EQ_PTR(g_inner_t, NOT_WRITTEN);
    slp_tasklet_release(w);
    g_inner_st = 12345;
    w = SPAWN(t_call_watchdog, NULL);
    t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK(t == NULL);
    CHECK_ST(g_inner_st, SLP_E_STATE);
    CHECK_EQ_PTR(g_inner_t, NOT_WRITTEN);
    slp_tasklet_release(w);
    slp_tasklet_release(a);

    /* every defined flag combination is accepted */
    for (uint32_t f = 0; f < 8; f++) {
        t = NOT_WRITTEN;
        CHECK_ST(slp_run_watchdog(10, f, &t), SLP_OK);
        CHECK(t == NULL);
    }
}

/* ============================================================================================
 * A tasklet interrupted on one watchdog run can be resumed by any later run kind, and its
 * interrupted slp_tick returns SLP_OK then (SPEC §6).
 * ========================================================================================== */
TEST(interrupted_tasklet_resumes_under_any_run) {
    watchdog(10);
    struct spin s;
    spin_init(&s, 0, 1, 30);
    s.end_tag = 'E';
    log_reset();
    slp_tasklet *t0 = spawn_spin(&s);
    slp_tasklet *t = NOT_WRITTEN;
    CHECK_ST(slp_run_watchdog(10, 0, &t), SLP_OK);
    CHECK_EQ_INT(s.calls, 10);
    if (t && t != NOT_WRITTEN) {
        CHECK_ST(slp_tasklet_run(t), SLP_OK); /* from main: switch to it now */
        slp_tasklet_release(t);
    }
    CHECK_LOG("E");
    CHECK_EQ_INT(s.calls, 30);
    CHECK_EQ_INT(s.not_ok, 0);
    CHECK(!slp_tasklet_alive(t0));
    slp_tasklet_release(t0);
}
