#!/usr/bin/env bash
# test_python.sh - the Python package (python/ucache, issue [10/11]) against
# a 3-node fabric: three ucached daemons, a file:// dataset in W and the
# test HTTP origin; pytest (tests/python/test_*.py) in the venv that
# `make python` made in $BUILD/venv, every test one PASS/FAIL/SKIP line.
# Under ASan the interpreter runs with the sanitizer runtimes preloaded
# (leak checks off: the interpreter's own allocations are not ours; the C
# suites check our leaks); under TSan the suite SKIPs (an uninstrumented
# interpreter's locks are invisible to TSan: every cffi call would race).
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup python
SRV=
trap 'stop_all "$W" "${DPIDS[@]}" $SRV' EXIT
PY=$BUILD/venv/bin/python

# which sanitizer runtimes the library needs, from the library itself (not
# from the caller's environment: an instrumented library loaded into a plain
# interpreter makes ASan end the process with exit 1 and its complaint lost
# in pytest's captured output - how `make asan` once failed here)
LIBSO=$BUILD/lib/libucache-rdma.so
RUNTIMES=$(ldd "$LIBSO" 2>/dev/null | awk '/lib(asan|ubsan|tsan)\.so/ {print $3}')
if [ "${UCACHE_TEST_SANITIZER:-}" = thread ] || [[ $RUNTIMES == *libtsan* ]]; then
    skp "python suite" "under TSan: the interpreter is not instrumented, its locks are invisible to TSan"
    summary; exit
fi
if [ ! -x "$PY" ] || ! "$PY" -c "import ucache, torch, fsspec, pytest, numpy" 2>"$W/import.err"; then
    skp_dep "python suite" "no venv with ucache, torch, fsspec, pytest, numpy in $BUILD/venv: make python ($(tail -n 1 "$W/import.err" 2>/dev/null))"
    summary; exit
fi
PRELOAD=
if [[ $RUNTIMES == *libasan* ]]; then
    PRELOAD=$(echo $RUNTIMES)
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
elif [ "${UCACHE_TEST_SANITIZER:-}" = address ]; then
    bad "python suite: UCACHE_TEST_SANITIZER=address but $LIBSO is not built with ASan"
    summary; exit
fi

# the dataset: sizes across chunk boundaries (1 MiB chunks), a subdirectory
mkdir -p "$W/data/sub"
for i in $(seq -w 1 14); do
    head -c $(( (10#$i % 5) * 1048576 + 4096 + 997 * 10#$i )) /dev/urandom >"$W/data/f$i.bin"
done
head -c $((5 * 1048576 + 123)) /dev/urandom >"$W/data/big.bin"
for i in 1 2 3 4 5 6; do head -c $((4096 + 30011 * i)) /dev/urandom >"$W/data/sub/s$i.bin"; done

$T/http_origin "$W/data" 0 >"$W/origin.port" 2>>"$W/origin.log" &
SRV=$!
wait_for 5 test -s "$W/origin.port"
start_daemons 3 128M

export UCACHE_TEST_DATA=$W/data UCACHE_TEST_HTTP=http://127.0.0.1:$(awk '{print $2}' "$W/origin.port")
# unbuffered: a process that dies mid-test leaves its output whole (an
# ASan CI run once ended with pytest's output cut after its first test)
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1
rc=0
LD_PRELOAD=$PRELOAD timeout "$(slow 600)" "$PY" -m pytest -v -p no:cacheprovider \
    "$(dirname "$0")" >"$W/pytest.out" 2>&1 || rc=$?
while read -r name result; do
    case $result in
    PASSED) ok "$name" ;;
    SKIPPED) skp "$name" "pytest skipped it" ;;
    *) bad "$name ($result)" ;;
    esac
done < <(sed -n 's/^tests\/python\/\([^ ]*\) \(PASSED\|FAILED\|ERROR\|SKIPPED\).*/\1 \2/p' "$W/pytest.out")
if [ $rc != 0 ]; then
    bad "pytest exited $rc"
    grep -v "^tests/python/.* PASSED" "$W/pytest.out" | tail -n 120
    echo "--- the daemons' logs:"; tail -n 5 "$W"/d*.log
fi
stop_daemons
summary
