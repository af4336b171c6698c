/*
 * file_digest.c - a game loop that hands work to a pool of worker threads running tasklets.
 *
 * The job: compute a digest (64-bit FNV-1a) of every file under a directory. The shape is the
 * one an engine uses for asset loading, shader compiling or path finding: the main thread keeps
 * its fixed frame rate and never waits for the work, worker threads do the slow, blocking part
 * (here: reading files), and the results come back to the main thread, where the game state
 * lives.
 *
 *   main thread (game loop,               channels              worker threads 1..3 (each
 *   one slp_run() per frame)            (thread-safe)           sleeps in slp_run_wait())
 *
 *   feeder tasklet    -- job* -->  [ jobs, capacity 8 ]     -- job* -->  digest tasklets,
 *   collector tasklet <-- job* --  [ results, capacity 16 ] <-- job* --  4 per worker: read
 *                                                                        the file, hash it
 *
 * What it shows:
 *   - channels between threads  the same slp_channel is used by tasklets of four OS threads;
 *                 a send to a tasklet that waits on another thread makes it runnable on ITS
 *                 thread and, if that thread sleeps in libslp (a worker in slp_run_wait()),
 *                 wakes it at once; the game loop finds its own tasklets runnable at its next
 *                 slp_run(). No polling anywhere;
 *   - worker threads            plain pthreads; each adopts itself with slp_thread_register(),
 *                 creates its own tasklets (a tasklet always runs on the thread that created
 *                 it) and sleeps in slp_run_wait() whenever none of them can run;
 *   - the game loop             the main thread runs at a fixed frame rate and calls slp_run()
 *                 once per frame: its feeder tasklet hands out paths until the jobs channel is
 *                 full, its collector tasklet takes in the digests that arrived, then slp_run()
 *                 returns. A frame never waits for a worker;
 *   - cooperative yields        a worker tasklet hashing a big file calls slp_schedule() after
 *                 every chunk, so the other tasklets of its thread get their turn;
 *   - ownership through channels a job (path in, digest out) is owned by whoever received it
 *                 last: main, then one worker tasklet, then main again. Nothing is shared
 *                 without a channel in between, so no locks are needed;
 *   - orderly shutdown          channel shutdown ends the tasklets' receive loops (the
 *                 iteration idiom: receive until SLP_E_CLOSED), slp_scheduler_wakeup() gets a
 *                 worker out of slp_run_wait(), slp_thread_unregister() cleans up its thread,
 *                 pthread_join() and the releases finish the job.
 *
 * Output: stdout gets one line per file, "<digest> <size> <path>", sorted by path (relative
 * to the directory), then a total - the same on every run, whatever the threads did. Progress
 * lines and per-worker statistics, which depend on timing, go to stderr.
 *
 * Usage:  file_digest [DIRECTORY]      (default: the project's src/ directory, found from
 *                                       this source file's location, else ".")
 * Exit status: 0, or 1 if a file could not be read or something failed (like sha256sum).
 *
 * Build and run (from the repository root, after `cargo build --release`; the library's
 * SONAME is libslp.so.0, so `ln -sf libslp.so target/release/libslp.so.0` once):
 *   cc -O2 -Iinclude examples/file_digest.c -Ltarget/release -lslp -lpthread -o file_digest
 *   LD_LIBRARY_PATH=target/release ./file_digest src
 * CTest runs it on src/ and runs check_file_digest.sh, which checks the output on a small
 * tree of files with known digests.
 */
#define _XOPEN_SOURCE 700 /* nftw(), clock_nanosleep(), strdup() */

#include <slp.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- parameters ------------------------------------------------------------------------ */

#define WORKERS             3        /* worker threads                                      */
#define TASKLETS_PER_WORKER 4        /* digest tasklets on each worker thread               */
#define JOBS_CAPACITY       8        /* paths waiting for a worker, at most                 */
#define RESULTS_CAPACITY    16       /* digests waiting for the main thread, at most        */
#define CHUNK_SIZE          (64 * 1024) /* a tasklet reads (and yields) this much at a time */
#define FRAME_NS            16666667 /* 60 frames per second                                */
#define PROGRESS_EVERY      30       /* frames between progress lines (stderr)              */
#define MAX_FRAMES          (60 * 60 * 5) /* give up after 5 minutes of frames              */

/* ---- error handling -------------------------------------------------------------------- */

/* Every libslp call that can fail returns a slp_status (SLP_OK == 0). On failure,
 * slp_last_error() describes it for the calling thread; read it right away, the next slp_*
 * call on this thread may replace it. */
