#!/bin/sh
# Usage: run_against_memd.sh MEMD PROGRAM [ARGS...]
# Starts memd on a fresh abstract socket, runs PROGRAM with L4RE_MA_SERVER
# pointing at it, then stops memd with SIGTERM (which must exit 0).
memd=$1; shift
socket="@l4re_ma_test_$$_$(date +%s%N)"
"$memd" --socket="$socket" --pool_size=256M &
pid=$!
# Wait until memd answers (its stats command connects like a client).
i=0
until "$memd" --stats --socket="$socket" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
    echo "memd did not come up" >&2; kill $pid 2>/dev/null; exit 1
  fi
  sleep 0.05
done
L4RE_MA_SERVER="$socket" "$@"
rc=$?
kill -TERM $pid
wait $pid || { echo "memd did not exit cleanly" >&2; rc=1; }
exit $rc
