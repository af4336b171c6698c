/*
 * log_offload.c - does moving logging off the main thread make the main loop faster?
 *
 * mo-threads says: do not write log files on the thread that matters; hand each line to a
 * logging thread and let it do the I/O. This program measures that claim on a game-style main
 * loop. Every step does a fixed amount of real work (64-bit FNV-1a over a 64 KiB buffer that
 * changes every step) and logs one line about it. The same loop runs three times, each time
 * writing to its own file in the output directory:
 *
 *   work only      no logging at all: the cost of the work itself (the baseline)
 *   (A) sync       fwrite + fflush of each line on the main thread: log_sync.txt
 *   (B) offload    each line is malloc'd and handed by pointer over a buffered channel to a
 *                  logging thread (slp_thread_new), which writes what has arrived and flushes
 *                  once per batch: log_offload.txt
 *
 *   main thread                        channel                   "logger" thread
 *   step: hash 64 KiB,    -- char* --> [ capacity 1024 ] --> slp_select(receive | please_stop)
 *         format a line                                      take what else is there (polls),
 *                                                            fwrite each, fflush once, free
 *
 * It prints the wall time of each loop and the ratio sync / offload. The two log files must
 * be identical: the lines carry no time stamps (a real logger would add them), only the step
 * number and the hash, so the output can be checked (check_log_offload.sh does).
 *
 * What it shows:
 *   - a toolkit thread          slp_thread_new starts the logger; its function gets the
 *                 thread's please_stop signal and returns its result (0, or an errno);
 *   - a worker loop             slp_select over the work channel and please_stop, the receive
 *                 case first: while lines are waiting they win over the stop request;
 *   - batching                  after a blocking select delivers one line, the logger polls
 *                 the channel (slp_channel_receive_timeout with 0) for the rest that arrived,
 *                 writes them all and flushes once: a busy main thread costs one flush per
 *                 batch instead of one per line;
 *   - ownership through channels a line is malloc'd by main and freed by the logger: the
 *                 pointer is handed over, the text is never copied again;
 *   - back-pressure             the channel holds 1024 lines; when the logger falls that far
 *                 behind, main's send blocks until it catches up (counted and printed)
 *                 instead of the queue growing without bound;
 *   - orderly shutdown          slp_shutdown sets please_stop on every toolkit thread and
 *                 joins them; the logger drains the channel before it returns, so no line
 *                 sent before the shutdown is lost; slp_thread_join then gives its result.
 *
 * The verdict depends on the machine: the offloaded loop saves a write() system call per step
 * but pays a malloc, a channel send and, whenever the logger sleeps, a cross-thread wake-up.
 * On a loaded machine with no spare core the logger competes with the main loop for the same
 * CPU. Measure before you believe either way.
 *
 * Usage:  log_offload [STEPS [DIRECTORY]]     (defaults: 2000 steps, the current directory)
 * Output: three timing lines, the ratio, the logger's batch statistics (stdout); the files
 *         DIRECTORY/log_sync.txt and DIRECTORY/log_offload.txt (STEPS lines each).
 * Exit status: 0, or 1 if something failed (a file could not be written, the logger failed).
 *
 * Build and run (from the repository root, after `cargo build --release`; the library's
 * SONAME is libslp.so.0, so `ln -sf libslp.so target/release/libslp.so.0` once):
 *   cc -O2 -Iinclude examples/log_offload.c -Ltarget/release -lslp -o log_offload
 *   LD_LIBRARY_PATH=target/release ./log_offload 20000 /tmp
 * CTest runs it with a small size and runs check_log_offload.sh, which checks that both log
 * files hold every line, in order. It never checks the speed-up: that is measured, not
 * promised.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime() */

#include <slp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- parameters ------------------------------------------------------------------------ */

#define DEFAULT_STEPS    2000          /* small enough for CI                               */
#define WORK_BYTES       (64 * 1024)   /* hashed per step                                   */
#define CHANNEL_CAPACITY 1024          /* lines waiting for the logger, at most             */
#define BATCH_MAX        CHANNEL_CAPACITY /* lines the logger writes per flush, at most     */
#define LINE_MAX_LEN     96
#define FILE_BUFFER      (64 * 1024)   /* stdio buffer of each log file                     */
#define SHUTDOWN_NS      INT64_C(10000000000) /* slp_shutdown's deadline: 10 s              */

/* ---- error handling -------------------------------------------------------------------- */

