/*
 * harness.h - the tiny test harness shared by the libslp C tests (one program per area).
 *
 *   #include "harness.h"          (first: it sets the feature macros)
 *   TEST(name) { CHECK(cond); CHECK_EQ_INT(a, b); CHECK_ST(call(), SLP_OK); ... }
 *
 * Tests register themselves (GCC/Clang constructor) and run in source order. A failed check
 * prints file:line, the test, the expression, both values and slp_last_error(), and the test
 * goes on. After every test the harness checks that the test left the thread's scheduler clean
 * (main current, slp_runcount() == 1) and drains it if not, so tests stay independent.
 *
 * main() (defined here unless HARNESS_NO_MAIN) runs all tests, or only those whose name
 * contains one of argv[1..]; its last line is exactly "N passed, N failed" (N = checks) and it
 * returns non-zero if any check failed. A per-test alarm() watchdog (SLP_TEST_TIMEOUT seconds,
 * default 30; raise it under valgrind) turns a hang into a failure.
 */
#ifndef SLP_TEST_HARNESS_H
#define SLP_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slp.h"

#define HARNESS_UNUSED __attribute__((unused))

typedef void (*harness_fn)(void);

struct harness_test {
    const char *name;
    harness_fn fn;
    int line;
};

#define HARNESS_MAX_TESTS 512
static struct harness_test harness_tests[HARNESS_MAX_TESTS];
static int harness_ntests;
static volatile long harness_passed;
static volatile long harness_failed;
static const char *volatile harness_current = "(none)";
static long harness_test_failed; /* failures in the current test */

static HARNESS_UNUSED void harness_register(const char *name, harness_fn fn, int line) {
    if (harness_ntests >= HARNESS_MAX_TESTS) {
        fprintf(stderr, "harness: too many tests\n");
        abort();
    }
    harness_tests[harness_ntests].name = name;
    harness_tests[harness_ntests].fn = fn;
    harness_tests[harness_ntests].line = line;
    harness_ntests++;
}

#define TEST(name)                                                                      \
    static void name(void);                                                             \
    __attribute__((constructor)) static void harness_reg_##name(void) {                 \
        harness_register(#name, name, __LINE__);                                        \
    }                                                                                   \
    static void name(void)

static HARNESS_UNUSED void harness_fail_header(const char *file, int line) {
    harness_failed++;
    harness_test_failed++;
    printf("FAIL %s:%d [%s] ", file, line, harness_current);
}

/* slp_last_error() is read right after the failing expression was evaluated. */
static HARNESS_UNUSED void harness_fail_tail(const char *last_error) {
    printf("  (slp_last_error: \"%s\")\n", last_error ? last_error : "<NULL>");
    fflush(stdout);
}

static HARNESS_UNUSED void harness_copy_err(char *buf, size_t n) {
    const char *e = slp_last_error();
    snprintf(buf, n, "%s", e ? e : "<NULL>");
}

/* Counts one check. On failure: prints file:line, then runs `what` (a statement printing the
 * failed check), then slp_last_error() as it was when the check ran. */
#define HARNESS_RESULT_(ok, what)                                                       \
    do {                                                                                \
        if (ok) {                                                                       \
            harness_passed++;                                                           \
        } else {                                                                        \
            char harness_err_[512];                                                     \
            harness_copy_err(harness_err_, sizeof harness_err_);                        \
            harness_fail_header(__FILE__, __LINE__);                                    \
            what;                                                                       \
            harness_fail_tail(harness_err_);                                            \
        }                                                                               \
    } while (0)

#define CHECK(cond) HARNESS_RESULT_(cond, printf("CHECK(%s)", #cond))

