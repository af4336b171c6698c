/* test_stress.c - cross-thread channel stress (issue 3): 4 producer threads and 2 consumer
 * threads move SLP_STRESS_VALUES values (default 1,000,000) through two shared channels (one
 * rendezvous, one buffered) whose preference and schedule_all a tasklet changes at random from
 * time to time, while victim tasklets on the worker threads are killed (by their own thread and
 * from the main thread) and re-created. Every value must be received exactly once.
 *
 *   P0  worker thread in a slp_run_wait loop: 2 producer tasklets (one also randomizes the
 *       channels' preferences), a churner tasklet and its victims
 *   P1  host-loop thread: slp_run + its own condition variable, woken by the wake-up callback;
 *       2 producer tasklets, a churner and victims
 *   P2, P3  plain threads: the main tasklet sends directly (blocking)
 *   C0  worker thread in a slp_run_wait loop: one consumer tasklet per channel, a churner and
 *       victims
 *   C1  plain thread: the main tasklet receives directly from a random channel
 *   main  drives the churners (a tick channel per worker thread), kills victims on the workers
 *       cross-thread, then shuts the channels down once every producer is done; consumers
 *       receive until SLP_E_CLOSED.
 *
 * Values encode producer part and sequence: v = ((part + 1) << 24) | seq, never NULL. Each
 * consumer thread counts into its own array (read after join), so the check needs no locks.
 * Prints the throughput in values/s. */
#include "harness.h"
#include "common.h"
#include "thread_util.h"

#define NPARTS 6   /* producer parts: P0 x2 tasklets, P1 x2 tasklets, P2, P3 */
#define NCH 2
#define NVICTIMS 8 /* victim slots per worker thread */
#define NWORKERS 3 /* P0, P1, C0: threads with tasklets */

static long g_total;     /* values in all */
static long g_per_part;  /* values per producer part */
static slp_channel *g_ch[NCH];

/* ---------------------------------------------------------------- shared counters (xt_mx) */
static long g_parts_done;
static long g_consumers_done; /* C0's two tasklets + C1 */
static long g_victims_created, g_victims_freed, g_victims_started, g_victims_killed_seen;
static long g_xkills, g_local_kills, g_throws, g_pref_changes, g_victim_msgs;
static long g_errors;
static char g_first_error[256];
/* where each thread is (diagnostics for a failure): 0 P0, 1 P1, 2 C0, 3 P2, 4 P3, 5 C1 */
static long g_phase[6];
static const char *g_phase_name[] = {"starting", "in libslp", "host wait", "", "", "", "", "", "", "exited"};
static void set_phase(int who, long ph) { xt_set(&g_phase[who], ph); }
static long g_ready;
static int64_t g_part_end[NPARTS]; /* threads registered with libslp and set up */

static void stress_error(const char *what, slp_status st) {
    xt_lock();
    if (g_errors++ == 0)
        snprintf(g_first_error, sizeof g_first_error, "%s: %d (%s) \"%s\"", what, (int)st, harness_status_name(st),
                 slp_last_error());
    xt_unlock();
}

static uint32_t rnd(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x ? x : 0x9e3779b9u;
}

static void *encode(int part, long seq) { return (void *)(intptr_t)((((long)part + 1) << 24) | seq); }

/* ---------------------------------------------------------------- producers */
struct part {
    int id;
    uint32_t seed;
    int randomize_prefs; /* this one also changes the channels' preferences */
};
static struct part g_parts[NPARTS];

static void produce(struct part *p) {
    for (long seq = 0; seq < g_per_part; seq++) {
        int c = (int)(rnd(&p->seed) & 1);
        slp_status st = slp_channel_send(g_ch[c], encode(p->id, seq));
        if (st != SLP_OK) {
            stress_error("producer send", st);
            break;
        }
        if (p->randomize_prefs && (seq & 255) == 0) {
            uint32_t r = rnd(&p->seed);
            slp_channel_set_preference(g_ch[r & 1], (int32_t)((r >> 1) % 3) - 1);
            slp_channel_set_schedule_all(g_ch[(r >> 3) & 1], ((r >> 4) & 3) == 0);
            xt_add(&g_pref_changes, 1);
        }
    }
    int64_t t = now_ns();
    xt_lock();
    g_parts_done++;
    g_part_end[p->id] = t;
    xt_unlock();
}

