/* test_time.c - timers and timeouts (SPEC §4.2, §5.3; the "Sleep and clocks" and "Timeouts"
 * rules of the time API): slp_sleep (never early, wake-up order, sleep(0), errors, traps, kill
 * and throw while sleeping, the sleeping tasklet's state, slp_run with only sleepers,
 * slp_run_wait serving timers, a main tasklet sleeping in the OS, many sleepers), the host clock
 * (slp_set_clock / slp_now: a game clock advanced by hand, paused, scaled, restored), and channel
 * send/receive timeouts on one thread and across threads (polls, expiry, partners in time, the
 * deadlock rule with timed waiters and sleeping tasklets on other threads).
 *
 * Every test arms its own watchdog alarm; every wait is bounded. Timing checks: "never early"
 * strictly, "not late" only with wide margins (LATE_MS), scaled under valgrind. */
#include "harness.h"
#include "common.h"
#include "thread_util.h"

#define MS 1000000LL
/* generous bound for "not late" (machines are noisy) */
#define LATE_MS 200

static long g_marker;

/* ---- a sleeping tasklet ---- */
struct sl {
    int64_t ns;        /* how long it sleeps */
    char tag;          /* logged when slp_sleep returns (0: nothing) */
    slp_status st;     /* what slp_sleep returned */
    int64_t n0, n1;    /* slp_now() before / after */
    int64_t m0, m1;    /* CLOCK_MONOTONIC before / after */
    void *exc;         /* slp_exception_data() after */
    int started, done;
    int wake_self;     /* slp_scheduler_wakeup(own thread) after waking */
    int block_trap;    /* set block_trap on itself first */
    int switch_trap;   /* raise switch_trap around the sleep */
    int freed;
    int *count;        /* incremented when it wakes (if set) */
};

static void sl_init(struct sl *s, int64_t ns, char tag) {
    memset(s, 0, sizeof *s);
    s->ns = ns;
    s->tag = tag;
    s->st = 12345;
}

static int32_t t_sleep(void *arg) {
    struct sl *s = arg;
    s->started = 1;
    if (s->block_trap) slp_tasklet_set_block_trap(slp_current(), true);
    if (s->switch_trap) slp_switch_trap(1);
    s->n0 = slp_now();
    s->m0 = now_ns();
    s->st = slp_sleep(s->ns);
    s->m1 = now_ns();
    s->n1 = slp_now();
    if (s->switch_trap) slp_switch_trap(-1);
    if (s->block_trap) slp_tasklet_set_block_trap(slp_current(), false);
    s->exc = slp_exception_data();
    if (s->tag) log_c(s->tag);
    if (s->count) (*s->count)++;
    s->done = 1;
    if (s->wake_self) slp_scheduler_wakeup(slp_thread_id());
    return s->st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

static void sl_free(void *arg) { ((struct sl *)arg)->freed++; }

static slp_tasklet *spawn_sleep(struct sl *s) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = sl_free;
    return SPAWN_EX(t_sleep, s, &o);
}

/* Serves this thread's timers (slp_run_wait in short slices) until *flag is set or `ms` (scaled)
 * passed; returns whether the flag was set. */
static int drive_until(const int *flag, int64_t ms) {
    int64_t deadline = now_ns() + xt_ms(ms) * MS;
    while (!*flag && now_ns() < deadline) {
        slp_status st = slp_run_wait(2 * MS);
        if (st != SLP_E_TIMEOUT && st != SLP_OK) {
            printf("drive_until: slp_run_wait returned %d (%s): %s\n", (int)st, harness_status_name(st),
                   slp_last_error());
            break;
        }
    }
    return *flag;
}

/* Main blocks on a fresh channel with nothing else anywhere: SLP_E_DEADLOCK at once. A timer
 * left behind (a sleep or timeout that ended early) would make the thread wait for it. */
#define CHECK_NO_TIMER_LEFT() check_no_timer_left_at(__FILE__, __LINE__)
static void check_no_timer_left_at(const char *file, int line) {
    slp_channel *ch = NULL;
    slp_channel_new(&ch);
    void *v = SENTINEL;
    int64_t t0 = now_ns();
    slp_status st = slp_channel_receive(ch, &v);
    int64_t el = now_ns() - t0;
    if (st != SLP_E_DEADLOCK || el > xt_ms(1000) * MS) {
        harness_fail_header(file, line);
        printf("no timer should be left: main's receive alone returned %d (%s) after %lld ms, expected an "
               "immediate SLP_E_DEADLOCK",
               (int)st, harness_status_name(st), (long long)(el / MS));
        harness_fail_tail(slp_last_error());
    } else {
        harness_passed++;
    }
    slp_channel_release(ch);
}

/* Ends a tasklet a failed check left asleep, so that its struct can be reused. */
static void kill_if_alive(slp_tasklet *t) {
    if (t && slp_tasklet_alive(t)) {
        slp_tasklet_kill(t, false);
        slp_run();
    }
}

/* ---- a host clock: game time the test sets by hand ---- */
static int64_t fake_fn(void *ud) { return *(int64_t *)ud; }

/* ============================================================================================
 * slp_sleep: never early on slp_now() and on CLOCK_MONOTONIC; lateness bounded generously.
 * ========================================================================================== */
TEST(sleep_is_never_early) {
    watchdog(10);
    static const int64_t lens[] = {1 * MS, 5 * MS, 20 * MS};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct sl s;
        sl_init(&s, lens[i], 0);
        slp_tasklet *t = spawn_sleep(&s);
        CHECK(drive_until(&s.done, 3000));
        CHECK_ST(s.st, SLP_OK);
        CHECK_MSG(s.n1 - s.n0 >= lens[i], "slept %lld ns on slp_now(), asked %lld", (long long)(s.n1 - s.n0),
                  (long long)lens[i]);
        CHECK_MSG(s.m1 - s.m0 >= lens[i], "slept %lld ns on CLOCK_MONOTONIC, asked %lld",
                  (long long)(s.m1 - s.m0), (long long)lens[i]);
        CHECK_MSG(s.m1 - s.m0 < lens[i] + xt_ms(LATE_MS) * MS, "slept %lld ms, asked %lld ms",
                  (long long)((s.m1 - s.m0) / MS), (long long)(lens[i] / MS));
        CHECK_EQ_INT(s.freed, 1);
        slp_tasklet_release(t);
    }
    /* the main tasklet */
    int64_t n0 = slp_now(), m0 = now_ns();
    CHECK_ST(slp_sleep(15 * MS), SLP_OK);
    int64_t n1 = slp_now(), m1 = now_ns();
    CHECK_MSG(n1 - n0 >= 15 * MS, "main slept %lld ns on slp_now()", (long long)(n1 - n0));
    CHECK_MSG(m1 - m0 >= 15 * MS, "main slept %lld ns on CLOCK_MONOTONIC", (long long)(m1 - m0));
    CHECK_MSG(m1 - m0 < (15 + xt_ms(LATE_MS)) * MS, "main slept %lld ms", (long long)((m1 - m0) / MS));
    /* very short sleeps too */
    for (int i = 0; i < 20; i++) {
        int64_t a = now_ns();
        CHECK_ST(slp_sleep(1000), SLP_OK);
        int64_t b = now_ns();
        if (b - a < 1000) {
            CHECK_MSG(0, "slp_sleep(1000) returned after %lld ns", (long long)(b - a));
            break;
        }
    }
}

