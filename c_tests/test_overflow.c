/* test_overflow.c - SPEC §10 scenario 24: a tasklet that overflows its stack is reported by
 * name ("stack overflow" on stderr) and the process aborts with SIGABRT, not SIGSEGV.
 * Registered with CTest as DISABLED until the stack-overflow handler lands (reliability issue). */
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

#include "overflow_child.h"
#include <stdlib.h>

/* §10 scenario 24: stderr names the tasklet and "stack overflow", SIGABRT, not SIGSEGV. */
TEST(s24_overflow_reports_tasklet_and_aborts) {
    if (RUNNING_ON_VALGRIND) {
        printf("  (skipped under valgrind)\n");
        return;
    }
    char err[4096];
    int status = overflow_child(err, sizeof err);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child status 0x%x (signal %d), expected SIGABRT",
              status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK_MSG(strstr(err, "deep_recursor") != NULL, "stderr does not name the tasklet: \"%s\"", err);
    CHECK_MSG(strstr(err, "stack overflow") != NULL, "stderr does not say stack overflow: \"%s\"", err);
}

static volatile int *volatile g_null;

/* The NULL stores below are the point (a fault that is not a stack overflow): keep UBSan's
 * null check (c_tests/asan.sh) from reporting them before they fault. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define NO_SANITIZE_NULL __attribute__((no_sanitize("null")))
#endif
#endif
#ifndef NO_SANITIZE_NULL
#define NO_SANITIZE_NULL
#endif

NO_SANITIZE_NULL static void null_deref_after_init(void) {
    (void)slp_runcount(); /* creates the scheduler: libslp's fault handler is installed */
    *g_null = 1;
}

/* A fault that is not a tasklet stack overflow keeps its usual fate: SIGSEGV, no report. */
TEST(other_faults_still_segv) {
    if (RUNNING_ON_VALGRIND) {
        printf("  (skipped under valgrind)\n");
        return;
    }
    char err[4096];
    int status = run_child(null_deref_after_init, err, sizeof err);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "child status 0x%x, expected SIGSEGV", status);
    CHECK_MSG(strstr(err, "stack overflow") == NULL, "unexpected report: \"%s\"", err);
}

static void host_handler(int sig) {
    (void)sig;
    static const char m[] = "host handler ran\n";
    (void)!write(2, m, sizeof m - 1);
    _exit(42);
}

/* Runs before main (and before anything touches libslp) when the test re-executes itself
 * with SLP_TEST_CHILD=host_handler: the host installs its SIGSEGV handler first, then libslp
 * initialises, then a NULL dereference happens. */
NO_SANITIZE_NULL __attribute__((constructor)) static void host_handler_child(void) {
    const char *mode = getenv("SLP_TEST_CHILD");
    if (!mode || strcmp(mode, "host_handler") != 0) return;
    signal(SIGSEGV, host_handler);
    (void)slp_runcount(); /* libslp installs its handler now, over the host's */
    *g_null = 1;
    _exit(0); /* not reached */
}

static void reexec_host_handler_child(void) {
    setenv("SLP_TEST_CHILD", "host_handler", 1);
    execl("/proc/self/exe", "test_overflow", (char *)NULL);
    _exit(127);
}

/* libslp chains to the handler that was installed before it (in a fresh process). */
TEST(host_handler_is_chained) {
    if (RUNNING_ON_VALGRIND) {
        printf("  (skipped under valgrind)\n");
        return;
    }
    char err[4096];
    int status = run_child(reexec_host_handler_child, err, sizeof err);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 42, "child status 0x%x, expected exit 42", status);
    CHECK_MSG(strstr(err, "host handler ran") != NULL, "stderr: \"%s\"", err);
}