static void report(const char *who, const char *what, slp_status st)
{
    fprintf(stderr, "%s: %s failed: %s (%d): %s\n", who, what, slp_status_str(st), (int)st,
            slp_last_error());
}

/* For set-up and tear-down: a failure ends the program (an example's error handling; an
 * engine would report it and carry on without the feature). */
#define CHECK(who, call)                                                                   \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK) {                                                               \
            report((who), #call, st_);                                                     \
            exit(EXIT_FAILURE);                                                            \
        }                                                                                  \
    } while (0)

/* ---- the digest: 64-bit FNV-1a ----------------------------------------------------------- */

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

/* ---- jobs -------------------------------------------------------------------------------- */

/* One file. The main thread fills in the path, a worker tasklet the result. A job is handed
 * over by pointer through the channels, and whoever received it last owns it: a channel
 * transfer orders the writes before it with the reads after it, so no lock is needed. */
typedef struct job {
    char *path;        /* as opened (the directory prefix included); owned by the list       */
    const char *name;  /* the path relative to the directory: what we print                  */
    uint64_t digest;   /* FNV-1a of the contents (set by a worker)                           */
    uint64_t size;     /* bytes read (set by a worker)                                       */
    int error;         /* errno of a failed open/read, 0 if the file was read (by a worker)  */
    int worker;        /* which worker thread hashed it (statistics, stderr only)            */
    bool done;         /* the collector has received it                                      */
} job;

/* The files to digest, collected by walk_directory() before the game starts. */
static struct {
    job *jobs;
    size_t count, cap;
    size_t root_len; /* strlen(directory), to cut it off the printed names */
} g_list;

/* Counters of the main thread: written by its tasklets, read by its loop. */
static size_t g_handed_out;  /* paths the feeder has sent                                 */
static size_t g_collected;   /* digests the collector has received                        */

/* The channels, created by main before the worker threads start. */
static slp_channel *g_jobs;    /* feeder (main) -> digest tasklets (workers): job *        */
static slp_channel *g_results; /* digest tasklets (workers) -> collector (main): job *      */

/* ---- walking the directory ----------------------------------------------------------------- */

static int add_file(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0; /* only regular files; symbolic links are not followed (FTW_PHYS) */
    if (g_list.count == g_list.cap) {
        size_t cap = g_list.cap ? 2 * g_list.cap : 64;
        job *jobs = (job *)realloc(g_list.jobs, cap * sizeof *jobs);
        if (!jobs)
            return -1;
        g_list.jobs = jobs;
        g_list.cap = cap;
    }
    job *j = &g_list.jobs[g_list.count];
    memset(j, 0, sizeof *j);
    j->path = strdup(fpath);
    if (!j->path)
        return -1;
    g_list.count++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const job *)a)->name, ((const job *)b)->name);
}

/* Collects the regular files under `root`, sorted by their path relative to it. */
static int walk_directory(const char *root)
{
    g_list.root_len = strlen(root);
    if (nftw(root, add_file, 16, FTW_PHYS) != 0)
        return -1;
    for (size_t i = 0; i < g_list.count; i++) {
        job *j = &g_list.jobs[i];
        const char *rel = j->path + g_list.root_len;
        while (*rel == '/')
            rel++;
        if (*rel == '\0') { /* root is a file itself: use its last component */
            const char *slash = strrchr(j->path, '/');
            rel = slash ? slash + 1 : j->path;
        }
        j->name = rel;
    }
    qsort(g_list.jobs, g_list.count, sizeof *g_list.jobs, by_name);
    return 0;
}

/* No directory on the command line: the project's own src/ (found from this file's path as
 * the compiler saw it: examples/file_digest.c -> examples/../src), else ".". */
static char *default_root(void)
{
    const char *self = __FILE__;
    const char *slash = strrchr(self, '/');
    int dir_len = slash ? (int)(slash - self) : 1;
    const char *dir = slash ? self : ".";
    char buf[4096];
    struct stat sb;
    snprintf(buf, sizeof buf, "%.*s/../src", dir_len, dir);
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
        snprintf(buf, sizeof buf, ".");
    return strdup(buf);
}

/* ---- worker threads --------------------------------------------------------------------- */

typedef struct worker {
    int index;        /* 1..WORKERS                                                       */
    pthread_t thread;
    int64_t slp_id;   /* its libslp thread id, for slp_scheduler_wakeup()                 */
    sem_t *started;   /* posted once the thread is registered with libslp                 */
    /* Written only by the worker's own thread; main reads them after pthread_join(). */
    int files;
    uint64_t bytes;
    int tasklets_left; /* digest tasklets that have not ended                             */
    int failures;      /* uncaught tasklet errors reported by slp_run_wait()              */
} worker;

