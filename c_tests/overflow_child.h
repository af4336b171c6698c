/* overflow_child.h - runs an endlessly recursing tasklet named "deep_recursor" (64 KiB stack)
 * in a forked child and returns its wait status and stderr. Shared by test_stack.c (the guard
 * page stops it) and test_overflow.c (SPEC §10 scenario 24: the report). */
#ifndef SLP_TEST_OVERFLOW_CHILD_H
#define SLP_TEST_OVERFLOW_CHILD_H

#include <slp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


static volatile int g_sink;
static volatile int g_stop; /* never set: keeps the compiler from seeing endless recursion */
static inline int recurse(int n) {
    volatile char pad[512];
    pad[0] = (char)n;
    g_sink = pad[0];
    if (g_stop) return n;
    return recurse(n + 1) + pad[0];
}

static inline int32_t t_recurse(void *arg) {
    (void)arg;
    return recurse(0);
}

/* Runs `body` in a forked child with its stderr captured into `err`; returns the wait status. */
static inline int run_child(void (*body)(void), char *err, size_t errlen) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        body();
        _exit(0);
    }
    close(pipefd[1]);
    size_t used = 0;
    for (;;) {
        ssize_t r = read(pipefd[0], err + used, errlen - 1 - used);
        if (r <= 0) break;
        used += (size_t)r;
        if (used >= errlen - 1) break;
    }
    err[used] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static inline void overflow_body(void) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = "deep_recursor";
    o.stack_size = 64 * 1024;
    slp_tasklet_new_ex(t_recurse, NULL, &o, NULL);
    slp_run();
    _exit(0); /* must not get here */
}

/* Runs an endlessly recursing tasklet named "deep_recursor" (64 KiB stack) in a child;
 * returns the wait status and the child's stderr. */
static inline int overflow_child(char *err, size_t errlen) {
    return run_child(overflow_body, err, errlen);
}

#endif
