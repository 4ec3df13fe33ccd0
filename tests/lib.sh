# lib.sh - what the multi-process test scripts share (sourced, not run):
# the PASS/FAIL/SKIP lines and their counts, reading a counter from a
# stats JSON line, waiting for daemons to register, the closing summary.
pass=0 fail=0 skip=0

# The allowance for speed, stated once: UCACHE_TEST_SLOW (make asan sets 3,
# make tsan 10; 1 otherwise) multiplies every bound a suite puts on time -
# how long to wait for a condition, a deadline that must not expire, a
# TTL that must not lapse.  slow N: N seconds (or any number) scaled.
SLOW=${UCACHE_TEST_SLOW:-1}
slow() { awk -v n="$1" -v k="$SLOW" 'BEGIN { print n * k }'; }

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds, for
# SECONDS (scaled) at most; the status of its last run
wait_for() {
    local end
    # milliseconds from awk (mawk's %d stops at 2^31: 2.1 s in ns), ns in bash
    end=$(( $(date +%s%N) + $(awk -v n="$1" -v k="$SLOW" 'BEGIN { printf "%d", n * k * 1000 }') * 1000000 ))
    shift
    until "$@"; do
        [ "$(date +%s%N)" -lt "$end" ] || { "$@"; return; }
        sleep 0.1
    done
}

ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skp() { echo "SKIP $1: $2"; skip=$((skip + 1)); }
# skp_dep CASE WHY: a case that needs what make deps installs; under CI
# (CI=true) a missing dependency is a failure, never a skip
skp_dep() { if [ "${CI:-}" = true ]; then bad "$1: $2 (CI=true)"; else skp "$1" "$2"; fi; }

# client_stat FILE NAME: the last value of counter NAME in FILE's JSON lines
# modified_object FILE LABEL: FILE read (cached), rewritten at the origin,
# then read again with UCACHE_META_TTL=0 by ucache cat and fabric_client:
# its new bytes both times (PASS/FAIL as LABEL)
modified_object() {
    local f=$1 n
    n=$(stat -c %s "$f")
    $BIN/ucache cat "file://$f" >/dev/null 2>&1      # cached, old version
    head -c "$n" /dev/urandom >"$f.new" && mv "$f.new" "$f"
    if UCACHE_META_TTL=0 $BIN/ucache cat "file://$f" >"$W/cat" 2>/dev/null &&
        cmp -s "$W/cat" "$f" &&
        UCACHE_META_TTL=0 $T/fabric_client verify 30 "$f" >"$W/v4" 2>&1; then
        ok "$2: its new bytes"
    else bad "$2"; tail -n 3 "$W/v4"; fi
}

client_stat() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | tail -n 1; }

# counter NAME [SRC]: the sum of a counter over the nodes of members source
# SRC (default: the suite's), asked with `ucache stat --json` (each node's
# ADMIN answer: no signal, no log scraping, no sleep)
counter() {
    $BIN/ucache stat --json --members "${2:-$UCACHE_MEMBERS}" 2>/dev/null |
        sed -n "s/^{\"node\".*\"$1\":\([0-9]*\).*/\1/p" | awk '{ s += $1 } END { print s + 0 }'
}

# registered DIR: how many node records a dir: members source holds
registered() { ls "$1"/node-*.rec 2>/dev/null | wc -l; }

# wait_registered DIR N: until DIR holds N records (20 s at most, scaled)
holds_records() { [ "$(registered "$1")" -eq "$2" ]; }
wait_registered() {
    wait_for 20 holds_records "$1" "$2" && return 0
    echo "members: $(registered "$1") records in $1, want $2" >&2
    return 1
}

# listening PORT...: every PORT has a listener on this host
listening() {
    local p
    for p in "$@"; do
        ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" || return 1
    done
}

# stats_lines LOG: how many counter lines (SIGUSR1 answers) LOG holds
stats_lines() { grep -c '"stats":"ucached"' "$1" 2>/dev/null; }
more_stats() { [ "$(stats_lines "$1")" -gt "$2" ]; }

# daemon_stats PID LOG: ask a running daemon for its counters (SIGUSR1) and
# wait until its log LOG holds the answer (5 s at most, scaled)
daemon_stats() {
    local n
    n=$(stats_lines "$2")
    kill -USR1 "$1" 2>/dev/null || return 1
    wait_for 5 more_stats "$2" "${n:-0}"
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
# chunks, fast member polling, warn logs, no mlock, the default deadline
# of a remote operation (2 s) scaled, and UCACHE_ALLOW: the origins the
# daemons fill from (W's files, origins on loopback)
test_setup() {
    BUILD=${BUILD:-build}
    BIN=$BUILD/bin
    T=$BUILD/tests
    W=$(mktemp -d "/tmp/ucache-$1.XXXXXX")
    export UCACHE_TIMEOUT=$(slow 2)s
    export UCACHE_MEMBERS=dir:$W/members UCACHE_CHUNK_SIZE=1M UCACHE_MEMBERS_POLL=100ms
    export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-warn} UCACHE_MEM_LOCK=no
    # the origins its daemons fill from: its own files and origins on loopback
    # (Azurite and the S3 server are configured endpoints: az:// and s3:// do)
    export UCACHE_ALLOW="file://$W/,http://127.0.0.1,https://127.0.0.1,az://,s3://"
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

# stop_daemons: the end of a suite - SIGTERM to every daemon in DPIDS, then
# each must exit 0 within 30 s (scaled): a crash, a sanitizer's exit code
# or a hang at shutdown fails the suite (one PASS or FAIL line).
stop_daemons() {
    local p rc n=0 nbad=0
    for p in "${DPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${DPIDS[@]}"; do
        n=$((n + 1))
        if ! wait_for 30 daemon_gone "$p"; then
            echo "daemon $p did not stop within $(slow 30) s of SIGTERM" >&2
            kill -9 "$p" 2>/dev/null
        fi
        wait "$p"; rc=$?
        [ $rc = 0 ] || { nbad=$((nbad + 1)); echo "daemon $p exited $rc at SIGTERM" >&2; }
    done
    DPIDS=()
    if [ $nbad = 0 ]; then ok "SIGTERM: all $n daemons stopped and exited 0"
    else bad "SIGTERM: $nbad of $n daemons did not exit 0"; fi
}
daemon_gone() { ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; }

# start_azurite: the Azure Blob emulator (npm azurite, make deps) on a free
# port of 127.0.0.1 with its well-known development account, its data in
# $W/azurite: AZ (its pid), ACCT, EP (the account's endpoint) and
# AZURE_STORAGE_CONNECTION_STRING set.  1 if it is not installed.
AZ_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
start_azurite() {
    local azurite=${AZURITE:-build/npm/node_modules/.bin/azurite-blob} try port
    [ -x "$azurite" ] && command -v node >/dev/null || return 1
    ACCT=devstoreaccount1
    for try in $(seq 10); do
        port=$((20000 + RANDOM % 12000))   # below the ephemeral range
        mkdir -p "$W/azurite"
        "$azurite" --blobHost 127.0.0.1 --blobPort $port --location "$W/azurite" --silent \
            --skipApiVersionCheck --loose >"$W/azurite.log" 2>&1 &
        AZ=$!
        # up, or gone (a port someone took): then another port
        az_settled() { curl -s -o /dev/null "http://127.0.0.1:$port/" || ! kill -0 $AZ 2>/dev/null; }
        wait_for 30 az_settled
        kill -0 $AZ 2>/dev/null && break
    done
    EP=http://127.0.0.1:$port/$ACCT
    export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$ACCT;AccountKey=$AZ_KEY;BlobEndpoint=$EP;"
}
