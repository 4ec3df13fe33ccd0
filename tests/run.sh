#!/usr/bin/env bash
# Runs each test binary given, adds up their "N passed, N failed, N skipped"
# lines, and prints the total as the last line.  Exit 1 if anything failed.
set -u
passed=0 failed=0 skipped=0 broken=0
for t in "$@"; do
    echo "=== $t"
    out=$(mktemp)
    "$t" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "!!! $t exited $rc without a summary line (crashed?)"
        broken=$((broken + 1))
        continue
    fi
    read -r p _ f _ s _ <<<"${line//,/}"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $t exited $rc"
        broken=$((broken + 1))
    fi
done
failed=$((failed + broken))
echo
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
