#!/usr/bin/env bash
# test_warmup.sh - `ucache warmup` against three ucached daemons on
# loopback: a manifest of http:// objects (served by tests/origin/
# http_origin, which counts requests) is loaded with every chunk fetched
# from the origin exactly once, after which reads are all hits and make no
# origin request; a second warmup finds everything cached; --pin keeps a
# dataset through a flood that evicts an unpinned one; pins past 90% of the
# memory are reported and fail the command; progress is a bar on a terminal
# and lines otherwise; bad input gives clear messages and exit codes.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup warmup
SRV=
trap 'stop_all "$W" "${DPIDS[@]}" $SRV' EXIT

json() { sed -n "s/.*\"$2\":\([0-9a-z]*\).*/\1/p" "$1" | tail -n 1; }

mkdir -p "$W/data" "$W/pinned" "$W/plain" "$W/flood"
for i in 1 2 3 4 5; do head -c $((i * 1500000 + 17)) /dev/urandom >"$W/data/obj$i"; done
: >"$W/data/empty"
$T/http_origin "$W/data" 0 >"$W/origin.port" 2>>"$W/origin.log" &
SRV=$!
wait_for 5 test -s "$W/origin.port"
URL=http://127.0.0.1:$(awk '{print $2}' "$W/origin.port")
ostat() { curl -s "$URL/_ctl/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

# no fabric yet: a clear error
printf '%s\n' "$URL/obj1" >"$W/one.list"
$BIN/ucache warmup --manifest "$W/one.list" >"$W/out" 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "no owner\|peer unreachable" "$W/err"; then
    ok "no live node: warmup fails with a clear message (rc 1)"
else bad "warmup without a fabric (rc $rc)"; cat "$W/out" "$W/err"; fi

start_daemons 3 48M

# --- a manifest of http objects: each chunk fetched once ----------------------
{ echo "# the training set"; echo
  for i in 1 2 3 4 5; do echo "  $URL/obj$i"; done
  echo "$URL/obj3"; echo "$URL/empty"; } >"$W/manifest"
total=0 want=0
for i in 1 2 3 4 5; do
    s=$(stat -c %s "$W/data/obj$i"); total=$((total + s)); want=$((want + (s + 1048575) / 1048576))
done
g0=$(ostat gets); b0=$(ostat bytes)
$BIN/ucache warmup --manifest "$W/manifest" --json >"$W/w1" 2>"$W/e1"; rc=$?
dg=$(( $(ostat gets) - g0 )); db=$(( $(ostat bytes) - b0 ))
if [ $rc = 0 ] && [ "$(json "$W/w1" objects)" = 6 ] && [ "$(json "$W/w1" chunks)" = $want ] &&
   [ "$(json "$W/w1" filled)" = $want ] && [ "$(json "$W/w1" bytes)" = $total ] &&
   [ $dg = $want ] && [ $db = $total ]; then
    ok "warmup of a 6-object manifest: $want chunks, $dg ranged GETs and $db bytes at the origin for $total dataset bytes (1.0 each)"
else bad "manifest warmup (rc $rc, $dg GETs, $db bytes, want $want / $total)"; cat "$W/w1" "$W/e1"; fi
if grep -q "^warmup: 100%" "$W/e1"; then
    ok "progress without a terminal: plain lines ('$(grep -m1 '^warmup: 100%' "$W/e1")')"
else bad "progress lines"; cat "$W/e1"; fi

g0=$(ostat gets)
export FC_ORIGIN=$URL FC_ROOT=$W/data
if $T/fabric_client verify 100 "$W"/data/obj? >"$W/v1" 2>&1 &&
   [ "$(client_stat "$W/v1" chunk_misses)" = 0 ] && [ "$(client_stat "$W/v1" origin_direct)" = 0 ] &&
   [ "$(ostat gets)" = "$g0" ]; then
    ok "after warmup: 100 random reads equal the files, all hits, 0 origin GETs"
else bad "reads after warmup"; tail -3 "$W/v1"; fi

$BIN/ucache warmup --manifest "$W/manifest" >"$W/w2" 2>"$W/e2"; rc=$?
if [ $rc = 0 ] && grep -q "0 filled from the origin, $want already cached" "$W/w2" &&
   [ "$(ostat gets)" = "$g0" ]; then
    ok "a second warmup: every chunk already cached, no origin request"
else bad "second warmup (rc $rc)"; cat "$W/w2" "$W/e2"; fi

# --- --pin keeps a dataset through a flood; an unpinned one is evicted ----------
for i in 1 2 3 4; do head -c 5000000 /dev/urandom >"$W/pinned/p$i"; head -c 5000000 /dev/urandom >"$W/plain/q$i"; done
for i in $(seq 1 24); do head -c 8000000 /dev/urandom >"$W/flood/f$i"; done
$BIN/ucache warmup --pin "file://$W/pinned/" >"$W/w3" 2>&1 &&
$BIN/ucache warmup "file://$W/plain/" >>"$W/w3" 2>&1 &&
$BIN/ucache warmup "file://$W/flood/" >>"$W/w3" 2>&1; rc=$?
unset FC_ORIGIN FC_ROOT
$T/fabric_client verify 60 "$W"/pinned/p? >"$W/v2" 2>&1; rc2=$?
$T/fabric_client verify 60 "$W"/plain/q? >"$W/v3" 2>&1; rc3=$?
pm=$(client_stat "$W/v2" chunk_misses); qm=$(client_stat "$W/v3" chunk_misses)
if [ $rc = 0 ] && [ $rc2 = 0 ] && [ $rc3 = 0 ] && [ "$pm" = 0 ] && [ "${qm:-0}" -gt 0 ]; then
    ok "--pin: after 192 MB of other data through 144 MiB of cache the pinned 20 MB reads with 0 misses (the unpinned one: $qm)"
else bad "pinning (rc $rc/$rc2/$rc3, pinned misses $pm, unpinned misses $qm)"; cat "$W/w3"; fi

$BIN/ucache warmup --pin "file://$W/flood/" >"$W/w4" 2>"$W/e4"; rc=$?
if [ $rc = 1 ] && grep -q "NOT pinned\|FAILED" "$W/w4"; then
    ok "pinning 192 MB into 144 MiB: reported ($(grep -o 'NOT pinned[^;]*\|FAILED[^;]*' "$W/w4" | head -1)), exit 1"
else bad "over-pinning (rc $rc)"; cat "$W/w4"; tail -3 "$W/e4"; fi
$BIN/ucache warmup --unpin "file://$W/flood/" "file://$W/pinned/" >"$W/w5" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "(unpinned)" "$W/w5"; then
    ok "--unpin releases them: $(grep -o '[0-9]* already cached' "$W/w5") chunks unpinned"
else bad "unpin (rc $rc)"; cat "$W/w5"; fi

# --- a terminal gets a progress bar ----------------------------------------------
if command -v script >/dev/null; then
    script -qec "$BIN/ucache warmup file://$W/pinned/" "$W/tty" >/dev/null 2>&1
    if grep -q '\[########################################\] 100%' "$W/tty"; then
        ok "on a terminal: a progress bar with bytes, chunks, rate and ETA"
    else bad "progress bar"; tail -c 300 "$W/tty"; fi
else skp_dep "progress bar" "script(1) is not installed"; fi

# --- bad input -----------------------------------------------------------------
$BIN/ucache warmup "file://$W/none" >/dev/null 2>"$W/err"; rc1=$?
$BIN/ucache warmup "$URL/" >/dev/null 2>"$W/err2"; rc2=$?
$BIN/ucache warmup --manifest "$W/none.list" >/dev/null 2>"$W/err3"; rc3=$?
$BIN/ucache warmup >/dev/null 2>&1; rc4=$?
$BIN/ucache warmup --pin --unpin "$URL/obj1" >/dev/null 2>&1; rc5=$?
$BIN/ucache warmup --parallel 0 "$URL/obj1" >/dev/null 2>&1; rc6=$?
if [ $rc1 = 1 ] && grep -q "not found" "$W/err" && [ $rc2 = 1 ] && grep -q "not supported" "$W/err2" &&
   [ $rc3 = 1 ] && grep -q "cannot open the manifest" "$W/err3" &&
   [ $rc4 = 2 ] && [ $rc5 = 2 ] && [ $rc6 = 2 ]; then
    ok "bad input: a missing object, an http prefix (cannot list), a missing manifest (1); no URI, --pin --unpin, --parallel 0 (2)"
else bad "bad input ($rc1 $rc2 $rc3 $rc4 $rc5 $rc6)"; cat "$W/err" "$W/err2" "$W/err3"; fi

stop_daemons
summary
