#!/usr/bin/env bash
# loop.sh N SUITE... - the flake hunt (make loop): runs each suite N times
# in a row through tests/run.sh (so sanitizer reports count), keeps the
# output of every failed run under LOOP_DIR, prints a line a suite with its
# failed cases and time, and closes with the runs as "N passed, N failed,
# N skipped".  Exit 1 if any run failed.
set -u
n=$1; shift
dir=${LOOP_DIR:-$(mktemp -d /tmp/ucache-loop.XXXXXX)}
mkdir -p "$dir"
here=$(dirname "$0")
runs_ok=0 runs_bad=0
for t in "$@"; do
    ok=0 bad=0 t0=$(date +%s)
    for i in $(seq "$n"); do
        log=$dir/$(basename "$t" .sh).$i.log
        if "$here/run.sh" "$t" >"$log" 2>&1; then
            ok=$((ok + 1)); rm -f "$log"
        else
            bad=$((bad + 1))
            echo "  $t run $i failed ($log):"
            grep -E '^(FAIL|!!!)' "$log" | head -n 5 | sed 's/^/    /'
        fi
    done
    echo "$t: $ok of $n runs passed in $(( $(date +%s) - t0 )) s"
    runs_ok=$((runs_ok + ok)) runs_bad=$((runs_bad + bad))
done
[ "$runs_bad" -eq 0 ] && rmdir "$dir" 2>/dev/null
echo
echo "$runs_ok passed, $runs_bad failed, 0 skipped"
[ "$runs_bad" -eq 0 ]
