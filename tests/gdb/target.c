/*
 * tests/gdb/target.c - the program tests/gdb/run.sh debugs with tools/gdb/slp.py.
 *
 * Built with -g -O0. Before each checkpoint the main thread has these tasklets:
 *   "receiver"  blocked receiving on `chan`, inside receiver_fn -> level_one -> level_two
 *   "parked"    paused after running (slp_schedule_remove inside park_here)
 *   "yielder"   runnable after running (slp_schedule inside yield_here)
 *   "fresh"     paused, never started (listed as "paused (never started)"; slp bt refuses it)
 * and a second thread "worker" has a tasklet "w_receiver" blocked receiving on its own channel
 * inside worker_level_two; the worker's own stack waits on a condition variable (in a futex
 * system call) while gdb inspects it.
 *
 * checkpoint(1) is called by the main tasklet, checkpoint(2) by the "yielder" tasklet when it
 * runs again (so that the listing has a tasklet, not main, running), checkpoint(0) once all
 * four have ended (their handles still held). gdb breaks in checkpoint(). Afterwards every tasklet is finished off and the program checks that each
 * did exactly what it should: a process whose registers were not restored exactly by
 * `slp bt` would crash or fail these checks. It prints "target: all done" and exits 0.
 */
#include <slp.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "target: check failed at line %d: %s (%s)\n", __LINE__, #cond,   \
                    slp_last_error());                                                       \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

/* Global so that gdb can name them too: `slp bt t_receiver`. */
slp_tasklet *t_receiver, *t_parked, *t_yielder, *t_fresh, *t_worker_receiver;
slp_channel *chan, *worker_chan;

static int received = -1, parked_done, yielder_done, fresh_done, worker_received = -1;
static volatile int checkpoints;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int worker_ready, worker_go;

/* gdb breaks here. */
__attribute__((noinline)) void checkpoint(int n) {
    checkpoints += n;
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void level_two(slp_channel *ch) {
    void *v = NULL;
    CHECK(slp_channel_receive(ch, &v) == SLP_OK);
    received = (int)(intptr_t)v;
}

__attribute__((noinline)) static void level_one(slp_channel *ch) {
    level_two(ch);
}

static int32_t receiver_fn(void *arg) {
    level_one(arg);
    return 0;
}

__attribute__((noinline)) static void park_here(void) {
    CHECK(slp_schedule_remove() == SLP_OK);
}

static int32_t parked_fn(void *arg) {
    (void)arg;
    park_here();
    parked_done = 1;
    return 0;
}

__attribute__((noinline)) static void yield_here(void) {
    CHECK(slp_schedule() == SLP_OK);
}

static int32_t yielder_fn(void *arg) {
    (void)arg;
    yield_here();
    checkpoint(2);
    yielder_done = 1;
    return 0;
}

static int32_t fresh_fn(void *arg) {
    (void)arg;
    fresh_done = 1;
    return 0;
}

__attribute__((noinline)) static void worker_level_two(slp_channel *ch) {
    void *v = NULL;
    CHECK(slp_channel_receive(ch, &v) == SLP_OK);
    worker_received = (int)(intptr_t)v;
}

static int32_t worker_receiver_fn(void *arg) {
    worker_level_two(arg);
    return 0;
}

static slp_tasklet *spawn(slp_tasklet_fn fn, void *arg, const char *name, uint32_t flags) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.name = name;
    o.flags = flags;
    slp_tasklet *t = NULL;
    CHECK(slp_tasklet_new_ex(fn, arg, &o, &t) == SLP_OK);
    return t;
}

static void *worker_main(void *arg) {
    (void)arg;
    CHECK(slp_thread_register("worker") == SLP_OK);
    CHECK(slp_channel_new(&worker_chan) == SLP_OK);
    t_worker_receiver = spawn(worker_receiver_fn, worker_chan, "w_receiver", 0);
    CHECK(slp_run() == SLP_OK);
    CHECK(slp_tasklet_blocked(t_worker_receiver));

    pthread_mutex_lock(&mu);
    worker_ready = 1;
    pthread_cond_broadcast(&cv);
    while (!worker_go) pthread_cond_wait(&cv, &mu); /* gdb inspects the worker while it waits */
    pthread_mutex_unlock(&mu);

    CHECK(slp_channel_send(worker_chan, (void *)(intptr_t)7) == SLP_OK);
    CHECK(slp_run() == SLP_OK);
    CHECK(worker_received == 7);
    CHECK(!slp_tasklet_alive(t_worker_receiver));
    slp_tasklet_release(t_worker_receiver);
    slp_channel_release(worker_chan);
    CHECK(slp_thread_unregister() == SLP_OK);
    return NULL;
}

int main(void) {
    pthread_t worker;
    CHECK(pthread_create(&worker, NULL, worker_main, NULL) == 0);
    pthread_mutex_lock(&mu);
    while (!worker_ready) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    CHECK(slp_channel_new(&chan) == SLP_OK);
    t_receiver = spawn(receiver_fn, chan, "receiver", 0);
    t_parked = spawn(parked_fn, NULL, "parked", 0);
    t_yielder = spawn(yielder_fn, NULL, "yielder", 0);
    t_fresh = spawn(fresh_fn, NULL, "fresh", SLP_TASKLET_PAUSED);
    /* One switch into each: receiver blocks, parked pauses itself, yielder yields. */
    CHECK(slp_run_n(3) == SLP_OK);
    CHECK(slp_tasklet_blocked(t_receiver));
    CHECK(slp_tasklet_paused(t_parked));
    CHECK(slp_tasklet_scheduled(t_yielder) && !slp_tasklet_blocked(t_yielder));
    CHECK(slp_channel_balance(chan) == -1);

    printf("target: receiver=%p parked=%p yielder=%p fresh=%p w_receiver=%p\n", (void *)t_receiver,
           (void *)t_parked, (void *)t_yielder, (void *)t_fresh, (void *)t_worker_receiver);
    fflush(stdout);

    checkpoint(1);

    /* Finish everything off, as if gdb had never been there. */
    CHECK(slp_run_n(1) == SLP_OK); /* yielder: checkpoint(2), then it ends */
    CHECK(yielder_done == 1);
    CHECK(slp_channel_send(chan, (void *)(intptr_t)42) == SLP_OK);
    CHECK(slp_tasklet_insert(t_parked) == SLP_OK);
    CHECK(slp_tasklet_insert(t_fresh) == SLP_OK);
    CHECK(slp_run() == SLP_OK);
    CHECK(received == 42 && parked_done == 1 && fresh_done == 1);
    CHECK(checkpoints == 3);
    CHECK(!slp_tasklet_alive(t_receiver) && !slp_tasklet_alive(t_parked) &&
          !slp_tasklet_alive(t_yielder) && !slp_tasklet_alive(t_fresh));
    checkpoint(0); /* every tasklet of this thread has ended; the handles are still held */

    pthread_mutex_lock(&mu);
    worker_go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    CHECK(pthread_join(worker, NULL) == 0);

    slp_tasklet_release(t_receiver);
    slp_tasklet_release(t_parked);
    slp_tasklet_release(t_yielder);
    slp_tasklet_release(t_fresh);
    slp_channel_release(chan);
    printf("target: all done\n");
    return 0;
}
