#!/usr/bin/env bash
# test_nvme.sh - the NVMe tier (issue [9/11]) with real daemons: three
# `ucached --mem 16M --nvme FILE` (files on this machine's disk stand in for
# NVMe devices; it has none) and a file:// dataset 4x their pooled memory,
# read by `ucache read --verify` (every byte compared with the files).
# Cases: the second pass reads nothing from the origin (every chunk from
# memory or an owner's NVMe); a daemon stopped and started again on its
# device finds its chunks (the start-up scan) and the third pass still
# reads nothing from the origin; records corrupted on a device are caught
# by their checksums and read again from the origin, exactly; a device cut
# short under its daemon (the backing file truncated) takes that tier out
# of service - health says so, /metrics too - while every read goes on
# exact; a reader killed while it reads chunks staged from NVMe leaves
# nothing staged once the lease ends; `ucache warmup --tier nvme` loads an
# object onto the owners' NVMe, not into their memory; an admin's evict
# holds through a restart; readers of one chunk at once cause one device
# read; small chunks in a crowded index.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup nvme
declare -a DP MP
trap 'stop_all "$W" "${DP[@]}" ${RP:-}' EXIT

# 256 KiB chunks: a 16M node's staging pool (a quarter of it at most) holds
# 8 of them
export UCACHE_CHUNK_SIZE=256K
NOBJ=24
mkdir -p "$W/data"
for i in $(seq $NOBJ); do head -c $((8 * 1048576 - i * 4099)) /dev/urandom >"$W/data/f$i"; done
TOTAL=$(cat "$W"/data/f* | wc -c)
for i in 1 2 3; do fallocate -l 128M "$W/nv$i"; done

start_node() { # start_node I [env...]
    local i=$1; shift
    MP[$i]=${MP[$i]:-$((20000 + RANDOM % 10000))}
    env "$@" $BIN/ucached --mem 16M --nvme "$W/nv$i" --metrics-port "${MP[$i]}" \
        2>>"$W/d$i.log" &
    DP[$i]=$!
}
for i in 1 2 3; do start_node $i; done
wait_registered "$W/members" 3 || { bad "three daemons register"; summary; exit 1; }

# origin_reads: data requests all daemons made of the origin so far
origin_reads() {
    $BIN/ucache stat --json 2>/dev/null | sed -n 's/.*"origin_reads":\([0-9]*\).*/\1/p' |
        awk '{ s += $1 } END { print s + 0 }'
}
# nvme_sum FIELD: a counter of every node's NVMe tier (ucache stat --json)
nvme_sum() {
    $BIN/ucache stat --json 2>/dev/null | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" |
        awk '{ s += $1 } END { print s + 0 }'
}
# pass NAME: one verified epoch over the dataset; its JSON line in $W/NAME
pass() {
    UCACHE_REPLICAS=1 $BIN/ucache read "file://$W/data/" --epochs 1 --verify --json \
        >"$W/$1" 2>"$W/$1.err"
}
exact() { [ "$(client_stat "$W/$1" wrong)" = 0 ] && [ "$(client_stat "$W/$1" failed)" = 0 ] &&
          [ "$(client_stat "$W/$1" bytes)" = "$TOTAL" ]; }
demoted_all() { [ "$(nvme_sum nvme_chunks)" -ge "$1" ]; }

pass p1
o1=$(origin_reads)
chunks=$(client_stat "$W/p1" chunks)
# every chunk from the origin: filled for this read, or - a read that came
# again after its owner's fill had already gone on to NVMe under this
# memory pressure (seen once under ASan: 767 filled, 1 from NVMe) - staged
# back from there; none a memory hit, and the origin read for each
f1=$(client_stat "$W/p1" filled)
n1=$(client_stat "$W/p1" nvme)
if exact p1 && [ "$((f1 + n1))" = "$chunks" ] && [ "$(client_stat "$W/p1" hits)" = 0 ] &&
   [ "$o1" -ge "$chunks" ]; then
    ok "pass 1: $((TOTAL >> 20)) MiB (4x the pooled 48 MiB), $chunks chunks from the origin ($f1 filled for this read, $n1 staged back from NVMe), exact"