static void report(const char *who, const char *what, slp_status st)
{
    fprintf(stderr, "%s: %s failed: %s (%d): %s\n", who, what, slp_status_str(st), (int)st,
            slp_last_error());
}

#define CHECK(who, call)                                                                   \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK) {                                                               \
            report((who), #call, st_);                                                     \
            exit(EXIT_FAILURE);                                                            \
        }                                                                                  \
    } while (0)

/* ---- the work: 64-bit FNV-1a ----------------------------------------------------------- */

#define FNV_OFFSET_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME        UINT64_C(0x100000001b3)

static uint64_t fnv1a64(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* One step of "game" work: change a few bytes of the buffer (so no step repeats the last
 * one's input) and hash all of it. Every run of the loop starts from the same buffer, so
 * every run computes the same hashes and logs the same lines. */
static uint64_t do_step(unsigned char *buf, uint64_t step)
{
    size_t at = (size_t)(step * 4099u) % (WORK_BYTES - sizeof step);
    memcpy(buf + at, &step, sizeof step);
    return fnv1a64(FNV_OFFSET_BASIS, buf, WORK_BYTES);
}

static void fill_buffer(unsigned char *buf)
{
    for (size_t i = 0; i < WORK_BYTES; i++)
        buf[i] = (unsigned char)(i * 31u + 7u);
}

static int format_line(char *out, size_t size, uint64_t step, uint64_t h)
{
    return snprintf(out, size, "step %08" PRIu64 " fnv1a64 %016" PRIx64 "\n", step, h);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static FILE *open_log(const char *dir, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "log_offload: cannot create %s: %s\n", path, strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IOFBF, FILE_BUFFER);
    return f;
}

/* ---- the baseline: the work alone -------------------------------------------------------- */

static uint64_t run_work_only(unsigned char *buf, uint64_t steps)
{
    uint64_t sum = 0;
    fill_buffer(buf);
    for (uint64_t s = 0; s < steps; s++)
        sum ^= do_step(buf, s);
    return sum; /* printed, so that the compiler cannot drop the loop */
}

/* ---- (A) synchronous logging ------------------------------------------------------------- */

/* The usual way: format, fwrite, fflush - the flush is a write() system call on every step,
 * so the line is in the kernel (and survives a crash of the program) before the step ends. */
static int run_sync(unsigned char *buf, uint64_t steps, FILE *f)
{
    char line[LINE_MAX_LEN];
    fill_buffer(buf);
    for (uint64_t s = 0; s < steps; s++) {
        uint64_t h = do_step(buf, s);
        int n = format_line(line, sizeof line, s, h);
        if (fwrite(line, 1, (size_t)n, f) != (size_t)n || fflush(f) != 0)
            return errno ? errno : EIO;
    }
    return 0;
}

/* ---- (B) the logging thread -------------------------------------------------------------- */

typedef struct logger {
    slp_channel *lines; /* char* (malloc'd, NUL-terminated), main -> logger             */
    FILE *file;
    /* Written by the logger thread only; main reads them after slp_thread_join (the join
     * waits for the thread to end, which orders its writes before main's reads). */
    uint64_t written;
    uint64_t batches;
    uint64_t largest_batch;
    uint64_t drained_at_stop; /* lines still queued when please_stop was seen             */
} logger;

/* Writes the batch, frees its lines, flushes once. Returns 0 or an errno. */
static int write_batch(logger *lg, char **batch, size_t n, int err)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(batch[i]);
        if (!err && fwrite(batch[i], 1, len, lg->file) != len)
            err = errno ? errno : EIO;
        free(batch[i]);
    }
    if (!err && fflush(lg->file) != 0)
        err = errno ? errno : EIO;
    if (n) {
        lg->written += n;
        lg->batches++;
        if (n > lg->largest_batch)
            lg->largest_batch = n;
    }
    return err;
}

/* Takes whatever else is waiting in the channel, without blocking, up to the batch size. */
static size_t take_waiting(logger *lg, char **batch, size_t n)
{
    while (n < BATCH_MAX) {
        void *v = NULL;
        if (slp_channel_receive_timeout(lg->lines, &v, 0) != SLP_OK)
            break; /* SLP_E_TIMEOUT: nothing more right now */
        batch[n++] = (char *)v;
    }
    return n;
}

