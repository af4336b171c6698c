/*
 * game_loop.c - a fixed-step game loop whose entities are libslp tasklets.
 *
 * This is the pattern Stackless Python made famous in EVE Online: every game entity is
 * written as a plain, sequential function ("walk to the next corner, report it, wait for the
 * next frame, repeat") running on its own small stack, and the engine's main loop drives all
 * of them once per frame with a single slp_run() call.
 *
 * What it shows:
 *   - agents      tasklets that patrol a rectangle, moving a fixed step per frame;
 *   - the tick    a channel every entity waits on; the host sends one message per waiting
 *                 entity each frame, so every entity acts exactly once per frame;
 *   - a spawner   a tasklet that creates a new agent every SPAWN_EVERY frames, then retires;
 *   - a mailbox   a tasklet that receives "reached waypoint" events from the agents over a
 *                 buffered channel (ownership of each event passes to it);
 *   - a kill      the host kills one agent mid-game with slp_tasklet_kill(); the agent's
 *                 blocking call returns SLP_E_KILLED, it cleans up and returns;
 *   - teardown    channels are shut down so every tasklet leaves its loop, then everything
 *                 is released.
 *
 * Time is a fixed step (DT_MS of game time per frame) and nothing reads the wall clock, so
 * the output is the same on every run: examples/game_loop.expected holds it.
 *
 * Build and run (from the repository root, after `cargo build --release`):
 *   cc -Iinclude examples/game_loop.c -Ltarget/release -lslp -o game_loop
 *   LD_LIBRARY_PATH=target/release ./game_loop
 */
#include <slp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- game parameters ------------------------------------------------------------------- */

#define FRAMES         300  /* length of the game                                          */
#define DT_MS          20   /* fixed step: 20 ms of game time per frame (50 Hz)            */
#define INITIAL_AGENTS 3    /* agents the host creates before the first frame              */
#define MAX_AGENTS     10   /* the spawner stops (and its tasklet ends) at this many       */
#define SPAWN_EVERY    40   /* the spawner adds one agent every SPAWN_EVERY frames         */
#define KILL_FRAME     150  /* at the start of this frame the host kills...                */
#define KILL_AGENT     2    /* ...this agent                                               */
#define REPORT_EVERY   60   /* the host prints a status line every REPORT_EVERY frames     */
#define ROUTE_W        40   /* each agent patrols a ROUTE_W x ROUTE_H rectangle            */
#define ROUTE_H        20

/* ---- error handling -------------------------------------------------------------------- */

/* Every libslp call that can fail returns a slp_status (SLP_OK == 0). On failure,
 * slp_last_error() holds a message for the calling thread; read it right away, the next
 * slp_* call on this thread may replace it. */
static void report(const char *who, const char *what, slp_status st)
{
    fprintf(stderr, "%s: %s failed: %s (%d): %s\n", who, what, slp_status_str(st), (int)st,
            slp_last_error());
}

/* In the host (main tasklet): a failure ends the program. */
#define CHECK(call)                                                                        \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK) {                                                               \
            report("host", #call, st_);                                                    \
            exit(EXIT_FAILURE);                                                            \
        }                                                                                  \
    } while (0)

/* ---- the world ------------------------------------------------------------------------- */

/* What the host keeps per agent. The tasklet handle is a reference we own (we need it to
 * kill the agent and to check it ended); the stats outlive the agent for the summary. */
typedef struct agent_slot {
    slp_tasklet *tasklet;
    int waypoints; /* waypoints reached */
    int laps;      /* full rounds of the rectangle */
    const char *fate;
} agent_slot;

typedef struct world {
    int frame;              /* the frame being simulated (1..FRAMES)                     */
    slp_channel *tick;      /* entities block here between frames                        */
    slp_channel *events;    /* agents -> mailbox                                         */
    agent_slot agents[MAX_AGENTS + 1]; /* indexed by agent id, 1..MAX_AGENTS             */
    int spawned;
    int alive;
    int killed;
    int events_handled;
    int laps_reported;
} world;

static world g_world;

/* An event an agent posts to the mailbox. It is malloc'ed by the agent; when the send
 * succeeds, ownership passes to the receiver (the mailbox frees it). */
typedef struct event {
    int agent_id;
    int waypoint; /* index of the corner reached; 0 means a lap is complete */
    int lap;
    int frame;
} event;

/* ---- waiting for the next frame -------------------------------------------------------- */