/* ============================================================================================
 * Wake-up order: by deadline; equal deadlines in the order they went to sleep (FIFO); a woken
 * sleeper is appended to the run queue.
 * ========================================================================================== */
TEST(sleepers_wake_by_deadline_then_fifo) {
    watchdog(10);
    /* real clock, deadlines 15 ms apart */
    struct sl a, b, c;
    sl_init(&a, 45 * MS, 'a');
    sl_init(&b, 15 * MS, 'b');
    sl_init(&c, 30 * MS, 'c');
    log_reset();
    slp_tasklet *ta = spawn_sleep(&a);
    slp_tasklet *tb = spawn_sleep(&b);
    slp_tasklet *tc = spawn_sleep(&c);
    CHECK(drive_until(&a.done, 3000));
    CHECK_LOG("bca");
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_tasklet_release(tc);

    /* a host clock that does not move while they go to sleep: equal deadlines exactly */
    static int64_t fake = 1000;
    CHECK_ST(slp_set_clock(fake_fn, &fake), SLP_OK);
    struct sl p, q, r, s, u;
    sl_init(&p, 10, 'p');
    sl_init(&q, 10, 'q');
    sl_init(&r, 5, 'r');
    sl_init(&s, 10, 's');
    sl_init(&u, 20, 'u');
    log_reset();
    slp_tasklet *tp = spawn_sleep(&p);
    slp_tasklet *tq = spawn_sleep(&q);
    slp_tasklet *tr = spawn_sleep(&r);
    slp_tasklet *ts = spawn_sleep(&s);
    slp_tasklet *tu = spawn_sleep(&u);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 1);
    fake = 1015;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("rpqs");
    CHECK(slp_tasklet_blocked(tu));
    fake = 1100;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("rpqsu");
    kill_if_alive(tp);
    kill_if_alive(tq);
    kill_if_alive(tr);
    kill_if_alive(ts);
    kill_if_alive(tu);
    slp_tasklet_release(tp);
    slp_tasklet_release(tq);
    slp_tasklet_release(tr);
    slp_tasklet_release(ts);
    slp_tasklet_release(tu);

    /* a sleeper that wakes is appended: behind a tasklet already runnable */
    sl_init(&p, 10, 'p');
    log_reset();
    tp = spawn_sleep(&p);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    fake = 1200;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("op");
    kill_if_alive(tp);
    slp_tasklet_release(tp);
    slp_tasklet_release(o);
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
}

/* ============================================================================================
 * Due timers fire whenever the scheduler runs: every run call fires a sleeper whose deadline
 * passed, also when nothing else is runnable (the host's "call slp_run again next frame").
 * ========================================================================================== */
static slp_status run_kind(int k) {
    slp_tasklet *t = NULL;
    switch (k) {
    case 0: return slp_run();
    case 1: return slp_run_n(1);
    case 2: return slp_run_for(-1);
    case 3: return slp_run_for(10 * MS);
    case 4: {
        slp_status st = slp_run_watchdog(1000, 0, &t);
        if (t) slp_tasklet_release(t);
        return st;
    }
    default: return slp_run_wait(0) == SLP_E_TIMEOUT ? SLP_OK : -100;
    }
}

TEST(every_run_fires_due_timers_with_nothing_else_runnable) {
    watchdog(10);
    static const char *names[] = {"slp_run", "slp_run_n(1)", "slp_run_for(-1)", "slp_run_for(10 ms)",
                                  "slp_run_watchdog", "slp_run_wait(0)"};
    for (int k = 0; k < 6; k++) {
        /* the default clock: the deadline passes in real time while the host is elsewhere */
        struct sl s;
        sl_init(&s, 1 * MS, 0);
        slp_tasklet *t = spawn_sleep(&s);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(s.started && !s.done);
        sleep_ms(20);
        CHECK_ST(run_kind(k), SLP_OK);
        CHECK_MSG(s.done, "%s did not wake a sleeper 19 ms past its deadline (nothing else runnable)",
                  names[k]);
        kill_if_alive(t);
        slp_tasklet_release(t);

        /* a host clock advanced by the host between frames */
        static int64_t fake = 1000;
        CHECK_ST(slp_set_clock(fake_fn, &fake), SLP_OK);
        sl_init(&s, 10, 0);
        t = spawn_sleep(&s);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK(s.started && !s.done);
        fake += 100;
        CHECK_ST(run_kind(k), SLP_OK);
        CHECK_MSG(s.done, "%s did not wake a sleeper whose game-time deadline passed", names[k]);
        kill_if_alive(t);
        slp_tasklet_release(t);
        CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
    }
}

/* ============================================================================================
 * slp_sleep(0) yields exactly like slp_schedule; negative is SLP_E_INVALID.
 * ========================================================================================== */
static int32_t t_log_sleep0(void *arg) {
    char c = (char)(intptr_t)arg;
    log_c(c);
    slp_status st = slp_sleep(0);
    if (st != SLP_OK) log_c('!');
    log_c((char)(c - 'a' + 'A'));
    return 0;
}

static int32_t t_sleep_negative(void *arg) {
    slp_status *st = arg;
    st[0] = slp_sleep(-1);
    st[1] = slp_sleep(INT64_MIN);
    log_c('n');
    return 0;
}

TEST(sleep_zero_yields_and_negative_is_invalid) {
    watchdog(10);
    /* in tasklets */
    log_reset();
    slp_tasklet *a = SPAWN(t_log_sleep0, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("abAB");
    slp_tasklet_release(a);
    slp_tasklet_release(b);

    /* from main, compared with slp_schedule */
    for (int use_sleep = 0; use_sleep < 2; use_sleep++) {
        log_reset();
        a = SPAWN(t_log_yield, IPTR('a'));
        b = SPAWN(t_log_sleep0, IPTR('b'));
        CHECK_ST(use_sleep ? slp_sleep(0) : slp_schedule(), SLP_OK);
        CHECK_MSG(strcmp(g_log, "ab") == 0, "%s: log \"%s\", expected \"ab\"",
                  use_sleep ? "slp_sleep(0)" : "slp_schedule()", g_log);
        CHECK_EQ_INT(slp_runcount(), 3);
        CHECK_ST(slp_run(), SLP_OK);
        CHECK_LOG("abAB");
        slp_tasklet_release(a);
        slp_tasklet_release(b);
    }
    /* alone: returns at once */
    int64_t t0 = now_ns();
    CHECK_ST(slp_sleep(0), SLP_OK);
    CHECK(now_ns() - t0 < xt_ms(LATE_MS) * MS);

    /* negative: SLP_E_INVALID, nothing switched */
    log_reset();
    a = SPAWN(t_log, IPTR('a'));
    CHECK_ST(slp_sleep(-1), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_sleep(INT64_MIN), SLP_E_INVALID);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);
    slp_status st[2] = {12345, 12345};
    slp_tasklet *n = SPAWN(t_sleep_negative, st);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("ano");
    CHECK_ST(st[0], SLP_E_INVALID);
    CHECK_ST(st[1], SLP_E_INVALID);
    slp_tasklet_release(a);
    slp_tasklet_release(n);
    slp_tasklet_release(o);
}

