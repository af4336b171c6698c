/*
 * lua_scripts.c - game scripts written in Lua, each running in its own libslp tasklet, kept in
 * check by libslp's watchdog.
 *
 * A game lets designers write entity and level logic as small sequential scripts ("count,
 * wait 30 ms, count again"; "send the next order to the factory"). Each script here gets its
 * own lua_State inside its own tasklet, so a script that calls sleep() or receive() simply
 * blocks its tasklet while the rest of the game goes on. The host's frame loop runs every
 * script once per frame, with a budget:
 *
 *   - preemption  a Lua count hook calls slp_tick(1) every HOOK_EVERY VM instructions, and the
 *                 host runs each frame with slp_run_watchdog(BUDGET_TICKS, ...): a script that
 *                 uses more than its budget is interrupted inside slp_tick and continues in
 *                 the next frame. Even `while true do end` cannot freeze the game;
 *   - a kill      a script interrupted in HUNG_FRAMES frames in a row is considered hung and
 *                 killed (slp_tasklet_kill): slp_tick returns SLP_E_KILLED, the hook raises a
 *                 Lua error, the script unwinds, its lua_State is closed;
 *   - game time   the host installs its own clock (slp_set_clock): game time advances a fixed
 *                 FRAME_NS per frame, and a script's sleep() (slp_sleep) counts game time, so
 *                 a sleeping script always wakes in the same frame whatever the machine's
 *                 speed (and would stay asleep while the game is paused);
 *   - a channel   two scripts talk over a channel the host created, as send(v) / receive();
 *   - errors      a script's Lua error is caught (lua_pcall in its tasklet), reported as
 *                 "script X failed: ...", and ends only that script.
 *
 * THE ONE RULE when mixing Lua and libslp: never longjmp across libslp. Lua raises errors with
 * longjmp (or a C++ exception when Lua is built as C++). A Lua error raised while a libslp call
 * is still on the stack - from inside a libslp callback, say - would jump over libslp's own
 * (Rust) frames: its state would be left half-updated, and unwinding Rust frames that way is
 * undefined behaviour. So every libslp call here returns normally, its status is looked at,
 * and only then, from our own C code, is a Lua error raised: the count hook calls slp_tick(1),
 * which may switch away for many frames but does return, and then calls luaL_error if it
 * returned SLP_E_KILLED; sleep(), send() and receive() do the same. (The reverse is fine: a
 * Lua error thrown inside the script unwinds only Lua frames and our C functions, up to the
 * lua_pcall in the script's tasklet function, all on the tasklet's own stack.)
 *
 * Everything is driven by the frame counter (the game clock, instruction counts, the order in
 * which the host starts the scripts), so the output is the same on every run:
 * examples/lua_scripts.expected holds it. (The frames in which the consumer is interrupted
 * follow Lua's instruction counts, which could change with another Lua 5.4 release.)
 *
 * Usage: lua_scripts [DIR]   runs every .lua file of DIR in name order (default:
 * LUA_SCRIPTS_DIR, which examples/CMakeLists.txt sets to examples/scripts).
 *
 * Build and run by hand (from the repository root; Debian: apt-get install liblua5.4-dev).
 * `cmake --build build` stages libslp.so.0, the name the program loads, in build/lib:
 *   cmake -S . -B build && cmake --build build
 *   cc -Iinclude $(pkg-config --cflags lua5.4) examples/lua_scripts.c -Lbuild/lib -lslp \
 *      $(pkg-config --libs lua5.4) -lm -o lua_scripts
 *   LD_LIBRARY_PATH=build/lib ./lua_scripts examples/scripts
 */
#define _POSIX_C_SOURCE 200809L /* strdup, opendir */

#include <slp.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LUA_SCRIPTS_DIR
#define LUA_SCRIPTS_DIR "scripts"
#endif

#if LUA_VERSION_NUM != 504
#error "lua_scripts.c is written for Lua 5.4"
#endif

/* ---- parameters ------------------------------------------------------------------------ */

