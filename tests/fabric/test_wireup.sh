#!/usr/bin/env bash
# test_wireup.sh - a client that dies during its connection set-up must not
# take a daemon with it (UCX 1.13 aborts a process that answers a wireup
# from a client already gone: ucp_request_send_state_ff).  Readers are
# killed (-9) at random points of their first connection to two daemons,
# WIREUP_TRIES times (default 200, scaled down under sanitizers) over tcp and over shared memory; every
# daemon must still be alive, its log free of UCX assertions, and answer
# verified reads afterwards.  Prints how many kills landed while the
# reader was connecting (its worker up, its read not yet done).
# Prints PASS/FAIL/SKIP per case and "N passed, N failed, N skipped" last.
set -u
. "$(dirname "$0")/../lib.sh"
test_setup wireup
# 200 a transport; fewer under a sanitizer (each reader starts slower there)
TRIES=${WIREUP_TRIES:-$(awk -v k="$SLOW" 'BEGIN { n = int(200 / k); print (n < 20) ? 20 : n }')}
trap 'stop_all "$W" "${DPIDS[@]}"' EXIT

mkdir -p "$W/data"
head -c 3145728 /dev/urandom >"$W/data/f"
start_daemons 2 16M
$BIN/ucache cat "file://$W/data/f" >/dev/null 2>&1     # warm: reads are hits

# one_try TLS: a reader killed after a random 0-60 ms (scaled) - its
# start-up, its UCX wireup with the daemons, or its reads
one_try() {
    local d
    d=$(awk -v r=$RANDOM -v k="$SLOW" 'BEGIN { printf "%.4f", r / 32768 * 0.060 * k }')
    UCX_TLS=$1 $T/fabric_client loop 5 "$W/data/f" >/dev/null 2>>"$W/clients.log" & local c=$!
    sleep "$d"
    kill -9 $c 2>/dev/null
    wait $c 2>/dev/null
}

alive() { local p; for p in "${DPIDS[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done; }

t0=$(date +%s)
died=""
for tls in tcp all; do
    for k in $(seq "$TRIES"); do
        one_try "$tls"
        alive || { died="$tls try $k"; break 2; }
    done
done
secs=$(( $(date +%s) - t0 ))
averted=$(cat "$W"/d*.log | grep -c "abort on the pending wireup message averted")
if [ -z "$died" ] && ! grep -q "Assertion\|ucp_request_send_state_ff\|Aborted" "$W"/d*.log; then
    ok "$((2 * TRIES)) readers killed -9 at random points of their first connection (tcp, then shm): both daemons alive, no UCX assertion; the guard took $averted wireup message(s) UCX 1.13 would have aborted on ($secs s)"
else bad "a daemon died ($died) or asserted"; grep -h -m3 "Assertion\|abort\|Abort" "$W"/d*.log; fi

if $T/fabric_client verify 50 "$W/data/f" >"$W/v" 2>&1 && UCX_TLS=tcp $T/fabric_client verify 50 "$W/data/f" >"$W/v2" 2>&1; then
    ok "the daemons serve verified reads afterwards (shm and tcp)"
else bad "reads after the killed clients"; tail -3 "$W/v" "$W/v2"; fi

stop_daemons

summary
