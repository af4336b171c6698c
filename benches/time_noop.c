/*
 * benches/time_noop.c - the baseline of benches/time.c's slp_tick rows: a function with
 * slp_tick's signature that does nothing, built into its own small shared library by
 * scripts/bench-time.sh so that calling it has exactly the shape of calling slp_tick from a
 * host (a call through the PLT into another shared object, a status returned and tested).
 */
#include <stdint.h>

int32_t slp_bench_noop_tick(uint32_t n);

int32_t slp_bench_noop_tick(uint32_t n)
{
    (void)n;
    return 0;
}
