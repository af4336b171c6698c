/* test_regress.c - one regression test per defect found in the core (each comment names the
 * defect the test guards):
 *   a. a false SLP_E_DEADLOCK while another thread sleeps in slp_run_wait with a deadline;
 *   b. out of memory must not abort the process;
 *   c. thread exit with a tasklet that spawns a successor each time it is killed;
 *   d. slp_tasklet_bind_thread racing a cross-thread insert still in flight;
 *   e. slp_channel_send_sequence reports how many values it sent when it fails;
 *   f. data races, found by ThreadSanitizer (c_tests/tsan.sh regress): flag setters, the debug
 *      context and reference counts used on another thread's tasklets.
 * Scenarios that crashed or aborted before the fix run in forked children (child_util.h), so
 * that each test reports on its own. The race tests run in-process: they pass functionally
 * either way, the race checker is their judge. */
#include "harness.h"
#include "common.h"
#include "thread_util.h"
#include "child_util.h"

#include <sys/mman.h>
#include <sys/resource.h>

#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static int32_t t_noop(void *arg) {
    (void)arg;
    return 0;
}

/* ============================================================================================
 * a. False SLP_E_DEADLOCK: thread B (registered, so it participates) loops
 * `slp_run_wait(300 ms); slp_channel_send(ch, v)`. Main's receive must wait for each value.
 * B asleep in slp_run_wait with a finite deadline will wake up by itself and can still send,
 * so it counts as a possible waker; main's receive failed at once with SLP_E_DEADLOCK because
 * B was counted asleep like a thread that could never wake.
 * ========================================================================================== */
#define FD_ROUNDS 4

struct fd {
    slp_channel *ch;
    pthread_barrier_t started;
    slp_status waits[FD_ROUNDS], sends[FD_ROUNDS];
    long rounds;
};

static void *fd_sender(void *arg) {
    struct fd *f = arg;
    slp_thread_register("fd sender");
    pthread_barrier_wait(&f->started);
    for (int i = 0; i < FD_ROUNDS; i++) {
        slp_status w = slp_run_wait(xt_ms(300) * 1000000LL);
        slp_status s = slp_channel_send(f->ch, IPTR(i + 1));
        xt_lock();
        f->waits[i] = w;
        f->sends[i] = s;
        f->rounds = i + 1;
        xt_unlock();
        if (s != SLP_OK) break;
    }
    slp_thread_unregister();
    return NULL;
}

TEST(regress_a_run_wait_with_deadline_is_a_possible_waker) {
    watchdog(15);
    struct fd f;
    memset(&f, 0, sizeof f);
    f.ch = NEW_CHANNEL(); /* before B starts */
    pthread_barrier_init(&f.started, NULL, 2);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, fd_sender, &f), 0);
    pthread_barrier_wait(&f.started);
    sleep_ms(xt_ms(50)); /* B is asleep in its first slp_run_wait */
    int got = 0;
    for (int i = 0; i < FD_ROUNDS; i++) {
        void *v = SENTINEL;
        int64_t t0 = now_ns();
        slp_status st = slp_channel_receive(f.ch, &v);
        long waited_ms = (long)((now_ns() - t0) / 1000000LL);
        CHECK_MSG(st == SLP_OK, "receive %d returned %d (%s) after %ld ms: \"%s\"", i + 1, (int)st,
                  harness_status_name(st), waited_ms, slp_last_error());
        if (st != SLP_OK) break;
        CHECK_EQ_PTR(v, IPTR(i + 1));
        got++;
    }
    if (got < FD_ROUNDS) slp_channel_shutdown(f.ch); /* lets B's next send out */
    pthread_join(th, NULL);
    CHECK_EQ_INT(got, FD_ROUNDS);
    for (int i = 0; i < got; i++) {
        CHECK_ST(f.waits[i], SLP_E_TIMEOUT);
        CHECK_ST(f.sends[i], SLP_OK);
    }
    CHECK_EQ_INT(slp_channel_balance(f.ch), 0);
    pthread_barrier_destroy(&f.started);
    slp_channel_release(f.ch);
}