/* Every entity calls this at the end of its frame's work. It blocks the calling tasklet on
 * the tick channel; the host sends each waiting entity the number of the next frame.
 *
 * Why a channel and not slp_schedule()? slp_run() keeps running tasklets until none is
 * runnable, so a tasklet that merely calls slp_schedule() would run again in the same
 * slp_run() - many times per frame. Blocking on the tick makes the entity non-runnable until
 * the host wakes it, so each one acts exactly once per frame and slp_run() returns when all
 * of them have had their turn. (Another correct pattern: slp_schedule_remove() to park, and
 * the host slp_tasklet_insert()s every parked entity each frame; the tick channel spares the
 * host the bookkeeping.)
 *
 * Returns SLP_OK with *frame set, SLP_E_CLOSED when the game is over (the host shut the
 * tick down), SLP_E_KILLED if this tasklet was killed while waiting. */
static slp_status wait_next_frame(int *frame)
{
    void *msg = NULL;
    slp_status st = slp_channel_receive(g_world.tick, &msg);
    if (st == SLP_OK)
        *frame = (int)(intptr_t)msg;
    return st;
}

/* ---- agents ---------------------------------------------------------------------------- */

/* The agent's private state: malloc'ed by spawn_agent() and handed to the tasklet as its
 * argument. libslp calls free_agent() (the arg_free option) exactly once, when the tasklet
 * is done with it: after the function returns, or if the tasklet is discarded unstarted. */
typedef struct agent {
    int id;
    int x, y;          /* position, in world units                                       */
    int step;          /* units moved per frame (speed * DT)                             */
    int corner[4][2];  /* the patrol route                                               */
    int target;        /* index of the corner it walks to                                */
} agent;

static void free_agent(void *arg) { free(arg); }

/* Move one fixed step toward the target corner; returns 1 if the corner was reached. */
static int move_toward_target(agent *a)
{
    int tx = a->corner[a->target][0], ty = a->corner[a->target][1];
    int dx = tx - a->x, dy = ty - a->y; /* the route is axis-aligned: one of them is 0 */
    int dist = abs(dx) + abs(dy);
    if (dist <= a->step) {
        a->x = tx;
        a->y = ty;
        return 1;
    }
    a->x += (dx > 0) ? a->step : (dx < 0) ? -a->step : 0;
    a->y += (dy > 0) ? a->step : (dy < 0) ? -a->step : 0;
    return 0;
}

static int32_t agent_main(void *arg)
{
    agent *a = (agent *)arg;
    agent_slot *slot = &g_world.agents[a->id];
    for (;;) {
        int frame;
        slp_status st = wait_next_frame(&frame);
        if (st == SLP_E_KILLED) {
            /* Someone called slp_tasklet_kill() on us. Like Stackless's TaskletExit: clean
             * up and return SLP_E_KILLED (a silent end; anything else non-zero would be an
             * "uncaught error" that slp_run() hands to the host). Our argument is freed by
             * arg_free after we return. */
            printf("[frame %3d] agent %d: killed at (%d, %d) after %d waypoints; cleaning up\n",
                   g_world.frame, a->id, a->x, a->y, slot->waypoints);
            slot->fate = "killed";
            g_world.alive--;
            g_world.killed++;
            return SLP_E_KILLED;
        }
        if (st == SLP_E_CLOSED) { /* game over: the host shut the tick channel down */
            slot->fate = "alive at the end";
            return 0;
        }
        if (st != SLP_OK) {
            report("agent", "slp_channel_receive(tick)", st);
            return st; /* an uncaught error: the host's slp_run() returns it */
        }

        /* This frame's work. */
        if (!move_toward_target(a))
            continue;
        int reached = a->target;
        a->target = (a->target + 1) % 4;
        slot->waypoints++;
        if (reached == 0)
            slot->laps++;

        /* Post "reached waypoint" to the mailbox. The events channel is buffered with
         * preference 0 (see main), so this send never blocks and never switches away:
         * the agent finishes its frame, the mailbox handles the events after the agents. */
        event *ev = (event *)malloc(sizeof *ev);
        if (!ev) {
            fprintf(stderr, "agent %d: out of memory\n", a->id);
            return SLP_E_NOMEM;
        }
        ev->agent_id = a->id;
        ev->waypoint = reached;
        ev->lap = slot->laps;
        ev->frame = frame;
        st = slp_channel_send(g_world.events, ev);
        if (st != SLP_OK) {
            free(ev); /* the send failed: the event is still ours */
            if (st == SLP_E_KILLED) { /* a kill can arrive in any blocking call */
                slot->fate = "killed";
                g_world.alive--;
                g_world.killed++;
                return SLP_E_KILLED;
            }
            report("agent", "slp_channel_send(events)", st);
            return st;
        }
    }
}

