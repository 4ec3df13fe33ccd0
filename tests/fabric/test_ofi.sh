#!/usr/bin/env bash
# test_ofi.sh - the fabric over the libfabric backend (UCACHE_TRANSPORT=ofi,
# issue [11/11]): three ucached daemons and their readers on one host, once
# over tcp;ofi_rxm and once over shm, every byte compared with the origin.
# Cases per provider: random reads (fabric_client verify: tcp's by RPC,
# shm's one-sided fi_reads), ucache cat, ucache health naming the backend
# and provider of every peer, a modified object (its new bytes), 12 readers
# in 3 processes of one missing chunk (one origin read), an owner stopped
# with SIGSTOP (a new reader
# gets exact bytes through the next owner, bounded), an owner killed -9
# during reads (no wrong bytes, no failed read), SIGTERM.  What rests on
# UCX's same-host mapping in test_fabric.sh (no owner CPU on a hit, reads
# of a stopped owner's memory) is the provider's here: shm's reads are the
# reader's own cross-memory copies, tcp's are answered by the owner.
# Prints PASS/FAIL/SKIP per case and "N passed, N failed, N skipped" last.
set -u
. "$(dirname "$0")/../lib.sh"
test_setup ofi

L1=
trap 'stop_all "$W" "${DPIDS[@]}" $L1' EXIT
export UCACHE_TRANSPORT=ofi

if ! command -v fi_info >/dev/null || ! fi_info -l 2>/dev/null | grep -q '^shm:'; then
    skp_dep "libfabric fabric" "fi_info (libfabric-bin) lists no providers: make deps"
    summary; exit
fi

mkdir -p "$W/data"
head -c 1 /dev/urandom >"$W/data/one"
head -c 4095 /dev/urandom >"$W/data/small"
head -c 1048576 /dev/urandom >"$W/data/chunk"
head -c 3670016 /dev/urandom >"$W/data/three"
head -c 10485777 /dev/urandom >"$W/data/ten"
FILES="$W/data/one $W/data/small $W/data/chunk $W/data/three $W/data/ten"

# cpu_ticks PID: the process's CPU time so far (its reads are under way)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
reading() { [ "$(cpu_ticks "$1")" -ge 20 ]; }