static int32_t producer_tasklet(void *arg) {
    produce(arg);
    return 0;
}

static void *plain_producer(void *arg) {
    struct part *p = arg;
    slp_thread_register("producer");
    xt_add(&g_ready, 1);
    set_phase(p->id - 1, 1);
    produce(p);
    set_phase(p->id - 1, 9);
    return NULL;
}

/* ---------------------------------------------------------------- consumers */
struct consumer {
    unsigned char *seen; /* per consumer thread: seen[index]++ */
    long received, bad;
};

static void count_value(struct consumer *c, void *v) {
    long x = (long)(intptr_t)v;
    long part = (x >> 24) - 1, seq = x & 0xffffff;
    if (part < 0 || part >= NPARTS || seq >= g_per_part) {
        c->bad++;
        return;
    }
    long idx = part * g_per_part + seq;
    if (c->seen[idx] < 255) c->seen[idx]++;
    c->received++;
}

struct ctasklet {
    struct consumer *c;
    int ch;
};

static int32_t consumer_tasklet(void *arg) {
    struct ctasklet *ct = arg;
    for (;;) {
        void *v = NULL;
        slp_status st = slp_channel_receive(g_ch[ct->ch], &v);
        if (st == SLP_E_CLOSED) break;
        if (st != SLP_OK) {
            stress_error("consumer tasklet receive", st);
            break;
        }
        count_value(ct->c, v);
    }
    xt_add(&g_consumers_done, 1);
    return 0;
}

static void *plain_consumer(void *arg) {
    struct consumer *c = arg;
    uint32_t seed = 12345;
    int closed[NCH] = {0, 0};
    slp_thread_register("C1");
    xt_add(&g_ready, 1);
    set_phase(5, 1);
    while (!(closed[0] && closed[1])) {
        int k = (int)(rnd(&seed) & 1);
        if (closed[k]) k = 1 - k;
        void *v = NULL;
        slp_status st = slp_channel_receive(g_ch[k], &v);
        if (st == SLP_E_CLOSED) {
            closed[k] = 1;
            continue;
        }
        if (st != SLP_OK) {
            stress_error("plain consumer receive", st);
            break;
        }
        count_value(c, v);
    }
    xt_add(&g_consumers_done, 1);
    set_phase(5, 9);
    return NULL;
}

/* ---------------------------------------------------------------- victims and churners */
/* A victim's struct and private channel live until the end of the test (a kill from another
 * thread may discard a victim at any time, so the churner never frees what a victim uses);
 * arg_free only marks and counts. */
struct victim {
    slp_channel *pch; /* private channel it waits on (capacity 1: a send never blocks the churner) */
    int kind;         /* 0: blocks at once, 1: yields a while first */
    int started;      /* set by the victim (owner thread only) */
    long freed;       /* arg_free ran (under xt_mx) */
    long msgs;
};

static void victim_free(void *arg) {
    struct victim *v = arg;
    xt_lock();
    v->freed++;
    g_victims_freed++;
    xt_unlock();
}

static int32_t victim_fn(void *arg) {
    struct victim *v = arg;
    v->started = 1;
    xt_add(&g_victims_started, 1);
    if (v->kind == 1) {
        for (int i = 0; i < 20; i++) {
            slp_status st = slp_schedule();
            if (st == SLP_E_KILLED) {
                xt_add(&g_victims_killed_seen, 1);
                return SLP_E_KILLED;
            }
            if (st > 0) return 0; /* a throw: handled */
        }
    }
    for (;;) {
        void *m = NULL;
        slp_status st = slp_channel_receive(v->pch, &m);
        if (st == SLP_OK) {
            v->msgs++;
            continue;
        }
        if (st == SLP_E_KILLED) {
            xt_add(&g_victims_killed_seen, 1);
            return SLP_E_KILLED;
        }
        return 0; /* a throw (user code): handled, end */
    }
}