/* Create agent number g_world.spawned + 1. Called by the host before the game and by the
 * spawner tasklet during it; either way the new tasklet belongs to this thread and is
 * appended to its run queue: it starts in the current (or next) slp_run() and immediately
 * waits for the tick, so it first moves in the frame after it was spawned. */
static slp_status spawn_agent(void)
{
    int id = g_world.spawned + 1;
    agent *a = (agent *)calloc(1, sizeof *a);
    if (!a)
        return SLP_E_NOMEM;
    a->id = id;
    int ox = 50 * ((id - 1) % 4), oy = 30 * ((id - 1) / 4); /* each agent its own block */
    int route[4][2] = {{ox, oy}, {ox + ROUTE_W, oy}, {ox + ROUTE_W, oy + ROUTE_H}, {ox, oy + ROUTE_H}};
    for (int i = 0; i < 4; i++) {
        a->corner[i][0] = route[i][0];
        a->corner[i][1] = route[i][1];
    }
    a->x = ox;
    a->y = oy;
    a->target = 1;
    int speed = 50 * (1 + id % 3);    /* units per second: 50, 100 or 150 */
    a->step = speed * DT_MS / 1000;   /* units per frame:  1,  2   or 3   */

    char name[32];
    snprintf(name, sizeof name, "agent-%d", id);
    slp_tasklet_options opts;
    slp_tasklet_options_init(&opts); /* sets struct_size and the defaults */
    opts.name = name;                /* copied by libslp; shows up in error messages */
    opts.arg_free = free_agent;      /* libslp frees `a` when the tasklet is done with it */

    slp_tasklet *t = NULL;
    slp_status st = slp_tasklet_new_ex(agent_main, a, &opts, &t);
    if (st != SLP_OK) {
        free(a); /* not created: arg_free is not called, the argument is still ours */
        return st;
    }
    g_world.agents[id].tasklet = t; /* our reference, released at the end */
    g_world.spawned++;
    g_world.alive++;
    if (g_world.frame > 0)
        printf("[frame %3d] spawner: agent %d enters its patrol at (%d, %d), %d units/s\n",
               g_world.frame, id, ox, oy, speed);
    return SLP_OK;
}

/* ---- the spawner ----------------------------------------------------------------------- */

static int32_t spawner_main(void *arg)
{
    (void)arg;
    while (g_world.spawned < MAX_AGENTS) {
        int frame;
        slp_status st = wait_next_frame(&frame);
        if (st == SLP_E_CLOSED)
            return 0; /* the game ended first */
        if (st != SLP_OK) {
            report("spawner", "slp_channel_receive(tick)", st);
            return st;
        }
        if (frame % SPAWN_EVERY == 0) {
            st = spawn_agent();
            if (st != SLP_OK) {
                report("spawner", "spawn_agent", st);
                return st;
            }
        }
    }
    /* Job done: returning 0 ends this tasklet normally; libslp frees its stack. */
    printf("[frame %3d] spawner: all %d agents spawned, retiring\n", g_world.frame, MAX_AGENTS);
    return 0;
}

/* ---- the mailbox ----------------------------------------------------------------------- */

/* Receives events until the channel is shut down: "receive until SLP_E_CLOSED" is the
 * channel iteration idiom. */
static int32_t mailbox_main(void *arg)
{
    (void)arg;
    for (;;) {
        void *msg = NULL;
        slp_status st = slp_channel_receive(g_world.events, &msg);
        if (st == SLP_E_CLOSED)
            return 0;
        if (st != SLP_OK) {
            report("mailbox", "slp_channel_receive(events)", st);
            return st;
        }
        event *ev = (event *)msg; /* ours now */
        g_world.events_handled++;
        if (ev->waypoint == 0) {
            g_world.laps_reported++;
            printf("[frame %3d] mailbox: agent %d finished lap %d\n", ev->frame, ev->agent_id,
                   ev->lap);
        }
        free(ev);
    }
}

/* ---- the host -------------------------------------------------------------------------- */