/* Reads j->path and fills in j->digest, j->size, j->error. A read error is a result (sent
 * back to main like a digest), not a failure of the tasklet. Returns SLP_OK, or SLP_E_KILLED
 * if the tasklet was killed while it yielded (the job is then incomplete). */
static slp_status digest_file(job *j, unsigned char *buf)
{
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->error = errno;
        return SLP_OK;
    }
    uint64_t h = FNV_OFFSET_BASIS, size = 0;
    slp_status st = SLP_OK;
    for (;;) {
        /* A blocking read: it blocks this worker's OS thread - and only this thread, which
         * is why file I/O belongs on worker threads and not on the game's main thread. */
        ssize_t n = read(fd, buf, CHUNK_SIZE);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            j->error = errno;
            break;
        }
        if (n == 0)
            break;
        h = fnv1a64(h, buf, (size_t)n);
        size += (uint64_t)n;
        /* Tasklets are cooperative: nothing else runs on this thread until we switch away.
         * After each full chunk, let the other digest tasklets of this thread have a turn,
         * so one big file does not hold up the small ones queued behind it. slp_schedule()
         * returns at once when no other tasklet is runnable. */
        if (n == CHUNK_SIZE && (st = slp_schedule()) != SLP_OK)
            break; /* SLP_E_KILLED: the thread is shutting down */
    }
    close(fd);
    j->digest = h;
    j->size = size;
    return st;
}

/* A digest tasklet, created on a worker thread (so it runs there, and only there).
 * The loop is the channel iteration idiom: receive until the channel says SLP_E_CLOSED. */
static int32_t digest_tasklet(void *arg)
{
    worker *w = (worker *)arg;
    unsigned char *buf = (unsigned char *)malloc(CHUNK_SIZE);
    slp_status st = buf ? SLP_OK : SLP_E_NOMEM;
    while (st == SLP_OK) {
        void *msg = NULL;
        /* Wait for a path. While every tasklet of this thread waits here (or on the results
         * channel), nothing on the thread can run and slp_run_wait() puts the thread to
         * sleep; the feeder's next send makes one of us runnable and wakes the thread. */
        st = slp_channel_receive(g_jobs, &msg);
        if (st != SLP_OK)
            break; /* SLP_E_CLOSED: no more work. SLP_E_KILLED: the thread is going away. */
        job *j = (job *)msg; /* ours now */
        st = digest_file(j, buf);
        j->worker = w->index;
        w->files++;
        w->bytes += j->size;
        /* Hand the job back to main. The results channel is buffered: this send only
         * blocks (this tasklet, not the thread) when RESULTS_CAPACITY digests are already
         * waiting for the collector. If the collector is waiting, the value goes straight
         * to it: it becomes runnable on the main thread, and we continue here. */
        slp_status sent = slp_channel_send(g_results, j);
        if (sent != SLP_OK && st == SLP_OK)
            st = sent; /* the job is still ours, but we are shutting down: main stopped waiting */
    }
    free(buf);
    w->tasklets_left--;
    if (st == SLP_E_CLOSED)
        return 0;            /* a normal end */
    if (st == SLP_E_KILLED)
        return SLP_E_KILLED; /* killed: a silent end (Stackless's TaskletExit) */
    return st;               /* anything else is an uncaught error: slp_run_wait() gets it */
}

static void *worker_thread(void *arg)
{
    worker *w = (worker *)arg;
    char name[32];

    /* Adopt this thread: libslp creates its scheduler, and the thread now counts for
     * deadlock detection (a main tasklet blocked on a channel is only told SLP_E_DEADLOCK
     * when no participating thread could still wake it). Then tell main our libslp id. */
    snprintf(name, sizeof name, "digest-%d", w->index);
    CHECK(name, slp_thread_register(name));
    w->slp_id = slp_thread_id();
    sem_post(w->started);

    /* Our tasklets. Fire and forget (out == NULL): libslp keeps them alive while they run
     * or wait. Each gets the worker as its argument (for statistics). */
    for (int i = 1; i <= TASKLETS_PER_WORKER; i++) {
        char tname[48];
        slp_tasklet_options opts;
        slp_tasklet_options_init(&opts);
        snprintf(tname, sizeof tname, "%s.%d", name, i);
        opts.name = tname; /* copied; shows up in error messages */
        CHECK(name, slp_tasklet_new_ex(digest_tasklet, w, &opts, NULL));
        w->tasklets_left++;
    }

    /* The worker's whole life: run tasklets while any is runnable, sleep while none is.
     * slp_run_wait(-1) never returns just because there is nothing to do; it returns SLP_OK
     * when some thread calls slp_scheduler_wakeup() for this one (main does, to say "quit"),
     * or a tasklet's uncaught error (we report it and keep serving). */
    for (;;) {
        slp_status st = slp_run_wait(-1);
        if (st == SLP_OK)
            break;
        report(name, "a digest tasklet (slp_run_wait)", st);
        w->failures++;
        if (st == SLP_E_DEADLOCK || st == SLP_E_STATE)
            break; /* nothing could ever wake us again, or a usage error: give up */
    }

    /* Leave libslp: tasklets still alive on this thread (normally none: the jobs channel was
     * shut down, so they all left their loops) are killed and their stacks freed, and the
     * thread no longer counts for deadlock detection. Thread exit would do the same. */
    CHECK(name, slp_thread_unregister());
    return NULL;
}