/* ============================================================================================
 * block_trap -> SLP_E_WOULD_BLOCK, switch_trap -> SLP_E_SWITCH_TRAP; nothing changes.
 * ========================================================================================== */
TEST(sleep_under_block_trap_and_switch_trap) {
    watchdog(10);
    struct sl s;
    sl_init(&s, 10 * MS, 't');
    s.block_trap = 1;
    log_reset();
    slp_tasklet *t = spawn_sleep(&s);
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_E_WOULD_BLOCK);
    CHECK_LOG("to"); /* it went on at once */
    CHECK(!slp_tasklet_alive(t));
    slp_tasklet_release(t);
    slp_tasklet_release(o);

    /* sleep(0) is a yield, not a block: allowed under block_trap */
    sl_init(&s, 0, 't');
    s.block_trap = 1;
    log_reset();
    slp_tasklet *o1 = SPAWN(t_log, IPTR('o'));
    t = spawn_sleep(&s);
    slp_tasklet *o2 = SPAWN(t_log, IPTR('p'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_OK);
    CHECK_LOG("opt");
    slp_tasklet_release(t);
    slp_tasklet_release(o1);
    slp_tasklet_release(o2);

    /* the main tasklet under block_trap */
    CHECK_EQ_INT(slp_tasklet_set_block_trap(slp_main(), true), 0);
    int64_t t0 = now_ns();
    CHECK_ST(slp_sleep(50 * MS), SLP_E_WOULD_BLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK(now_ns() - t0 < 50 * MS);
    CHECK_EQ_INT(slp_tasklet_set_block_trap(slp_main(), false), 1);

    /* switch_trap in a tasklet */
    sl_init(&s, 10 * MS, 't');
    s.switch_trap = 1;
    log_reset();
    t = spawn_sleep(&s);
    o = SPAWN(t_log, IPTR('o'));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_E_SWITCH_TRAP);
    CHECK_LOG("to");
    slp_tasklet_release(t);
    slp_tasklet_release(o);

    /* switch_trap on main with another tasklet runnable */
    log_reset();
    o = SPAWN(t_log, IPTR('o'));
    CHECK_EQ_INT(slp_switch_trap(1), 0);
    CHECK_ST(slp_sleep(10 * MS), SLP_E_SWITCH_TRAP);
    CHECK_ST(slp_sleep(0), SLP_E_SWITCH_TRAP);
    CHECK_EQ_INT(slp_switch_trap(-1), 1);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("o");
    slp_tasklet_release(o);
    CHECK_NO_TIMER_LEFT();
}

/* ============================================================================================
 * A sleeping tasklet: blocked, scheduled, not paused; slp_run with only sleepers returns at
 * once (runcount 1). Kill / throw while sleeping end the sleep early, with no timer left.
 * ========================================================================================== */
TEST(sleeping_tasklet_state_kill_and_throw) {
    watchdog(10);
    struct sl s;
    sl_init(&s, 3000 * MS, 0);
    slp_tasklet *t = spawn_sleep(&s);
    int64_t t0 = now_ns();
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_MSG(now_ns() - t0 < xt_ms(1000) * MS, "slp_run with only a sleeper took %lld ms",
              (long long)((now_ns() - t0) / MS));
    CHECK_EQ_INT(slp_runcount(), 1);
    CHECK(s.started && !s.done);
    CHECK(slp_tasklet_alive(t));
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK(!slp_tasklet_paused(t));
    /* slp_run again: still asleep, returns at once */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!s.done);
    /* a sleeping tasklet cannot be inserted or removed */
    CHECK_ST(slp_tasklet_insert(t), SLP_E_STATE);
    CHECK_ST(slp_tasklet_remove(t), SLP_E_STATE);
    /* pending kill: runnable now, the sleep returns SLP_E_KILLED */
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK(!slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_E_KILLED);
    CHECK(s.m1 - s.m0 < 2000 * MS);
    CHECK(!slp_tasklet_alive(t));
    CHECK_EQ_INT(s.freed, 1);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* kill without pending, from main: switches to it now */
    sl_init(&s, 3000 * MS, 'k');
    log_reset();
    t = spawn_sleep(&s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_LOG("k");
    CHECK_ST(s.st, SLP_E_KILLED);
    CHECK_EQ_INT(s.freed, 1);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* throw while sleeping: the sleep returns the code, with its data */
    sl_init(&s, 3000 * MS, 0);
    t = spawn_sleep(&s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 42, &g_marker, true), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, 42);
    CHECK_EQ_PTR(s.exc, &g_marker);
    CHECK(s.m1 - s.m0 < 2000 * MS);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* a killed sleeper among others: the others still wake, in order */
    struct sl a, b, c;
    sl_init(&a, 10 * MS, 'a');
    sl_init(&b, 20 * MS, 'b');
    sl_init(&c, 30 * MS, 'c');
    log_reset();
    slp_tasklet *ta = spawn_sleep(&a);
    slp_tasklet *tb = spawn_sleep(&b);
    slp_tasklet *tc = spawn_sleep(&c);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(tb, true), SLP_OK);
    CHECK(drive_until(&c.done, 3000));
    CHECK_LOG("bac");
    CHECK_ST(b.st, SLP_E_KILLED);
    CHECK_ST(a.st, SLP_OK);
    CHECK_ST(c.st, SLP_OK);
    CHECK(c.m1 - c.m0 >= 30 * MS);
    slp_tasklet_release(ta);
    slp_tasklet_release(tb);
    slp_tasklet_release(tc);
    CHECK_NO_TIMER_LEFT();
}

/* ============================================================================================
 * slp_run_wait serves timers: it sleeps the thread until the earliest timer or its own timeout
 * and runs the woken tasklets.
 * ========================================================================================== */