/* ============================================================================================
 * b. Out of memory must not abort. In a child whose address space is capped at its current
 * size + 64 MiB: tasklets with 4 MiB stacks are created until one fails with SLP_E_NOMEM; then
 * every remaining mapping and the heap are used up, and slp_tasklet_new, slp_dump, slp_channel_new
 * and slp_last_error must still return (SLP_E_NOMEM or SLP_OK), not abort. libslp allocated its
 * error messages and tasklet records with the global allocator, whose failure aborts the
 * process. Skipped under valgrind, AddressSanitizer and ThreadSanitizer (their own mappings do
 * not fit under the cap) and with SLP_TEST_NO_RLIMIT set.
 * ========================================================================================== */
static const char *oom_skip_reason(void) {
    if (RUNNING_ON_VALGRIND) return "valgrind";
    if (getenv("SLP_TEST_NO_RLIMIT")) return "SLP_TEST_NO_RLIMIT is set";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return "built with a sanitizer";
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return "built with a sanitizer";
#endif
#endif
    if (getenv("ASAN_OPTIONS") || getenv("TSAN_OPTIONS")) return "a sanitizer runtime is configured";
    return NULL;
}

static size_t vmsize_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0) kb = (size_t)strtoull(line + 7, NULL, 10);
    fclose(f);
    return kb;
}

#define OOM_MAX_TASKLETS 1024
#define OOM_MAX_MAPS 8192

static slp_tasklet *g_oom_ts[OOM_MAX_TASKLETS];
static void *g_oom_maps[OOM_MAX_MAPS];
static size_t g_oom_map_sz[OOM_MAX_MAPS];

static void oom_body(void *arg) {
    (void)arg;
    slp_set_stack_pool_size(0); /* every stack is a fresh mapping */
    (void)slp_current();
    size_t kb = vmsize_kb();
    CHECK(kb > 0);
    struct rlimit saved, rl;
    CHECK_EQ_INT(getrlimit(RLIMIT_AS, &saved), 0);
    rl = saved;
    rl.rlim_cur = (rlim_t)kb * 1024 + ((rlim_t)64 << 20);
    CHECK_EQ_INT(setrlimit(RLIMIT_AS, &rl), 0);

    /* 1: 4 MiB stacks until the address space runs out */
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    o.stack_size = (size_t)4 << 20;
    int nt = 0;
    slp_status st_stacks = SLP_OK;
    while (nt < OOM_MAX_TASKLETS) {
        slp_tasklet *t = NULL;
        st_stacks = slp_tasklet_new_ex(t_noop, NULL, &o, &t);
        if (st_stacks != SLP_OK) break;
        g_oom_ts[nt++] = t;
    }
    char msg_stacks[512];
    snprintf(msg_stacks, sizeof msg_stacks, "%s", slp_last_error());

    /* 2: the rest of the address space, then the heap (64-byte blocks, chained) */
    int nm = 0;
    for (size_t sz = (size_t)1 << 20; sz >= 4096; sz /= 2) {
        while (nm < OOM_MAX_MAPS) {
            void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) break;
            g_oom_maps[nm] = p;
            g_oom_map_sz[nm++] = sz;
        }
    }
    void *heap = NULL;
    long nblocks = 0;
    for (;;) {
        void **b = malloc(64);
        if (!b) break;
        *b = heap;
        heap = b;
        nblocks++;
    }

    /* 3: libslp with no memory left: clean failures (or success), no abort */
    slp_tasklet *t2 = NULL;
    slp_status st_new = slp_tasklet_new(t_noop, NULL, &t2);
    char dbuf[32];
    size_t need = 0;
    slp_status st_dump = slp_dump(dbuf, sizeof dbuf, &need);
    slp_channel *ch = NULL;
    slp_status st_ch = slp_channel_new(&ch);
    const char *le = slp_last_error();
    size_t le_len = le ? strlen(le) : 0;

    /* give everything back, then check */
    while (heap) {
        void **b = heap;
        heap = *b;
        free(b);
    }
    for (int i = 0; i < nm; i++) munmap(g_oom_maps[i], g_oom_map_sz[i]);
    setrlimit(RLIMIT_AS, &saved);
    printf("    %d tasklet(s) with 4 MiB stacks, then %d mapping(s) and %ld heap block(s)\n", nt, nm, nblocks);
    CHECK_MSG(st_stacks == SLP_E_NOMEM, "creating 4 MiB tasklets stopped with %d (%s) after %d", (int)st_stacks,
              harness_status_name(st_stacks), nt);
    CHECK_MSG(msg_stacks[0] != '\0' && strcmp(msg_stacks, "no error") != 0, "slp_last_error() after SLP_E_NOMEM: \"%s\"",
              msg_stacks);
    CHECK_MSG(nblocks >= 0, "unreachable");
    CHECK_ST(st_new, SLP_E_NOMEM);
    CHECK_MSG(st_dump == SLP_OK || st_dump == SLP_E_NOMEM, "slp_dump returned %d", (int)st_dump);
    CHECK_MSG(st_ch == SLP_OK || st_ch == SLP_E_NOMEM, "slp_channel_new returned %d", (int)st_ch);
    CHECK(le != NULL);
    CHECK(le_len < 100000);
    if (st_new == SLP_OK) slp_tasklet_release(t2);
    if (st_ch == SLP_OK) slp_channel_release(ch);
    for (int i = 0; i < nt; i++) slp_tasklet_release(g_oom_ts[i]);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(slp_runcount(), 1);
}

