#!/usr/bin/env bash
# bench_origin.sh - the origin path, judged against curl in the same run:
# a dataset of N MiB (default 2048, in 128 MiB objects) served over http by
# tests/origin/http_origin (libmicrohttpd, on 127.0.0.1) is read
#   1. by curl, directly, object after object on one connection (baseline);
#   2. cold through a 3-node fabric (three ucached, `ucache read`, 8 reads in
#      flight; owners fill from the origin), then warm (epoch 2);
#   3. cold by 4 concurrent `ucache read` clients on a fresh fabric, with the
#      origin's request and byte counters: requests per chunk and origin
#      bytes per dataset byte (1.0 = each chunk fetched once).
# Prints one JSON line per figure ({"bench":"origin",...}) on stdout.
# Usage: perf/bench_origin.sh [MiB] [BUILD]
set -uo pipefail
mib=${1:-2048}
build=${2:-build}
bin=$build/bin
obj_mib=128
nobj=$(( (mib + obj_mib - 1) / obj_mib ))
W=$(mktemp -d /tmp/ucache-bench-origin.XXXXXX)
data=$build/bench-origin-data
export UCACHE_MEMBERS=dir:$W/members UCACHE_MEMBERS_POLL=100ms
export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-warn}
pids=() srv=
cleanup() {
    for p in "${pids[@]}" $srv; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

# the dataset (made once, kept in build/ like the demo's)
mkdir -p "$data"
for i in $(seq -w 1 $nobj); do
    f=$data/obj-$i
    [ -f "$f" ] && [ "$(stat -c %s "$f")" = $((obj_mib << 20)) ] && continue
    head -c $((obj_mib << 20)) /dev/urandom >"$f"
done
total=$((nobj * obj_mib << 20))
cat "$data"/obj-* >/dev/null   # in the page cache for every reader alike

$build/tests/http_origin "$data" 0 >"$W/port" 2>"$W/origin.log" &
srv=$!
for i in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
url=http://127.0.0.1:$(awk '{print $2}' "$W/port")
ostat() { curl -s "$url/_ctl/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
for i in $(seq -w 1 $nobj); do echo "$url/obj-$i"; done >"$W/manifest"
now() { date +%s.%N; }
mibps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }
emit() { echo "{\"bench\":\"origin\",\"name\":\"$1\",$2}"; }

daemons() {
    local i
    pids=()
    rm -rf "$W/members"
    for i in 1 2 3; do
        $bin/ucached --mem $(( (mib / 3 + 256) ))M 2>>"$W/d$i.log" &
        pids+=($!)
    done
    for i in $(seq 100); do
        [ "$(ls "$W"/members/node-*.rec 2>/dev/null | wc -l)" = 3 ] && return 0
        sleep 0.1
    done
    echo "bench_origin: the daemons did not register" >&2
    return 1
}
stop_daemons() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null; done
    pids=()
}

# 1. curl, directly
args=()
for u in $(cat "$W/manifest"); do args+=(-o /dev/null "$u"); done
t0=$(now)
curl -sf "${args[@]}" || echo "bench_origin: curl failed" >&2
t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
curl_mibps=$(mibps $total "$t")
emit curl_direct "\"bytes\":$total,\"seconds\":$t,\"mib_per_s\":$curl_mibps"

# 2. cold and warm through the fabric
daemons || exit 1
$bin/ucache read --manifest "$W/manifest" --epochs 2 >"$W/read" 2>"$W/read.err"
cold=$(sed -n 's/^epoch 1: .* = \([0-9.]*\) MiB\/s.*/\1/p' "$W/read")
warm=$(sed -n 's/^epoch 2: .* = \([0-9.]*\) MiB\/s.*/\1/p' "$W/read")
hits2=$(sed -n 's/^epoch 2: .*chunks [0-9]*: [0-9]* hits (\([0-9]*\)%).*/\1/p' "$W/read")
emit fabric_cold "\"bytes\":$total,\"mib_per_s\":${cold:-0},\"vs_curl\":$(awk -v a="${cold:-0}" -v b="$curl_mibps" 'BEGIN { printf "%.2f", a / b }')"
emit fabric_warm "\"bytes\":$total,\"mib_per_s\":${warm:-0},\"hit_pct\":${hits2:-0},\"vs_curl\":$(awk -v a="${warm:-0}" -v b="$curl_mibps" 'BEGIN { printf "%.2f", a / b }')"
stop_daemons

# 3. four concurrent cold clients on a fresh fabric
daemons || exit 1
g0=$(ostat gets); b0=$(ostat bytes); h0=$(ostat heads)
t0=$(now)
for k in 1 2 3 4; do
    $bin/ucache read --manifest "$W/manifest" --epochs 1 >"$W/c$k" 2>&1 &
    cl[$k]=$!
done
for k in 1 2 3 4; do wait ${cl[$k]} || echo "bench_origin: client $k failed" >&2; done
t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
dg=$(( $(ostat gets) - g0 )); db=$(( $(ostat bytes) - b0 )); dh=$(( $(ostat heads) - h0 ))
chunks=$(( total / (4 << 20) ))
emit four_clients_cold "\"clients\":4,\"chunks\":$chunks,\"origin_gets\":$dg,\"origin_heads\":$dh,\"origin_bytes\":$db,\"gets_per_chunk\":$(awk -v a=$dg -v b=$chunks 'BEGIN { printf "%.3f", a / b }'),\"origin_bytes_per_dataset_byte\":$(awk -v a=$db -v b=$total 'BEGIN { printf "%.3f", a / b }'),\"aggregate_mib_per_s\":$(mibps $((4 * total)) "$t")"
stop_daemons