/* The logger's function (slp_thread_fn). It runs on its own OS thread, started by
 * slp_thread_new, until please_stop goes; then it drains the channel and returns. Its return
 * value is the thread's result: 0, or the errno of the first failed write (the logger keeps
 * receiving - and freeing - lines after a failure, so main is never stuck on a full channel). */
static int32_t logger_thread(void *arg, slp_signal *please_stop)
{
    logger *lg = (logger *)arg;
    char **batch = (char **)malloc(BATCH_MAX * sizeof *batch);
    if (!batch)
        return ENOMEM;
    int err = 0;

    /* The worker loop: the receive case comes first, so while lines are waiting they are
     * taken even after please_stop went. slp_select blocks this thread (it sleeps, no
     * polling) until a line arrives or please_stop goes. */
    slp_select_case cases[2] = {
        {SLP_SELECT_RECEIVE, lg->lines, NULL, NULL},
        {SLP_SELECT_SIGNAL, NULL, please_stop, NULL},
    };
    for (;;) {
        size_t which = 0;
        cases[0].value = NULL;
        slp_status st = slp_select(cases, 2, -1, &which);
        if (st != SLP_OK) {
            report("logger", "slp_select", st);
            if (!err)
                err = EIO;
            break;
        }
        if (which == 1)
            break; /* please_stop */
        batch[0] = (char *)cases[0].value; /* ours now */
        size_t n = take_waiting(lg, batch, 1);
        err = write_batch(lg, batch, n, err);
    }

    /* please_stop went (or select failed): the producer has sent its last line before it
     * asked us to stop, so everything it sent is in the channel now. Take it all. */
    for (;;) {
        size_t n = take_waiting(lg, batch, 0);
        if (n == 0)
            break;
        lg->drained_at_stop += n;
        err = write_batch(lg, batch, n, err);
    }
    free(batch);
    return err;
}

/* The main loop of (B). Each line is malloc'd and handed over by pointer: after the send it
 * belongs to the logger. A send first polls; if the channel is full (the logger is 1024
 * lines behind) it counts that and then blocks until the logger takes a line. */