struct wtable {
    pthread_mutex_t mx; /* guards slot[] (main kills from outside) */
    slp_tasklet *slot[NVICTIMS];
    struct victim *vic[NVICTIMS]; /* owner thread only */
    struct victim **all;          /* every victim ever made here (owner thread; main after join) */
    size_t nall, capall;
    slp_channel *tick;
    uint32_t seed;
    long tid;
};
static struct wtable g_tab[NWORKERS];

static slp_tasklet *new_victim(struct wtable *w, struct victim **out) {
    struct victim *v = calloc(1, sizeof *v);
    uint32_t r = rnd(&w->seed);
    v->kind = (int)(r & 1);
    slp_channel_options co;
    slp_channel_options_init(&co);
    co.preference = (int32_t)((r >> 1) % 3) - 1;
    co.schedule_all = ((r >> 3) & 3) == 0;
    co.capacity = 1;
    slp_status st = slp_channel_new_ex(&co, &v->pch);
    if (st != SLP_OK) {
        stress_error("victim channel new", st);
        free(v);
        return NULL;
    }
    if (w->nall == w->capall) {
        w->capall = w->capall ? 2 * w->capall : 1024;
        w->all = realloc(w->all, w->capall * sizeof *w->all);
    }
    w->all[w->nall++] = v;
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    o.arg_free = victim_free;
    o.flags = ((r >> 5) & 3) == 0 ? SLP_TASKLET_PAUSED : 0;
    slp_tasklet *t = NULL;
    st = slp_tasklet_new_ex(victim_fn, v, &o, &t);
    if (st != SLP_OK) {
        stress_error("victim new", st);
        v->freed = 1; /* never made */
        return NULL;
    }
    xt_add(&g_victims_created, 1);
    *out = v;
    return t;
}

/* One churn round on the owner thread: re-create dead victims, kill/throw/feed live ones. */
static void churn_round(struct wtable *w) {
    for (int i = 0; i < NVICTIMS; i++) {
        pthread_mutex_lock(&w->mx);
        slp_tasklet *t = w->slot[i];
        pthread_mutex_unlock(&w->mx);
        if (t == NULL || !slp_tasklet_alive(t)) {
            struct victim *v = NULL;
            slp_tasklet *nt = new_victim(w, &v);
            pthread_mutex_lock(&w->mx);
            w->slot[i] = nt;
            pthread_mutex_unlock(&w->mx);
            w->vic[i] = nt ? v : NULL;
            slp_tasklet_release(t);
            continue;
        }
        struct victim *v = w->vic[i];
        uint32_t r = rnd(&w->seed);
        switch (r % 8) {
        case 0:
        case 1: { /* kill, now or pending */
            slp_status st = slp_tasklet_kill(t, (r >> 3) & 1);
            if (st != SLP_OK) stress_error("churner kill", st);
            xt_add(&g_local_kills, 1);
            break;
        }
        case 2: /* throw to a started one (a throw to a never-started one is an uncaught error) */
            if (v->started && slp_tasklet_blocked(t)) {
                slp_status st = slp_tasklet_throw(t, 5, NULL, (r >> 3) & 1);
                if (st != SLP_OK) stress_error("churner throw", st);
                xt_add(&g_throws, 1);
            }
            break;
        case 3:
        case 4: /* a same-thread message with a random preference */
            if (slp_channel_balance(v->pch) < 0) {
                slp_channel_set_preference(v->pch, (int32_t)((r >> 3) % 3) - 1);
                slp_status st = slp_channel_send(v->pch, IPTR(1));
                if (st != SLP_OK && st != SLP_E_KILLED) stress_error("churner send", st);
                xt_add(&g_victim_msgs, 1);
            }
            break;
        case 5: /* start a paused never-started one */
            if (slp_tasklet_paused(t) && !v->started) slp_tasklet_insert(t);
            break;
        default:
            break;
        }
    }
}

static int32_t churner(void *arg) {
    struct wtable *w = arg;
    for (;;) {
        void *m = NULL;
        slp_status st = slp_channel_receive(w->tick, &m);
        if (st == SLP_E_CLOSED || st == SLP_E_KILLED) return 0;
        if (st != SLP_OK) {
            stress_error("churner tick", st);
            return 0;
        }
        churn_round(w);
    }
}

