/* test_stack.c - stacks: per-tasklet stack_size, default size and pool settings, pool reuse,
 * guard page under every stack (SPEC §1, §8, issue "Stacks"). Scenario 24 (the overflow
 * report) is in test_overflow.c. */
#include "harness.h"
#include "common.h"

#include <sys/wait.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define MS 1000000LL

static int g_ran;

static int32_t t_big_frame(void *arg) {
    size_t n = (size_t)(uintptr_t)arg;
    volatile char *buf = __builtin_alloca(n);
    /* top down, so that a too-small stack hits its guard page first */
    for (size_t i = n; i-- > 0;)
        if (i % 1024 == 0) buf[i] = (char)i;
    g_ran++;
    size_t mid = (n / 2) & ~(size_t)1023;
    return buf[mid] == (char)mid ? 0 : 1;
}

static int32_t t_nop(void *arg) {
    (void)arg;
    g_ran++;
    return 0;
}

TEST(default_stack_and_pool_settings) {
    CHECK_EQ_INT(slp_default_stack_size(), 256 * 1024);
    CHECK_ST(slp_set_default_stack_size(8 * 1024), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_set_default_stack_size(0), SLP_E_INVALID);
    CHECK_ST(slp_set_default_stack_size((size_t)2 << 30), SLP_E_INVALID);
    CHECK_EQ_INT(slp_default_stack_size(), 256 * 1024);
    CHECK_ST(slp_set_default_stack_size(100000), SLP_OK);
    size_t sz = slp_default_stack_size();
    long page = sysconf(_SC_PAGESIZE);
    CHECK(sz >= 100000);
    CHECK(sz % (size_t)page == 0);
    CHECK(sz < 100000 + (size_t)page);
    g_ran = 0;
    slp_tasklet *t = SPAWN(t_nop, NULL);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    slp_tasklet_release(t);
    CHECK_ST(slp_set_default_stack_size(256 * 1024), SLP_OK);
    CHECK_EQ_INT(slp_default_stack_size(), 256 * 1024);

    CHECK(slp_stack_pool_size() == SIZE_MAX); /* default: no cap, the pool follows demand */
    CHECK_ST(slp_set_stack_pool_size(3), SLP_OK);
    CHECK_EQ_INT(slp_stack_pool_size(), 3);
    CHECK_ST(slp_set_stack_pool_size(0), SLP_OK); /* no pooling at all is allowed */
    g_ran = 0;
    for (int i = 0; i < 10; i++) CHECK_ST(slp_tasklet_new(t_nop, NULL, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 10);
    CHECK_ST(slp_set_stack_pool_size(SIZE_MAX), SLP_OK);
    CHECK(slp_stack_pool_size() == SIZE_MAX);
}

static uint64_t pooled(void) {
    slp_counters c;
    c.struct_size = sizeof c;
    if (slp_counters_get(&c) != SLP_OK) return UINT64_MAX;
    return c.stacks_pooled;
}

/* a wave of n tasklets that all block, then all end (a game's wave of entities) */
static slp_channel *g_wave_ch;
static int32_t t_wave(void *arg) {
    (void)arg;
    void *v;
    if (slp_channel_receive(g_wave_ch, &v) != SLP_OK) return 1;
    g_ran++;
    return 0;
}

static void wave(int n) {
    CHECK_ST(slp_channel_new(&g_wave_ch), SLP_OK);
    g_ran = 0;
    for (int i = 0; i < n; i++) CHECK_ST(slp_tasklet_new(t_wave, NULL, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_channel_balance(g_wave_ch), -n); /* all n alive at once */
    for (int i = 0; i < n; i++) CHECK_ST(slp_channel_send(g_wave_ch, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, n);
    slp_channel_release(g_wave_ch);
}

TEST(pool_keeps_the_peak_of_live_stacks) {
    size_t released = 12345;
    CHECK_ST(slp_stack_pool_trim(&released), SLP_OK);
    CHECK_EQ_INT(pooled(), 0);
    wave(1000);
    uint64_t after1 = pooled();
    CHECK_MSG(after1 >= 1000, "pooled after a wave of 1000: %llu", (unsigned long long)after1);
    /* the same wave again maps nothing: every stack comes from the pool */
    wave(1000);
    CHECK_EQ_INT(pooled(), after1);
    wave(300);
    CHECK_EQ_INT(pooled(), after1);
    /* a bigger wave maps only the difference, then keeps all of it */
    wave(1500);
    CHECK(pooled() >= 1500);
    CHECK_ST(slp_stack_pool_trim(&released), SLP_OK);
    CHECK(released >= 1500);
    CHECK_EQ_INT(pooled(), 0);
    CHECK_ST(slp_stack_pool_trim(NULL), SLP_OK); /* nothing left: fine, out may be NULL */
    wave(10); /* and creation maps again */
    CHECK(pooled() >= 10);
}

TEST(pool_cap_bounds_idle_stacks) {
    CHECK_ST(slp_set_stack_pool_size(10), SLP_OK);
    wave(100);
    CHECK(pooled() <= 10);
    CHECK_ST(slp_set_stack_pool_size(SIZE_MAX), SLP_OK);
    wave(100);
    CHECK(pooled() >= 100);
    /* lowering the cap shrinks the calling thread's pool at once */
    CHECK_ST(slp_set_stack_pool_size(5), SLP_OK);
    CHECK(pooled() <= 5);
    CHECK_ST(slp_set_stack_pool_size(SIZE_MAX), SLP_OK);
}

/* The pool gives idle stacks back when demand falls, while the thread sleeps in libslp:
 * pages after one idle second, the mappings after two. Real time: about 3 s. */
TEST(pool_decays_while_the_thread_sleeps) {
    wave(200);
    CHECK(pooled() >= 200);
    int64_t t0 = now_ns();
    while (pooled() > 0 && now_ns() - t0 < 20000 * MS)
        CHECK_ST(slp_run_wait(500 * MS), SLP_E_TIMEOUT);
    CHECK_EQ_INT(pooled(), 0);
    CHECK_MSG(now_ns() - t0 >= 1000 * MS, "gave the stacks back after %lld ms",
              (long long)((now_ns() - t0) / MS));
    wave(200); /* stacks whose pages were given back, or new ones, work alike */
}

TEST(option_stack_size_out_of_range_is_invalid) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    slp_tasklet *t = (slp_tasklet *)SENTINEL;
    o.stack_size = 1024; /* < 16 KiB */
    CHECK_ST(slp_tasklet_new_ex(t_nop, NULL, &o, &t), SLP_E_INVALID);
    o.stack_size = (size_t)4 << 30; /* > 1 GiB */
    CHECK_ST(slp_tasklet_new_ex(t_nop, NULL, &o, &t), SLP_E_INVALID);
    CHECK_EQ_PTR(t, SENTINEL);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(pool_reuse_many_sequential_tasklets) {
    g_ran = 0;
    for (int round = 0; round < 2000; round++) {
        slp_tasklet *t = NULL;
        if (slp_tasklet_new(t_nop, NULL, &t) != SLP_OK) break;
        slp_run();
        slp_tasklet_release(t);
    }
    CHECK_EQ_INT(g_ran, 2000);
}

TEST(mixed_stack_sizes) {
    size_t sizes[] = {16 * 1024, 64 * 1024, 100 * 1000, 1 << 20, 256 * 1024};
    g_ran = 0;
    slp_tasklet *ts[5];
    for (int i = 0; i < 5; i++) {
        slp_tasklet_options o;
        slp_tasklet_options_init(&o);
        o.stack_size = sizes[i];
        /* use about half of it */
        ts[i] = SPAWN_EX(t_big_frame, (void *)(uintptr_t)(sizes[i] / 2), &o);
    }
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 5);
    for (int i = 0; i < 5; i++) slp_tasklet_release(ts[i]);
}

TEST(stack_size_option_is_honoured) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.stack_size = 2u << 20;
    g_ran = 0;
    slp_tasklet *t = SPAWN_EX(t_big_frame, (void *)(uintptr_t)(1536u * 1024u), &o);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 1);
    slp_tasklet_release(t);
}

#include "overflow_child.h"

TEST(overflow_hits_guard_page) {
    if (RUNNING_ON_VALGRIND) {
        printf("  (skipped under valgrind)\n");
        return;
    }
    char err[4096];
    int status = overflow_child(err, sizeof err);
    CHECK_MSG(WIFSIGNALED(status), "child did not die from a signal (status 0x%x)", status);
    if (WIFSIGNALED(status))
        CHECK_MSG(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT || WTERMSIG(status) == SIGBUS,
                  "child died from signal %d", WTERMSIG(status));
}