TEST(regress_b_out_of_memory_returns_nomem_and_does_not_abort) {
    const char *why = oom_skip_reason();
    if (why) {
        printf("  (skipped: %s)\n", why);
        return;
    }
    static char label[256];
    snprintf(label, sizeof label, "%s: address space capped at its size + 64 MiB", harness_current);
    CHECK_CHILD(label, oom_body, NULL, 10);
}

/* ============================================================================================
 * c. Thread exit with a tasklet that, each time its receive returns SLP_E_KILLED, creates a
 * successor running the same function (same arg_free) and returns. The exit (return from the
 * thread function, or slp_scheduler_shutdown) must end them all: every created tasklet's
 * arg_free ran exactly once, every handle reports not alive and thread_id -1, nothing "kept
 * running" on stderr. The exit's 16 rounds of kills each started the new successor, which
 * blocked again: the last one was reported as refusing to die and its arg_free never ran.
 * ========================================================================================== */
#define SU_MAX_HANDLES 64

static struct succ {
    slp_channel *ch;
    long creations, frees;
    slp_tasklet *h[SU_MAX_HANDLES];
    int nh;
    int use_shutdown;
    slp_status shutdown_st;
} SU;

static void succ_free(void *arg) { ((struct succ *)arg)->frees++; }

static int32_t t_succ(void *arg) {
    struct succ *s = arg;
    void *v = NULL;
    slp_status st = slp_channel_receive(s->ch, &v);
    if (st == SLP_E_KILLED && s->creations < 1000) {
        slp_tasklet_options o;
        slp_tasklet_options_init(&o);
        o.arg_free = succ_free;
        slp_tasklet *t = NULL;
        if (slp_tasklet_new_ex(t_succ, s, &o, &t) == SLP_OK) {
            s->creations++;
            if (s->nh < SU_MAX_HANDLES)
                s->h[s->nh++] = t;
            else
                slp_tasklet_release(t);
        }
        return SLP_E_KILLED;
    }
    return 0;
}

static void *succ_thread(void *arg) {
    (void)arg;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = succ_free;
    slp_tasklet *t = NULL;
    if (slp_tasklet_new_ex(t_succ, &SU, &o, &t) == SLP_OK) {
        SU.creations++;
        SU.h[SU.nh++] = t;
    }
    slp_run(); /* it blocks receiving */
    if (SU.use_shutdown) SU.shutdown_st = slp_scheduler_shutdown();
    return NULL; /* thread exit */
}

static void succ_body(void *arg) {
    int use_shutdown = *(int *)arg;
    memset(&SU, 0, sizeof SU);
    SU.use_shutdown = use_shutdown;
    SU.shutdown_st = 12345;
    SU.ch = NEW_CHANNEL();
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, succ_thread, NULL), 0);
    pthread_join(th, NULL);
    printf("    %ld tasklet(s) created, arg_free ran %ld time(s)\n", SU.creations, SU.frees);
    CHECK(SU.creations >= 1);
    CHECK_MSG(SU.frees == SU.creations, "%ld tasklets created, arg_free ran %ld times", SU.creations, SU.frees);
    if (use_shutdown) CHECK_ST(SU.shutdown_st, SLP_OK);
    for (int i = 0; i < SU.nh; i++) {
        CHECK_MSG(!slp_tasklet_alive(SU.h[i]), "tasklet %d of %d is still alive", i + 1, SU.nh);
        CHECK_MSG(slp_tasklet_thread_id(SU.h[i]) == -1, "tasklet %d: thread_id %lld", i + 1,
                  (long long)slp_tasklet_thread_id(SU.h[i]));
    }
    CHECK_EQ_INT(slp_channel_balance(SU.ch), 0);
    for (int i = 0; i < SU.nh; i++) slp_tasklet_release(SU.h[i]);
    CHECK_MSG(SU.frees == SU.creations, "after releasing the handles: %ld created, %ld freed", SU.creations, SU.frees);
    slp_channel_release(SU.ch);
}

