#!/usr/bin/env bash
# test_admin.sh - `ucache status`, `ucache stat` and ucached's Prometheus
# endpoint (--metrics-port, scraped with curl) against three ucached
# daemons on loopback (zones a, b, a): outputs parsed and checked - three
# nodes ok in two zones, capacity and chunks that add up to what was read,
# counters and hit ratio that move as reads happen, per-second rates with
# --watch; a node killed with -9 shows as unreachable (exit 1) until the
# members source reaps it; bad input gives clear messages and exit codes.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup admin
export UCACHE_MEMBERS_TTL=2s
trap 'stop_all "$W" "${DPIDS[@]}"' EXIT

json() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1" | tail -n 1; }
sum() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | awk '{s += $1} END {print s + 0}'; }

mkdir -p "$W/data"
head -c 5242880 /dev/urandom >"$W/data/five"
# a free port for the first daemon's metrics, below the ephemeral range
for try in $(seq 20); do
    MP=$((20000 + RANDOM % 12000))
    [ "$(ss -tanH 2>/dev/null | awk '{print $4}' | grep -c ":$MP\$")" = 0 ] && break
done
M=(--metrics-port "$MP")
for z in a b a; do
    $BIN/ucached --mem 48M --zone $z "${M[@]}" 2>>"$W/d$z.log" &
    DPIDS+=($!)
    M=()
done
wait_registered "$W/members" 3 || bad "three ucached daemons register"

$BIN/ucache status --json >"$W/s0" 2>"$W/e0"; rc=$?
if [ $rc = 0 ] && [ "$(json "$W/s0" nodes)" = 3 ] && [ "$(json "$W/s0" ok)" = 3 ] &&
   grep -q '"zones":"\(a,b\|b,a\)"' "$W/s0" &&
   [ "$(json "$W/s0" mem_bytes)" -gt $((3 * 40 << 20)) ] && [ "$(json "$W/s0" used_bytes)" = 0 ]; then
    ok "status on an empty fabric: 3 nodes ok in zones a,b, $(($(json "$W/s0" mem_bytes) >> 20)) MiB, nothing used"
else bad "status, empty fabric (rc $rc)"; cat "$W/s0" "$W/e0"; fi

$BIN/ucache cat "file://$W/data/five" >/dev/null && $BIN/ucache cat "file://$W/data/five" >/dev/null
$BIN/ucache stat --json >"$W/t1" 2>"$W/e1"; rc=$?
if [ $rc = 0 ] && [ "$(grep -c '"state":"ok"' "$W/t1")" = 3 ] && [ "$(sum "$W/t1" fills)" = 5 ] &&
   [ "$(sum "$W/t1" origin_bytes)" = 5242880 ] && [ "$(sum "$W/t1" fill_errors)" = 0 ]; then
    ok "stat after reading a 5-chunk object twice: 3 nodes, 5 fills and 5 MiB from the origin in all"
else bad "stat counters (rc $rc)"; cat "$W/t1" "$W/e1"; fi
# one-sided hits reach the owners sampled (1 in 16): read some more
$T/fabric_client hits 400 "$W/data/five" >/dev/null 2>&1
sleep 0.5
$BIN/ucache status --json >"$W/s1" 2>/dev/null
if [ "$(json "$W/s1" used_bytes)" -ge 5242880 ] && [ "$(sum "$W/s1" chunks)" = 5 ] &&
   awk -v h="$(json "$W/s1" hit_ratio)" 'BEGIN { exit !(h > 0) }'; then
    ok "status after 400 more hits: 5 chunks, $(($(json "$W/s1" used_bytes) >> 10)) KiB used, hit ratio $(json "$W/s1" hit_ratio)"
else bad "status after reads"; cat "$W/s1"; fi
$BIN/ucache status >"$W/s2" 2>&1
if grep -q "^fabric: view epoch [0-9]*, 3 nodes: 3 ok, 0 suspect, 0 unreachable; zones: " "$W/s2" &&
   grep -q "^capacity: .* used of .* free), .* pinned$" "$W/s2" && [ "$(grep -c ' ok  ' "$W/s2")" = 3 ]; then
    ok "status as a table: the view line, capacity, one row per node"
else bad "status table"; cat "$W/s2"; fi

# Prometheus metrics of the first daemon, against its own STATS answer
curl -s "http://127.0.0.1:$MP/metrics" >"$W/m1"; rc=$?
grep "\"pid\":${DPIDS[0]}," "$W/t1" >"$W/t1a"
fills=$(json "$W/t1a" fills)
mfills=$(sed -n 's/^ucache_fills_total \([0-9]*\)$/\1/p' "$W/m1")
names=$(grep -v '^#' "$W/m1" | sed 's/[{ ].*//' | sed 's/_bucket$\|_sum$\|_count$//' | sort -u)
undeclared=0
for n in $names; do grep -q "^# TYPE $n " "$W/m1" || undeclared=$((undeclared + 1)); done
buckets=$(sed -n 's/^ucache_fill_duration_seconds_bucket{le="[^"]*"} \([0-9]*\)$/\1/p' "$W/m1")
inf=$(sed -n 's/^ucache_fill_duration_seconds_bucket{le="+Inf"} \([0-9]*\)$/\1/p' "$W/m1")
count=$(sed -n 's/^ucache_fill_duration_seconds_count \([0-9]*\)$/\1/p' "$W/m1")
if [ $rc = 0 ] && [ -n "$fills" ] && [ "$mfills" = "$fills" ] && [ $undeclared = 0 ] &&
   [ "$(echo "$buckets" | sort -n | tr '\n' ' ')" = "$(echo "$buckets" | tr '\n' ' ')" ] &&
   [ "$inf" = "$fills" ] && [ "$count" = "$fills" ] &&
   grep -q '^ucache_memory_bytes [1-9]' "$W/m1" && grep -q '^# TYPE ucache_fill_duration_seconds histogram' "$W/m1"; then
    ok "ucached --metrics-port: /metrics scraped with curl: $(echo "$names" | wc -w) metrics, each with # TYPE; ucache_fills_total $mfills = its STATS answer; fill histogram monotonic, +Inf = count = $count"
