/* test_status.c - SPEC §2: status codes, slp_status_str, slp_last_error, version, option structs. */
#include "harness.h"

#include <pthread.h>

/* Must stay the first test: a pure query before anything else touched libslp. */
TEST(last_error_never_null_before_any_call) {
    const char *e = slp_last_error();
    CHECK(e != NULL);
    CHECK(slp_exception_data() == NULL);
}

TEST(status_values_are_pinned) {
    CHECK_EQ_INT(SLP_OK, 0);
    CHECK_EQ_INT(SLP_E_INVALID, -1);
    CHECK_EQ_INT(SLP_E_NOMEM, -2);
    CHECK_EQ_INT(SLP_E_STATE, -3);
    CHECK_EQ_INT(SLP_E_WRONG_THREAD, -4);
    CHECK_EQ_INT(SLP_E_DEADLOCK, -5);
    CHECK_EQ_INT(SLP_E_CLOSED, -6);
    CHECK_EQ_INT(SLP_E_KILLED, -7);
    CHECK_EQ_INT(SLP_E_TIMEOUT, -8);
    CHECK_EQ_INT(SLP_E_WOULD_BLOCK, -9);
    CHECK_EQ_INT(SLP_E_SWITCH_TRAP, -10);
    CHECK_EQ_INT(SLP_E_DEAD, -11);
    CHECK_EQ_INT(SLP_E_PANIC, -12);
    CHECK_EQ_INT(sizeof(slp_status), 4);
    slp_status s = -1;
    CHECK(s < 0); /* signed */
}

TEST(status_str_library_codes) {
    const char *strs[13];
    for (int i = 0; i <= 12; i++) {
        strs[i] = slp_status_str(-i);
        CHECK_MSG(strs[i] != NULL && strs[i][0] != '\0', "status_str(%d) empty", -i);
    }
    /* every library code has its own text */
    for (int i = 0; i <= 12; i++)
        for (int j = i + 1; j <= 12; j++)
            if (strs[i] && strs[j])
                CHECK_MSG(strcmp(strs[i], strs[j]) != 0, "status_str(%d) == status_str(%d) == \"%s\"",
                          -i, -j, strs[i]);
}

TEST(status_str_is_static) {
    const char *a = slp_status_str(SLP_E_DEADLOCK);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", a ? a : "");
    /* other calls, including failing ones, must not disturb it */
    CHECK_ST(slp_channel_send(NULL, NULL), SLP_E_INVALID);
    (void)slp_status_str(SLP_E_CLOSED);
    (void)slp_status_str(77);
    CHECK(a != NULL);
    if (a) CHECK_EQ_STR(a, copy);
    CHECK(slp_status_str(SLP_E_DEADLOCK) != NULL);
    if (slp_status_str(SLP_E_DEADLOCK)) CHECK_EQ_STR(slp_status_str(SLP_E_DEADLOCK), copy);
}

TEST(status_str_user_codes) {
    int32_t codes[] = {1, 7, 42, 1000, INT32_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = slp_status_str(codes[i]);
        CHECK_MSG(s != NULL && s[0] != '\0', "status_str(%d)", (int)codes[i]);
        if (s) CHECK_MSG(strstr(s, "user") != NULL, "status_str(%d) = \"%s\" does not say user",
                         (int)codes[i], s);
    }
}

TEST(status_str_unknown_negative) {
    int32_t codes[] = {-13, -100, -1000, INT32_MIN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = slp_status_str(codes[i]);
        CHECK_MSG(s != NULL && s[0] != '\0', "status_str(%d)", (int)codes[i]);
    }
}