/* Like CHECK but with an explanation printed on failure (printf-style). */
#define CHECK_MSG(cond, ...) \
    HARNESS_RESULT_(cond, (printf("CHECK(%s): ", #cond), printf(__VA_ARGS__)))

#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long harness_a_ = (long long)(a);                                          \
        long long harness_b_ = (long long)(b);                                          \
        HARNESS_RESULT_(harness_a_ == harness_b_,                                       \
                        printf("CHECK_EQ_INT(%s, %s): %lld != %lld", #a, #b, harness_a_, \
                               harness_b_));                                            \
    } while (0)

/* Status comparison: like CHECK_EQ_INT, printing the status names too. */
#define CHECK_ST(a, b)                                                                  \
    do {                                                                                \
        long long harness_a_ = (long long)(a);                                          \
        long long harness_b_ = (long long)(b);                                          \
        HARNESS_RESULT_(harness_a_ == harness_b_,                                       \
                        printf("CHECK_ST(%s, %s): got %lld (%s), expected %lld (%s)", #a, \
                               #b, harness_a_, harness_status_name(harness_a_),          \
                               harness_b_, harness_status_name(harness_b_)));           \
    } while (0)

#define CHECK_EQ_PTR(a, b)                                                              \
    do {                                                                                \
        const void *harness_a_ = (const void *)(a);                                     \
        const void *harness_b_ = (const void *)(b);                                     \
        HARNESS_RESULT_(harness_a_ == harness_b_,                                       \
                        printf("CHECK_EQ_PTR(%s, %s): %p != %p", #a, #b, harness_a_,     \
                               harness_b_));                                            \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                              \
    do {                                                                                \
        const char *harness_a_ = (a);                                                   \
        const char *harness_b_ = (b);                                                   \
        HARNESS_RESULT_(harness_a_ && harness_b_ && strcmp(harness_a_, harness_b_) == 0, \
                        printf("CHECK_EQ_STR(%s, %s): \"%s\" != \"%s\"", #a, #b,         \
                               harness_a_ ? harness_a_ : "<NULL>",                       \
                               harness_b_ ? harness_b_ : "<NULL>"));                    \
    } while (0)

/* A failed call must leave a non-empty message in slp_last_error(). */
#define CHECK_LAST_ERROR_SET()                                                          \
    do {                                                                                \
        const char *harness_e_ = slp_last_error();                                      \
        CHECK_MSG(harness_e_ != NULL && harness_e_[0] != '\0',                           \
                  "slp_last_error() is empty after a failed call");                     \
    } while (0)

static HARNESS_UNUSED const char *harness_status_name(long long s) {
    static const char *names[] = {
        "SLP_OK",           "SLP_E_INVALID",     "SLP_E_NOMEM",       "SLP_E_STATE",
        "SLP_E_WRONG_THREAD", "SLP_E_DEADLOCK",  "SLP_E_CLOSED",      "SLP_E_KILLED",
        "SLP_E_TIMEOUT",    "SLP_E_WOULD_BLOCK", "SLP_E_SWITCH_TRAP", "SLP_E_DEAD",
        "SLP_E_PANIC",
    };
    if (s <= 0 && s >= -12) return names[-s];
    if (s > 0) return "user code";
    return "unknown";
}

/* ---- event log: tasklets append characters, tests compare the whole string ---- */
static char g_log[8192];
static size_t g_log_len;

static HARNESS_UNUSED void log_reset(void) {
    g_log_len = 0;
    g_log[0] = '\0';
}

static HARNESS_UNUSED void log_c(char c) {
    if (g_log_len + 1 < sizeof g_log) {
        g_log[g_log_len++] = c;
        g_log[g_log_len] = '\0';
    }
}

static HARNESS_UNUSED void log_s(const char *s) {
    while (*s) log_c(*s++);
}

#define CHECK_LOG(expected) CHECK_EQ_STR(g_log, (expected))

/* ---- small helpers ---- */

/* arg_free callback for an `int` counter: counts how many times it ran. */
static HARNESS_UNUSED void count_free(void *arg) {
    if (arg) (*(int *)arg)++;
}

static HARNESS_UNUSED int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- watchdog ---- */
static unsigned harness_timeout = 30;

static void harness_write_str(const char *s) {
    ssize_t r = write(1, s, strlen(s));
    (void)r;
}

static void harness_write_long(long v) {
    char buf[32];
    int i = 31;
    int neg = v < 0;
    unsigned long u = neg ? (unsigned long)(-v) : (unsigned long)v;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u && i > 1);
    if (neg) buf[--i] = '-';
    harness_write_str(buf + i);
}

static void harness_alarm(int sig) {
    (void)sig;
    harness_write_str("\nFAIL [");
    harness_write_str(harness_current);
    harness_write_str("] watchdog: test did not finish in time (hang?)\n");
    harness_write_long(harness_passed);
    harness_write_str(" passed, ");
    harness_write_long(harness_failed + 1);
    harness_write_str(" failed\n");
    _exit(2);
}

/* After every test: main must be current and alone in the run queue. */
static HARNESS_UNUSED void harness_after_test(void) {
    if (slp_current() != slp_main()) {
        harness_fail_header(__FILE__, __LINE__);
        printf("test ended with a non-main tasklet current\n");
        fflush(stdout);
        return;
    }
    int32_t rc = slp_runcount();
    if (rc != 1) {
        harness_fail_header(__FILE__, __LINE__);
        printf("test left %d runnable tasklet(s) besides main; draining with slp_run()\n",
               (int)rc - 1);
        fflush(stdout);
        for (int i = 0; i < 100 && slp_runcount() != 1; i++) slp_run();
    }
    if (slp_switch_trap(0) != 0) {
        harness_fail_header(__FILE__, __LINE__);
        printf("test left switch_trap set\n");
        fflush(stdout);
        while (slp_switch_trap(0) > 0) slp_switch_trap(-1);
    }
}

static HARNESS_UNUSED int harness_selected(int argc, char **argv, const char *name) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

static HARNESS_UNUSED int harness_main(int argc, char **argv) {
    const char *to = getenv("SLP_TEST_TIMEOUT");
    if (to && atoi(to) > 0) harness_timeout = (unsigned)atoi(to);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, harness_alarm);

    /* constructors may run in any order: sort by source line */
    for (int i = 1; i < harness_ntests; i++) {
        struct harness_test t = harness_tests[i];
        int j = i - 1;
        while (j >= 0 && harness_tests[j].line > t.line) {
            harness_tests[j + 1] = harness_tests[j];
            j--;
        }
        harness_tests[j + 1] = t;
    }

    int tests_run = 0, tests_failed = 0;
    for (int i = 0; i < harness_ntests; i++) {
        if (!harness_selected(argc, argv, harness_tests[i].name)) continue;
        harness_current = harness_tests[i].name;
        harness_test_failed = 0;
        printf("[ RUN  ] %s\n", harness_current);
        alarm(harness_timeout);
        harness_tests[i].fn();
        harness_after_test();
        alarm(0);
        tests_run++;
        if (harness_test_failed) tests_failed++;
        printf("[ %s ] %s\n", harness_test_failed ? "FAIL" : " OK ", harness_current);
    }
    harness_current = "(none)";
    printf("tests: %d run, %d failed\n", tests_run, tests_failed);
    printf("%ld passed, %ld failed\n", (long)harness_passed, (long)harness_failed);
    fflush(stdout);
    return harness_failed ? 1 : 0;
}

#ifndef HARNESS_NO_MAIN
int main(int argc, char **argv) { return harness_main(argc, argv); }
#endif

#endif /* SLP_TEST_HARNESS_H */
