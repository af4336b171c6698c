/*
 * child_util.h - runs one scenario in a forked child, so that a crash, an abort or a hang
 * inside libslp fails that scenario alone and the other tests of the program still report.
 * Include after harness.h, common.h and thread_util.h.
 *
 *   CHECK_CHILD(label, body, arg, seconds)     body(arg) runs in a child; one check in the
 *                                              parent: the child exited 0
 *   child_run(label, body, arg, seconds, &out) the same, without the check, for callers that
 *                                              look at the child's stderr themselves
 *
 * In the child: stdout is shared with the parent (its CHECK failures print as usual, naming
 * `label` as the test), stderr goes to a pipe the parent reads, a watchdog of `seconds`
 * (scaled in slow mode) ends a hang, and the exit status is 0 only if no check failed.
 * The parent re-arms its own alarm for each child and kills a child that outlives its
 * watchdog. Verdicts are printed one per line ("    label: ok", or why not).
 */
#ifndef SLP_TEST_CHILD_UTIL_H
#define SLP_TEST_CHILD_UTIL_H

#include "harness.h"
#include "common.h"
#include "thread_util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

/* Exit status of a child whose watchdog fired. */
#define CHILD_HUNG 124

struct child_out {
    int status;      /* waitpid status */
    int killed;      /* the parent had to SIGKILL it (it outlived its own watchdog) */
    unsigned seconds;
    char err[8192];  /* the child's stderr (truncated) */
};

static void child_watchdog(int sig) {
    (void)sig;
    _exit(CHILD_HUNG);
}

static HARNESS_UNUSED unsigned child_seconds(unsigned seconds) {
    return xt_slow() ? seconds * 20 : seconds;
}

/* Runs body(arg) in a forked child; fills `out`. */
static HARNESS_UNUSED void child_run(const char *label, void (*body)(void *), void *arg, unsigned seconds,
                                     struct child_out *out) {
    memset(out, 0, sizeof *out);
    out->seconds = child_seconds(seconds);
    int pfd[2];
    if (pipe(pfd) != 0) {
        out->status = -1;
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        close(pfd[1]);
        harness_current = label;
        harness_test_failed = 0;
        signal(SIGALRM, child_watchdog);
        alarm(out->seconds);
        body(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(harness_test_failed ? 1 : 0);
    }
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        out->status = -1;
        return;
    }
    alarm(out->seconds + 30); /* the parent's harness watchdog covers this child only */
    int64_t deadline = now_ns() + (int64_t)(out->seconds + 5) * 1000000000LL;
    size_t used = 0;
    for (;;) {
        int64_t left_ms = (deadline - now_ns()) / 1000000LL;
        if (left_ms <= 0) {
            kill(pid, SIGKILL);
            out->killed = 1;
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(left_ms > 1000 ? 1000 : left_ms));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char chunk[1024];
        ssize_t n = read(pfd[0], chunk, sizeof chunk);
        if (n <= 0) break; /* EOF: the child is gone */
        size_t take = (size_t)n;
        if (take > sizeof out->err - 1 - used) take = sizeof out->err - 1 - used;
        memcpy(out->err + used, chunk, take);
        used += take;
    }
    out->err[used] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
    }
}

/* One line saying how the child ended; 1 if it exited 0. */
static HARNESS_UNUSED int child_describe(const struct child_out *o, char *buf, size_t n) {
    int st = o->status;
    if (o->status == -1) {
        snprintf(buf, n, "could not fork");
    } else if (o->killed) {
        snprintf(buf, n, "hung: still running 5 s after its %u s watchdog, killed", o->seconds);
    } else if (WIFSIGNALED(st)) {
        snprintf(buf, n, "crashed: killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_HUNG) {
        snprintf(buf, n, "hung: its %u s watchdog fired", o->seconds);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 1) {
        snprintf(buf, n, "check(s) failed in the child (FAIL lines above)");
    } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    } else {
        snprintf(buf, n, "ok");
        return 1;
    }
    return 0;
}

/* Prints the child's stderr, indented, at most `max` bytes. */
static HARNESS_UNUSED void child_print_stderr(const struct child_out *o, size_t max) {
    if (!o->err[0]) return;
    printf("      child stderr:\n");
    size_t len = strlen(o->err);
    const char *p = o->err;
    size_t shown = 0;
    while (*p && shown < max) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        printf("        | %.*s\n", (int)l, p);
        shown += l + 1;
        p += l + (nl ? 1 : 0);
    }
    if (len > max) printf("        | ... (%zu more bytes)\n", len - shown);
}

/* The verdict as one check of the parent (file:line of the caller). */
static HARNESS_UNUSED int child_verdict_at(const char *file, int line, const char *label, const struct child_out *o) {
    char why[256];
    int ok = child_describe(o, why, sizeof why);
    if (ok) {
        harness_passed++;
        printf("    %s: ok\n", label);
    } else {
        harness_fail_header(file, line);
        printf("%s: %s\n", label, why);
        child_print_stderr(o, 1500);
    }
    fflush(stdout);
    return ok;
}

#define CHECK_CHILD(label, body, arg, seconds) check_child_at(__FILE__, __LINE__, (label), (body), (arg), (seconds))
static HARNESS_UNUSED int check_child_at(const char *file, int line, const char *label, void (*body)(void *), void *arg,
                                         unsigned seconds) {
    struct child_out o;
    child_run(label, body, arg, seconds, &o);
    return child_verdict_at(file, line, label, &o);
}

#define CHILD_VERDICT(label, out) child_verdict_at(__FILE__, __LINE__, (label), (out))

#endif /* SLP_TEST_CHILD_UTIL_H */