/* ---------------------------------------------------------------- worker threads */
static struct ctasklet g_ct[NCH];
static struct consumer g_cons[2];

struct wthread {
    pthread_t th;
    int role; /* 0: P0 (run_wait), 1: P1 (host loop), 2: C0 (run_wait) */
    long stop;
    long n_err;
    long stalls;
    /* P1's host loop */
    pthread_mutex_t mx;
    pthread_cond_t cv;
    int events;
    long callbacks, self_callbacks; /* wake-up callback calls; of them on P1 itself */
    pthread_t self;
};
static struct wthread g_w[NWORKERS];

static void host_wakeup(int64_t tid, void *ud) {
    (void)tid;
    struct wthread *w = ud;
    pthread_mutex_lock(&w->mx);
    w->events++;
    w->callbacks++;
    if (pthread_equal(pthread_self(), w->self)) w->self_callbacks++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mx);
}

static void *worker_thread(void *arg) {
    struct wthread *w = arg;
    struct wtable *tab = &g_tab[w->role];
    slp_thread_register(w->role == 1 ? "P1" : w->role == 0 ? "P0" : "C0");
    xt_set(&tab->tid, (long)slp_thread_id());
    slp_tasklet_new(churner, tab, NULL);
    if (w->role == 0) {
        slp_tasklet_new(producer_tasklet, &g_parts[0], NULL);
        slp_tasklet_new(producer_tasklet, &g_parts[1], NULL);
    } else if (w->role == 1) {
        slp_tasklet_new(producer_tasklet, &g_parts[2], NULL);
        slp_tasklet_new(producer_tasklet, &g_parts[3], NULL);
        w->self = pthread_self();
        slp_set_wakeup_callback(host_wakeup, w);
    } else {
        for (int c = 0; c < NCH; c++) slp_tasklet_new(consumer_tasklet, &g_ct[c], NULL);
    }
    xt_add(&g_ready, 1);
    set_phase(w->role, 1);
    if (w->role != 1) {
        while (!xt_get(&w->stop)) {
            slp_status st = slp_run_wait(-1);
            if (st != SLP_OK) {
                stress_error("worker slp_run_wait", st);
                if (++w->n_err > 10) break;
            }
        }
    } else {
        for (;;) {
            slp_status st = slp_run();
            if (st != SLP_OK) {
                stress_error("host-loop slp_run", st);
                if (++w->n_err > 10) break;
            }
            if (xt_get(&w->stop)) break;
            set_phase(1, 2);
            pthread_mutex_lock(&w->mx);
            while (w->events == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += xt_slow() ? 60 : 2;
                if (pthread_cond_timedwait(&w->cv, &w->mx, &ts) == ETIMEDOUT) {
                    /* 2 s without a wake-up while its producers still have work: lost wake-up */
                    if (xt_get(&g_parts_done) < NPARTS) w->stalls++;
                    break;
                }
            }
            w->events = 0;
            pthread_mutex_unlock(&w->mx);
            set_phase(1, 1);
        }
    }
    set_phase(w->role, 9);
    return NULL; /* thread exit (§5.4): the churner and the victims are killed */
}

static void stop_wthread(struct wthread *w) {
    xt_set(&w->stop, 1);
    if (w->role == 1) {
        pthread_mutex_lock(&w->mx);
        w->events++;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mx);
    } else {
        slp_scheduler_wakeup(xt_get(&g_tab[w->role].tid));
    }
    pthread_join(w->th, NULL);
}