/* ---- the main thread's tasklets --------------------------------------------------------- */

/* Hands every path to the workers. When the jobs channel is full the send blocks this
 * tasklet (not the main thread): slp_run() returns, the frame goes on, and a worker taking a
 * path makes the feeder runnable again for the next frame's slp_run(). */
static int32_t feeder_tasklet(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < g_list.count; i++) {
        slp_status st = slp_channel_send(g_jobs, &g_list.jobs[i]);
        if (st != SLP_OK) {
            report("feeder", "slp_channel_send(jobs)", st);
            return st;
        }
        g_handed_out++;
    }
    /* End of the stream. shutdown = close + wake every waiting receiver with SLP_E_CLOSED,
     * on whatever thread it waits; paths still buffered are received first. */
    slp_status st = slp_channel_shutdown(g_jobs);
    if (st != SLP_OK)
        report("feeder", "slp_channel_shutdown(jobs)", st);
    return st;
}

/* Receives the finished jobs, whichever worker they come from, until main shuts the results
 * channel down. It blocks when no digest is waiting; slp_run() then returns, and a worker's
 * send makes it runnable again (it runs in this frame's slp_run() if that is still going,
 * else in the next frame's). */
static int32_t collector_tasklet(void *arg)
{
    (void)arg;
    for (;;) {
        void *msg = NULL;
        slp_status st = slp_channel_receive(g_results, &msg);
        if (st == SLP_E_CLOSED)
            return 0;
        if (st != SLP_OK) {
            report("collector", "slp_channel_receive(results)", st);
            return st;
        }
        job *j = (job *)msg; /* ours again */
        if (j->done) {
            fprintf(stderr, "collector: %s arrived twice\n", j->name);
            return SLP_E_STATE;
        }
        j->done = true;
        g_collected++;
    }
}

/* ---- main: the game loop ------------------------------------------------------------------ */

static void add_ns(struct timespec *t, long ns)
{
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec++;
    }
}

