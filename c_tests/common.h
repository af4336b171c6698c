/*
 * common.h - tasklet bodies and helpers shared by the libslp C tests (include after harness.h).
 */
#ifndef SLP_TEST_COMMON_H
#define SLP_TEST_COMMON_H

#include "harness.h"

#define SENTINEL ((void *)(intptr_t)0x5e5e5e5e)
#define IPTR(i) ((void *)(intptr_t)(i))
#define PTRI(p) ((int)(intptr_t)(p))

/* One channel operation done by a tasklet; the result is recorded for the test. */
struct op {
    slp_channel *ch;
    void *val;       /* value to send; for receive: the value received (pre-set to SENTINEL) */
    slp_status st;   /* what the operation returned */
    char tag;        /* logged right after the operation returns (0: nothing) */
    int32_t ret;     /* what the tasklet function returns */
    int done;        /* the operation returned */
    void *exc;       /* slp_exception_data() right after the operation */
    int code;        /* send_exception code for op_send_exc */
};

static HARNESS_UNUSED void op_init(struct op *o, slp_channel *ch, void *val, char tag) {
    memset(o, 0, sizeof *o);
    o->ch = ch;
    o->val = val;
    o->tag = tag;
}

static HARNESS_UNUSED int32_t op_recv(void *arg) {
    struct op *o = arg;
    o->st = slp_channel_receive(o->ch, &o->val);
    o->exc = slp_exception_data();
    if (o->tag) log_c(o->tag);
    o->done = 1;
    return o->ret;
}

static HARNESS_UNUSED int32_t op_send(void *arg) {
    struct op *o = arg;
    o->st = slp_channel_send(o->ch, o->val);
    o->exc = slp_exception_data();
    if (o->tag) log_c(o->tag);
    o->done = 1;
    return o->ret;
}

static HARNESS_UNUSED int32_t op_send_exc(void *arg) {
    struct op *o = arg;
    o->st = slp_channel_send_exception(o->ch, o->code, o->val);
    if (o->tag) log_c(o->tag);
    o->done = 1;
    return o->ret;
}

/* Logs the character passed as arg and ends. */
static HARNESS_UNUSED int32_t t_log(void *arg) {
    log_c((char)(intptr_t)arg);
    return 0;
}

/* Logs lower-case arg, slp_schedule(), logs upper-case arg. */
static HARNESS_UNUSED int32_t t_log_yield(void *arg) {
    char c = (char)(intptr_t)arg;
    log_c(c);
    slp_status st = slp_schedule();
    if (st != SLP_OK) log_c('!');
    log_c((char)(c - 'a' + 'A'));
    return 0;
}

/* Creates a tasklet (checked), returns the handle (NULL on failure). */
#define SPAWN(fn, arg) spawn_at(__FILE__, __LINE__, (fn), (arg))
static HARNESS_UNUSED slp_tasklet *spawn_at(const char *file, int line, slp_tasklet_fn fn, void *arg) {
    slp_tasklet *t = NULL;
    slp_status st = slp_tasklet_new(fn, arg, &t);
    if (st != SLP_OK || t == NULL) {
        harness_fail_header(file, line);
        printf("slp_tasklet_new failed: %d (%s)", (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
        return NULL;
    } else {
        harness_passed++;
    }
    return t;
}

#define SPAWN_EX(fn, arg, opts) spawn_ex_at(__FILE__, __LINE__, (fn), (arg), (opts))
static HARNESS_UNUSED slp_tasklet *spawn_ex_at(const char *file, int line, slp_tasklet_fn fn, void *arg,
                                               const slp_tasklet_options *opts) {
    slp_tasklet *t = NULL;
    slp_status st = slp_tasklet_new_ex(fn, arg, opts, &t);
    if (st != SLP_OK || t == NULL) {
        harness_fail_header(file, line);
        printf("slp_tasklet_new_ex failed: %d (%s)", (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
        return NULL;
    } else {
        harness_passed++;
    }
    return t;
}

#define NEW_CHANNEL() new_channel_at(__FILE__, __LINE__, -1, 0, false)
#define NEW_CHANNEL_EX(pref, cap, all) new_channel_at(__FILE__, __LINE__, (pref), (cap), (all))
static HARNESS_UNUSED slp_channel *new_channel_at(const char *file, int line, int pref, uint32_t cap,
                                                  bool all) {
    slp_channel_options o;
    slp_channel_options_init(&o);
    o.preference = pref;
    o.capacity = cap;
    o.schedule_all = all;
    slp_channel *ch = NULL;
    slp_status st = slp_channel_new_ex(&o, &ch);
    if (st != SLP_OK || ch == NULL) {
        harness_fail_header(file, line);
        printf("slp_channel_new_ex failed: %d (%s)", (int)st, harness_status_name(st));
        harness_fail_tail(slp_last_error());
        return NULL;
    } else {
        harness_passed++;
    }
    return ch;
}

/* Releases a tasklet that may still be blocked/paused: kills it first, then runs the queue. */
static HARNESS_UNUSED void cleanup_tasklet(slp_tasklet *t) {
    if (!t) return;
    if (slp_tasklet_alive(t)) {
        slp_tasklet_kill(t, false);
        slp_run();
    }
    slp_tasklet_release(t);
}

#endif /* SLP_TEST_COMMON_H */
