#!/usr/bin/env bash
# test_start.sh - a daemon serves while it commits its memory (issue
# [8/11]): `ucached --mem 1G` with one commit thread answers `ucache health
# --local` (exit 0, its memory "committing") before all of it is usable,
# serves a file:// dataset read through it byte for byte meanwhile (fills
# go to the part already usable), then reports all of it usable, the same
# in /metrics.  health --local of a host with no node is broken (exit 2).
# How fast it starts is a benchmark (make bench), not a test.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup start
trap 'stop_all "$W" "${DPIDS[@]}"' EXIT

mkdir -p "$W/data"
for i in 1 2 3 4; do head -c $((16 * 1048576 + i)) /dev/urandom >"$W/data/f$i"; done
MP=$((20000 + RANDOM % 10000))
UCACHE_COMMIT_THREADS=1 $BIN/ucached --mem 1G --metrics-port $MP 2>>"$W/d1.log" &
DPIDS+=($!)
wait_registered "$W/members" 1 || bad "the daemon registers"
$BIN/ucache health --local >"$W/h1" 2>&1; rc1=$?
$BIN/ucache health --local --json >"$W/h1j" 2>&1
usable1=$(client_stat "$W/h1j" mem_usable); total=$(client_stat "$W/h1j" mem_bytes)
if [ $rc1 = 0 ] && grep -q "HEALTHY" "$W/h1" && grep -qE "memory: .* usable \([0-9]+%\)" "$W/h1" &&
   [ -n "$usable1" ] && [ -n "$total" ] && [ "$total" -ge $((1000 * 1048576)) ]; then
    ok "health --local answers as soon as the daemon registered: exit 0, memory $((usable1 >> 20)) MiB of $((total >> 20)) MiB usable"
else bad "health --local at start (rc $rc1)"; cat "$W/h1"; fi

bad_reads=0
for i in 1 2 3 4; do
    UCACHE_REPLICAS=1 $BIN/ucache cat "file://$W/data/f$i" >"$W/out" 2>>"$W/err" &&
        cmp -s "$W/out" "$W/data/f$i" || bad_reads=$((bad_reads + 1))
done
$BIN/ucache health --local --json >"$W/h2j" 2>&1
usable2=$(client_stat "$W/h2j" mem_usable)
if [ $bad_reads = 0 ] && [ "$(client_stat "$W/h2j" chunks_cached)" -ge 64 ]; then
    ok "4 x 16 MiB read through it while it commits (usable then $((usable2 >> 20)) MiB): bytes equal the origin, every chunk cached"
else bad "reads while committing ($bad_reads bad)"; tail -3 "$W/err"; fi

all_usable() {
    $BIN/ucache health --local --json >"$W/h3j" 2>/dev/null &&
        [ "$(client_stat "$W/h3j" mem_usable)" = "$total" ]
}
if wait_for 120 all_usable && $BIN/ucache health --local >"$W/h3" 2>&1 &&
   grep -qE "memory: .* usable \(100%\), committed in [0-9.]+ s" "$W/h3" &&
   curl -s "http://127.0.0.1:$MP/metrics" | grep -q "^ucache_memory_usable_bytes $total\$"; then
    ok "then all of it is usable: health --local says so with the commit time, /metrics ucache_memory_usable_bytes = $total"
else bad "all memory usable"; cat "$W/h3" 2>/dev/null; fi
UCACHE_REPLICAS=1 $BIN/ucache cat "file://$W/data/f1" >"$W/out" 2>>"$W/err"
cmp -s "$W/out" "$W/data/f1" && ok "its chunks read exact after the commit" || bad "read after the commit"

$BIN/ucache health --local --host no-such-host >"$W/h4" 2>&1; rc4=$?
if [ $rc4 = 2 ] && grep -q "no node of this host in the view" "$W/h4"; then
    ok "health --local --host of a host with no node: broken (exit 2)"
else bad "health --local of another host (rc $rc4)"; cat "$W/h4"; fi
stop_daemons
summary