int main(int argc, char **argv)
{
    char *root = argc > 1 ? strdup(argv[1]) : default_root();
    if (!root)
        return EXIT_FAILURE;
    if (walk_directory(root) != 0) {
        fprintf(stderr, "file_digest: cannot walk %s: %s\n", root, strerror(errno));
        return EXIT_FAILURE;
    }
    fprintf(stderr, "file_digest: %zu files under %s; %d worker threads x %d tasklets\n",
            g_list.count, root, WORKERS, TASKLETS_PER_WORKER);

    /* Register the main thread with libslp first, before any worker exists. A worker whose
     * tasklets all wait, with no other participating thread awake, is in a deadlock as far
     * as libslp can tell: its slp_run_wait() returns SLP_E_DEADLOCK. Registered, the main
     * thread counts as able to send them work whenever it is not itself blocked in libslp
     * (sleeping between frames does not count as blocked). Creating the channels below
     * would register it too; saying so explicitly does not depend on that order. */
    CHECK("main", slp_thread_register("main"));

    /* Channels work between any threads; buffered ones behave as bounded queues. Created
     * before the workers start, so they see the pointers (pthread_create orders that). */
    slp_channel_options copts;
    slp_channel_options_init(&copts);
    copts.capacity = JOBS_CAPACITY;
    CHECK("main", slp_channel_new_ex(&copts, &g_jobs));
    slp_channel_options_init(&copts);
    copts.capacity = RESULTS_CAPACITY;
    CHECK("main", slp_channel_new_ex(&copts, &g_results));

    /* Start the workers and wait until each has registered with libslp. (Why not have them
     * report over a channel? A main tasklet blocked on a channel gets SLP_E_DEADLOCK when no
     * other participating thread exists yet - and a thread that has not reached its first
     * libslp call does not participate. A semaphore has no such opinion.) */
    sem_t started;
    worker workers[WORKERS];
    sem_init(&started, 0, 0);
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < WORKERS; i++) {
        workers[i].index = i + 1;
        workers[i].started = &started;
        if (pthread_create(&workers[i].thread, NULL, worker_thread, &workers[i]) != 0) {
            fprintf(stderr, "main: pthread_create failed\n");
            return EXIT_FAILURE;
        }
    }
    for (int i = 0; i < WORKERS; i++)
        while (sem_wait(&started) != 0 && errno == EINTR)
            ;
    sem_destroy(&started);

    /* The main thread's two tasklets. We keep their handles to check they ended. */
    slp_tasklet *feeder = NULL, *collector = NULL;
    CHECK("main", slp_tasklet_new(feeder_tasklet, NULL, &feeder));
    CHECK("main", slp_tasklet_new(collector_tasklet, NULL, &collector));

    /* The game loop: fixed frames. Each frame runs this thread's tasklets once - the feeder
     * hands out paths until the jobs channel is full, the collector takes in the digests
     * that arrived since the last frame - and then does the rest of a frame's work (here:
     * a progress line now and then) and sleeps until the next frame is due. The workers
     * run meanwhile, on their own threads. */
    struct timespec next_frame;
    clock_gettime(CLOCK_MONOTONIC, &next_frame);
    int frame = 0;
    bool gave_up = false;
    for (;;) {
        frame++;
        CHECK("main", slp_run());
        bool finished = g_collected == g_list.count;
        if (frame % PROGRESS_EVERY == 0 || finished)
            fprintf(stderr, "[frame %4d] paths handed out %zu/%zu, digests back %zu/%zu\n",
                    frame, g_handed_out, g_list.count, g_collected, g_list.count);
        if (finished)
            break;
        if (frame == MAX_FRAMES) {
            fprintf(stderr, "main: giving up after %d frames\n", frame);
            gave_up = true;
            break;
        }
        add_ns(&next_frame, FRAME_NS);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next_frame, NULL) == EINTR)
            ;
    }

    /* Orderly shutdown.
     * 1. The feeder ended after its last path (its shutdown of the jobs channel sent every
     *    digest tasklet out of its loop). Shutting the results channel down does the same
     *    for the collector; one more slp_run() lets it return. */
    CHECK("main", slp_channel_shutdown(g_results));
    CHECK("main", slp_run());
    if (!gave_up && (slp_tasklet_alive(feeder) || slp_tasklet_alive(collector))) {
        fprintf(stderr, "main: a main-thread tasklet is still alive after shutdown\n");
        return EXIT_FAILURE;
    }
    slp_tasklet_release(feeder);
    slp_tasklet_release(collector);

    /* 2. Get every worker out of slp_run_wait() and wait for its thread to end. */
    for (int i = 0; i < WORKERS; i++)
        CHECK("main", slp_scheduler_wakeup(workers[i].slp_id));
    int failures = 0;
    for (int i = 0; i < WORKERS; i++) {
        worker *w = &workers[i];
        pthread_join(w->thread, NULL);
        fprintf(stderr, "worker %d (libslp thread %" PRId64 "): %d files, %" PRIu64
                        " bytes, %d tasklets left at shutdown\n",
                w->index, w->slp_id, w->files, w->bytes, w->tasklets_left);
        failures += w->failures;
    }

    /* 3. Release the channels: the workers' tasklets are gone, so nothing else holds them. */
    slp_channel_release(g_jobs);
    slp_channel_release(g_results);

    /* The report, in path order: the same on every run. */
    uint64_t total_bytes = 0;
    size_t unreadable = 0, missing = 0;
    for (size_t i = 0; i < g_list.count; i++) {
        job *j = &g_list.jobs[i];
        if (!j->done) {
            missing++;
            fprintf(stderr, "file_digest: no digest for %s\n", j->name);
        } else if (j->error) {
            unreadable++;
            printf("%-16s %8s %s (%s)\n", "unreadable", "-", j->name, strerror(j->error));
        } else {
            total_bytes += j->size;
            printf("%016" PRIx64 " %8" PRIu64 " %s\n", j->digest, j->size, j->name);
        }
        free(j->path);
    }
    printf("total: %zu files, %" PRIu64 " bytes, %zu unreadable\n", g_list.count - missing,
           total_bytes, unreadable);
    free(g_list.jobs);
    free(root);
    return (missing || unreadable || failures || gave_up) ? EXIT_FAILURE : EXIT_SUCCESS;
}