static void succ_case(int use_shutdown) {
    static char label[256];
    snprintf(label, sizeof label, "%s: %s", harness_current,
             use_shutdown ? "slp_scheduler_shutdown on the thread" : "return from the thread function");
    struct child_out out;
    child_run(label, succ_body, &use_shutdown, 5, &out);
    CHILD_VERDICT(label, &out);
    CHECK_MSG(strstr(out.err, "kept running") == NULL, "%s: a tasklet was reported as kept running: \"%s\"", label,
              out.err);
}

TEST(regress_c_thread_exit_ends_tasklets_that_spawn_successors) {
    succ_case(0);
    succ_case(1);
}

/* ============================================================================================
 * d. bind_thread against an insert in flight. Thread A creates T paused and waits in pthread
 * code (outside libslp, so it does not apply its mail). Thread B inserts T (SLP_OK) and then
 * tries to bind it to thread C. Once the remote insert returned, T counts as scheduled from any
 * thread, so bind_thread returns SLP_E_STATE, and T runs on A when A calls slp_run - never on
 * a thread other than its bound owner. The insert was only a message in A's inbox: T looked
 * unscheduled, the bind moved it to C, and A then ran a tasklet owned by C.
 * ========================================================================================== */
static struct bt {
    slp_tasklet *t;
    long tid_a, tid_c;
    long a_ready, c_ready, b_done, c_done, a_done;
    long ran, ran_tid, ran_owner;
    bool sched_b, sched_a;
    slp_status ins, bind, a_run, c_run;
    long tid_after_bind;
} BT;

static int32_t t_bt(void *arg) {
    (void)arg;
    long tid = (long)slp_thread_id();
    long owner = (long)slp_tasklet_thread_id(slp_current());
    xt_lock();
    BT.ran++;
    BT.ran_tid = tid;
    BT.ran_owner = owner;
    xt_unlock();
    return 0;
}

static void *bt_thread_a(void *arg) {
    (void)arg;
    slp_thread_register("A");
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *t = NULL;
    slp_tasklet_new_ex(t_bt, NULL, &o, &t);
    long tid = (long)slp_thread_id();
    xt_lock();
    BT.t = t;
    BT.tid_a = tid;
    BT.a_ready = 1;
    xt_unlock();
    bool ok; /* outside libslp while B inserts and binds, and C runs */
    WAIT_UNTIL(ok, xt_get(&BT.c_done), 4000);
    (void)ok;
    bool sched = slp_tasklet_scheduled(t);
    slp_status run = slp_run();
    xt_lock();
    BT.sched_a = sched;
    BT.a_run = run;
    BT.a_done = 1;
    xt_unlock();
    return NULL;
}

static void *bt_thread_c(void *arg) {
    (void)arg;
    slp_thread_register("C");
    long tid = (long)slp_thread_id();
    xt_lock();
    BT.tid_c = tid;
    BT.c_ready = 1;
    xt_unlock();
    bool ok;
    WAIT_UNTIL(ok, xt_get(&BT.b_done), 4000);
    (void)ok;
    slp_status st = slp_run_wait(xt_ms(100) * 1000000LL); /* T must not show up here */
    xt_lock();
    BT.c_run = st;
    BT.c_done = 1;
    xt_unlock();
    WAIT_UNTIL(ok, xt_get(&BT.a_done), 4000); /* alive while T runs: its owner id stays valid */
    return NULL;
}

