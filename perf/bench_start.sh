#!/usr/bin/env bash
# bench_start.sh - a daemon's start-up at node scale (issue [8/11]): for
# each --mem size, a fresh ucached on a dir: source; seconds from exec to
#   registered - its "serving" line (joined, exporting, answering);
#   serving    - the first `ucache health --local` that exits 0 (a probe
#                answered over the fabric: what the readiness probe sees);
#   usable     - all of its memory committed and usable (the store's
#                commit time, as `ucache health --local --json` reports it);
# and seconds per GiB until all memory is usable.  Each size runs with the
# default commit threads and with UCACHE_COMMIT_THREADS=1, in the same run.
# Prints one JSON line per run ({"bench":"start",...}).
# Usage: perf/bench_start.sh [SIZES] [BUILD]     (SIZES: "1G 4G 8G")
set -uo pipefail
sizes=${1:-1G 4G 8G}
build=${2:-build}
bin=$build/bin
W=$(mktemp -d /tmp/ucache-bench-start.XXXXXX)
export UCACHE_MEMBERS=dir:$W/members UCACHE_MEMBERS_POLL=100ms
export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-info}
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
rc=0
for size in $sizes; do
    for threads in 0 1; do
        rm -rf "$W/members"
        t0=$(now)
        UCACHE_COMMIT_THREADS=$threads "$bin/ucached" --mem "$size" 2>"$W/log" &
        pid=$!
        reg= srv= usable= gib=
        for _ in $(seq 1 1200); do       # 120 s at most
            if [ -z "$reg" ] && grep -q "ucached: serving" "$W/log"; then reg=$(sub "$(now)" "$t0"); fi
            if [ -z "$srv" ] && "$bin/ucache" health --local >/dev/null 2>&1; then
                srv=$(sub "$(now)" "$t0")
            fi
            if [ -n "$srv" ]; then
                j=$("$bin/ucache" health --local --json 2>/dev/null | grep '"mem_commit_s"')
                c=$(sed -n 's/.*"mem_commit_s":\([0-9.]*\).*/\1/p' <<<"$j")
                gib=$(sed -n 's/.*"mem_bytes":\([0-9]*\).*/\1/p' <<<"$j")
                if [ -n "$c" ] && [ "$c" != "0.000" ]; then usable=$c; break; fi
            fi
            kill -0 $pid 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; pid=
        if [ -z "$reg" ] || [ -z "$srv" ] || [ -z "$usable" ]; then
            echo "bench_start: ucached --mem $size (commit threads $threads) did not finish" >&2
            tail -5 "$W/log" >&2
            rc=1
            continue
        fi
        spg=$(awk -v u="$usable" -v b="$gib" 'BEGIN { printf "%.3f", u / (b / 1073741824) }')
        echo "{\"bench\":\"start\",\"mem\":\"$size\",\"commit_threads\":$threads,\"registered_s\":$reg,\"serving_s\":$srv,\"commit_s\":$usable,\"s_per_gib\":$spg}"
    done
done
exit $rc