TEST(run_wait_serves_timers) {
    watchdog(10);
    /* the woken tasklet asks the wait to return */
    struct sl s;
    sl_init(&s, 30 * MS, 0);
    s.wake_self = 1;
    slp_tasklet *t = spawn_sleep(&s);
    int64_t t0 = now_ns();
    CHECK_ST(slp_run_wait(xt_ms(3000) * MS), SLP_OK);
    int64_t el = now_ns() - t0;
    CHECK(s.done);
    CHECK_ST(s.st, SLP_OK);
    CHECK_MSG(el >= 30 * MS, "returned after %lld us", (long long)(el / 1000));
    CHECK_MSG(el < (30 + xt_ms(LATE_MS)) * MS, "returned after %lld ms", (long long)(el / MS));
    slp_tasklet_release(t);

    /* the timer fires inside a wait that then runs on to its own timeout */
    sl_init(&s, 20 * MS, 0);
    t = spawn_sleep(&s);
    t0 = now_ns();
    CHECK_ST(slp_run_wait(60 * MS), SLP_E_TIMEOUT);
    el = now_ns() - t0;
    CHECK(s.done);
    CHECK_ST(s.st, SLP_OK);
    CHECK(el >= 60 * MS);
    CHECK(s.m1 - t0 < 60 * MS + xt_ms(LATE_MS) * MS);
    slp_tasklet_release(t);

    /* a wait shorter than the timer: it times out, the sleeper stays asleep */
    sl_init(&s, 3000 * MS, 0);
    t = spawn_sleep(&s);
    t0 = now_ns();
    CHECK_ST(slp_run_wait(20 * MS), SLP_E_TIMEOUT);
    el = now_ns() - t0;
    CHECK(el >= 20 * MS);
    CHECK_MSG(el < xt_ms(1000) * MS, "slp_run_wait(20 ms) took %lld ms", (long long)(el / MS));
    CHECK(s.started && !s.done);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_tasklet_kill(t, true), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    slp_tasklet_release(t);

    /* a wait with no timeout and a pending timer is not a deadlock: the timer wakes it */
    sl_init(&s, 30 * MS, 0);
    s.wake_self = 1;
    t = spawn_sleep(&s);
    CHECK_ST(slp_run_wait(-1), SLP_OK);
    CHECK(s.done);
    CHECK_ST(s.st, SLP_OK);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();
}

/* ============================================================================================
 * The main tasklet sleeping: alone, the OS thread sleeps (little CPU); with tasklets, they run
 * meanwhile.
 * ========================================================================================== */
TEST(main_sleeping_alone_sleeps_in_the_os) {
    watchdog(10);
    int64_t c0 = thread_cpu_ns(), m0 = now_ns();
    CHECK_ST(slp_sleep(50 * MS), SLP_OK);
    int64_t cpu = thread_cpu_ns() - c0, el = now_ns() - m0;
    CHECK(el >= 50 * MS);
    if (!xt_slow())
        CHECK_MSG(cpu < 20 * MS, "main used %lld us of CPU over a 50 ms sleep", (long long)(cpu / 1000));
    printf("    main sleep(50 ms): %lld us wall, %lld us CPU\n", (long long)(el / 1000), (long long)(cpu / 1000));
}

static int32_t t_nap3(void *arg) {
    int *done = arg;
    for (int i = 0; i < 3; i++) {
        log_c('a');
        if (slp_sleep(5 * MS) != SLP_OK) log_c('!');
    }
    log_c('A');
    *done = 1;
    return 0;
}

TEST(main_sleeping_while_tasklets_run) {
    watchdog(10);
    int adone = 0;
    log_reset();
    slp_tasklet *a = SPAWN(t_nap3, &adone);
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    int64_t m0 = now_ns(), n0 = slp_now();
    CHECK_ST(slp_sleep(40 * MS), SLP_OK);
    int64_t el = now_ns() - m0, nel = slp_now() - n0;
    CHECK(el >= 40 * MS);
    CHECK(nel >= 40 * MS);
    CHECK_MSG(el < (40 + xt_ms(LATE_MS)) * MS, "main slept %lld ms", (long long)(el / MS));
    CHECK(drive_until(&adone, 3000)); /* normally done already, unless the machine stalled */
    CHECK_LOG("abBaaA");
    CHECK(!slp_tasklet_alive(b));
    slp_tasklet_release(a);
    slp_tasklet_release(b);

    /* main wakes while a tasklet still sleeps: that one stays asleep */
    struct sl s;
    sl_init(&s, 3000 * MS, 0);
    slp_tasklet *t = spawn_sleep(&s);
    CHECK_ST(slp_sleep(10 * MS), SLP_OK);
    CHECK(s.started && !s.done);
    CHECK(slp_tasklet_blocked(t));
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(s.st, SLP_E_KILLED);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();
}

/* ============================================================================================
 * Many sleepers (1000): all wake, none early, lateness bounded generously.
 * ========================================================================================== */
