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

    CHECK_EQ_INT(slp_stack_pool_size(), 64);
    CHECK_ST(slp_set_stack_pool_size(3), SLP_OK);
    CHECK_EQ_INT(slp_stack_pool_size(), 3);
    CHECK_ST(slp_set_stack_pool_size(0), SLP_OK); /* no pooling at all is allowed */
    g_ran = 0;
    for (int i = 0; i < 10; i++) CHECK_ST(slp_tasklet_new(t_nop, NULL, NULL), SLP_OK);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_ran, 10);
    CHECK_ST(slp_set_stack_pool_size(64), SLP_OK);
    CHECK_EQ_INT(slp_stack_pool_size(), 64);
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