else bad "pass 1"; cat "$W/p1" "$W/p1.err"; fi

# most of what memory evicted is on NVMe; chunks still in a demoter's queue
# are served from the memory they hold (never a second origin read: CI's
# asan stage once met one filled from the origin again, before the store
# looked there).  The origin's count is what says so: a FETCH its owner
# answers from memory (the chunk arrived there after the reader's index
# read missed it) counts as "filled" at the reader too (CI, ofi shm: 2).
wait_for 30 demoted_all $((chunks * 3 / 4))
pass p2
o2=$(origin_reads)
if exact p2 && [ "$o2" = "$o1" ] &&
   [ "$(client_stat "$W/p2" origin_direct)" = 0 ] &&
   [ "$(client_stat "$W/p2" nvme)" -ge $((chunks / 2)) ]; then
    ok "pass 2: 0 origin reads; $(client_stat "$W/p2" nvme) of $chunks chunks from the owners' NVMe, $(client_stat "$W/p2" hits) from memory, $(client_stat "$W/p2" filled) answered by a FETCH from memory, exact"
else bad "pass 2 (origin reads $o1 -> $o2)"; cat "$W/p2"; fi
if $BIN/ucache stat >"$W/stat" 2>&1 && grep -q "nvme_hits" "$W/stat" &&
   $BIN/ucache health >"$W/h1" 2>&1 &&
   [ "$(grep -c "nvme: 1 device(s), .* used, [0-9]* chunks, [0-9]* hits, .* 0 errors" "$W/h1")" = 3 ] &&
   curl -s "http://127.0.0.1:${MP[1]}/metrics" | grep -qE "^ucache_nvme_hits_total [1-9]"; then
    ok "ucache stat and health show each node's NVMe tier; /metrics ucache_nvme_*"
else bad "the tier in stat/health/metrics"; cat "$W/h1"; fi

# --- warm-up onto NVMe ------------------------------------------------------------
mkdir -p "$W/fresh"; head -c $((8 * 1048576)) /dev/urandom >"$W/fresh/f"
n0=$(nvme_sum nvme_chunks)
wrc=0; $BIN/ucache warmup --tier nvme "file://$W/fresh/f" >"$W/warm" 2>&1 || wrc=$?
on_nvme_32() { [ $(( $(nvme_sum nvme_chunks) - n0 )) -ge 32 ]; }
wait_for 30 on_nvme_32
UCACHE_REPLICAS=1 $BIN/ucache read "file://$W/fresh/f" --epochs 1 --verify --json >"$W/pw" 2>/dev/null
if [ $wrc = 0 ] && grep -q "onto the owners' NVMe" "$W/warm" && on_nvme_32 &&
   [ "$(client_stat "$W/pw" nvme)" = 32 ] && [ "$(client_stat "$W/pw" wrong)" = 0 ] &&
   [ "$(client_stat "$W/pw" filled)" = 0 ]; then
    ok "ucache warmup --tier nvme: an 8 MiB object's 32 chunks onto the owners' NVMe, none left in memory: read back all 32 from NVMe, exact"
else bad "warmup --tier nvme (rc $wrc)"; cat "$W/warm" "$W/pw"; fi

# --- pins on NVMe ---------------------------------------------------------------------
# a second object onto NVMe; both pinned: each chunk comes into memory
# pinned, and its record is written again pinned (a restart keeps it)
metric() { curl -s "http://127.0.0.1:${MP[$1]}/metrics" | sed -n "s/^$2 \([0-9]*\)$/\1/p"; }
head -c $((8 * 1048576)) /dev/urandom >"$W/fresh/g"
n0=$(nvme_sum nvme_chunks)
$BIN/ucache warmup --tier nvme "file://$W/fresh/g" >"$W/warm2" 2>&1
wait_for 30 on_nvme_32
pnv0=$(nvme_sum nvme_pinned)
prc=0; $BIN/ucache pin "file://$W/fresh/" >"$W/pin" 2>&1 || prc=$?
pinned_64() { [ $(( $(nvme_sum nvme_pinned) - pnv0 )) -ge 64 ]; }
wait_for 30 pinned_64
p1n=$(metric 1 ucache_nvme_pinned_chunks)