static void bind_body(void *arg) {
    (void)arg;
    memset(&BT, 0, sizeof BT);
    BT.ins = BT.bind = BT.a_run = BT.c_run = 12345;
    pthread_t ta, tc;
    CHECK_EQ_INT(pthread_create(&ta, NULL, bt_thread_a, NULL), 0);
    CHECK_EQ_INT(pthread_create(&tc, NULL, bt_thread_c, NULL), 0);
    CHECK_WAIT(xt_get(&BT.a_ready) && xt_get(&BT.c_ready), 2000);
    slp_tasklet *t = BT.t;
    slp_status ins = slp_tasklet_insert(t); /* from B: T goes to A's queue */
    bool sched = slp_tasklet_scheduled(t);
    slp_status bind = slp_tasklet_bind_thread(t, xt_get(&BT.tid_c));
    long after = (long)slp_tasklet_thread_id(t);
    xt_lock();
    BT.ins = ins;
    BT.sched_b = sched;
    BT.bind = bind;
    BT.tid_after_bind = after;
    BT.b_done = 1;
    xt_unlock();
    CHECK_WAIT(xt_get(&BT.a_done), 3000);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    CHECK_ST(BT.ins, SLP_OK);
    CHECK_MSG(BT.sched_b, "slp_tasklet_scheduled(T) is false on B right after its insert returned SLP_OK");
    CHECK_MSG(BT.bind == SLP_E_STATE, "slp_tasklet_bind_thread(T, C) after the insert returned %d (%s)",
              (int)BT.bind, harness_status_name(BT.bind));
    CHECK_MSG(BT.tid_after_bind == BT.tid_a, "T's thread is %ld after the bind, A is %ld (C %ld)", BT.tid_after_bind,
              BT.tid_a, BT.tid_c);
    CHECK_MSG(BT.sched_a, "slp_tasklet_scheduled(T) is false on A before its slp_run");
    CHECK_ST(BT.c_run, SLP_E_TIMEOUT);
    CHECK_ST(BT.a_run, SLP_OK);
    CHECK_EQ_INT(BT.ran, 1);
    CHECK_MSG(BT.ran_tid == BT.tid_a, "T ran on thread %ld, A is %ld (C %ld)", BT.ran_tid, BT.tid_a, BT.tid_c);
    CHECK_MSG(BT.ran_owner == BT.ran_tid, "T ran on thread %ld while bound to thread %ld", BT.ran_tid, BT.ran_owner);
    slp_tasklet_release(t);
}

TEST(regress_d_bind_thread_refuses_a_tasklet_with_an_insert_in_flight) {
    static char label[256];
    snprintf(label, sizeof label, "%s: B inserts T of A, then binds it to C", harness_current);
    CHECK_CHILD(label, bind_body, NULL, 6);
}

/* ============================================================================================
 * e. slp_channel_send_sequence reports progress on failure: *sent is the number of values sent
 * before the failing send (the documented exception to "out-parameters are written only on
 * SLP_OK"); it was left untouched, so a caller could not tell which values went out.
 * ========================================================================================== */
TEST(regress_e_send_sequence_reports_values_sent_before_a_failure) {
    void *vals[5] = {IPTR(1), IPTR(2), IPTR(3), IPTR(4), IPTR(5)};
    /* two fit in the buffer, the third would block: block_trap stops it */
    slp_channel *ch = NEW_CHANNEL_EX(-1, 2, false);
    bool old = slp_tasklet_set_block_trap(slp_current(), true);
    size_t sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, vals, 5, &sent), SLP_E_WOULD_BLOCK);
    CHECK_EQ_INT(sent, 2);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_INT(slp_channel_balance(ch), 2);
    for (int i = 0; i < 2; i++) {
        void *v = NULL;
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, vals[i]);
    }
    CHECK_EQ_INT(slp_channel_balance(ch), 0);
    slp_tasklet_set_block_trap(slp_current(), old);
    slp_channel_release(ch);

    /* a closed channel: the first send fails, nothing was sent */
    ch = NEW_CHANNEL();
    CHECK_ST(slp_channel_close(ch), SLP_OK);
    sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, vals, 5, &sent), SLP_E_CLOSED);
    CHECK_EQ_INT(sent, 0);
    slp_channel_release(ch);

    /* success: all n */
    ch = NEW_CHANNEL_EX(-1, 8, false);
    sent = 999;
    CHECK_ST(slp_channel_send_sequence(ch, vals, 5, &sent), SLP_OK);
    CHECK_EQ_INT(sent, 5);
    for (int i = 0; i < 5; i++) {
        void *v = NULL;
        CHECK_ST(slp_channel_receive(ch, &v), SLP_OK);
        CHECK_EQ_PTR(v, vals[i]);
    }
    slp_channel_release(ch);
}