#define FRAME_NS     10000000LL /* game time per frame: 10 ms (100 Hz)                        */
#define HOOK_EVERY   1000       /* Lua VM instructions between two slp_tick(1) calls          */
#define BUDGET_TICKS 10         /* a script's slice: 10 ticks, i.e. about 10,000 instructions */
#define HUNG_FRAMES  20         /* interrupted in this many frames in a row: killed            */
#define MAX_FRAMES   100        /* the level ends: scripts still alive then are killed         */
#define MAX_SCRIPTS  16
/* Lua runs C code on the tasklet's stack: the VM, the standard library, our functions, and
 * one C frame chain per nested pcall / metamethod / coroutine.resume (Lua allows 200 nested
 * C calls). 1 MiB is plenty; it is reserved address space, touched pages only are used. */
#define SCRIPT_STACK (1024 * 1024)

/* ---- error handling (the host) --------------------------------------------------------- */

static void report(const char *what, slp_status st)
{
    fprintf(stderr, "host: %s failed: %s (%d): %s\n", what, slp_status_str(st), (int)st,
            slp_last_error());
}

#define CHECK(call)                                                                        \
    do {                                                                                   \
        slp_status st_ = (call);                                                           \
        if (st_ != SLP_OK) {                                                               \
            report(#call, st_);                                                            \
            exit(EXIT_FAILURE);                                                            \
        }                                                                                  \
    } while (0)

/* ---- the scripts ----------------------------------------------------------------------- */

typedef enum { SCRIPT_RUNNING, SCRIPT_FINISHED, SCRIPT_FAILED, SCRIPT_KILLED } script_state;

static const char *const state_names[] = {"running", "finished", "failed", "killed"};

/* What the host keeps per script. The record outlives the script's lua_State (closed by the
 * tasklet's arg_free when the tasklet is done) for the summary. */
typedef struct script {
    char name[64];        /* the file name without ".lua"; also the tasklet's name          */
    lua_State *L;         /* its own Lua state, used only by its own tasklet                */
    slp_tasklet *tasklet; /* our reference: to kill it and to recognise it when interrupted */
    script_state state;
    bool kill_seen;       /* a libslp call returned SLP_E_KILLED: the script must unwind    */
    bool interrupted_now; /* interrupted during the current frame                           */
    int interrupts;       /* times the watchdog interrupted it                              */
    int strikes;          /* frames in a row in which it was interrupted                    */
    int sent, received;   /* values it passed over the channel                              */
    char error[200];      /* the Lua error that ended it, if it failed                      */
} script;

static struct {
    int64_t now_ns;       /* game time: what the clock given to slp_set_clock returns       */
    int frame;            /* the frame being run (1, 2, ...); 0 before the first            */
    slp_channel *channel; /* the channel behind send() / receive()                          */
    script scripts[MAX_SCRIPTS];
    int count;
} g;

/* Each lua_State carries a pointer to its script in its "extra space" (LUA_EXTRASPACE bytes
 * in front of the state; coroutines the script creates get a copy of it). */
static script *script_of(lua_State *L) { return *(script **)lua_getextraspace(L); }

static script *script_of_tasklet(const slp_tasklet *t)
{
    for (int i = 0; i < g.count; i++)
        if (g.scripts[i].tasklet == t)
            return &g.scripts[i];
    return NULL;
}

/* ---- the game clock -------------------------------------------------------------------- */

/* Installed with slp_set_clock: libslp reads time from here, so slp_sleep and every timeout
 * of this thread count game time. It must never go backwards; it stands still between
 * frames (and would stand still while the game is paused: sleeping scripts would not wake). */
static int64_t game_clock(void *user_data)
{
    (void)user_data;
    return g.now_ns;
}

/* ---- from libslp statuses to Lua errors ------------------------------------------------ */

static void watchdog_hook(lua_State *L, lua_Debug *ar);

/* Called after a libslp call returned `st` != SLP_OK: raises the matching Lua error (does not
 * return). The libslp call has returned, so this longjmp crosses only Lua's frames and ours. */
static int raise_status(lua_State *L, const char *what, slp_status st)
{
    if (st == SLP_E_KILLED) {
        /* slp_tasklet_kill(): like Stackless's TaskletExit, the script must unwind. A script
         * can catch a Lua error (pcall, coroutine.resume) and go on, and libslp delivers a
         * kill once; so from now on the hook runs at every VM instruction of this Lua thread
         * and raises the error again (see watchdog_hook): each pcall the error crosses
         * returns to Lua code whose first instruction raises it once more, until nothing is
         * left to unwind. (A long call into C, a huge string.rep or a pathological pattern
         * match, runs no VM instructions: neither the watchdog nor a kill can stop it.) */
        script_of(L)->kill_seen = true;
        lua_sethook(L, watchdog_hook, LUA_MASKCOUNT, 1);
        return luaL_error(L, "killed by the host");
    }
    return luaL_error(L, "%s: %s (%s)", what, slp_status_str(st), slp_last_error());
}

/* The count hook: called by the Lua VM every HOOK_EVERY instructions of the script (and of
 * the coroutines it creates, which inherit the hook). slp_tick(1) is where the watchdog
 * interrupts a script that used up its budget: this tasklet is suspended inside slp_tick,
 * the host's slp_run_watchdog returns, and the script resumes right here, frames later,
 * when the host has inserted it again. */
static void watchdog_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    script *s = script_of(L);
    /* Once killed, every later hook raises the error again (see raise_status). */
    slp_status st = s->kill_seen ? SLP_E_KILLED : slp_tick(1);
    if (st != SLP_OK)
        raise_status(L, "watchdog", st);
}

