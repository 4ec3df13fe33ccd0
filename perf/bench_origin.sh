#!/usr/bin/env bash
# bench_origin.sh - the origin path, judged against curl in the same run.
# A dataset of N MiB (default 2048, in 128 MiB objects) is served over http
# by tests/origin/http_origin (libmicrohttpd, on 127.0.0.1) and read
#   1. by curl, directly, object after object on one connection (baseline);
#   2. cold through a 3-node fabric (three ucached, `ucache read`, 8 reads in
#      flight; owners fill from the origin), and warm (a second reader's
#      second epoch); with the CPU seconds per GB each path cost (reader or
#      curl, origin server, daemons: user + system);
#   3. cold by 4 concurrent `ucache read` clients on a fresh fabric, with the
#      origin's request and byte counters: requests per chunk and origin
#      bytes per dataset byte (1.0 = each chunk fetched once).
# Then 1. and 2. again on half the dataset with the origin pacing every
# response to 100 MB/s, as one connection to a cloud object store goes, and
# `ucache warmup` of it.
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

now() { date +%s.%N; }
mibps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
emit() { echo "{\"bench\":\"origin\",\"name\":\"$1\",$2}"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
srv_t0=0 dmn_t0=0
cpu_mark() {
    local p
    srv_t0=$(ticks $srv) dmn_t0=0
    for p in "${pids[@]}"; do dmn_t0=$((dmn_t0 + $(ticks $p))); done
}
cpu_since() { # CPU seconds of the origin server and the daemons since cpu_mark
    local p d=0
    for p in "${pids[@]}"; do d=$((d + $(ticks $p))); done
    awk -v s=$(( $(ticks $srv) - srv_t0 )) -v d=$((d - dmn_t0)) -v hz=$hz \
        'BEGIN { printf "%.3f", (s + d) / hz }'
}
# CPU s/GB: FILE holds "user sys" of the reader (/usr/bin/time), plus OTHER
per_gb() { awk -v o="$2" -v b=$total '{ printf "%.3f", ($1 + $2 + o) / (b / 1e9) }' "$1"; }

origin() { # origin [RATE]: (re)start the origin server
    [ -n "$srv" ] && { kill "$srv"; wait "$srv" 2>/dev/null; }
    rm -f "$W/port"
    $build/tests/http_origin "$data" 0 ${1:-} >"$W/port" 2>"$W/origin.log" &
    srv=$!
    for i in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
    url=http://127.0.0.1:$(awk '{print $2}' "$W/port")
}
ostat() { curl -s "$url/_ctl/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
daemons() {
    local i
    pids=()
    rm -rf "$W/members"
    for i in 1 2 3; do
        $bin/ucached --mem $(( (mib / 3 + 256) ))M --allow "$url" 2>>"$W/d$i.log" &
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

# curl vs a cold and a warm epoch through the fabric, over the first N objects
versus() { # versus PREFIX NOBJ
    local pre=$1 n=$2 u args=() t t0 cold warm hits
    total=$((n * obj_mib << 20))
    for i in $(seq -w 1 $nobj | head -n $n); do echo "$url/obj-$i"; done >"$W/manifest"
    cat $(sed "s|^$url/|$data/|" "$W/manifest") >/dev/null  # page cache, for both
    for u in $(cat "$W/manifest"); do args+=(-o /dev/null "$u"); done
    cpu_mark
    t0=$(now)
    /usr/bin/time -f "%U %S" -o "$W/curl.time" curl -sf "${args[@]}" ||
        { echo "bench_origin: the curl baseline failed" >&2; exit 1; }
    t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
    c=$(mibps $total "$t")
    emit ${pre}curl_direct "\"bytes\":$total,\"seconds\":$t,\"mib_per_s\":$c,\"cpu_s_per_gb\":$(per_gb "$W/curl.time" "$(cpu_since)")"
    daemons || exit 1
    cpu_mark
    /usr/bin/time -f "%U %S" -o "$W/read.time" \
        $bin/ucache read --manifest "$W/manifest" --epochs 1 >"$W/read" 2>"$W/read.err" ||
        { echo "bench_origin: the cold epoch failed: $(tail -n 2 "$W/read.err")" >&2; exit 1; }
    cold=$(sed -n 's/^epoch 1: .* = \([0-9.]*\) MiB\/s.*/\1/p' "$W/read")
    emit ${pre}fabric_cold "\"bytes\":$total,\"mib_per_s\":${cold:-0},\"vs_curl\":$(ratio "${cold:-0}" "$c"),\"cpu_s_per_gb\":$(per_gb "$W/read.time" "$(cpu_since)")"
    $bin/ucache read --manifest "$W/manifest" --epochs 2 >"$W/read2" 2>>"$W/read.err" ||
        { echo "bench_origin: the warm epochs failed: $(tail -n 2 "$W/read.err")" >&2; exit 1; }
    warm=$(sed -n 's/^epoch 2: .* = \([0-9.]*\) MiB\/s.*/\1/p' "$W/read2")
    hits=$(sed -n 's/^epoch 2: .*chunks [0-9]*: [0-9]* hits (\([0-9]*\)%).*/\1/p' "$W/read2")
    emit ${pre}fabric_warm "\"bytes\":$total,\"mib_per_s\":${warm:-0},\"hit_pct\":${hits:-0},\"vs_curl\":$(ratio "${warm:-0}" "$c")"
    stop_daemons
}

origin
versus "" $nobj

# four concurrent cold clients on a fresh fabric: each chunk from the origin once
daemons || exit 1
g0=$(ostat gets); b0=$(ostat bytes); h0=$(ostat heads)
t0=$(now)
for k in 1 2 3 4; do
    $bin/ucache read --manifest "$W/manifest" --epochs 1 >"$W/c$k" 2>&1 &
    cl[$k]=$!
done
for k in 1 2 3 4; do
    wait ${cl[$k]} || { echo "bench_origin: client $k failed: $(tail -n 2 "$W/c$k")" >&2; exit 1; }
done
t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
dg=$(( $(ostat gets) - g0 )); db=$(( $(ostat bytes) - b0 )); dh=$(( $(ostat heads) - h0 ))
chunks=$(( total / (4 << 20) ))
emit four_clients_cold "\"clients\":4,\"chunks\":$chunks,\"origin_gets\":$dg,\"origin_heads\":$dh,\"origin_bytes\":$db,\"gets_per_chunk\":$(ratio $dg $chunks),\"origin_bytes_per_dataset_byte\":$(ratio $db $total),\"aggregate_mib_per_s\":$(mibps $((4 * total)) "$t")"
stop_daemons

# an origin that gives each connection 100 MB/s, like a cloud object store
origin 100000000
versus paced_ $(( (nobj + 1) / 2 ))
# ... and loaded by `ucache warmup` (16 units in parallel) on a fresh fabric
daemons || exit 1
$bin/ucache warmup --manifest "$W/manifest" --json >"$W/warm.json" 2>"$W/warm.err" ||
    { echo "bench_origin: ucache warmup failed: $(tail -n 2 "$W/warm.err")" >&2; exit 1; }
wm=$(sed -n 's/.*"mib_per_s":\([0-9.]*\).*/\1/p' "$W/warm.json")
emit paced_warmup "\"bytes\":$total,\"mib_per_s\":${wm:-0},\"vs_curl\":$(ratio "${wm:-0}" "$c")"
stop_daemons