# --- a restart on the same device ----------------------------------------------
kill -TERM "${DP[1]}"; wait "${DP[1]}"; rc=$?
start_node 1
wait_registered "$W/members" 3
# (its counters start again from 0: origin reads are counted from here)
n1=$(curl -s "http://127.0.0.1:${MP[1]}/metrics" | sed -n 's/^ucache_nvme_chunks \([0-9]*\)$/\1/p')
o2=$(origin_reads)
pass p3
o3=$(origin_reads)
if [ $rc = 0 ] && [ "${n1:-0}" -gt 0 ] && exact p3 && [ "$o3" = "$o2" ] &&
   [ "$(client_stat "$W/p3" filled)" = 0 ] && [ "$(client_stat "$W/p3" origin_direct)" = 0 ]; then
    ok "a daemon stopped (exit 0) and started on its device: ${n1} chunks found by its scan; pass 3: 0 origin reads, exact"
else bad "restart (rc $rc, found '${n1:-}', origin reads $o2 -> $o3)"; cat "$W/p3"; fi

# the pins were kept: node 1's records say so; a read brings its chunks of
# f back into memory pinned; an unpin of g reaches the chunks node 1 holds
# on NVMe only; then every pin is gone, in both tiers
p1a=$(metric 1 ucache_nvme_pinned_chunks)
UCACHE_REPLICAS=1 $BIN/ucache read "file://$W/fresh/f" --epochs 1 --verify --json >"$W/pf" 2>/dev/null
m1=$(metric 1 ucache_memory_pinned_bytes)
urc=0; $BIN/ucache pin --unpin "file://$W/fresh/g" >"$W/unpin" 2>&1 || urc=$?
$BIN/ucache pin --unpin "file://$W/fresh/f" >>"$W/unpin" 2>&1 || urc=$?
unpinned_all() { [ "$(nvme_sum nvme_pinned)" = "$pnv0" ]; }
wait_for 30 unpinned_all
if [ $prc = 0 ] && [ "${p1n:-0}" -gt 0 ] && [ "${p1a:-}" = "$p1n" ] &&
   [ "$(client_stat "$W/pf" wrong)" = 0 ] && [ "$(client_stat "$W/pf" filled)" = 0 ] &&
   [ "${m1:-0}" -gt 0 ] && [ $urc = 0 ] && unpinned_all &&
   [ "$(nvme_sum bytes_pinned)" = 0 ]; then
    ok "pins on NVMe: 64 chunks pinned, node 1's ${p1n} still pinned after its restart, its chunks of f read back into memory pinned (${m1} bytes), exact; unpinned (on NVMe only too): none left in either tier"
else bad "pins across a restart (pin rc $prc, node 1 $p1n -> ${p1a:-}, memory ${m1:-}, unpin rc $urc, left $(nvme_sum nvme_pinned) - $pnv0, $(nvme_sum bytes_pinned) bytes)"; cat "$W/pin" "$W/unpin" "$W/pf"; fi

# --- records corrupted on a device ---------------------------------------------
# every tenth record of node 2's device gets one payload byte flipped
/usr/bin/python3 - "$W/nv2" <<'EOF' >"$W/corrupted"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
n = 0
for off in range(4096, size, 4096):
    if os.pread(fd, 4, off) == b"UCNR":
        if n % 10 == 0:
            b = os.pread(fd, 1, off + 64 + 777)
            os.pwrite(fd, bytes([b[0] ^ 0x5a]), off + 64 + 777)
        n += 1
