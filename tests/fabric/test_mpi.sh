#!/usr/bin/env bash
# test_mpi.sh - job-scoped mode: mpirun -np 4 of tests/fabric/mpi_job.c
# (ranks join with ucache_mpi_init, read a shared dataset, verify it, and
# check each chunk was read from its origin once).  SKIP, counted, if Open
# MPI is not installed.  Last line: "N passed, N failed, N skipped".
set -u
BUILD=${BUILD:-build}
T=$BUILD/tests
if ! command -v mpirun >/dev/null || [ ! -x "$T/mpi_job" ]; then
    echo "SKIP mpi job mode: Open MPI (mpirun, mpicc) is not installed"
    echo; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
W=$(mktemp -d /tmp/ucache-mpi.XXXXXX)
trap 'rm -rf "$W"' EXIT
head -c 5000000 /dev/urandom >"$W/a"
head -c 3145728 /dev/urandom >"$W/b"
head -c 777 /dev/urandom >"$W/c"
export UCACHE_MEM_LOCK=no UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-warn}
export UCACHE_ALLOW="file://$W/"       # the ranks fill from the job's own files
# Open MPI leaks from components it dlcloses (frames "<unknown module>"), so
# LeakSanitizer is off for this job; the same library paths (serving
# contexts, ucache_members_set) are leak-checked in test_fabric (members_set).
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
if timeout 120 mpirun --allow-run-as-root --oversubscribe -np 4 \
        -x UCACHE_MEM_LOCK -x UCACHE_LOG_LEVEL -x UCACHE_ALLOW -x LSAN_OPTIONS -x ASAN_OPTIONS \
        "$T/mpi_job" "$W/a" "$W/b" "$W/c" >"$W/out" 2>&1; then
    echo "PASS $(grep 'mpi job' "$W/out")"
    echo; echo "1 passed, 0 failed, 0 skipped"
else
    echo "FAIL mpi job mode"; tail -20 "$W/out"
    echo; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