else bad "metrics (rc $rc, fills $fills vs $mfills, $undeclared undeclared, inf $inf count $count)"; head -20 "$W/m1"; fi
c404=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/other")
c405=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MP/metrics")
if [ "$c404" = 404 ] && [ "$c405" = 405 ] && ss -ltnH | grep -q "127.0.0.1:$MP " &&
   ! ss -ltnH | grep -q "0.0.0.0:$MP "; then
    ok "metrics endpoint: bound to 127.0.0.1 only; other paths 404, POST 405"
else bad "metrics endpoint ($c404 $c405)"; ss -ltnH | grep ":$MP"; fi
$BIN/ucached --mem 16M --metrics-port "$MP" >/dev/null 2>"$W/m2"; r1=$?
$BIN/ucached --metrics-port 70000 >/dev/null 2>&1; r2=$?
$BIN/ucached --metrics-port 1 --metrics-addr not-an-ip --mem 16M >/dev/null 2>"$W/m3"; r3=$?
if [ $r1 = 1 ] && grep -q "cannot serve metrics" "$W/m2" && [ $r2 = 2 ] && [ $r3 = 1 ] &&
   grep -q "not an IPv4 address" "$W/m3"; then
    ok "metrics bad input: the port in use (1), --metrics-port 70000 (2), a bad --metrics-addr (1)"
else bad "metrics bad input ($r1 $r2 $r3)"; cat "$W/m2" "$W/m3"; fi

# --watch: two samples with per-second rates in between
( sleep 0.3; for i in $(seq 5); do $BIN/ucache cat "file://$W/data/five" >/dev/null; done ) &
busy=$!
$BIN/ucache stat --watch=1 --count 2 --json >"$W/t2" 2>&1; rc=$?
wait $busy
if [ $rc = 0 ] && [ "$(grep -c '"state":"ok"' "$W/t2")" = 6 ] &&
   [ "$(grep -c 'fetches_served_per_s' "$W/t2")" = 3 ]; then
    ok "stat --watch=1 --count 2: 2 samples of 3 nodes, the second with per-second rates"
else bad "stat --watch (rc $rc)"; cat "$W/t2"; fi
$BIN/ucache stat --watch=0.2 --count 2 >"$W/t3" 2>&1
if [ "$(grep -c '^node ' "$W/t3")" = 2 ] && grep -q '/s' "$W/t3"; then
    ok "stat --watch as tables: rates after the first sample"
else bad "stat --watch table"; cat "$W/t3"; fi

# a node killed: unreachable (exit 1) until reaped, then gone from the view
kill -9 "${DPIDS[1]}"; wait "${DPIDS[1]}" 2>/dev/null
$BIN/ucache status --json --timeout 500ms >"$W/s3" 2>/dev/null; rc=$?
if [ $rc = 1 ] && [ "$(json "$W/s3" unreachable)" = 1 ] && grep -q '"state":"unreachable"' "$W/s3"; then
    ok "a node killed with -9: status shows it unreachable and exits 1"
else
    # the dir: source may already have reaped it (same host: at once)
    if [ $rc = 0 ] && [ "$(json "$W/s3" nodes)" = 2 ]; then
        ok "a node killed with -9: already reaped, status shows 2 nodes ok"
    else bad "killed node (rc $rc)"; cat "$W/s3"; fi
fi
for i in $(seq 50); do [ "$(registered "$W/members")" = 2 ] && break; sleep 0.1; done
$BIN/ucache status --json >"$W/s4" 2>/dev/null; rc=$?
if [ $rc = 0 ] && [ "$(json "$W/s4" nodes)" = 2 ] && [ "$(json "$W/s4" ok)" = 2 ]; then
    ok "after it is reaped: 2 nodes, all ok, exit 0"
else bad "after reaping (rc $rc)"; cat "$W/s4"; fi

# bad input
$BIN/ucache stat --bogus >/dev/null 2>&1; r1=$?
$BIN/ucache stat --watch=0 >/dev/null 2>"$W/b2"; r2=$?
$BIN/ucache status --timeout soon >/dev/null 2>"$W/b3"; r3=$?
$BIN/ucache status --watch >/dev/null 2>&1; r4=$?
$BIN/ucache status extra >/dev/null 2>"$W/b5"; r5=$?
$BIN/ucache status --members file:$W/none >/dev/null 2>"$W/b6"; r6=$?
mkdir -p "$W/empty"
$BIN/ucache stat --members dir:$W/empty >"$W/b7" 2>&1; r7=$?
if [ $r1 = 2 ] && [ $r2 = 2 ] && grep -q "bad --watch" "$W/b2" && [ $r3 = 2 ] &&
   grep -q "bad --timeout" "$W/b3" && [ $r4 = 2 ] && [ $r5 = 2 ] && grep -q "unexpected" "$W/b5" &&
   [ $r6 = 1 ] && grep -q "cannot reach the members source" "$W/b6" && [ $r7 = 1 ]; then
    ok "bad input: unknown flag, --watch=0, --timeout soon, status --watch, an extra word (2); a missing members list, an empty fabric (1)"
else bad "bad input ($r1 $r2 $r3 $r4 $r5 $r6 $r7)"; cat "$W/b2" "$W/b3" "$W/b6" "$W/b7"; fi

for p in "${DPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
DPIDS=()
summary