#define NSLEEPERS 1000
TEST(many_sleepers_all_wake) {
    watchdog(20);
    static struct sl s[NSLEEPERS];
    static slp_tasklet *t[NSLEEPERS];
    int woke = 0;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.stack_size = 32 * 1024;
    o.arg_free = sl_free;
    for (int i = 0; i < NSLEEPERS; i++) {
        sl_init(&s[i], (int64_t)(i % 10 + 1) * MS, 0);
        s[i].count = &woke;
        t[i] = NULL;
        if (slp_tasklet_new_ex(t_sleep, &s[i], &o, &t[i]) != SLP_OK) {
            CHECK_MSG(0, "slp_tasklet_new_ex %d failed: %s", i, slp_last_error());
            break;
        }
    }
    CHECK_ST(slp_sleep(5 * MS), SLP_OK); /* main sleeps while they start and some wake */
    int all = 0;
    int64_t deadline = now_ns() + xt_ms(5000) * MS;
    while (woke < NSLEEPERS && now_ns() < deadline) slp_run_wait(2 * MS);
    all = woke == NSLEEPERS;
    CHECK_MSG(all, "%d of %d sleepers woke", woke, NSLEEPERS);
    int early = 0, bad = 0;
    int64_t worst = 0;
    for (int i = 0; i < NSLEEPERS; i++) {
        if (!s[i].done) continue;
        if (s[i].st != SLP_OK) bad++;
        if (s[i].m1 - s[i].m0 < s[i].ns || s[i].n1 - s[i].n0 < s[i].ns) early++;
        int64_t late = s[i].m1 - s[i].m0 - s[i].ns;
        if (late > worst) worst = late;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(early, 0);
    CHECK_MSG(worst < xt_ms(LATE_MS) * MS, "worst lateness %lld ms", (long long)(worst / MS));
    printf("    %d sleepers: worst lateness %lld us\n", NSLEEPERS, (long long)(worst / 1000));
    for (int i = 0; i < NSLEEPERS; i++) {
        if (t[i] && slp_tasklet_alive(t[i])) slp_tasklet_kill(t[i], true);
    }
    slp_run();
    for (int i = 0; i < NSLEEPERS; i++) {
        slp_tasklet_release(t[i]);
        if (t[i] && s[i].freed != 1) {
            CHECK_MSG(0, "sleeper %d: arg_free ran %d times", i, s[i].freed);
            break;
        }
    }
    CHECK_NO_TIMER_LEFT();
}

/* ============================================================================================
 * Host clock: slp_now follows it; sleepers wake only when game time passes their deadline,
 * whatever slp_run calls and real time; paused game time keeps them asleep; slp_set_clock(NULL)
 * restores the default clock.
 * ========================================================================================== */
struct other_now {
    int64_t before, mid, after; /* main's real default-clock reads around the other thread's */
    int64_t other;
};

static void *other_now_thread(void *arg) {
    struct other_now *o = arg;
    int64_t v = slp_now();
    xt_lock();
    o->other = v;
    xt_unlock();
    return NULL;
}

TEST(host_clock_slp_now_follows_it) {
    watchdog(10);
    /* the default clock: monotonic, advancing with real time, one origin for the process */
    int64_t a = slp_now();
    sleep_ms(10);
    int64_t b = slp_now();
    CHECK_MSG(b - a >= 10 * MS, "slp_now advanced %lld ns over 10 ms", (long long)(b - a));
    CHECK(b - a < xt_ms(5000) * MS);
    struct other_now on;
    memset(&on, 0, sizeof on);
    pthread_t th;
    on.before = slp_now();
    CHECK_EQ_INT(pthread_create(&th, NULL, other_now_thread, &on), 0);
    pthread_join(th, NULL);
    on.after = slp_now();
    CHECK_MSG(on.before <= on.other && on.other <= on.after,
              "another thread's slp_now %lld not between %lld and %lld (one origin per process)",
              (long long)on.other, (long long)on.before, (long long)on.after);

    /* a host clock */
    static int64_t fake = 12345;
    CHECK_ST(slp_set_clock(fake_fn, &fake), SLP_OK);
    CHECK_EQ_INT(slp_now(), 12345);
    fake = 99999;
    CHECK_EQ_INT(slp_now(), 99999);
    sleep_ms(5);
    CHECK_EQ_INT(slp_now(), 99999); /* paused game time */
    /* it is the calling thread's: another thread still has the default clock */
    memset(&on, 0, sizeof on);
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
    on.before = slp_now();
    CHECK_ST(slp_set_clock(fake_fn, &fake), SLP_OK);
    CHECK_EQ_INT(pthread_create(&th, NULL, other_now_thread, &on), 0);
    pthread_join(th, NULL);
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
    on.after = slp_now();
    CHECK(on.other != 99999);
    CHECK(on.before <= on.other && on.other <= on.after);

    /* restored: the default clock again, advancing */
    a = slp_now();
    CHECK(a >= on.after);
    sleep_ms(10);
    b = slp_now();
    CHECK(b - a >= 10 * MS);
    int64_t m0 = now_ns();
    CHECK_ST(slp_sleep(10 * MS), SLP_OK);
    CHECK(now_ns() - m0 >= 10 * MS);
}

TEST(host_clock_governs_sleepers) {
    watchdog(10);
    static int64_t fake = 1000000000LL;
    CHECK_ST(slp_set_clock(fake_fn, &fake), SLP_OK);
    struct sl s;
    sl_init(&s, 1000, 's');
    log_reset();
    slp_tasklet *t = spawn_sleep(&s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(s.started && !s.done);
    CHECK_EQ_INT(s.n0, 1000000000LL);
    /* real time passes, slp_run is called: game time did not move, still asleep */
    sleep_ms(20);
    for (int i = 0; i < 5; i++) CHECK_ST(slp_run(), SLP_OK);
    CHECK(!s.done);
    fake += 999; /* 1 ns before the deadline */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!s.done);
    CHECK(slp_tasklet_blocked(t));
    fake += 50; /* past it */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(s.done);
    CHECK_ST(s.st, SLP_OK);
    CHECK_LOG("s");
    CHECK(s.n1 - s.n0 >= 1000);
    kill_if_alive(t);
    slp_tasklet_release(t);

    /* paused game time: slp_run_wait waits its real-time timeout, the sleeper stays asleep */
    sl_init(&s, 1000000000LL, 's'); /* one second of game time */
    t = spawn_sleep(&s);
    int64_t m0 = now_ns();
    CHECK_ST(slp_run_wait(30 * MS), SLP_E_TIMEOUT);
    int64_t el = now_ns() - m0;
    CHECK(el >= 30 * MS);
    CHECK_MSG(el < xt_ms(1000) * MS, "slp_run_wait(30 ms) took %lld ms", (long long)(el / MS));
    CHECK(s.started && !s.done);
    fake += 2000000000LL;
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(s.done);
    CHECK_ST(s.st, SLP_OK);
    kill_if_alive(t);
    slp_tasklet_release(t);
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);

    /* restored: a real-time sleeper wakes on real time again */
    sl_init(&s, 10 * MS, 0);
    t = spawn_sleep(&s);
    CHECK(drive_until(&s.done, 3000));
    CHECK(s.m1 - s.m0 >= 10 * MS);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();
}

/* a game clock running at a fixed rate of real time: num/den */
struct scaled {
    int64_t base;
    int64_t num, den;
};
static int64_t scaled_fn(void *ud) {
    struct scaled *s = ud;
    return (now_ns() - s->base) * s->num / s->den;
}

TEST(host_clock_scaled_main_sleep_never_early) {
    watchdog(10);
    static struct scaled sc;
    /* game time at twice real time */
    sc.base = now_ns();
    sc.num = 2;
    sc.den = 1;
    CHECK_ST(slp_set_clock(scaled_fn, &sc), SLP_OK);
    int64_t g0 = slp_now(), m0 = now_ns();
    CHECK_ST(slp_sleep(40 * MS), SLP_OK);
    int64_t g = slp_now() - g0, m = now_ns() - m0;
    CHECK_MSG(g >= 40 * MS, "slept %lld ns of game time, asked 40 ms", (long long)g);
    CHECK_MSG(m < xt_ms(500) * MS, "took %lld ms of real time", (long long)(m / MS));
    /* game time at half real time: the parked thread re-reads the clock and waits again */
    sc.base = now_ns();
    sc.num = 1;
    sc.den = 2;
    g0 = slp_now();
    m0 = now_ns();
    CHECK_ST(slp_sleep(20 * MS), SLP_OK);
    g = slp_now() - g0;
    m = now_ns() - m0;
    CHECK_MSG(g >= 20 * MS, "slept %lld ns of game time, asked 20 ms", (long long)g);
    CHECK_MSG(m >= 40 * MS, "took %lld us of real time at half speed", (long long)(m / 1000));
    CHECK_MSG(m < (40 + xt_ms(LATE_MS)) * MS, "took %lld ms of real time", (long long)(m / MS));
    /* a tasklet sleeping on the slow clock, served by slp_run_wait */
    struct sl s;
    sl_init(&s, 10 * MS, 0);
    slp_tasklet *t = spawn_sleep(&s);
    CHECK(drive_until(&s.done, 3000));
    CHECK_ST(s.st, SLP_OK);
    CHECK(s.n1 - s.n0 >= 10 * MS);
    CHECK(s.m1 - s.m0 >= 20 * MS);
    slp_tasklet_release(t);
    CHECK_ST(slp_set_clock(NULL, NULL), SLP_OK);
}

/* ============================================================================================
 * Channel timeouts, one thread: polls.
 * ========================================================================================== */
struct top {                 /* a timed channel operation done by a tasklet */
    slp_channel *ch;
    void *val;               /* to send; for receive: pre-set to SENTINEL */
    int64_t timeout;
    slp_status st;
    char tag;
    int64_t m0, m1;
    int done;
    int freed;
};

static void top_init(struct top *o, slp_channel *ch, void *val, int64_t timeout, char tag) {
    memset(o, 0, sizeof *o);
    o->ch = ch;
    o->val = val;
    o->timeout = timeout;
    o->st = 12345;
    o->tag = tag;
}