TEST(last_error_set_by_failures) {
    CHECK_ST(slp_channel_send(NULL, NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    CHECK_ST(slp_tasklet_insert(NULL), SLP_E_INVALID);
    CHECK_LAST_ERROR_SET();
    slp_channel *ch = NULL;
    CHECK_ST(slp_channel_new(&ch), SLP_OK);
    void *v = (void *)0x1;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    CHECK_LAST_ERROR_SET();
    CHECK_EQ_PTR(v, (void *)0x1); /* out-params are written only on SLP_OK */
    slp_channel_release(ch);
}

TEST(last_error_valid_across_pure_queries) {
    CHECK_ST(slp_tasklet_run(NULL), SLP_E_INVALID);
    const char *e1 = slp_last_error();
    char copy[512];
    snprintf(copy, sizeof copy, "%s", e1 ? e1 : "");
    CHECK(copy[0] != '\0');
    /* reading it again gives the same message */
    CHECK_EQ_STR(slp_last_error(), copy);
}

static char g_thread_err_before[512];
static char g_thread_err_after[512];
static int g_thread_status;

static void *thread_fails(void *arg) {
    (void)arg;
    const char *e = slp_last_error();
    snprintf(g_thread_err_before, sizeof g_thread_err_before, "%s", e ? e : "<NULL>");
    g_thread_status = slp_channel_receive(NULL, NULL);
    e = slp_last_error();
    snprintf(g_thread_err_after, sizeof g_thread_err_after, "%s", e ? e : "<NULL>");
    return NULL;
}

TEST(last_error_is_thread_local) {
    slp_channel *ch = NULL;
    CHECK_ST(slp_channel_new(&ch), SLP_OK);
    void *v = NULL;
    CHECK_ST(slp_channel_receive(ch, &v), SLP_E_DEADLOCK);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", slp_last_error());
    CHECK(mine[0] != '\0');

    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, thread_fails, NULL), 0);
    pthread_join(th, NULL);

    CHECK(strcmp(g_thread_err_before, "<NULL>") != 0);
    CHECK_MSG(strcmp(g_thread_err_before, mine) != 0,
              "a fresh thread sees the main thread's message \"%s\"", g_thread_err_before);
    CHECK_ST(g_thread_status, SLP_E_INVALID);
    CHECK(g_thread_err_after[0] != '\0');
    /* the other thread's failure did not touch this thread's message */
    CHECK_EQ_STR(slp_last_error(), mine);
    slp_channel_release(ch);
}

TEST(version_macros_match_library) {
    CHECK_EQ_INT(SLP_VERSION_NUMBER,
                 SLP_VERSION_MAJOR * 10000 + SLP_VERSION_MINOR * 100 + SLP_VERSION_PATCH);
    CHECK_EQ_INT(slp_version(), SLP_VERSION_NUMBER);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", SLP_VERSION_MAJOR, SLP_VERSION_MINOR, SLP_VERSION_PATCH);
    CHECK_EQ_STR(SLP_VERSION_STRING, buf);
    CHECK(SLP_VERSION_MINOR < 100);
    CHECK(SLP_VERSION_PATCH < 100);
}

TEST(tasklet_options_init_defaults) {
    slp_tasklet_options o;
    memset(&o, 0xAB, sizeof o);
    slp_tasklet_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof(slp_tasklet_options));
    CHECK_EQ_INT(o.flags, 0);
    CHECK(o.name == NULL);
    CHECK_EQ_INT(o.stack_size, 0);
    CHECK(o.arg_free == NULL);
    CHECK_EQ_INT(SLP_TASKLET_PAUSED, 1);
    slp_tasklet_options_init(NULL); /* must not crash */
    CHECK(1);
}

TEST(channel_options_init_defaults) {
    slp_channel_options o;
    memset(&o, 0xAB, sizeof o);
    slp_channel_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof(slp_channel_options));
    CHECK_EQ_INT(o.preference, -1);
    CHECK_EQ_INT(o.capacity, 0);
    CHECK(o.schedule_all == false);
    slp_channel_options_init(NULL); /* must not crash */
    CHECK(1);
}

TEST(exception_data_is_null_without_exceptions) {
    CHECK(slp_exception_data() == NULL);
}