for prov in ${OFI_PROVIDERS:-"tcp;ofi_rxm" shm}; do
    export UCACHE_OFI_PROVIDER=$prov
    export UCACHE_MEMBERS=dir:$W/members.${prov%%;*}
    DPIDS=()
    for i in 1 2 3; do
        $BIN/ucached --mem 64M 2>>"$W/d$i.${prov%%;*}.log" &
        DPIDS+=($!)
    done
    if ! wait_registered "${UCACHE_MEMBERS#dir:}" 3; then
        bad "$prov: three ucached daemons register"; tail -n 5 "$W"/d*.log
        continue
    fi
    want=$([ "$prov" = shm ] && echo get_reads || echo am_reads)

    # --- reads, every byte compared ----------------------------------------
    if $T/fabric_client verify 150 $FILES >"$W/v" 2>&1 &&
        [ "$(client_stat "$W/v" "$want")" -gt 0 ] && [ "$(client_stat "$W/v" timeouts)" = 0 ] &&
        [ "$(client_stat "$W/v" failovers)" = 0 ]; then
        ok "$prov: 150 random reads exact, $(client_stat "$W/v" "$want") of them $want, no timeout, no failover"
    else bad "$prov: random reads"; tail -n 3 "$W/v"; fi
    if $BIN/ucache cat "file://$W/data/ten" 2>"$W/cat.err" | cmp -s - "$W/data/ten"; then
        ok "$prov: ucache cat of a 10 MiB object exact"
    else bad "$prov: ucache cat"; cat "$W/cat.err"; fi
    # a region a killed process left in /dev/shm under the pid this reader
    # gets (libfabric's shm names regions by pid: CI met its EBUSY)
    if [ "$prov" = shm ]; then
        if bash -c 'head -c 1M /dev/zero >/dev/shm/$$:0:0; exec "$0" cat "$1" 2>"$2"' \
                "$BIN/ucache" "file://$W/data/ten" "$W/left.err" | cmp -s - "$W/data/ten" &&
           grep -q "a killed process with this pid had left is removed" "$W/left.err"; then
            ok "$prov: a region a killed process left under the reader's pid: removed, ucache cat exact"
        else bad "$prov: a leftover region"; cat "$W/left.err"; fi
    fi
    $BIN/ucache health --json >"$W/h" 2>&1
    n=$(grep -o "\"transport\":\"ofi/$prov\"" "$W/h" | wc -l)
    if [ "$n" = 3 ]; then
        ok "$prov: ucache health reaches all 3 nodes through ofi/$prov"
    else bad "$prov: health names the backend ($n of 3)"; head -c 600 "$W/h"; fi

    # --- a modified object: its new bytes ----------------------------------
    modified_object "$W/data/three" "$prov: a modified object"

    # --- 3 processes x 4 threads read one missing chunk: one origin read ---
    head -c 1000000 /dev/urandom >"$W/data/hot.${prov%%;*}"
    before=$(counter fills)
    start=$(( $(date +%s) + 2 ))
    SP=()
    for k in 1 2 3; do
        $T/fabric_client same 4 $start "$W/data/hot.${prov%%;*}" >"$W/same$k" 2>&1 & SP+=($!)
    done
    same_ok=1
    for k in 0 1 2; do wait "${SP[$k]}" || same_ok=0; done
    after=$(counter fills)
    direct=0
    for k in 1 2 3; do direct=$((direct + $(client_stat "$W/same$k" origin_direct))); done
    if [ $same_ok = 1 ] && [ $((after - before)) -eq 1 ] && [ $direct -eq 0 ]; then
        ok "$prov: 12 concurrent readers of one missing chunk: 1 origin read, the rest from its owner"
    else bad "$prov: one missing chunk: fills $before -> $after, direct $direct, readers ok=$same_ok"; fi

    # --- an owner stopped ---------------------------------------------------
    if [ "$prov" = shm ]; then
        # measured: the stopped owner, resumed, faults in libfabric 1.17's shm
        # progress (a null pointer in fi_cq_read) once the reader that wrote
        # to it during the stop has exited - a provider bug (docs/transports.md)
        skp "$prov: owner stopped (SIGSTOP)" "libfabric 1.17's shm faults in the resumed owner's progress"
    else
    kill -STOP "${DPIDS[0]}"
    t0=$(date +%s%N)
    UCACHE_TIMEOUT=$(slow 1)s $BIN/ucache cat "file://$W/data/ten" >"$W/cat" 2>"$W/stop.err"
    rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    kill -CONT "${DPIDS[0]}"
    if [ $rc = 0 ] && cmp -s "$W/cat" "$W/data/ten" && [ "$ms" -lt "$(slow 20000)" ]; then
        ok "$prov: owner stopped (SIGSTOP): a new reader gets exact bytes in $ms ms"
    else bad "$prov: a new reader with a stopped owner (rc $rc, $ms ms)"; tail -n 3 "$W/stop.err"; fi
    fi

    # --- an owner killed during reads ---------------------------------------
    UCACHE_TIMEOUT=$(slow 1)s $T/fabric_client loop 6 $FILES >"$W/l1" 2>&1 & L1=$!
    wait_for 10 reading "$L1"
    kill -9 "${DPIDS[2]}"; wait "${DPIDS[2]}" 2>/dev/null
    r1=0; wait "$L1" || r1=$?; L1=
    if [ $r1 = 0 ] && grep -q "wrong 0 failed 0" "$W/l1"; then
        ok "$prov: kill -9 of an owner during reads: $(grep -o 'reads [0-9]* wrong' "$W/l1" | tail -n 1 | cut -d' ' -f2) reads, no wrong bytes, no failures"
    else bad "$prov: kill -9 during reads"; tail -n 3 "$W/l1"; fi
    unset 'DPIDS[2]'
    stop_daemons
done
summary