static int32_t t_recv_to(void *arg) {
    struct top *o = arg;
    o->m0 = now_ns();
    o->st = slp_channel_receive_timeout(o->ch, &o->val, o->timeout);
    o->m1 = now_ns();
    if (o->tag) log_c(o->tag);
    o->done = 1;
    return o->st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

static int32_t t_send_to(void *arg) {
    struct top *o = arg;
    o->m0 = now_ns();
    o->st = slp_channel_send_timeout(o->ch, o->val, o->timeout);
    o->m1 = now_ns();
    if (o->tag) log_c(o->tag);
    o->done = 1;
    return o->st == SLP_E_KILLED ? SLP_E_KILLED : 0;
}

static void top_free(void *arg) { ((struct top *)arg)->freed++; }

static slp_tasklet *spawn_top(slp_tasklet_fn fn, struct top *o) {
    slp_tasklet_options opts;
    slp_tasklet_options_init(&opts);
    opts.arg_free = top_free;
    return SPAWN_EX(fn, o, &opts);
}

TEST(channel_poll_timeout_zero) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    log_reset();
    slp_tasklet *o = SPAWN(t_log, IPTR('o'));
    /* nothing to pair: SLP_E_TIMEOUT, nothing changed, nobody switched */
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(1), 0), SLP_E_TIMEOUT);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_queue(ch) == NULL);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 0), SLP_E_TIMEOUT);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_LOG("");
    CHECK_EQ_INT(slp_runcount(), 2);
    CHECK(slp_tasklet_is_current(slp_main()));
    /* the same from a tasklet: it goes on at once */
    struct top ps, pr;
    top_init(&ps, ch, IPTR(2), 0, 's');
    top_init(&pr, ch, SENTINEL, 0, 'r');
    slp_tasklet *ts = spawn_top(t_send_to, &ps);
    slp_tasklet *tr = spawn_top(t_recv_to, &pr);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_LOG("osr");
    CHECK_ST(ps.st, SLP_E_TIMEOUT);
    CHECK_ST(pr.st, SLP_E_TIMEOUT);
    CHECK_EQ_PTR(pr.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(o);
    slp_tasklet_release(ts);
    slp_tasklet_release(tr);

    /* a poll that can complete does: a blocked receiver */
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(3), 0), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(r.done);
    CHECK_ST(r.st, SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(3));
    slp_tasklet_release(t);
    /* a blocked sender */
    struct op snd;
    op_init(&snd, ch, IPTR(4), 0);
    t = SPAWN(op_send, &snd);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 0), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(4));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(snd.done);
    CHECK_ST(snd.st, SLP_OK);
    slp_tasklet_release(t);

    /* a buffered channel: room / items */
    slp_channel *q = NEW_CHANNEL_EX(-1, 1, false);
    CHECK_ST(slp_channel_send_timeout(q, IPTR(5), 0), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(q), 1);
    CHECK_ST(slp_channel_send_timeout(q, IPTR(6), 0), SLP_E_TIMEOUT);
    CHECK_EQ_INT(slp_channel_balance(q), 1);
    v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(q, &v, 0), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(5));
    v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(q, &v, 0), SLP_E_TIMEOUT);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(q), 0);
    slp_channel_release(q);

    /* other statuses as the plain calls: closed, NULL channel */
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(7), 0), SLP_E_CLOSED);
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 0), SLP_E_CLOSED);
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(7), 10 * MS), SLP_E_CLOSED);
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 10 * MS), SLP_E_CLOSED);
    CHECK_ST(slp_channel_send_timeout(NULL, IPTR(7), 0), SLP_E_INVALID);
    CHECK_ST(slp_channel_receive_timeout(NULL, &v, 0), SLP_E_INVALID);
    slp_channel_release(ch);
}

/* ============================================================================================
 * Finite timeouts expiring, one thread: SLP_E_TIMEOUT, the caller left the channel (balance
 * back), a send's value stays the caller's, a receive's *out is not written. The main tasklet
 * with a finite timeout never gets SLP_E_DEADLOCK.
 * ========================================================================================== */
TEST(channel_timeout_expiry_main) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    /* main, nothing else anywhere: SLP_E_TIMEOUT after the timeout, never SLP_E_DEADLOCK */
    int64_t m0 = now_ns();
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(1), 20 * MS), SLP_E_TIMEOUT);
    int64_t el = now_ns() - m0;
    CHECK_MSG(el >= 20 * MS, "timed out after %lld us", (long long)(el / 1000));
    CHECK_MSG(el < (20 + xt_ms(LATE_MS)) * MS, "timed out after %lld ms", (long long)(el / MS));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK(slp_channel_queue(ch) == NULL);
    /* the value was not received by anyone later */
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 0), SLP_E_TIMEOUT);
    CHECK_EQ_PTR(v, SENTINEL);
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(!r.done);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_EQ_PTR(r.val, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);

    m0 = now_ns();
    v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 20 * MS), SLP_E_TIMEOUT);
    el = now_ns() - m0;
    CHECK(el >= 20 * MS);
    CHECK(el < (20 + xt_ms(LATE_MS)) * MS);
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_NO_TIMER_LEFT();

    /* a tasklet that ends while main waits with a finite timeout: main still waits for its
     * deadline (SLP_E_TIMEOUT, not SLP_E_DEADLOCK) */
    log_reset();
    t = SPAWN(t_log, IPTR('e'));
    m0 = now_ns();
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 30 * MS), SLP_E_TIMEOUT);
    CHECK(now_ns() - m0 >= 30 * MS);
    CHECK_LOG("e");
    slp_tasklet_release(t);

    /* a tasklet blocked forever elsewhere, main waits with a finite timeout: SLP_E_TIMEOUT; the
     * blocked tasklet did not get SLP_E_DEADLOCK (main's deadline could wake the thread) */
    slp_channel *other = NEW_CHANNEL();
    op_init(&r, other, SENTINEL, 'x');
    log_reset();
    t = SPAWN(op_recv, &r);
    m0 = now_ns();
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 30 * MS), SLP_E_TIMEOUT);
    CHECK(now_ns() - m0 >= 30 * MS);
    CHECK_MSG(!r.done, "the blocked tasklet's receive returned %d (%s)", (int)r.st, harness_status_name(r.st));
    CHECK(slp_tasklet_blocked(t));
    CHECK_EQ_INT(slp_channel_balance(other), -1);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    slp_tasklet_release(t);
    slp_channel_release(other);
    slp_channel_release(ch);
    CHECK_NO_TIMER_LEFT();
}

