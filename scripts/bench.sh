#!/bin/sh
# Runs the core micro-benchmarks (benches/core.rs): raw corosensei round trip, slp_schedule
# switch, tasklet create+run+end+release, same-thread channel message. Median of 5 runs each.
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench core "$@"