/* ---- the functions scripts can call ---------------------------------------------------- */

/* sleep(seconds): blocks this script (only) for that much game time. */
static int l_sleep(lua_State *L)
{
    lua_Number seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds <= 1e6, 1, "between 0 and 1e6 seconds expected");
    slp_status st = slp_sleep((int64_t)llround(seconds * 1e9));
    if (st != SLP_OK)
        return raise_status(L, "sleep", st);
    return 0;
}

/* send(v): passes integer v to the script that receive()s it; blocks until one does. The
 * value travels boxed in the void * itself: no allocation, nothing to free. */
static int l_send(lua_State *L)
{
    lua_Integer v = luaL_checkinteger(L, 1);
#if LUA_MAXINTEGER > INTPTR_MAX
    luaL_argcheck(L, v >= INTPTR_MIN && v <= INTPTR_MAX, 1, "integer does not fit a pointer");
#endif
    slp_status st = slp_channel_send(g.channel, (void *)(intptr_t)v);
    if (st != SLP_OK)
        return raise_status(L, "send", st);
    script_of(L)->sent++;
    return 0;
}

/* receive(): the next integer sent by another script; blocks until one comes. */
static int l_receive(lua_State *L)
{
    void *value = NULL;
    slp_status st = slp_channel_receive(g.channel, &value);
    if (st != SLP_OK)
        return raise_status(L, "receive", st);
    script_of(L)->received++;
    lua_pushinteger(L, (lua_Integer)(intptr_t)value);
    return 1;
}

/* print(...): like Lua's, tagged with the frame and the script's name. */
static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL); /* may run a __tostring metamethod: Lua code, hooks */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    printf("[frame %2d] %s: ", g.frame, script_of(L)->name);
    fwrite(text, 1, len, stdout);
    putchar('\n');
    return 0;
}

/* ---- creating a script ----------------------------------------------------------------- */

typedef struct source {
    const char *text;
    size_t len;
    char chunkname[80];
} source;

/* Runs under lua_pcall (the host's call below), so that an error while setting the state up
 * (out of memory, a syntax error) is reported instead of aborting the program through Lua's
 * panic handler. Arguments: the script and its source (light userdata). Leaves the loaded
 * chunk, ready to be called, as its result. */
static int setup_state(lua_State *L)
{
    script *s = (script *)lua_touserdata(L, 1);
    const source *src = (const source *)lua_touserdata(L, 2);
    *(script **)lua_getextraspace(L) = s;

    /* Only the libraries a game script needs. Not `io` and `os`: a script blocked in a system
     * call cannot be interrupted (the hook runs between VM instructions only), and it should
     * not touch files anyway. Not `debug`: debug.sethook would let a script remove the
     * watchdog's hook. Not `package` (require loads files and C modules). */
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},   {LUA_UTF8LIBNAME, luaopen_utf8},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile"); /* the base library's file access */
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");

    lua_register(L, "print", l_print);
    lua_register(L, "sleep", l_sleep);
    lua_register(L, "send", l_send);
    lua_register(L, "receive", l_receive);

    /* Mode "t": text only. Precompiled (binary) chunks are not checked by Lua and a bad one
     * can crash the VM. The chunk name "@counter.lua" makes error messages read
     * "counter.lua:3: ...", whatever the directory. */
    if (luaL_loadbufferx(L, src->text, src->len, src->chunkname, "t") != LUA_OK)
        return lua_error(L); /* the message is on the stack */

    /* The watchdog. Set last: nothing above needs it. */
    lua_sethook(L, watchdog_hook, LUA_MASKCOUNT, HOOK_EVERY);
    return 1;
}

