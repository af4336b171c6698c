/* Compiles include/slp.h as strict C11 (-std=c11 -Wall -Wextra -Werror -pedantic), links a
 * handful of its symbols and checks that header and library agree. Built twice by CMake:
 * against slp::slp and against slp::slp_static. */
#include <slp.h>

#include <stdio.h>
#include <string.h>

_Static_assert(SLP_OK == 0, "SLP_OK");
_Static_assert(SLP_E_INVALID == -1, "SLP_E_INVALID");
_Static_assert(SLP_E_DEADLOCK == -5, "SLP_E_DEADLOCK");
_Static_assert(SLP_E_PANIC == -12, "SLP_E_PANIC");
_Static_assert(SLP_VERSION_NUMBER == SLP_VERSION_MAJOR * 10000 + SLP_VERSION_MINOR * 100 + SLP_VERSION_PATCH,
               "SLP_VERSION_NUMBER");
_Static_assert(sizeof(slp_status) == 4, "slp_status is int32_t");

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static int32_t set_flag(void *arg) {
    *(int *)arg = 1;
    return SLP_OK;
}

int main(void) {
    CHECK(slp_version() == SLP_VERSION_NUMBER);
    CHECK(strlen(SLP_VERSION_STRING) >= 5);
    CHECK(slp_status_str(SLP_E_INVALID) != NULL);
    CHECK(slp_last_error() != NULL);

    slp_tasklet_options topts;
    slp_tasklet_options_init(&topts);
    CHECK(topts.struct_size == sizeof topts);
    slp_channel_options copts;
    slp_channel_options_init(&copts);
    CHECK(copts.struct_size == sizeof copts);

    slp_tasklet_fn fn = set_flag;
    int flag = 0;
    slp_tasklet *t = NULL;
    CHECK(slp_tasklet_new(fn, &flag, &t) == SLP_OK);
    CHECK(slp_run() == SLP_OK);
    CHECK(flag == 1);
    slp_tasklet_release(t);

    slp_channel *ch = NULL;
    CHECK(slp_channel_new(&ch) == SLP_OK);
    CHECK(slp_channel_balance(ch) == 0);
    slp_channel_release(ch);

    printf("header_c11: libslp %s (%u): %d passed, %d failed\n", SLP_VERSION_STRING,
           (unsigned)slp_version(), failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
