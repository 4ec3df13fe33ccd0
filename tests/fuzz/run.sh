#!/usr/bin/env bash
# run.sh SECONDS TARGET... - run each libFuzzer harness (build/fuzz/fuzz/
# fuzz_TARGET) for SECONDS from its seed corpus (tests/fuzz/corpus/TARGET,
# read only) and its working corpus (build/fuzz/corpus/TARGET, where new
# inputs go), one process, no leak of a crash: a crashing input is saved as
# build/fuzz/crashes/TARGET-crash-* and the target FAILs (a saved input is
# tried again first, and leaves once it no longer crashes).  Per target: the
# runs made, the coverage reached (libFuzzer's cov: edges), the corpus.
# Last line: "N passed, N failed, N skipped".
set -u
secs=$1; shift
pass=0; fail=0
dir=build/fuzz
mkdir -p "$dir/crashes" "$dir/logs"
for t in "$@"; do
    bin=$dir/fuzz/fuzz_$t
    seeds=tests/fuzz/corpus/$t
    work=$dir/corpus/$t
    mkdir -p "$work" "$seeds"
    log=$dir/logs/$t.log
    # crashes saved by earlier runs first: still crashing fails at once; fixed
    # ones join the working corpus (copy them to $seeds to keep them)
    for c in "$dir/crashes/$t-"*; do
        [ -e "$c" ] || continue
        if "$bin" -runs=1 "$c" >/dev/null 2>&1; then
            echo "fuzz_$t: $(basename "$c") no longer crashes: into $work"
            mv "$c" "$work/"
        fi
    done
    # -rss_limit_mb: a parser that grows without bound is a finding too
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$dir/crashes/$t-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
    corp=$(ls "$work" | wc -l)
    if [ $rc -eq 0 ] && ! ls "$dir/crashes/$t-"* >/dev/null 2>&1; then
        echo "PASS fuzz_$t: ${runs:-0} runs in ${secs} s, coverage ${cov:-0} edges, corpus $corp, no crash"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$t (exit $rc): the input is in $(ls "$dir/crashes/$t-"* 2>/dev/null | head -1)"
        grep -E "ERROR|fuzz:|runtime error|SUMMARY" "$log" | head -5
        fail=$((fail + 1))
    fi
done
echo
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