/* ============================================================================================
 * f. Data races (judged by ThreadSanitizer: c_tests/tsan.sh regress). Functionally these pass;
 * under the race checker each access libslp makes must be ordered by a lock or an atomic.
 * ========================================================================================== */

/* f1: thread B sets the atomic and block_trap flags of A's tasklets (values that change
 * nothing) while they pass values over a channel and set their own flags. The flags were
 * plain owner-only cells written from B. */
static struct fl {
    long n;
    slp_tasklet *ts[2];
    long published, b_started, a_done, b_stop, b_iters;
    long sum, sent_ok, recv_ok;
} FL;

static int32_t fl_producer(void *arg) {
    slp_channel *ch = arg;
    long ok = 0;
    for (long i = 1; i <= FL.n; i++) {
        slp_tasklet *me = slp_current();
        slp_tasklet_set_atomic(me, true);
        slp_tasklet_set_block_trap(me, false);
        if (slp_channel_send(ch, IPTR(i)) == SLP_OK) ok++;
        slp_tasklet_set_atomic(me, false);
    }
    FL.sent_ok = ok; /* A only; read after the join */
    return 0;
}

static int32_t fl_consumer(void *arg) {
    slp_channel *ch = arg;
    long ok = 0, sum = 0;
    for (long i = 1; i <= FL.n; i++) {
        void *v = NULL;
        slp_tasklet_set_block_trap(slp_current(), false);
        if (slp_channel_receive(ch, &v) == SLP_OK) {
            ok++;
            sum += PTRI(v);
        }
    }
    FL.recv_ok = ok;
    FL.sum = sum;
    return 0;
}

static void *fl_thread_a(void *arg) {
    (void)arg;
    slp_thread_register("flags A");
    slp_channel *ch = NULL;
    slp_channel_new(&ch);
    slp_tasklet *p = NULL, *c = NULL;
    slp_tasklet_new(fl_consumer, ch, &c);
    slp_tasklet_new(fl_producer, ch, &p);
    xt_lock();
    FL.ts[0] = p;
    FL.ts[1] = c;
    FL.published = 1;
    xt_unlock();
    bool started; /* B is looping before the tasklets run */
    WAIT_UNTIL(started, xt_get(&FL.b_started), 5000);
    (void)started;
    slp_run();
    xt_set(&FL.a_done, 1);
    bool ok;
    WAIT_UNTIL(ok, xt_get(&FL.b_stop), 5000);
    (void)ok;
    slp_tasklet_release(p);
    slp_tasklet_release(c);
    slp_channel_release(ch);
    return NULL;
}

static void *fl_thread_b(void *arg) {
    (void)arg;
    bool ok;
    WAIT_UNTIL(ok, xt_get(&FL.published), 5000);
    slp_tasklet *ts[2];
    xt_lock();
    ts[0] = FL.ts[0];
    ts[1] = FL.ts[1];
    FL.b_started = 1;
    xt_unlock();
    long iters = 0;
    while (ok && !xt_get(&FL.a_done)) {
        for (int i = 0; i < 2; i++) {
            slp_tasklet_set_atomic(ts[i], (iters & 1) != 0);
            slp_tasklet_set_block_trap(ts[i], false);
        }
        iters++;
    }
    xt_lock();
    FL.b_iters = iters;
    FL.b_stop = 1;
    xt_unlock();
    return NULL;
}

