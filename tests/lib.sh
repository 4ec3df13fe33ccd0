# lib.sh - what the multi-process test scripts share (sourced, not run):
# the PASS/FAIL/SKIP lines and their counts, reading a counter from a
# stats JSON line, waiting for daemons to register, the closing summary.
pass=0 fail=0 skip=0

ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skp() { echo "SKIP $1: $2"; skip=$((skip + 1)); }

# client_stat FILE NAME: the last value of counter NAME in FILE's JSON lines
client_stat() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | tail -n 1; }

# registered DIR: how many node records a dir: members source holds
registered() { ls "$1"/node-*.rec 2>/dev/null | wc -l; }

# wait_registered DIR N: until DIR holds N records (20 s at most)
wait_registered() {
    local i
    for i in $(seq 200); do
        [ "$(registered "$1")" -eq "$2" ] && return 0
        sleep 0.1
    done
    echo "members: $(registered "$1") records in $1, want $2" >&2
    return 1
}

# stop_all DIR PID...: the EXIT trap of a script: stop (and resume, if
# stopped) every process it started, then remove its work directory DIR
# unless KEEP=1
stop_all() {
    local dir=$1 p
    shift
    {   # (bash reports each killed job on stderr: not news here)
        for p in "$@"; do
            kill -CONT "$p"; kill -9 "$p"
        done
        wait
    } 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}

# summary: the line tests/run.sh adds up; the exit status of the script
summary() {
    echo
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
}

# test_setup NAME: what every multi-process suite sets up - BUILD, BIN, T,
# a work directory W (/tmp/ucache-NAME.XXXXXX), DPIDS (the daemons it
# starts) and the environment of a local fabric in W: dir: members, 1 MiB
# chunks, fast member polling, warn logs, no mlock
test_setup() {
    BUILD=${BUILD:-build}
    BIN=$BUILD/bin
    T=$BUILD/tests
    W=$(mktemp -d "/tmp/ucache-$1.XXXXXX")
    export UCACHE_MEMBERS=dir:$W/members UCACHE_CHUNK_SIZE=1M UCACHE_MEMBERS_POLL=100ms
    export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-warn} UCACHE_MEM_LOCK=no
    DPIDS=()
}

# start_daemons N MEM: N more `ucached --mem MEM` in the background (their
# pids in DPIDS, logs in $W/dI.log), then wait until all are registered
start_daemons() {
    local i
    for i in $(seq "$1"); do
        $BIN/ucached --mem "$2" 2>>"$W/d$i.log" &
        DPIDS+=($!)
    done
    wait_registered "$W/members" "${#DPIDS[@]}" || bad "${#DPIDS[@]} ucached daemons register"
}