TEST(channel_timeout_expiry_tasklet) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    /* a tasklet's timed receive */
    struct top r;
    top_init(&r, ch, SENTINEL, 20 * MS, 'r');
    slp_tasklet *t = spawn_top(t_recv_to, &r);
    CHECK_ST(slp_run(), SLP_OK); /* it blocks; the run returns */
    CHECK(!r.done);
    CHECK(slp_tasklet_blocked(t));
    CHECK(slp_tasklet_scheduled(t));
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK(drive_until(&r.done, 3000));
    CHECK_ST(r.st, SLP_E_TIMEOUT);
    CHECK_EQ_PTR(r.val, SENTINEL);
    CHECK(r.m1 - r.m0 >= 20 * MS);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(r.freed, 1);
    slp_tasklet_release(t);

    /* a tasklet's timed send: its value is not received later */
    struct top s;
    top_init(&s, ch, IPTR(9), 20 * MS, 's');
    t = spawn_top(t_send_to, &s);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 1);
    CHECK(drive_until(&s.done, 3000));
    CHECK_ST(s.st, SLP_E_TIMEOUT);
    CHECK(s.m1 - s.m0 >= 20 * MS);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 0), SLP_E_TIMEOUT);
    CHECK_EQ_PTR(v, SENTINEL);
    slp_tasklet_release(t);

    /* a negative timeout waits forever: exactly the plain call (here: a blocked receiver that
     * a later send completes, and main's receive alone is SLP_E_DEADLOCK) */
    top_init(&r, ch, SENTINEL, -1, 'r');
    t = spawn_top(t_recv_to, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_run_wait(20 * MS), SLP_E_TIMEOUT);
    CHECK(!r.done);
    CHECK_ST(slp_channel_send(ch, IPTR(10)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(10));
    slp_tasklet_release(t);
    v = SENTINEL;
    CHECK_ST(slp_channel_receive_timeout(ch, &v, -1), SLP_E_DEADLOCK);
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(1), -1), SLP_E_DEADLOCK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_channel_release(ch);
    CHECK_NO_TIMER_LEFT();
}

/* ============================================================================================
 * A partner arriving before the deadline completes the operation normally (no timer left).
 * ========================================================================================== */
static int32_t t_nap_then_send(void *arg) {
    struct op *o = arg;
    slp_sleep(10 * MS);
    o->st = slp_channel_send(o->ch, o->val);
    o->done = 1;
    return 0;
}

static int32_t t_nap_then_recv(void *arg) {
    struct op *o = arg;
    slp_sleep(10 * MS);
    o->st = slp_channel_receive(o->ch, &o->val);
    o->done = 1;
    return 0;
}

TEST(channel_timeout_partner_in_time) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    /* a tasklet's timed receive, main sends */
    struct top r;
    top_init(&r, ch, SENTINEL, 3000 * MS, 'r');
    slp_tasklet *t = spawn_top(t_recv_to, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), -1);
    CHECK_ST(slp_channel_send(ch, IPTR(11)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK(r.done);
    CHECK_ST(r.st, SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(11));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* a tasklet's timed send, main receives */
    struct top s;
    top_init(&s, ch, IPTR(12), 3000 * MS, 's');
    t = spawn_top(t_send_to, &s);
    CHECK_ST(slp_run(), SLP_OK);
    void *v = SENTINEL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
    CHECK_EQ_PTR(v, IPTR(12));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(s.st, SLP_OK);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* main's timed receive, a tasklet sends after a 10 ms sleep */
    struct op o;
    op_init(&o, ch, IPTR(13), 0);
    t = SPAWN(t_nap_then_send, &o);
    v = SENTINEL;
    int64_t m0 = now_ns();
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 3000 * MS), SLP_OK);
    int64_t el = now_ns() - m0;
    CHECK_EQ_PTR(v, IPTR(13));
    CHECK(el >= 10 * MS);
    CHECK_MSG(el < xt_ms(1000) * MS, "took %lld ms", (long long)(el / MS));
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(o.st, SLP_OK);
    slp_tasklet_release(t);

    /* main's timed send, a tasklet receives after a 10 ms sleep */
    op_init(&o, ch, SENTINEL, 0);
    t = SPAWN(t_nap_then_recv, &o);
    m0 = now_ns();
    CHECK_ST(slp_channel_send_timeout(ch, IPTR(14), 3000 * MS), SLP_OK);
    el = now_ns() - m0;
    CHECK(el >= 10 * MS);
    CHECK(el < xt_ms(1000) * MS);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(o.st, SLP_OK);
    CHECK_EQ_PTR(o.val, IPTR(14));
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* a timed receiver killed (or thrown to) while waiting: it leaves, no timer left */
    top_init(&r, ch, SENTINEL, 3000 * MS, 0);
    t = spawn_top(t_recv_to, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_throw(t, 5, &g_marker, true), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(r.st, 5);
    CHECK_EQ_PTR(r.val, SENTINEL);
    slp_tasklet_release(t);
    top_init(&r, ch, SENTINEL, 3000 * MS, 0);
    t = spawn_top(t_recv_to, &r);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_kill(t, false), SLP_OK);
    CHECK_ST(r.st, SLP_E_KILLED);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    CHECK_EQ_INT(r.freed, 1);
    slp_tasklet_release(t);
    CHECK_NO_TIMER_LEFT();

    /* a timed receive under block_trap: SLP_E_WOULD_BLOCK when it would block */
    CHECK_EQ_INT(slp_tasklet_set_block_trap(slp_main(), true), 0);
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 10 * MS), SLP_E_WOULD_BLOCK);
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 0), SLP_E_TIMEOUT); /* a poll never blocks */
    CHECK_EQ_INT(slp_tasklet_set_block_trap(slp_main(), false), 1);
    slp_channel_release(ch);
}

/* ============================================================================================
 * Across threads.
 * ========================================================================================== */
struct xsend {
    slp_channel *ch;
    long ready;
    long ktid;
    int64_t delay_ms;
    int mode;          /* 0: plain sleep then send; 1: timed receive on ch2 first; 2: slp_sleep */
    slp_channel *ch2;
    slp_status st_wait, st_send;
    long done;
};

static void *xsend_thread(void *arg) {
    struct xsend *x = arg;
    slp_current(); /* participates */
    long ktid = xt_gettid();
    xt_lock();
    x->ktid = ktid;
    x->ready = 1;
    xt_unlock();
    slp_status w = SLP_OK;
    if (x->mode == 0) {
        sleep_ms(x->delay_ms);
    } else if (x->mode == 1) {
        void *v = SENTINEL;
        w = slp_channel_receive_timeout(x->ch2, &v, x->delay_ms * MS);
    } else {
        w = slp_sleep(x->delay_ms * MS);
    }
    slp_status s = slp_channel_send(x->ch, IPTR(21));
    xt_lock();
    x->st_wait = w;
    x->st_send = s;
    x->done = 1;
    xt_unlock();
    return NULL;
}

struct xtop {
    struct xop x;
    int64_t timeout;
};

static int32_t t_xrecv_timeout(void *arg) {
    struct xtop *o = arg;
    void *v = SENTINEL;
    slp_status st = slp_channel_receive_timeout(o->x.ch, &v, o->timeout);
    xop_publish(&o->x, st, v, st == SLP_OK);
    return 0;
}

static void setup_xrecv_timeout(void *arg) { slp_tasklet_new(t_xrecv_timeout, arg, NULL); }