int main(void)
{
    /* Channels. The tick is a plain rendezvous channel with preference 0: when the host
     * sends to a waiting entity, the host keeps running and the entity is only appended to
     * the run queue. (With the default preference -1 the receiver would run at once, inside
     * the send; we want the entities to run inside slp_run().) */
    slp_channel_options copts;
    slp_channel_options_init(&copts);
    copts.preference = 0;
    CHECK(slp_channel_new_ex(&copts, &g_world.tick));

    /* The events channel is buffered (like a message queue) with preference 0 as well:
     * an agent's send never blocks and never switches away, so agents keep their place in
     * the frame and the mailbox handles the frame's events after them. */
    slp_channel_options_init(&copts);
    copts.preference = 0;
    copts.capacity = 64;
    CHECK(slp_channel_new_ex(&copts, &g_world.events));

    /* The mailbox and the spawner are fire-and-forget tasklets (out == NULL): we never need
     * to talk to them directly, and libslp keeps them alive while they run or wait. They
     * end when the channels they wait on are shut down (or, for the spawner, when done). */
    CHECK(slp_tasklet_new(mailbox_main, NULL, NULL));
    CHECK(slp_tasklet_new(spawner_main, NULL, NULL));
    for (int i = 0; i < INITIAL_AGENTS; i++)
        CHECK(spawn_agent());

    /* Let every tasklet start and reach its first wait (the mailbox on the events channel,
     * the others on the tick) before the first frame. */
    CHECK(slp_run());
    printf("game starts: %d agents, %d frames of %d ms\n", g_world.alive, FRAMES, DT_MS);

    for (int frame = 1; frame <= FRAMES; frame++) {
        g_world.frame = frame;

        /* Game events decided by the host. slp_tasklet_kill(t, false) switches to the
         * target at once: its blocking call (here, the tick receive) returns SLP_E_KILLED,
         * it cleans up and returns, and control comes back here. The kill also takes it
         * off the tick channel, so the channel's balance stays right. */
        if (frame == KILL_FRAME) {
            slp_tasklet *victim = g_world.agents[KILL_AGENT].tasklet;
            CHECK(slp_tasklet_kill(victim, false));
            if (slp_tasklet_alive(victim)) {
                fprintf(stderr, "host: agent %d survived its kill\n", KILL_AGENT);
                return EXIT_FAILURE;
            }
        }

        /* Wake every entity waiting for the tick: balance < 0 means that many receivers
         * wait. Each send hands one of them the frame number and appends it to the run
         * queue (preference 0), in the order they started waiting. */
        while (slp_channel_balance(g_world.tick) < 0)
            CHECK(slp_channel_send(g_world.tick, (void *)(intptr_t)frame));

        /* Run this frame's tasklets until all are waiting again. slp_run() returns SLP_OK,
         * or the uncaught error of a tasklet that failed. */
        CHECK(slp_run());

        if (frame % REPORT_EVERY == 0)
            printf("[frame %3d] t=%d.%02ds  agents alive %d  events handled %d\n", frame,
                   frame * DT_MS / 1000, frame * DT_MS % 1000 / 10, g_world.alive,
                   g_world.events_handled);
    }
    int alive_at_end = g_world.alive;

    /* Teardown. Shutting a channel down wakes every tasklet blocked on it with
     * SLP_E_CLOSED: the entities leave their loops and return, then the mailbox (after
     * draining whatever is still buffered). slp_run() lets them finish. */
    CHECK(slp_channel_shutdown(g_world.tick));
    CHECK(slp_run());
    CHECK(slp_channel_shutdown(g_world.events));
    CHECK(slp_run());

    printf("game over\n");
    for (int id = 1; id <= g_world.spawned; id++) {
        agent_slot *s = &g_world.agents[id];
        if (slp_tasklet_alive(s->tasklet)) { /* every agent has returned by now */
            fprintf(stderr, "host: agent %d is still alive after teardown\n", id);
            return EXIT_FAILURE;
        }
        printf("  agent %2d: %2d waypoint%s, %d lap%s, %s\n", id, s->waypoints,
               s->waypoints == 1 ? "" : "s", s->laps, s->laps == 1 ? "" : "s", s->fate);
        slp_tasklet_release(s->tasklet); /* drop our reference; libslp frees the tasklet */
        s->tasklet = NULL;
    }
    /* Channels are reference counted too: release the ones we created. */
    slp_channel_release(g_world.tick);
    slp_channel_release(g_world.events);

    printf("summary: frames %d, agents spawned %d, agents alive %d, agents killed %d, "
           "events handled %d, laps %d\n",
           FRAMES, g_world.spawned, alive_at_end, g_world.killed, g_world.events_handled,
           g_world.laps_reported);
    return EXIT_SUCCESS;
}