/* The tasklet's arg_free: libslp calls it exactly once when the tasklet is done with its
 * script - after script_main returned, or if the tasklet was killed or discarded before it
 * started. Closing the state runs the script's pending finalizers (__gc): the hook is removed
 * first, so none of that Lua code reaches slp_tick from inside libslp's callback. */
static void close_script(void *arg)
{
    script *s = (script *)arg;
    if (s->L) {
        lua_sethook(s->L, NULL, 0, 0);
        lua_close(s->L);
        s->L = NULL;
    }
}

/* The tasklet function: runs the chunk setup_state left on the Lua stack. */
static int32_t script_main(void *arg)
{
    script *s = (script *)arg;
    lua_State *L = s->L;
    int rc = lua_pcall(L, 0, 0, 0);
    if (rc == LUA_OK) {
        s->state = SCRIPT_FINISHED;
        printf("[frame %2d] script %s finished\n", g.frame, s->name);
        return 0;
    }
    if (s->kill_seen) {
        /* Killed: end silently with SLP_E_KILLED, as libslp expects after a kill. */
        s->state = SCRIPT_KILLED;
        printf("[frame %2d] script %s unwound after its kill\n", g.frame, s->name);
        return SLP_E_KILLED;
    }
    /* A Lua error in the script. The error object is usually a string; anything else is only
     * named (converting it could run a __tostring metamethod outside any pcall). */
    const char *msg = lua_tostring(L, -1);
    snprintf(s->error, sizeof s->error, "%s",
             msg ? msg : lua_pushfstring(L, "(a %s error object)", luaL_typename(L, -1)));
    s->state = SCRIPT_FAILED;
    printf("[frame %2d] script %s failed: %s\n", g.frame, s->name, s->error);
    /* Return 0: the failure is handled here, where it happened (reported, recorded in the
     * summary), so the tasklet ends normally. Returning a positive code instead would make
     * it an uncaught error: slp_run_watchdog would stop the frame's run at once and hand the
     * code to the host, which would then have to run the rest of the frame with another
     * call. That is deterministic too, but one path through the frame loop is simpler, and
     * a script's error is the script's business, not a failure of the host. */
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *bigger = (char *)realloc(buf, cap);
            if (!bigger) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Loads DIR/FILE into a new lua_State and creates its tasklet (runnable: it starts in the
 * first frame). Returns false (with a message) when the script cannot be loaded. */
static bool add_script(const char *dir, const char *file)
{
    script *s = &g.scripts[g.count];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%.*s", (int)(strlen(file) - 4), file); /* no ".lua" */

    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    source src;
    src.text = read_file(path, &src.len);
    if (!src.text) {
        fprintf(stderr, "host: cannot read %s\n", path);
        return false;
    }
    snprintf(src.chunkname, sizeof src.chunkname, "@%s", file);

    s->L = luaL_newstate();
    if (!s->L) {
        free((void *)src.text);
        fprintf(stderr, "host: %s: out of memory\n", file);
        return false;
    }
    lua_pushcfunction(s->L, setup_state);
    lua_pushlightuserdata(s->L, s);
    lua_pushlightuserdata(s->L, &src);
    int rc = lua_pcall(s->L, 2, 1, 0);
    free((void *)src.text);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(s->L, -1);
        fprintf(stderr, "host: cannot load %s: %s\n", path, msg ? msg : "(no message)");
        lua_close(s->L);
        s->L = NULL;
        return false;
    }

    slp_tasklet_options opts;
    slp_tasklet_options_init(&opts);
    opts.name = s->name;            /* copied by libslp; shows in its error messages      */
    opts.stack_size = SCRIPT_STACK;
    opts.arg_free = close_script;   /* closes the lua_State when the tasklet is done      */
    slp_status st = slp_tasklet_new_ex(script_main, s, &opts, &s->tasklet);
    if (st != SLP_OK) {
        report("slp_tasklet_new_ex", st);
        close_script(s); /* not created: arg_free will not run, the state is still ours */
        return false;
    }
    s->state = SCRIPT_RUNNING;
    g.count++;
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .lua file of DIR, in name order (a stable order makes the run reproducible). */
static int load_scripts(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "host: cannot open the script directory %s\n", dir);
        return -1;
    }
    char *names[MAX_SCRIPTS];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".lua") != 0)
            continue;
        if (n == MAX_SCRIPTS) {
            fprintf(stderr, "host: more than %d scripts in %s\n", MAX_SCRIPTS, dir);
            break;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        if (names[i] && add_script(dir, names[i]))
            ok++;
        free(names[i]);
    }
    return ok;
}