TEST(cross_thread_partner_in_time) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    /* main's timed receive; a thread sends after 30 ms */
    struct xsend x;
    memset(&x, 0, sizeof x);
    x.ch = ch;
    x.delay_ms = 30;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, xsend_thread, &x), 0);
    CHECK_WAIT(xt_get(&x.ready), 2000);
    void *v = SENTINEL;
    int64_t m0 = now_ns();
    CHECK_ST(slp_channel_receive_timeout(ch, &v, xt_ms(3000) * MS), SLP_OK);
    int64_t el = now_ns() - m0;
    CHECK_EQ_PTR(v, IPTR(21));
    CHECK_MSG(el < xt_ms(2000) * MS, "took %lld ms", (long long)(el / MS));
    pthread_join(th, NULL);
    CHECK_ST(x.st_send, SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);

    /* a worker's tasklet in a timed receive; main sends in time */
    struct xtop r;
    xop_init(&r.x, ch, SENTINEL);
    r.timeout = xt_ms(3000) * MS;
    struct worker w;
    if (!START_WORKER(&w, setup_xrecv_timeout, &r)) return;
    CHECK_WAIT(slp_channel_balance(ch) == -1, 2000);
    CHECK_ST(slp_channel_send(ch, IPTR(22)), SLP_OK);
    CHECK_WAIT(xop_done(&r.x), 2000);
    xt_lock();
    CHECK_ST(r.x.st, SLP_OK);
    CHECK_EQ_PTR(r.x.val, IPTR(22));
    CHECK_EQ_INT(r.x.tid, w.tid);
    xt_unlock();
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    STOP_WORKER(&w);
    slp_channel_release(ch);
}

/* another thread busy running a tasklet (CPU) for a while, then polling a send */
struct busy {
    slp_channel *ch;
    long ready;
    int64_t busy_ms;
    slp_status poll_st;
    int32_t balance_seen;
};

static int32_t t_busy(void *arg) {
    struct busy *b = arg;
    xt_set(&b->ready, 1);
    int64_t end = now_ns() + b->busy_ms * MS;
    while (now_ns() < end) {
    }
    b->balance_seen = slp_channel_balance(b->ch);
    b->poll_st = slp_channel_send_timeout(b->ch, IPTR(23), 0);
    return 0;
}

static void *busy_thread(void *arg) {
    struct busy *b = arg;
    slp_tasklet_new(t_busy, b, NULL);
    slp_run();
    return NULL;
}

TEST(cross_thread_timeout_expires_while_other_thread_busy) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    struct busy b;
    memset(&b, 0, sizeof b);
    b.ch = ch;
    /* the busy thread must outlast main's 30 ms timeout by far, also under valgrind, which runs
     * one thread at a time (c_tests/run.sh asks it for fair scheduling) */
    b.busy_ms = xt_slow() ? 3000 : 250;
    b.poll_st = 12345;
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, busy_thread, &b), 0);
    CHECK_WAIT(xt_get(&b.ready), 2000);
    void *v = SENTINEL;
    int64_t m0 = now_ns();
    CHECK_ST(slp_channel_receive_timeout(ch, &v, 30 * MS), SLP_E_TIMEOUT);
    int64_t el = now_ns() - m0;
    CHECK_EQ_PTR(v, SENTINEL);
    CHECK(el >= 30 * MS);
    CHECK_MSG(el < (30 + xt_ms(LATE_MS)) * MS, "timed out after %lld ms", (long long)(el / MS));
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    pthread_join(th, NULL);
    /* main had left: the other thread's poll found nobody */
    CHECK_EQ_INT(b.balance_seen, 0);
    CHECK_ST(b.poll_st, SLP_E_TIMEOUT);
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_channel_release(ch);
}

TEST(cross_thread_timed_waiter_counts_as_possible_waker) {
    watchdog(10);
    for (int mode = 1; mode <= 2; mode++) {
        /* mode 1: thread B's main blocked in a timed receive on ch2, then sends on ch;
         * mode 2: thread B's main in slp_sleep, then sends on ch */
        slp_channel *ch = NEW_CHANNEL();
        slp_channel *ch2 = NEW_CHANNEL();
        struct xsend x;
        memset(&x, 0, sizeof x);
        x.ch = ch;
        x.ch2 = ch2;
        x.mode = mode;
        x.delay_ms = 150;
        pthread_t th;
        CHECK_EQ_INT(pthread_create(&th, NULL, xsend_thread, &x), 0);
        CHECK_WAIT(xt_get(&x.ready), 2000);
        if (mode == 1)
            CHECK_WAIT(slp_channel_balance(ch2) == -1 && xt_task_sleeping(xt_get(&x.ktid)), 2000);
        else
            CHECK_WAIT(xt_task_sleeping(xt_get(&x.ktid)), 2000);
        void *v = SENTINEL;
        slp_status st = slp_channel_receive(ch, &v); /* untimed: B may still send */
        CHECK_MSG(st == SLP_OK, "mode %d: main's receive returned %d (%s), expected SLP_OK", mode, (int)st,
                  harness_status_name(st));
        CHECK_EQ_PTR(v, IPTR(21));
        pthread_join(th, NULL);
        CHECK_ST(x.st_wait, mode == 1 ? SLP_E_TIMEOUT : SLP_OK);
        CHECK_ST(x.st_send, SLP_OK);
        CHECK_EQ_INT(slp_channel_balance(ch), 0);
        CHECK_EQ_INT(slp_channel_balance(ch2), 0);
        slp_channel_release(ch);
        slp_channel_release(ch2);
    }
}

/* a worker whose tasklet sleeps, then sends */
struct nap_send {
    slp_channel *ch;
    long started;
    slp_status st_sleep, st_send;
    long done;
};

static int32_t t_xnap_send(void *arg) {
    struct nap_send *n = arg;
    xt_set(&n->started, 1);
    slp_status a = slp_sleep(150 * MS);
    slp_status b = slp_channel_send(n->ch, IPTR(24));
    xt_lock();
    n->st_sleep = a;
    n->st_send = b;
    n->done = 1;
    xt_unlock();
    return 0;
}

static void setup_xnap_send(void *arg) { slp_tasklet_new(t_xnap_send, arg, NULL); }

TEST(cross_thread_sleeping_tasklet_counts_as_possible_waker) {
    watchdog(10);
    slp_channel *ch = NEW_CHANNEL();
    struct nap_send n;
    memset(&n, 0, sizeof n);
    n.ch = ch;
    struct worker w;
    if (!START_WORKER(&w, setup_xnap_send, &n)) return;
    /* the worker's tasklet sleeps; the worker itself waits in slp_run_wait(-1) (not a deadlock
     * either: its own timer will wake it) */
    CHECK_WAIT(xt_get(&n.started) && xt_task_sleeping(w.ktid), 2000);
    void *v = SENTINEL;
    slp_status st = slp_channel_receive(ch, &v);
    CHECK_MSG(st == SLP_OK, "main's receive returned %d (%s), expected SLP_OK", (int)st, harness_status_name(st));
    CHECK_EQ_PTR(v, IPTR(24));
    CHECK_WAIT(xt_get(&n.done), 2000);
    xt_lock();
    CHECK_ST(n.st_sleep, SLP_OK);
    CHECK_ST(n.st_send, SLP_OK);
    xt_unlock();
    STOP_WORKER(&w); /* also checks that the worker's slp_run_wait(-1) never failed */
    slp_channel_release(ch);
}