os.fsync(fd)
print(n, (n + 9) // 10)
EOF
read -r nrec ncor <"$W/corrupted"
c0=$(nvme_sum nvme_corrupt)
pass p4
o4=$(origin_reads)
c1=$(nvme_sum nvme_corrupt)
if exact p4 && [ "${ncor:-0}" -gt 0 ] && [ $((c1 - c0)) -ge 1 ] && [ $((c1 - c0)) -le "$ncor" ] &&
   [ $((o4 - o3)) = $((c1 - c0)) ]; then
    ok "$ncor of node 2's $nrec records corrupted: $((c1 - c0)) read caught by their checksums and read again from the origin ($((o4 - o3)) origin reads), bytes exact"
else bad "corruption (records $nrec, corrupted $ncor, caught $((c1 - c0)), origin reads $((o4 - o3)))"; cat "$W/p4"; fi

# --- a device that fails under its daemon ----------------------------------------
truncate -s 0 "$W/nv3"
pass p5
$BIN/ucache health >"$W/h2" 2>&1; hrc=$?
off3=$(curl -s "http://127.0.0.1:${MP[3]}/metrics" | sed -n 's/^ucache_nvme_devices_offline \([0-9]*\)$/\1/p')
if exact p5 && kill -0 "${DP[3]}" && [ "$off3" = 1 ] && [ $hrc = 1 ] &&
   grep -q "OUT OF SERVICE" "$W/h2" && [ "$(nvme_sum nvme_errors)" -ge 8 ]; then
    ok "node 3's device truncated: out of service after $(nvme_sum nvme_errors) I/O errors (health exit 1, OUT OF SERVICE; ucache_nvme_devices_offline 1), the daemon serves on, every byte exact"
else bad "device failure (health rc $hrc, offline '$off3')"; cat "$W/h2" "$W/p5"; fi

# --- the staging lease of a reader that vanished ---------------------------------
# node 1 again, with a lease long enough to see: a reader killed while it
# reads chunks its owners stage from NVMe; they are dropped when it ends
kill -TERM "${DP[1]}"; wait "${DP[1]}"
start_node 1 UCACHE_NVME_LEASE=2s UCACHE_NVME_WINDOW=1ms
wait_registered "$W/members" 3
staged1() { curl -s "http://127.0.0.1:${MP[1]}/metrics" | sed -n 's/^ucache_nvme_staged_chunks \([0-9]*\)$/\1/p'; }
some_staged() { [ "$(staged1)" -gt 0 ] 2>/dev/null; }
none_staged() { [ "$(staged1)" = 0 ]; }
UCACHE_REPLICAS=1 UCACHE_READ_WINDOW=1 $BIN/ucache read "file://$W/data/" --epochs 1 --depth 1 \
    >/dev/null 2>&1 & RP=$!
wait_for 20 some_staged; s_before=$(staged1)
kill -9 $RP; wait $RP 2>/dev/null; RP=
s_after=$(staged1)
t0=$(date +%s%N)
if [ "${s_after:-0}" -gt 0 ] && wait_for 20 none_staged; then
    t=$(( ($(date +%s%N) - t0) / 1000000 ))
    ok "a reader killed mid-read (one chunk at a time): node 1 held $s_after staged chunk(s); none left ${t} ms later (leases of 2 s)"
else bad "staging lease (staged before the kill '$s_before', after '$s_after', now '$(staged1)')"; fi
UCACHE_REPLICAS=1 $BIN/ucache cat "file://$W/data/f1" >"$W/f1" 2>/dev/null
cmp -s "$W/f1" "$W/data/f1" && ok "its staging pool serves again: an object read exact" ||
    bad "read after the lease"

# --- an admin's evict outlives a restart -----------------------------------------
# g (on the owners' NVMe since its warm-up) evicted: its owners drop it from
# both tiers and write tombstones; node 1 stopped and started on its device
# does not serve it again - every chunk of g comes from the origin
n1b=$(metric 1 ucache_nvme_chunks)
erc=0; $BIN/ucache evict "file://$W/fresh/g" --json >"$W/evict" 2>&1 || erc=$?
n1e=$(metric 1 ucache_nvme_chunks)
kill -TERM "${DP[1]}"; wait "${DP[1]}"; src=$?
start_node 1
wait_registered "$W/members" 3
UCACHE_REPLICAS=1 $BIN/ucache read "file://$W/fresh/g" --epochs 1 --verify --json >"$W/pg" 2>&1
if [ $erc = 0 ] && [ $src = 0 ] && [ "$(client_stat "$W/pg" wrong)" = 0 ] &&
   [ "$(client_stat "$W/pg" failed)" = 0 ] && [ "$(client_stat "$W/pg" filled)" = 32 ] &&
   [ "$(client_stat "$W/pg" nvme)" = 0 ]; then
    ok "ucache evict of an object on NVMe, then its owner restarted: all 32 chunks read from the origin, none from NVMe (node 1 dropped $((n1b - n1e)) records, tombstones kept them dropped), exact"
else bad "evict across a restart (evict rc $erc, stop rc $src, node 1 records $n1b -> $n1e)"; cat "$W/evict" "$W/pg"; fi

DPIDS=("${DP[@]}")
stop_daemons

# --- concurrent readers of chunks on NVMe: one device read each -----------------
# (a lease long enough that every reader finds the chunk staged, or joins its read)
mkdir -p "$W/hot"; head -c $((6 * 262144)) /dev/urandom >"$W/hot/h"
fallocate -l 64M "$W/nv5"
UCACHE_MEMBERS=dir:$W/m5 UCACHE_NVME_LEASE=$(slow 5)s UCACHE_NVME_WINDOW=1ms \
    $BIN/ucached --mem 16M --nvme "$W/nv5" 2>>"$W/d5.log" & DP5=$!
DPIDS=($DP5)
wait_registered "$W/m5" 1
UCACHE_MEMBERS=dir:$W/m5 $BIN/ucache warmup --tier nvme "file://$W/hot/h" >/dev/null 2>&1
m5() { UCACHE_MEMBERS=dir:$W/m5 $BIN/ucache stat --json 2>/dev/null | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
on_nvme5() { [ "$(m5 nvme_chunks)" -ge 6 ] 2>/dev/null; }
wait_for 30 on_nvme5
h0=$(m5 nvme_hits); hot_bad=0; RPS=()
for r in 1 2 3 4 5 6 7 8; do
    UCACHE_MEMBERS=dir:$W/m5 $BIN/ucache cat "file://$W/hot/h" >"$W/hot.$r" 2>/dev/null &
    RPS+=($!)
done
wait "${RPS[@]}"
for r in 1 2 3 4 5 6 7 8; do cmp -s "$W/hot.$r" "$W/hot/h" || hot_bad=$((hot_bad + 1)); done
h1=$(m5 nvme_hits)
if [ $hot_bad = 0 ] && [ $((h1 - h0)) = 6 ]; then
    ok "8 readers at once of an object on NVMe: 6 device reads for its 6 chunks (joined or staged), all exact"
else bad "concurrent NVMe readers ($hot_bad wrong, $((h1 - h0)) device reads for 6 chunks)"; fi
stop_daemons

# --- small chunks: staged chunks that lose their index slot -----------------------
# 4 KiB chunks in an index sized for 512 KiB ones: a chunk staged from NVMe
# can lose its slot to the next before its reader reads it; the reader's
# mapped read then fails verification and falls back to the owner's reply
# (a regression: that fallback once went without a buffer, its FETCH was
# refused and the owner marked suspect: reads went to the origin)
mkdir -p "$W/small"; head -c $((6 * 1048576)) /dev/urandom >"$W/small/s"
fallocate -l 64M "$W/nv4"
UCACHE_MEMBERS=dir:$W/m4 UCACHE_CHUNK_SIZE=4K UCACHE_INDEX_CHUNK=512K UCACHE_NVME_WINDOW=1ms \
    $BIN/ucached --mem 16M --nvme "$W/nv4" 2>>"$W/d4.log" & DP4=$!
DPIDS=($DP4)
wait_registered "$W/m4" 1
UCACHE_MEMBERS=dir:$W/m4 UCACHE_CHUNK_SIZE=4K $BIN/ucache warmup --tier nvme "file://$W/small/s" \
    >/dev/null 2>&1
on_nvme4() { [ "$(UCACHE_MEMBERS=dir:$W/m4 $BIN/ucache stat --json 2>/dev/null |
                  sed -n 's/.*"nvme_chunks":\([0-9]*\).*/\1/p')" -ge 1536 ] 2>/dev/null; }
wait_for 30 on_nvme4      # all 1536 chunks written (the demoter's queue drained)
UCACHE_MEMBERS=dir:$W/m4 UCACHE_CHUNK_SIZE=4K $BIN/ucache read "file://$W/small/s" --epochs 2 \
    --verify --json --stats >"$W/p6" 2>"$W/p6.stats"
if [ "$(grep -c '"wrong":0' "$W/p6")" = 2 ] && [ "$(client_stat "$W/p6.stats" origin_direct)" = 0 ] &&
   [ "$(client_stat "$W/p6.stats" failovers)" = 0 ] && [ "$(client_stat "$W/p6.stats" chunk_nvme)" -gt 0 ]; then
    ok "4 KiB chunks staged from NVMe in a crowded index: 2 epochs exact, $(client_stat "$W/p6.stats" chunk_nvme) from NVMe, $(client_stat "$W/p6.stats" verify_retries) retried, none from the origin, no owner suspect"
else bad "small chunks from NVMe"; cat "$W/p6"; grep -o '"origin_direct":[0-9]*\|"failovers":[0-9]*\|"chunk_nvme":[0-9]*' "$W/p6.stats"; fi
stop_daemons

# --- dataset quotas on both tiers -----------------------------------------------------
# one daemon, UCACHE_QUOTA 25% for the dataset's root (file:///tmp: W is
# under it): the 190 MiB dataset streams through twice; its chunks hold at
# most a quarter of the memory and of the device (its own oldest go first),
# and every byte is read exact
root=$(echo "$W" | cut -d/ -f2)
fallocate -l 64M "$W/nv5"
MP[5]=$((20000 + RANDOM % 10000))
UCACHE_MEMBERS=dir:$W/m5 UCACHE_QUOTA="file:///$root=25%" UCACHE_LOG_LEVEL=info \
    $BIN/ucached --mem 16M --nvme "$W/nv5" --metrics-port "${MP[5]}" 2>>"$W/d5.log" & DP5=$!
DPIDS=($DP5)
wait_registered "$W/m5" 1
UCACHE_MEMBERS=dir:$W/m5 UCACHE_REPLICAS=1 $BIN/ucache read "file://$W/data/" --epochs 2 \
    --verify --json >"$W/p7" 2>/dev/null
j5=$(UCACHE_MEMBERS=dir:$W/m5 $BIN/ucache stat --json 2>/dev/null)
s5() { echo "$j5" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
cc=$(metric 5 ucache_cached_chunks); ns5=$(metric 5 ucache_nvme_staged_chunks)
mb=$(metric 5 ucache_memory_bytes)
if grep -q "quota: file:///$root may hold 25% of each tier" "$W/d5.log" &&
   [ "$(grep -c '"wrong":0' "$W/p7")" = 2 ] && [ "$(grep -c '"failed":0' "$W/p7")" = 2 ] &&
   [ "$(s5 nvme_used)" -gt 0 ] && [ "$(s5 nvme_used)" -le $(( $(s5 nvme_bytes) / 4 )) ] &&
   [ "${cc:-999}" -le $(( ${mb:-0} / 4 / 131072 + ${ns5:-0} )) ]; then
    ok "UCACHE_QUOTA 25%: 2 epochs of 190 MiB exact; the dataset holds $(( $(s5 nvme_used) >> 20 )) of $(( $(s5 nvme_bytes) >> 20 )) MiB of NVMe and $((cc - ns5)) chunks in $(( mb >> 20 )) MiB of memory (a quarter: 15 of 256 KiB, more of the files' shorter last ones; $ns5 staged)"
else bad "quotas (nvme $(s5 nvme_used) of $(s5 nvme_bytes), memory: $cc chunks, $ns5 staged, of $mb bytes)"; grep quota "$W/d5.log"; cat "$W/p7"; fi
stop_daemons
summary
