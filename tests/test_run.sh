#!/usr/bin/env bash
# test_run.sh - the harness itself (tests/run.sh, tests/lib.sh): a suite
# whose background process leaves a sanitizer report fails even though
# its own checks passed; a clean one passes; under CI=true a skip for a
# missing dependency fails; wait_for gives up at its (scaled) bound, long
# bounds included.
# Last line: "N passed, N failed, N skipped".
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
W=$(mktemp -d /tmp/ucache-run.XXXXXX)
trap 'rm -rf "$W"' EXIT

# a suite that passes its own checks while a process it started (a daemon
# whose stderr nobody reads) writes a sanitizer report where log_path says
cat >"$W/dirty.sh" <<'SUITE'
#!/usr/bin/env bash
lp=$(echo "$ASAN_OPTIONS" | tr ':' '\n' | sed -n 's/^log_path=//p' | tail -n 1)
( echo "==1==ERROR: AddressSanitizer: heap-use-after-free" >"$lp.4242" ) &
wait
echo "1 passed, 0 failed, 0 skipped"
SUITE
printf '#!/usr/bin/env bash\necho "2 passed, 0 failed, 0 skipped"\n' >"$W/clean.sh"
chmod +x "$W/dirty.sh" "$W/clean.sh"

ASAN_OPTIONS=detect_leaks=1 "$here/run.sh" "$W/dirty.sh" >"$W/out1" 2>&1; r1=$?
if [ $r1 = 1 ] && grep -q "1 sanitizer report(s) from its processes" "$W/out1" &&
   grep -q "heap-use-after-free" "$W/out1" && [ "$(tail -n 1 "$W/out1")" = "1 passed, 1 failed, 0 skipped" ]; then
    ok "run.sh: a sanitizer report from a suite's background process fails the suite (printed)"
else bad "run.sh with a sanitizer report (rc $r1)"; cat "$W/out1"; fi

ASAN_OPTIONS=detect_leaks=1 "$here/run.sh" "$W/clean.sh" >"$W/out2" 2>&1; r2=$?
if [ $r2 = 0 ] && [ "$(tail -n 1 "$W/out2")" = "2 passed, 0 failed, 0 skipped" ]; then
    ok "run.sh: a clean suite passes, its counts added up"
else bad "run.sh with a clean suite (rc $r2)"; cat "$W/out2"; fi

out=$( (pass=0 fail=0 skip=0; CI=true skp_dep "a case" "tool X is not installed"; echo "$fail $skip") )
out2=$( (pass=0 fail=0 skip=0; CI= skp_dep "a case" "tool X is not installed"; echo "$fail $skip") )
if [ "$(echo "$out" | tail -n 1)" = "1 0" ] && echo "$out" | grep -q "^FAIL a case: tool X" &&
   [ "$(echo "$out2" | tail -n 1)" = "0 1" ]; then
    ok "skp_dep: a missing dependency fails under CI=true, skips otherwise"
else bad "skp_dep ($out / $out2)"; fi

t0=$(date +%s%N)
wait_for 0.3 false; rw=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $rw != 0 ] && [ $ms -ge 300 ] && wait_for 5 true; then
    ok "wait_for: gives up after its bound (${ms} ms for 0.3 s x $SLOW), returns at once on success"
else bad "wait_for (rc $rw, $ms ms)"; fi
# a bound past 2^31 ns (mawk's printf %d stops there: every wait was cut to 2.1 s)
t0=$(date +%s%N)
wait_for $(awk -v k="$SLOW" 'BEGIN { print 2.5 / k }') false
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $ms -ge 2500 ]; then
    ok "wait_for: a 2.5 s bound holds 2.5 s (${ms} ms), not 2.1"
else bad "wait_for cut a 2.5 s bound to $ms ms"; fi

summary