/* ---- the host -------------------------------------------------------------------------- */

static int alive_count(void)
{
    int n = 0;
    for (int i = 0; i < g.count; i++)
        n += slp_tasklet_alive(g.scripts[i].tasklet);
    return n;
}

/* Kills a script now: slp_tasklet_kill(t, false) switches to it; the libslp call it is
 * suspended in (slp_tick in the hook, slp_sleep, a channel call) returns SLP_E_KILLED, the
 * script unwinds and its tasklet ends, and control comes back here.
 *
 * Only while no other script is runnable: the host keeps its place in the run queue during
 * that switch, so every runnable tasklet between the victim and the host would run before the
 * host resumes - outside slp_run_watchdog, with no budget: a second runaway script there
 * would never give control back. The frame loop therefore kills after the frame's run (when
 * nothing is runnable) and before it inserts the interrupted scripts again. (The other way:
 * slp_tasklet_kill(t, true), and let the next frame's slp_run_watchdog deliver the kill.) */
static void kill_script(script *s)
{
    CHECK(slp_tasklet_kill(s->tasklet, false));
    if (slp_tasklet_alive(s->tasklet)) {
        fprintf(stderr, "host: script %s survived its kill\n", s->name);
        exit(EXIT_FAILURE);
    }
}

/* One frame: every runnable script runs until it blocks (sleep, send, receive), ends, or
 * uses up its budget. Returns the interrupted scripts (new references, in `aside`).
 *
 * This is the seed's preemptive loop -
 *     while (slp_runcount() > 1) {
 *         slp_tasklet *t; slp_run_watchdog(1000, 0, &t);
 *         if (t) { slp_tasklet_insert(t); slp_tasklet_release(t); }
 *     }
 * - cut to frames. Re-inserting an interrupted script at once would let a script that never
 * stops (runaway.lua) run forever within one frame; instead the host puts interrupted scripts
 * aside and inserts them again when the frame's work is done (see main), so a script that
 * overruns its budget simply continues in the next frame, and every frame ends. Each
 * slp_run_watchdog call returns when a script is interrupted (the rest of the run queue keeps
 * its order and runs in the next call) or when nothing is runnable (*t NULL): the others
 * sleep, wait on the channel, are set aside, or have ended. */
static int run_frame(slp_tasklet *aside[MAX_SCRIPTS])
{
    int n_aside = 0;
    for (;;) {
        slp_tasklet *t = NULL;
        /* Ticks count per slice: the budget starts again at every switch into a script. */
        CHECK(slp_run_watchdog(BUDGET_TICKS, 0, &t));
        if (!t)
            return n_aside;
        script *s = script_of_tasklet(t); /* t is a new reference: ours to release */
        if (!s || n_aside == MAX_SCRIPTS) {
            fprintf(stderr, "host: unexpected tasklet %s interrupted\n", slp_tasklet_name(t));
            exit(EXIT_FAILURE);
        }
        s->interrupts++;
        s->interrupted_now = true;
        aside[n_aside++] = t;
    }
}

