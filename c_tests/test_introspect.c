/* test_introspect.c - SPEC §8 introspection: schedule and channel callbacks (previous callback
 * returned), counters, the text dump of a thread's tasklets, and the saved context of a
 * suspended tasklet for debuggers. */
#include "harness.h"
#include "common.h"

/* ---- schedule callback ---- */

struct sw { slp_tasklet *prev, *next; };
static struct sw g_sw[64];
static int g_nsw;
static void on_switch(slp_tasklet *prev, slp_tasklet *next, void *ud) {
    (void)ud;
    if (g_nsw < 64) g_sw[g_nsw] = (struct sw){prev, next};
    g_nsw++;
}
static void other_cb(slp_tasklet *prev, slp_tasklet *next, void *ud) { (void)prev; (void)next; (void)ud; }

TEST(schedule_callback_sees_every_switch_in_order) {
    g_nsw = 0;
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log_yield, IPTR('b'));
    CHECK_ST(slp_set_schedule_callback(on_switch, NULL, NULL, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    slp_schedule_fn prev_fn = NULL;
    void *prev_ud = IPTR(1);
    CHECK_ST(slp_set_schedule_callback(NULL, NULL, &prev_fn, &prev_ud), SLP_OK);
    CHECK(prev_fn == on_switch);
    CHECK_EQ_PTR(prev_ud, NULL);
    /* main -> a, a -> b, b -> a, a -> b, b -> main (each tasklet yields once, then ends) */
    CHECK_EQ_INT(g_nsw, 5);
    slp_tasklet *m = slp_main();
    CHECK(g_sw[0].prev == m && g_sw[0].next == a);
    CHECK(g_sw[1].prev == a && g_sw[1].next == b);
    CHECK(g_sw[2].prev == b && g_sw[2].next == a);
    CHECK(g_sw[3].prev == a && g_sw[3].next == b);
    CHECK(g_sw[4].prev == b && g_sw[4].next == m);
    cleanup_tasklet(a);
    cleanup_tasklet(b);
}

static int g_prev_dead_seen;
static char g_prev_name[32];
static void on_switch_inspect(slp_tasklet *prev, slp_tasklet *next, void *ud) {
    (void)ud;
    if (next == slp_main() && prev != slp_main()) {
        /* prev just ended and nobody holds it: it must still be readable during the call */
        g_prev_dead_seen = !slp_tasklet_alive(prev);
        snprintf(g_prev_name, sizeof g_prev_name, "%s", slp_tasklet_name(prev));
    }
}

TEST(schedule_callback_prev_is_valid_for_a_fire_and_forget_tasklet) {
    g_prev_dead_seen = 0;
    g_prev_name[0] = 0;
    CHECK_ST(slp_set_schedule_callback(on_switch_inspect, NULL, NULL, NULL), SLP_OK);
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = "ephemeral";
    CHECK_ST(slp_tasklet_new_ex(t_log, IPTR('x'), &o, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_set_schedule_callback(NULL, NULL, NULL, NULL), SLP_OK);
    CHECK(g_prev_dead_seen);
    CHECK_EQ_STR(g_prev_name, "ephemeral");
}

TEST(set_schedule_callback_returns_the_previous_one) {
    slp_schedule_fn f = NULL;
    void *ud = NULL;
    CHECK_ST(slp_set_schedule_callback(on_switch, IPTR(7), NULL, NULL), SLP_OK);
    CHECK_ST(slp_set_schedule_callback(other_cb, IPTR(8), &f, &ud), SLP_OK);
    CHECK(f == on_switch);
    CHECK_EQ_PTR(ud, IPTR(7));
    CHECK_ST(slp_set_schedule_callback(NULL, NULL, &f, &ud), SLP_OK);
    CHECK(f == other_cb);
    CHECK_EQ_PTR(ud, IPTR(8));
}

/* ---- channel callback ---- */

struct cev { slp_channel *ch; slp_tasklet *t; bool sending, will_block; };
static struct cev g_cev[16];
static int g_ncev;
static void on_chan(slp_channel *ch, slp_tasklet *t, bool sending, bool will_block, void *ud) {
    (void)ud;
    if (g_ncev < 16) g_cev[g_ncev] = (struct cev){ch, t, sending, will_block};
    g_ncev++;
}

TEST(channel_callback_reports_direction_and_blocking) {
    g_ncev = 0;
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *t = SPAWN(op_recv, &r);
    CHECK_ST(slp_set_channel_callback(on_chan, NULL, NULL, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);                     /* t receives: will block */
    CHECK_ST(slp_channel_send(ch, IPTR(5)), SLP_OK); /* main sends: a receiver waits */
    slp_channel_fn pf = NULL;
    CHECK_ST(slp_set_channel_callback(NULL, NULL, &pf, NULL), SLP_OK);
    CHECK(pf == on_chan);
    CHECK_EQ_INT(g_ncev, 2);
    CHECK(g_cev[0].ch == ch && g_cev[0].t == t && !g_cev[0].sending && g_cev[0].will_block);
    CHECK(g_cev[1].ch == ch && g_cev[1].t == slp_main() && g_cev[1].sending && !g_cev[1].will_block);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_PTR(r.val, IPTR(5));
    cleanup_tasklet(t);
    slp_channel_release(ch);
}

/* ---- counters ---- */

TEST(counters_follow_tasklets_switches_and_channels) {
    slp_counters c0 = {.struct_size = sizeof c0}, c1 = {.struct_size = sizeof c1};
    CHECK_ST(slp_counters_get(&c0), SLP_OK);
    slp_channel *ch = NEW_CHANNEL();
    slp_tasklet *a = SPAWN(t_log_yield, IPTR('a'));
    slp_tasklet *b = SPAWN(t_log, IPTR('b'));
    CHECK_ST(slp_counters_get(&c1), SLP_OK);
    CHECK_EQ_INT((int)(c1.tasklets_created - c0.tasklets_created), 2);
    CHECK_EQ_INT((int)(c1.tasklets_live - c0.tasklets_live), 2);
    CHECK_EQ_INT((int)(c1.channels_created - c0.channels_created), 1);
    CHECK_EQ_INT((int)(c1.channels_live - c0.channels_live), 1);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_counters_get(&c1), SLP_OK);
    CHECK_EQ_INT((int)(c1.tasklets_live - c0.tasklets_live), 0);
    CHECK_EQ_INT((int)(c1.switches - c0.switches), 3); /* a, b, a again */
    CHECK(c1.stacks_pooled >= 1);
    slp_channel_release(ch);
    CHECK_ST(slp_counters_get(&c1), SLP_OK);
    CHECK_EQ_INT((int)(c1.channels_live - c0.channels_live), 0);
    cleanup_tasklet(a);
    cleanup_tasklet(b);
}

TEST(counters_validate_arguments) {
    CHECK_ST(slp_counters_get(NULL), SLP_E_INVALID);
    slp_counters c = {.struct_size = 4};
    CHECK_ST(slp_counters_get(&c), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
}

/* ---- dump ---- */

TEST(dump_lists_running_runnable_blocked_and_paused) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = "waiter";
    slp_tasklet *w = SPAWN_EX(op_recv, &r, &o);
    CHECK_ST(slp_run(), SLP_OK); /* w blocks receiving */
    o.name = "ready";
    slp_tasklet *q = SPAWN_EX(t_log, IPTR('q'), &o);
    size_t need = 0;
    CHECK_ST(slp_dump(NULL, 0, &need), SLP_E_NOMEM);
    CHECK(need > 1);
    char small[8];
    size_t need2 = 0;
    CHECK_ST(slp_dump(small, sizeof small, &need2), SLP_E_NOMEM);
    CHECK_EQ_INT((int)need2, (int)need);
    CHECK_EQ_INT((int)strlen(small), 7);
    char buf[2048];
    CHECK_ST(slp_dump(buf, sizeof buf, &need), SLP_OK);
    CHECK_EQ_INT((int)strlen(buf) + 1, (int)need);
    CHECK_MSG(strncmp(buf, "thread ", 7) == 0, "dump: %s", buf);
    CHECK_MSG(strstr(buf, "* 'main'") && strstr(buf, "running"), "dump: %s", buf);
    CHECK_MSG(strstr(buf, "'ready'") && strstr(buf, "runnable"), "dump: %s", buf);
    CHECK_MSG(strstr(buf, "'waiter'") && strstr(buf, "blocked receiving on channel"), "dump: %s", buf);
    CHECK_MSG(strstr(buf, "(balance -1)") != NULL, "dump: %s", buf);
    CHECK_ST(slp_dump(NULL, 1, &need), SLP_E_INVALID);
    CHECK_ST(slp_dump(buf, sizeof buf, NULL), SLP_E_INVALID);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    cleanup_tasklet(w);
    cleanup_tasklet(q);
    slp_channel_release(ch);
}

/* ---- debug context ---- */

TEST(debug_context_only_for_suspended_tasklets) {
    slp_channel *ch = NEW_CHANNEL();
    struct op r;
    op_init(&r, ch, SENTINEL, 0);
    slp_tasklet *w = SPAWN(op_recv, &r);
    size_t pc = 0, sp = 0, fp = 0;
    CHECK_ST(slp_tasklet_debug_context(w, &pc, &sp, &fp), SLP_E_STATE); /* never started */
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_debug_context(w, &pc, &sp, &fp), SLP_OK);
    CHECK(pc != 0 && sp != 0);
    CHECK_ST(slp_tasklet_debug_context(slp_main(), &pc, &sp, &fp), SLP_E_STATE);
    CHECK_ST(slp_tasklet_debug_context(NULL, &pc, &sp, &fp), SLP_E_INVALID);
    CHECK_ST(slp_tasklet_debug_context(w, NULL, &sp, &fp), SLP_E_INVALID);
    CHECK_ST(slp_channel_send(ch, IPTR(1)), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_ST(slp_tasklet_debug_context(w, &pc, &sp, &fp), SLP_E_STATE); /* dead */
    cleanup_tasklet(w);
    slp_channel_release(ch);
}