/* ---------------------------------------------------------------- the test */
TEST(stress_4_producers_2_consumers_kills_and_random_preferences) {
    const char *env = getenv("SLP_STRESS_VALUES");
    long want = env && atol(env) > 0 ? atol(env) : 1000000;
    g_per_part = (want + NPARTS - 1) / NPARTS;
    if (g_per_part > 0xffffff) g_per_part = 0xffffff;
    g_total = g_per_part * NPARTS;
    watchdog(30); /* the run must take < 20 s: see the check below */

    slp_channel_options co;
    slp_channel_options_init(&co);
    CHECK_ST(slp_channel_new_ex(&co, &g_ch[0]), SLP_OK);
    co.capacity = 32;
    CHECK_ST(slp_channel_new_ex(&co, &g_ch[1]), SLP_OK);
    for (int i = 0; i < NPARTS; i++) g_parts[i] = (struct part){.id = i, .seed = 0x1234567u * (uint32_t)(i + 1),
                                                                .randomize_prefs = i == 0};
    for (int i = 0; i < 2; i++) g_cons[i].seen = calloc((size_t)g_total, 1);
    for (int c = 0; c < NCH; c++) g_ct[c] = (struct ctasklet){&g_cons[0], c};
    for (int i = 0; i < NWORKERS; i++) {
        pthread_mutex_init(&g_tab[i].mx, NULL);
        g_tab[i].seed = 0xabcdef1u + (uint32_t)i;
        CHECK_ST(slp_channel_new(&g_tab[i].tick), SLP_OK);
    }

    int64_t t0 = now_ns();
    for (int i = 0; i < NWORKERS; i++) {
        g_w[i].role = i;
        pthread_mutex_init(&g_w[i].mx, NULL);
        pthread_cond_init(&g_w[i].cv, NULL);
        CHECK_EQ_INT(pthread_create(&g_w[i].th, NULL, worker_thread, &g_w[i]), 0);
    }
    pthread_t p2, p3, c1;
    CHECK_EQ_INT(pthread_create(&p2, NULL, plain_producer, &g_parts[4]), 0);
    CHECK_EQ_INT(pthread_create(&p3, NULL, plain_producer, &g_parts[5]), 0);
    CHECK_EQ_INT(pthread_create(&c1, NULL, plain_consumer, &g_cons[1]), 0);

    /* every thread participates before this one may block on a tick */
    CHECK_WAIT(xt_get(&g_ready) == NWORKERS + 3, 5000);
    int64_t t_ready = now_ns();
    /* main: tick the churners and kill victims across threads until every producer is done */
    uint32_t seed = 777;
    long rounds = 0;
    while (xt_get(&g_parts_done) < NPARTS) {
        for (int i = 0; i < NWORKERS; i++) {
            slp_status st = slp_channel_send(g_tab[i].tick, IPTR(1));
            if (st != SLP_OK) {
                stress_error("tick send", st);
                xt_lock();
                printf("tick send to worker %d failed (%d): parts done %ld; threads P0 %s, P1 %s, C0 %s, P2 %s, "
                       "P3 %s, C1 %s\n",
                       i, (int)st, g_parts_done, g_phase_name[g_phase[0]], g_phase_name[g_phase[1]],
                       g_phase_name[g_phase[2]], g_phase_name[g_phase[3]], g_phase_name[g_phase[4]],
                       g_phase_name[g_phase[5]]);
                xt_unlock();
            }
        }
        for (int k = 0; k < 4; k++) {
            struct wtable *w = &g_tab[rnd(&seed) % NWORKERS];
            int s = (int)(rnd(&seed) % NVICTIMS);
            pthread_mutex_lock(&w->mx);
            slp_tasklet *t = w->slot[s];
            if (t) slp_tasklet_retain(t);
            pthread_mutex_unlock(&w->mx);
            if (t) {
                slp_status st = slp_tasklet_kill(t, false); /* cross-thread: pending anyway */
                if (st != SLP_OK) stress_error("cross-thread kill", st);
                xt_add(&g_xkills, 1);
                slp_tasklet_release(t);
            }
        }
        rounds++;
        usleep(100);
    }
    int64_t t_produced = now_ns();
    /* every send returned: all values are received or in the buffer; shut down, consumers drain */
    for (int c = 0; c < NCH; c++) CHECK_ST(slp_channel_shutdown(g_ch[c]), SLP_OK);
    CHECK_WAIT(xt_get(&g_consumers_done) == 3, 5000);
    int64_t t1 = now_ns();
    for (int i = 0; i < NWORKERS; i++) stop_wthread(&g_w[i]);
    pthread_join(p2, NULL);
    pthread_join(p3, NULL);
    pthread_join(c1, NULL);

    double secs = (double)(t1 - t0) / 1e9;
    printf("stress: %ld values through 2 shared channels in %.2f s: %.0f values/s "
           "(production done after %.2f s)\n",
           g_total, secs, (double)g_total / secs, (double)(t_produced - t0) / 1e9);
    printf("stress: threads ready after %.1f ms; producer parts done after", (double)(t_ready - t0) / 1e6);
    for (int i = 0; i < NPARTS; i++) printf(" %.2f", (double)(g_part_end[i] - t0) / 1e9);
    printf(" s (P0 P0 P1 P1 P2 P3)\n");
    printf("stress: %ld churn rounds; victims: %ld created, %ld started, %ld killed seen; %ld cross-thread "
           "kills, %ld local kills, %ld throws, %ld victim messages; %ld preference changes; C0 got %ld, C1 got %ld; "
           "P1 host loop: %ld wake-up callbacks (%ld on P1 itself)\n",
           rounds, g_victims_created, g_victims_started, g_victims_killed_seen, g_xkills, g_local_kills, g_throws,
           g_victim_msgs, g_pref_changes, g_cons[0].received, g_cons[1].received, g_w[1].callbacks, g_w[1].self_callbacks);

    CHECK_MSG(g_errors == 0, "%ld error(s), first: %s", g_errors, g_first_error);
    CHECK_EQ_INT(g_parts_done, NPARTS);
    CHECK_EQ_INT(g_w[1].stalls, 0);
    /* every value exactly once */
    long missing = 0, dup = 0, first_bad = -1;
    for (long i = 0; i < g_total; i++) {
        int n = g_cons[0].seen[i] + g_cons[1].seen[i];
        if (n != 1 && first_bad < 0) first_bad = i;
        if (n == 0) missing++;
        if (n > 1) dup++;
    }
    CHECK_MSG(missing == 0 && dup == 0, "%ld missing, %ld duplicated (first bad index %ld)", missing, dup,
              first_bad);
    CHECK_EQ_INT(g_cons[0].bad + g_cons[1].bad, 0);
    CHECK_EQ_INT(g_cons[0].received + g_cons[1].received, g_total);
    CHECK(g_cons[0].received > 0 && g_cons[1].received > 0);
    for (int c = 0; c < NCH; c++) CHECK_EQ_INT(slp_channel_balance(g_ch[c]), 0);
    /* churn really happened */
    CHECK(g_victims_created > 0 && g_xkills > 0 && g_local_kills > 0 && g_pref_changes > 0);
    if (want >= 1000000 && !xt_slow())
        CHECK_MSG(secs < 20.0, "the stress run took %.1f s (limit 20 s)", secs);

    /* release every victim handle (dead now: their threads exited): each arg_free ran once */
    for (int i = 0; i < NWORKERS; i++) {
        for (int s = 0; s < NVICTIMS; s++) {
            slp_tasklet *t = g_tab[i].slot[s];
            if (!t) continue;
            CHECK(!slp_tasklet_alive(t));
            CHECK_EQ_INT(slp_tasklet_thread_id(t), -1);
            slp_tasklet_release(t);
            g_tab[i].slot[s] = NULL;
        }
        slp_channel_release(g_tab[i].tick);
        for (size_t k = 0; k < g_tab[i].nall; k++) {
            struct victim *v = g_tab[i].all[k];
            if (v->freed != 1) {
                CHECK_MSG(v->freed == 1, "a victim's arg_free ran %ld times", v->freed);
                break;
            }
            slp_channel_release(v->pch);
            free(v);
        }
        free(g_tab[i].all);
        pthread_mutex_destroy(&g_tab[i].mx);
        pthread_mutex_destroy(&g_w[i].mx);
        pthread_cond_destroy(&g_w[i].cv);
    }
    CHECK_EQ_INT(g_victims_freed, g_victims_created);
    for (int c = 0; c < NCH; c++) slp_channel_release(g_ch[c]);
    for (int i = 0; i < 2; i++) free(g_cons[i].seen);
}