TEST(regress_f1_flags_set_from_another_thread) {
    watchdog(30);
    memset(&FL, 0, sizeof FL);
    FL.n = xt_slow() ? 5000 : 50000;
    pthread_t a, b;
    CHECK_EQ_INT(pthread_create(&a, NULL, fl_thread_a, NULL), 0);
    CHECK_EQ_INT(pthread_create(&b, NULL, fl_thread_b, NULL), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_EQ_INT(FL.sent_ok, FL.n);
    CHECK_EQ_INT(FL.recv_ok, FL.n);
    CHECK_EQ_INT(FL.sum, FL.n * (FL.n + 1) / 2);
    printf("    B set the flags %ld times while A ran\n", FL.b_iters);
}

/* f2: thread B reads the saved context of A's suspended tasklets (slp_tasklet_debug_context,
 * "any thread") while A switches between them. The context was a plain cell written by A at
 * every switch. */
static struct dc {
    long n;
    slp_tasklet *ts[2];
    long published, b_started, a_done, b_stop;
    long yields[2];
    long ok, state, other;
} DC;

static int32_t dc_yielder(void *arg) {
    long *count = arg;
    for (long i = 0; i < DC.n; i++)
        if (slp_schedule() == SLP_OK) (*count)++;
    return 0;
}

static void *dc_thread_a(void *arg) {
    (void)arg;
    slp_thread_register("debug A");
    slp_tasklet *x = NULL, *y = NULL;
    slp_tasklet_new(dc_yielder, &DC.yields[0], &x);
    slp_tasklet_new(dc_yielder, &DC.yields[1], &y);
    xt_lock();
    DC.ts[0] = x;
    DC.ts[1] = y;
    DC.published = 1;
    xt_unlock();
    bool started; /* B is looping before the tasklets run */
    WAIT_UNTIL(started, xt_get(&DC.b_started), 5000);
    (void)started;
    slp_run();
    xt_set(&DC.a_done, 1);
    bool ok;
    WAIT_UNTIL(ok, xt_get(&DC.b_stop), 5000);
    (void)ok;
    slp_tasklet_release(x);
    slp_tasklet_release(y);
    return NULL;
}

static void *dc_thread_b(void *arg) {
    (void)arg;
    bool ok;
    WAIT_UNTIL(ok, xt_get(&DC.published), 5000);
    slp_tasklet *ts[2];
    xt_lock();
    ts[0] = DC.ts[0];
    ts[1] = DC.ts[1];
    DC.b_started = 1;
    xt_unlock();
    long n_ok = 0, n_state = 0, n_other = 0;
    for (long iter = 0; ok && ((iter & 255) != 0 || !xt_get(&DC.a_done)); iter++) {
        for (int i = 0; i < 2; i++) {
            size_t pc = 0, sp = 0, fp = 0;
            slp_status st = slp_tasklet_debug_context(ts[i], &pc, &sp, &fp);
            if (st == SLP_OK)
                n_ok++;
            else if (st == SLP_E_STATE)
                n_state++;
            else
                n_other++;
        }
    }
    xt_lock();
    DC.ok = n_ok;
    DC.state = n_state;
    DC.other = n_other;
    DC.b_stop = 1;
    xt_unlock();
    return NULL;
}

TEST(regress_f2_debug_context_read_from_another_thread) {
    watchdog(30);
    memset(&DC, 0, sizeof DC);
    DC.n = xt_slow() ? 20000 : 200000;
    pthread_t a, b;
    CHECK_EQ_INT(pthread_create(&a, NULL, dc_thread_a, NULL), 0);
    CHECK_EQ_INT(pthread_create(&b, NULL, dc_thread_b, NULL), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_EQ_INT(DC.yields[0], DC.n);
    CHECK_EQ_INT(DC.yields[1], DC.n);
    CHECK_EQ_INT(DC.other, 0);
    printf("    B read the context %ld times (%ld suspended, %ld not)\n", DC.ok + DC.state, DC.ok, DC.state);
}

/* f3: thread B retains and releases A's main tasklet while A runs tasklets, keeps one
 * reference across A's exit and drops the last one afterwards. */
static struct mr {
    long rounds;
    slp_tasklet *main_a;
    long published, b_holds, a_done, a_joined;
    long b_iters, steps;
    long tid_after_exit;
    bool alive_after_exit;
} MR;

static int32_t mr_stepper(void *arg) {
    long *steps = arg;
    for (int i = 0; i < 3; i++) {
        (*steps)++;
        slp_schedule();
    }
    return 0;
}

static void *mr_thread_a(void *arg) {
    (void)arg;
    slp_thread_register("main-ref A");
    slp_tasklet *m = slp_main();
    xt_lock();
    MR.main_a = m;
    MR.published = 1;
    xt_unlock();
    bool holds; /* B has its own reference before A can exit */
    WAIT_UNTIL(holds, xt_get(&MR.b_holds), 5000);
    (void)holds;
    for (long r = 0; r < MR.rounds; r++) {
        slp_tasklet_new(mr_stepper, &MR.steps, NULL);
        slp_tasklet_new(mr_stepper, &MR.steps, NULL);
        slp_run();
    }
    xt_set(&MR.a_done, 1);
    return NULL; /* thread exit: A's own reference to its main tasklet goes */
}

static void *mr_thread_b(void *arg) {
    (void)arg;
    bool ok;
    WAIT_UNTIL(ok, xt_get(&MR.published), 5000);
    if (!ok) return NULL;
    xt_lock();
    slp_tasklet *m = MR.main_a;
    xt_unlock();
    slp_tasklet_retain(m); /* kept across A's exit */
    xt_set(&MR.b_holds, 1);
    long iters = 0;
    while (!xt_get(&MR.a_done)) {
        slp_tasklet_retain(m);
        slp_tasklet_release(m);
        iters++;
    }
    WAIT_UNTIL(ok, xt_get(&MR.a_joined), 5000);
    long tid = (long)slp_tasklet_thread_id(m);
    bool alive = slp_tasklet_alive(m);
    slp_tasklet_release(m); /* the last reference */
    xt_lock();
    MR.b_iters = iters;
    MR.tid_after_exit = tid;
    MR.alive_after_exit = alive;
    xt_unlock();
    return NULL;
}

TEST(regress_f3_main_tasklet_references_from_another_thread) {
    watchdog(30);
    memset(&MR, 0, sizeof MR);
    MR.rounds = xt_slow() ? 500 : 5000;
    pthread_t a, b;
    CHECK_EQ_INT(pthread_create(&a, NULL, mr_thread_a, NULL), 0);
    CHECK_EQ_INT(pthread_create(&b, NULL, mr_thread_b, NULL), 0);
    pthread_join(a, NULL);
    xt_set(&MR.a_joined, 1);
    pthread_join(b, NULL);
    CHECK_EQ_INT(MR.steps, MR.rounds * 6);
    CHECK_EQ_INT(MR.tid_after_exit, -1);
    CHECK(!MR.alive_after_exit);
    printf("    B retained and released A's main tasklet %ld times while A ran\n", MR.b_iters);
}

/* ---------------------------------------------------------------------------------------------
 * g. Every tasklet at thread exit (SPEC §5.4, the threads toolkit issue): a paused tasklet that
 *    never started, held only by a handle another thread keeps, used to survive its thread's
 *    exit (its arg_free waited for the last release, and slp_dump could not list it: the
 *    scheduler kept no list of paused tasklets). Now each thread keeps one list of all its live
 *    tasklets: the exit discards it (arg_free runs at the exit, on the exiting thread), its
 *    handle reports not alive and thread_id -1, and dumps list paused tasklets.
 * ------------------------------------------------------------------------------------------- */

static long g_paused_frees;
static long g_paused_free_tid;
static void paused_free(void *arg) {
    (void)arg;
    xt_lock();
    g_paused_frees++;
    g_paused_free_tid = (long)slp_thread_id();
    xt_unlock();
}
static int32_t never_runs(void *arg) {
    (void)arg;
    return 0;
}

struct paused_owner {
    slp_tasklet *t;
    long tid;
    char dump[4096];
};

static void *paused_owner_thread(void *arg) {
    struct paused_owner *po = arg;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.flags = SLP_TASKLET_PAUSED;
    o.name = "parked";
    o.arg_free = paused_free;
    slp_tasklet_new_ex(never_runs, NULL, &o, &po->t);
    size_t need = 0;
    slp_dump(po->dump, sizeof po->dump, &need);
    po->tid = (long)slp_thread_id();
    return NULL; /* thread exit: the paused tasklet is discarded here */
}

TEST(regress_g_thread_exit_discards_paused_never_started_tasklets) {
    watchdog(10);
    static struct paused_owner po;
    memset(&po, 0, sizeof po);
    xt_lock();
    g_paused_frees = 0;
    g_paused_free_tid = 0;
    xt_unlock();
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, paused_owner_thread, &po), 0);
    pthread_join(th, NULL);
    /* the dump listed it */
    CHECK_MSG(strstr(po.dump, "'parked'") != NULL && strstr(po.dump, "never started") != NULL,
              "the dump does not list the paused tasklet: %s", po.dump);
    /* discarded at the exit, on the exiting thread, before this thread released its handle */
    xt_lock();
    long frees = g_paused_frees, tid = g_paused_free_tid;
    xt_unlock();
    CHECK_EQ_INT(frees, 1);
    CHECK_EQ_INT(tid, po.tid);
    CHECK(!slp_tasklet_alive(po.t));
    CHECK_EQ_INT(slp_tasklet_thread_id(po.t), -1);
    slp_tasklet_release(po.t);
    xt_lock();
    frees = g_paused_frees;
    xt_unlock();
    CHECK_EQ_INT(frees, 1); /* exactly once */
}
