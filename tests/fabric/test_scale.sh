#!/usr/bin/env bash
# test_scale.sh - many owners on one host: 32 ucached processes (8 MiB
# each) hold a dataset between them; readers compare every byte with the
# origin.  Cases: the dataset spreads over all 32 owners; connection churn
# - a reader capped at UCACHE_MAX_EPS=4 endpoints reads from all 32 over
# tcp, evicting and reconnecting, every byte verified; joins and leaves
# during reads (4 owners join, 4 leave with SIGTERM, 2 are killed -9):
# 0 wrong bytes, 0 failed reads; every daemon exits 0 on SIGTERM at the end.
# Prints PASS/FAIL/SKIP per case and "N passed, N failed, N skipped" last.
set -u
. "$(dirname "$0")/../lib.sh"
test_setup scale
export UCACHE_CHUNK_SIZE=128K
NOWN=32
trap 'stop_all "$W" "${DPIDS[@]}"' EXIT

mkdir -p "$W/data"
# 8 files, 48 MiB in 128 KiB chunks: ~390 chunks, so every one of 32
# owners holds some (an empty owner is ~1 in 5000)
for f in $(seq 8); do head -c $((6 * 1048576 + f * 77777)) /dev/urandom >"$W/data/f$f"; done
FILES=$(ls "$W"/data/f*)

start_daemons $NOWN 8M
reads_of() { sed -n 's/^reads \([0-9]*\) wrong.*/\1/p' "$1"; }

# owners_holding: how many nodes hold at least one chunk (ucache status)
owners_holding() {
    $BIN/ucache status --json 2>/dev/null |
        sed -n 's/^{"node".*"chunks":\([0-9]*\).*/\1/p' | awk '$1 > 0' | wc -l
}

# --- the dataset spreads over every owner ------------------------------------
for f in $FILES; do $BIN/ucache cat "file://$f" >/dev/null 2>>"$W/cat.err"; done
if $T/fabric_client verify 200 $FILES >"$W/v1" 2>&1; then
    held=$(owners_holding)
    if [ "$held" -eq $NOWN ]; then
        ok "$NOWN owners: 200 random reads + 8 posted, bytes equal the origin; chunks on all $held owners"
    else bad "the dataset on $held of $NOWN owners"; fi
else bad "reads through $NOWN owners"; tail -3 "$W/v1"; fi

# --- connection churn: 4 endpoints for 32 owners -----------------------------
# (libfabric's shm has no connections: the cap closes none there)
if [ "${UCACHE_TRANSPORT:-ucx}" = ofi ] && [ "${UCACHE_OFI_PROVIDER:-}" = shm ]; then
    skp "connection churn" "libfabric's shm has no connection per peer to cap (docs/transports.md)"
elif UCX_TLS=tcp UCACHE_MAX_EPS=4 $T/fabric_client verify 300 $FILES >"$W/churn" 2>&1 &&
   [ "$(client_stat "$W/churn" eps_open)" -le 4 ] &&
   [ "$(client_stat "$W/churn" eps_evicted)" -gt 0 ] &&
   [ "$(client_stat "$W/churn" origin_direct)" = 0 ]; then
    ok "UCACHE_MAX_EPS=4 over $NOWN owners (tcp): 308 verified reads, $(client_stat "$W/churn" eps_evicted) endpoints evicted and reconnected, at most 4 open, none from the origin"
else bad "connection churn (eps_open $(client_stat "$W/churn" eps_open), evicted $(client_stat "$W/churn" eps_evicted), origin $(client_stat "$W/churn" origin_direct))"
     grep -v '^{' "$W/churn" | tail -3; fi

# --- joins and leaves during reads -------------------------------------------
DUR=$(slow 12)
UCX_TLS=tcp UCACHE_MAX_EPS=8 $T/fabric_client loop "$DUR" $FILES >"$W/l1" 2>&1 & L1=$!
$T/fabric_client loop "$DUR" $FILES >"$W/l2" 2>&1 & L2=$!
sleep "$(slow 1)"
for i in 33 34 35 36; do                  # 4 join
    $BIN/ucached --mem 8M 2>>"$W/d$i.log" &
    DPIDS+=($!)
done
sleep "$(slow 1)"
for i in 3 7 11 15; do                    # 4 leave cleanly
    kill -TERM "${DPIDS[$i]}"
done
sleep "$(slow 1)"
for i in 20 25; do                        # 2 die
    kill -9 "${DPIDS[$i]}"
done
r1=0; r2=0
wait $L1 || r1=$?
wait $L2 || r2=$?
for i in 3 7 11 15; do
    wait "${DPIDS[$i]}" || bad "daemon $i exited $? on SIGTERM"
done
for i in 20 25; do wait "${DPIDS[$i]}" 2>/dev/null; done
if [ $r1 = 0 ] && [ $r2 = 0 ]; then
    ok "4 joins, 4 leaves and 2 kill -9 during reads: $(reads_of "$W/l1") reads (tcp, 8 endpoints) and $(reads_of "$W/l2") (shm), 0 wrong bytes, 0 failed"
else bad "joins and leaves during reads (rc $r1 $r2)"; tail -3 "$W/l1" "$W/l2"; fi
if wait_registered "$W/members" $((NOWN + 4 - 6)); then
    ok "membership settles at $((NOWN + 4 - 6)) nodes (the killed ones reaped)"
else bad "membership after joins and leaves"; fi

# --- the end: every live daemon exits 0 on SIGTERM ---------------------------
for i in 3 7 11 15 20 25; do unset "DPIDS[$i]"; done
stop_daemons
[ "$(registered "$W/members")" -eq 0 ] || bad "$(registered "$W/members") records left after SIGTERM"

summary
