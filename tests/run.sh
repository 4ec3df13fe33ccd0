#!/usr/bin/env bash
# Runs each test binary or suite script given, adds up their "N passed, N
# failed, N skipped" lines, and prints the total as the last line.  Exit 1
# if anything failed.  Under a sanitizer (make asan / make tsan) every
# process a suite starts - daemons, helpers and tools included - writes its
# report to a file of its own in a directory per suite (log_path), and a
# suite that leaves a report fails, whatever its own checks said.
set -u
passed=0 failed=0 skipped=0 broken=0
san_root=$(mktemp -d /tmp/ucache-san.XXXXXX)
trap 'rm -rf "$san_root"' EXIT

# Every suite runs with a fabric key, as a deployment does: the cluster key
# and the admin key, made with `ucache keygen` (a suite that tests the
# reader role or an open fabric unsets them for the process at hand).
if [ -z "${UCACHE_CLUSTER_KEY_FILE:-}" ]; then
    "${BUILD:-build}/bin/ucache" keygen "$san_root/cluster.key" &&
        "${BUILD:-build}/bin/ucache" keygen "$san_root/admin.key" || {
        echo "!!! cannot make the test keys with ${BUILD:-build}/bin/ucache keygen"; exit 1; }
    export UCACHE_CLUSTER_KEY_FILE=$san_root/cluster.key
    export UCACHE_ADMIN_KEY_FILE=$san_root/admin.key
fi

# with_log_path OPTIONS DIR: OPTIONS with log_path=DIR/NAME added, if set
with_log_path() { [ -n "$1" ] && echo "$1:log_path=$2"; }

for t in "$@"; do
    echo "=== $t"
    out=$(mktemp)
    san=$san_root/$(basename "$t")
    mkdir -p "$san"
    t0=$(date +%s)
    ASAN_OPTIONS=$(with_log_path "${ASAN_OPTIONS:-}" "$san/asan") \
    UBSAN_OPTIONS=$(with_log_path "${UBSAN_OPTIONS:-}" "$san/ubsan") \
    TSAN_OPTIONS=$(with_log_path "${TSAN_OPTIONS:-}" "$san/tsan") \
        "$t" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    echo "--- $t: $(( $(date +%s) - t0 )) s"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
    rm -f "$out"
    reports=$(ls "$san" 2>/dev/null | wc -l)
    if [ "$reports" -gt 0 ]; then
        echo "!!! $t: $reports sanitizer report(s) from its processes:"
        for f in "$san"/*; do echo "--- $f"; head -n 40 "$f"; done
        broken=$((broken + 1))
    fi
    if [ -z "$line" ]; then
        echo "!!! $t exited $rc without a summary line (crashed?)"
        broken=$((broken + 1))
        continue
    fi
    read -r p _ f _ s _ <<<"${line//,/}"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$reports" -eq 0 ]; then
        echo "!!! $t exited $rc"
        broken=$((broken + 1))
    fi
done
failed=$((failed + broken))
echo
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
