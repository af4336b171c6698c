/* Consumer of an installed libslp: a tasklet sends a value over a channel to the main
 * tasklet, which prints it. Exits 0 only if the value arrived intact. */
#include <slp.h>

#include <stdint.h>
#include <stdio.h>

static int32_t sender(void *arg) {
    slp_channel *ch = (slp_channel *)arg;
    /* A non-zero return is an uncaught error: slp_run reports it to main. */
    return slp_channel_send(ch, (void *)(intptr_t)42);
}

static int fail(const char *what, slp_status st) {
    fprintf(stderr, "consumer: %s failed: %s (%s)\n", what, slp_status_str(st), slp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *self = argc > 0 ? argv[0] : "consumer";
    slp_channel *ch = NULL;
    slp_status st = slp_channel_new(&ch);
    if (st != SLP_OK) return fail("slp_channel_new", st);

    st = slp_tasklet_new(sender, ch, NULL); /* runnable; runs when main blocks */
    if (st != SLP_OK) return fail("slp_tasklet_new", st);

    void *value = NULL;
    st = slp_channel_receive(ch, &value); /* main blocks, the sender runs and hands over 42 */
    if (st != SLP_OK) return fail("slp_channel_receive", st);

    st = slp_run(); /* let the sender finish */
    if (st != SLP_OK) return fail("slp_run", st);
    slp_channel_release(ch);

    printf("%s: main received %ld from a tasklet (libslp %u, header %s)\n",
           self, (long)(intptr_t)value, (unsigned)slp_version(), SLP_VERSION_STRING);
    return (intptr_t)value == 42 ? 0 : 1;
}
