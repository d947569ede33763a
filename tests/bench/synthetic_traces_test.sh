#!/usr/bin/env bash
# The synthetic traces checked into bench/traces/ are exactly what
# //bench/gen:trace_gen makes with the seeds in bench/traces/record.sh: a
# change of the generator must come with regenerated traces.
set -euo pipefail
gen="$TEST_SRCDIR/l4re_ma/bench/gen/trace_gen"
traces="$TEST_SRCDIR/l4re_ma/bench/traces"
status=0
check() {
  local name=$1
  shift
  if ! "$gen" "$@" | cmp -s - "$traces/$name.trace"; then
    echo "bench/traces/$name.trace differs from trace_gen $* (run bench/traces/record.sh synthetic)"
    status=1
  fi
}
check synth_uniform --kind=uniform --ops=40000 --seed=1
check synth_heavy_tail --kind=heavy --ops=40000 --seed=1
check synth_phases --kind=phases --ops=40000 --seed=1
check synth_l4re_system --kind=l4re --ops=40000 --seed=1
exit $status