static int run_offload(unsigned char *buf, uint64_t steps, slp_channel *lines,
                       uint64_t *full_waits)
{
    char line[LINE_MAX_LEN];
    fill_buffer(buf);
    for (uint64_t s = 0; s < steps; s++) {
        uint64_t h = do_step(buf, s);
        int n = format_line(line, sizeof line, s, h);
        char *copy = (char *)malloc((size_t)n + 1);
        if (!copy)
            return ENOMEM;
        memcpy(copy, line, (size_t)n + 1);
        slp_status st = slp_channel_send_timeout(lines, copy, 0);
        if (st == SLP_E_TIMEOUT) {
            (*full_waits)++;
            st = slp_channel_send(lines, copy);
        }
        if (st != SLP_OK) {
            report("main", "slp_channel_send", st);
            free(copy); /* not sent: still ours */
            return EIO;
        }
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    uint64_t steps = DEFAULT_STEPS;
    const char *dir = ".";
    if (argc > 1) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (errno || !end || *end || argv[1][0] == '-' || argv[1][0] == '\0') {
            fprintf(stderr, "usage: log_offload [STEPS [DIRECTORY]]\n");
            return EXIT_FAILURE;
        }
        steps = (uint64_t)v;
    }
    if (argc > 2)
        dir = argv[2];
    if (argc > 3) {
        fprintf(stderr, "usage: log_offload [STEPS [DIRECTORY]]\n");
        return EXIT_FAILURE;
    }

    unsigned char *buf = (unsigned char *)malloc(WORK_BYTES);
    if (!buf)
        return EXIT_FAILURE;
    char sync_path[4096], offload_path[4096];
    FILE *sync_file = open_log(dir, "log_sync.txt", sync_path, sizeof sync_path);
    FILE *offload_file = open_log(dir, "log_offload.txt", offload_path, sizeof offload_path);
    if (!sync_file || !offload_file)
        return EXIT_FAILURE;

    printf("log_offload: %" PRIu64 " steps, FNV-1a over %d KiB per step, one log line per "
           "step\n", steps, WORK_BYTES / 1024);

    /* The baseline, which also warms the caches for the two measured runs. */
    double t0 = now_s();
    uint64_t sum = run_work_only(buf, steps);
    double t_work = now_s() - t0;

    /* (A) */
    t0 = now_s();
    int err = run_sync(buf, steps, sync_file);
    double t_sync = now_s() - t0;
    if (err) {
        fprintf(stderr, "log_offload: writing %s: %s\n", sync_path, strerror(err));
        return EXIT_FAILURE;
    }
    if (fclose(sync_file) != 0) {
        fprintf(stderr, "log_offload: closing %s: %s\n", sync_path, strerror(errno));
        return EXIT_FAILURE;
    }

    /* (B) Register the main thread with libslp before the logger exists: the logger's
     * select waits for main's lines, and libslp only counts a thread that participates as
     * one that could still send them (see "Deadlock detection" in slp.h). */
    CHECK("main", slp_thread_register("main"));
    logger lg;
    memset(&lg, 0, sizeof lg);
    lg.file = offload_file;
    slp_channel_options copts;
    slp_channel_options_init(&copts);
    copts.capacity = CHANNEL_CAPACITY;
    CHECK("main", slp_channel_new_ex(&copts, &lg.lines));
    slp_thread *th = NULL;
    CHECK("main", slp_thread_new("logger", logger_thread, &lg, &th));

    uint64_t full_waits = 0;
    t0 = now_s();
    err = run_offload(buf, steps, lg.lines, &full_waits);
    double t_offload = now_s() - t0;

    /* Shut down: please_stop to the logger (and any other toolkit thread), then join them
     * all. The logger drains the channel first, so this is also "until every line is
     * written". Give it a deadline, as a game should (a stuck thread must not hang the exit):
     * with libslp 0.1.0 it is also needed, since a thread that participates in libslp (main
     * does, it registered) waiting WITHOUT a limit for a toolkit thread to stop - in
     * slp_shutdown(-1) or slp_thread_join(th, -1) - can get a false SLP_E_DEADLOCK when that
     * thread's scheduler goes away just before its stopped signal goes. */
    slp_status sst = slp_shutdown(SHUTDOWN_NS);
    double t_offload_all = now_s() - t0;
    if (sst != SLP_OK)
        report("main", "slp_shutdown", sst);
    int32_t result = -1;
    slp_status jst = slp_thread_join(th, 0, &result); /* stopped already: does not wait */
    if (jst != SLP_OK) {
        /* Still running (it did not stop within the deadline): it still uses lg and the
         * file, so touch neither; exit() does not wait for it. */
        report("main", "slp_thread_join(logger)", jst);
        exit(EXIT_FAILURE);
    }
    slp_channel_release(lg.lines);
    int close_err = fclose(offload_file) != 0 ? errno : 0;

    printf("work only (no log):        %8.3f ms  (checksum %016" PRIx64 ")\n", t_work * 1e3,
           sum);
    printf("(A) sync fwrite+fflush:    %8.3f ms  %s\n", t_sync * 1e3, sync_path);
    printf("(B) offload, main loop:    %8.3f ms  %s\n", t_offload * 1e3, offload_path);
    printf("(B) offload, until logged: %8.3f ms  (slp_shutdown drained the channel)\n",
           t_offload_all * 1e3);
    printf("ratio sync / offload (main loop): %.3f  (> 1: offloading made the loop faster)\n",
           t_offload > 0 ? t_sync / t_offload : 0.0);
    printf("logging cost per step: sync %.2f us, offload %.2f us (time above the work only)\n",
           steps ? (t_sync - t_work) * 1e6 / (double)steps : 0.0,
           steps ? (t_offload - t_work) * 1e6 / (double)steps : 0.0);
    printf("logger: %" PRIu64 " lines in %" PRIu64 " batches (largest %" PRIu64 "), %" PRIu64
           " drained after please_stop; main found the channel full %" PRIu64 " times\n",
           lg.written, lg.batches, lg.largest_batch, lg.drained_at_stop, full_waits);

    bool ok = true;
    if (err) {
        fprintf(stderr, "log_offload: handing lines to the logger: %s\n", strerror(err));
        ok = false;
    }
    if (sst != SLP_OK)
        ok = false;
    if (result != 0) {
        fprintf(stderr, "log_offload: the logger failed: %s\n",
                result > 0 ? strerror(result) : "unknown error");
        ok = false;
    }
    if (close_err) {
        fprintf(stderr, "log_offload: closing %s: %s\n", offload_path, strerror(close_err));
        ok = false;
    }
    if (ok && lg.written != steps) {
        fprintf(stderr, "log_offload: the logger wrote %" PRIu64 " lines of %" PRIu64 "\n",
                lg.written, steps);
        ok = false;
    }
    free(buf);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