static void print_trace(void)
{
    printf("frame %2d  t=%3lldms  alive:", g.frame, (long long)(g.now_ns / 1000000));
    for (int i = 0; i < g.count; i++)
        if (slp_tasklet_alive(g.scripts[i].tasklet))
            printf(" %s", g.scripts[i].name);
    printf("  interrupted:");
    int n = 0;
    for (int i = 0; i < g.count; i++)
        if (g.scripts[i].interrupted_now) {
            printf(" %s", g.scripts[i].name);
            n++;
        }
    printf("%s\n", n ? "" : " -");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : LUA_SCRIPTS_DIR;

    /* The game clock first: it must be installed before any timer is pending. */
    g.now_ns = 0;
    CHECK(slp_set_clock(game_clock, NULL));
    CHECK(slp_channel_new(&g.channel)); /* rendezvous, preference -1: the receiver runs first */

    if (load_scripts(dir) <= 0) {
        fprintf(stderr, "host: no script to run in %s\n", dir);
        return EXIT_FAILURE;
    }
    printf("%d scripts:", g.count);
    for (int i = 0; i < g.count; i++)
        printf(" %s", g.scripts[i].name);
    printf("; %lld ms per frame, a slice is %d ticks of %d Lua instructions\n",
           FRAME_NS / 1000000, BUDGET_TICKS, HOOK_EVERY);

    int frames = 0;
    for (g.frame = 1; g.frame <= MAX_FRAMES && alive_count() > 0; g.frame++) {
        frames = g.frame;
        g.now_ns = (int64_t)g.frame * FRAME_NS; /* game time advances one fixed step */
        for (int i = 0; i < g.count; i++)
            g.scripts[i].interrupted_now = false;

        slp_tasklet *aside[MAX_SCRIPTS];
        int n_aside = run_frame(aside);
        print_trace();

        /* The watchdog policy: a script that needed more than its budget in HUNG_FRAMES
         * frames in a row is taken for hung, and killed. (A script that works hard now and
         * then, like the consumer, is interrupted in a few frames and then catches up.)
         * After the last frame the level is over: whatever still runs is killed (none here,
         * unless a script hangs in another way, e.g. waits forever on the channel). Nothing
         * is runnable now, so each kill runs its victim alone (see kill_script). */
        for (int i = 0; i < g.count; i++) {
            script *s = &g.scripts[i];
            s->strikes = s->interrupted_now ? s->strikes + 1 : 0;
            if (!slp_tasklet_alive(s->tasklet))
                continue;
            if (s->strikes >= HUNG_FRAMES) {
                printf("frame %2d  %s overran its budget in %d frames in a row: killing it\n",
                       g.frame, s->name, s->strikes);
                kill_script(s);
            } else if (g.frame == MAX_FRAMES) {
                printf("level over: killing %s\n", s->name);
                kill_script(s);
            }
        }

        /* The interrupted scripts that are still alive continue next frame, first in line. */
        for (int i = 0; i < n_aside; i++) {
            if (slp_tasklet_alive(aside[i]))
                CHECK(slp_tasklet_insert(aside[i]));
            slp_tasklet_release(aside[i]);
        }
    }
    g.frame = frames;
    CHECK(slp_run()); /* nothing should be left to run: every script has ended */

    printf("summary after %d frames (%lld ms of game time):\n", frames,
           (long long)(g.now_ns / 1000000));
    int total_sent = 0, total_received = 0;
    for (int i = 0; i < g.count; i++) {
        script *s = &g.scripts[i];
        printf("  %-10s %-8s  interrupted %2d time%s  sent %d, received %d%s%s\n", s->name,
               state_names[s->state], s->interrupts, s->interrupts == 1 ? " " : "s", s->sent,
               s->received, s->error[0] ? "  error: " : "", s->error);
        total_sent += s->sent;
        total_received += s->received;
        slp_tasklet_release(s->tasklet); /* its lua_State is closed already (arg_free) */
        if (s->L) {
            fprintf(stderr, "host: the lua_State of %s was not closed\n", s->name);
            return EXIT_FAILURE;
        }
    }
    printf("channel: %d values sent, %d received\n", total_sent, total_received);
    slp_channel_release(g.channel);
    CHECK(slp_set_clock(NULL, NULL)); /* back to the default monotonic clock */
    return EXIT_SUCCESS;
}
