#!/usr/bin/env bash
# bench_nvme.sh - the NVMe tier (issue [9/11]).  This machine has no NVMe:
# a preallocated file on its disk stands in for the device, and fio reads
# the same file for the baselines.  In one run:
#   fio_seq    fio --ioengine=io_uring --direct=1 --bs=1M --iodepth=32
#              --rw=read on the file: GB/s
#   fio_rand   fio --ioengine=io_uring --direct=1 --bs=4k --iodepth=128
#              --rw=randread: IOPS
#   hit        ucperf hit through one daemon (--mem 256M --nvme FILE) at
#              SIZE with 8 reads in flight (1 MiB: 32, fio's depth): a
#              dataset of 4x its memory
#              (chunks mostly on NVMe, counted) against one that fits in
#              memory (memory-tier hits), the same window and transport
#   rpc_4k     4 KiB: NVMe-tier hits at 64 in flight, and the ceiling of
#              any read the owner serves here - memory-tier hits answered
#              by the owner (no mapping: UCACHE_MAP_DIR empty) at 8 and 64
#   mem_nvme   memory-tier 1 MiB hits with and without an NVMe tier
#              configured: 5 interleaved runs each (medians)
#   epochs     a dataset of 4x the memory read twice with `ucache read`:
#              origin bytes in the second epoch
#   rebuild    the daemon restarted on its device: the start-up scan's
#              time for its records, and per TB of records scanned
# Prints one JSON line per figure ({"bench":"nvme",...}).
# Usage: perf/bench_nvme.sh [BUILD]
set -uo pipefail
build=${1:-build}
bin=$build/bin
W=$(mktemp -d /tmp/ucache-bench-nvme.XXXXXX)
export UCACHE_MEMBERS=dir:$W/members UCACHE_MEMBERS_POLL=100ms UCACHE_MEM_LOCK=no
# ucperf writes its dataset under /tmp; 1 MiB chunks for daemons and readers
export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-warn} UCACHE_ALLOW="file:///tmp/" UCACHE_CHUNK_SIZE=1M
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
rc=0
jnum() { sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p" <<<"$1" | head -n 1; }

fallocate -l 3G "$W/nvme" || { echo "bench_nvme: cannot preallocate 3 GiB" >&2; exit 1; }
dd if=/dev/urandom of="$W/nvme" bs=1M count=3072 conv=notrunc status=none
# fio on the same file (written first: holes would read as nothing)
f=$(fio --name=seq --filename="$W/nvme" --ioengine=io_uring --direct=1 --bs=1M --iodepth=32 \
        --rw=read --runtime=5 --time_based --output-format=json 2>/dev/null)
fio_seq=$(python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f" % (j["jobs"][0]["read"]["bw_bytes"] / 1e9))' <<<"$f")
f=$(fio --name=rand --filename="$W/nvme" --ioengine=io_uring --direct=1 --bs=4k --iodepth=128 \
        --rw=randread --runtime=5 --time_based --output-format=json 2>/dev/null)
fio_rand=$(python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.0f" % j["jobs"][0]["read"]["iops"])' <<<"$f")
echo "{\"bench\":\"nvme\",\"figure\":\"fio\",\"seq_1m_qd32_gbps\":${fio_seq:-0},\"rand_4k_qd128_iops\":${fio_rand:-0}}"

start() { # start MEM [--nvme FILE]: one daemon, registered
    rm -rf "$W/members"
    "$bin/ucached" --mem "$@" 2>>"$W/d.log" &
    pid=$!
    for _ in $(seq 100); do
        ls "$W"/members/node-*.rec >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench_nvme: the daemon did not register" >&2; tail -3 "$W/d.log" >&2
    return 1
}
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; }
nstat() { "$bin/ucache" stat --json 2>/dev/null | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | head -n 1; }
hit() { # hit SIZE DATASET: ucperf hit against the running daemon, one JSON line
    # (--cache is what ucperf checks the dataset against: memory and NVMe);
    # chunks of SIZE, as the memory-tier figures of make bench
    "$bin/ucperf" hit --members "dir:$W/members" --size "$1" --outstanding "${3:-8}" \
        --cache 2G --dataset "$2" --duration 4 --json 2>>"$W/ucperf.err" | tail -n 1
}

cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }   # the daemon's CPU ticks
# NVMe-tier hits against memory-tier hits, 1 MiB and 4 KiB chunks (the
# index sized for them); NVMe's promotion off (UCACHE_NVME_WINDOW=1ms), so
# that every read of a chunk on NVMe is a device read; the owner's CPU per
# chunk read from NVMe (its whole process: io_uring, the checks, the copy
# into the staging pool, the reply)
for size in 1M 4K; do
    export UCACHE_CHUNK_SIZE=$size UCACHE_INDEX_CHUNK=$size
    UCACHE_NVME_WINDOW=1ms start 256M --nvme "$W/nvme:2G" || { rc=1; break; }
    h0=$(nstat nvme_hits)
    ds=1G; [ $size = 4K ] && ds=512M   # 4 KiB chunks take 8 KiB records: 1 GiB of them
    qd=8; [ $size = 1M ] && qd=32      # 1 MiB: fio's depth (QD32)
    big=$(hit $size $ds $qd)
    h1=$(nstat nvme_hits)
    us_chunk=0
    if [ $size = 1M ]; then
        c0=$(cpu)
        hit 1M 1G >/dev/null
        c1=$(cpu); h2=$(nstat nvme_hits)
        us_chunk=$(awk -v c=$((c1 - c0)) -v t="$(getconf CLK_TCK)" -v n=$(( ${h2:-0} - ${h1:-0} )) \
                   'BEGIN { printf "%.1f", (n > 0) ? c / t / n * 1e6 : 0 }')
    fi
    stop
    start 256M || { rc=1; break; }
    small=$(hit $size 96M $qd)
    stop
    echo "{\"bench\":\"nvme\",\"figure\":\"hit\",\"size\":\"$size\",\"in_flight\":$qd,\"nvme_gbps\":$(jnum "$big" gbps),\"nvme_mops\":$(jnum "$big" mops),\"nvme_reads\":$(( ${h1:-0} - ${h0:-0} )),\"nvme_ratio\":$(jnum "$big" nvme_ratio),\"direct_ratio\":$(jnum "$big" direct_ratio),\"mem_gbps\":$(jnum "$small" gbps),\"mem_mops\":$(jnum "$small" mops),\"owner_cpu_us_per_nvme_chunk\":$us_chunk}"
done

# 4 KiB: what any read the owner must serve can reach here.  NVMe-tier
# hits at 64 in flight; memory-tier hits served by the owner (the reader
# not allowed to map its memory: UCACHE_MAP_DIR names an empty directory,
# so every read is an active-message request the owner answers from
# memory - a FETCH's cost without the device) at 8 and 64 in flight
export UCACHE_CHUNK_SIZE=4K UCACHE_INDEX_CHUNK=4K
mkdir -p "$W/nomap"
UCACHE_NVME_WINDOW=1ms start 256M --nvme "$W/nvme:2G" || rc=1
n64=$(hit 4K 512M 64)
stop
start 256M || rc=1
r8=$(UCACHE_MAP_DIR=$W/nomap hit 4K 96M 8)
r64=$(UCACHE_MAP_DIR=$W/nomap hit 4K 96M 64)
stop
echo "{\"bench\":\"nvme\",\"figure\":\"rpc_4k\",\"nvme_mops_64\":$(jnum "$n64" mops),\"nvme_ratio_64\":$(jnum "$n64" nvme_ratio),\"rpc_mops_8\":$(jnum "$r8" mops),\"rpc_mops_64\":$(jnum "$r64" mops)}"

# memory-tier 1 MiB hits with and without an NVMe tier: 5 interleaved runs
export UCACHE_CHUNK_SIZE=1M UCACHE_INDEX_CHUNK=64K
with= without=
for i in 1 2 3 4 5; do
    start 256M --nvme "$W/nvme:2G" || { rc=1; break; }
    with="$with $(jnum "$(hit 1M 96M)" gbps)"
    stop
    start 256M || { rc=1; break; }
    without="$without $(jnum "$(hit 1M 96M)" gbps)"
    stop
done
med() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "{\"bench\":\"nvme\",\"figure\":\"mem_with_nvme\",\"with_gbps\":$(med "$with"),\"without_gbps\":$(med "$without"),\"runs\":\"$with /$without\"}"

# a dataset 4x the memory, two epochs; then a restart and a third
mkdir -p "$W/data"
for i in $(seq 16); do head -c $((64 * 1048576)) /dev/urandom >"$W/data/f$i"; done
start 256M --nvme "$W/nvme:2G" || exit 1
"$bin/ucache" read "file://$W/data/" --epochs 2 --json >"$W/ep" 2>/dev/null
o1=$(nstat origin_bytes)
e1=$(grep '"epoch":1' "$W/ep"); e2=$(grep '"epoch":2' "$W/ep")
sleep 1
o2=$(nstat origin_bytes)
stop
start 256M --nvme "$W/nvme:2G" || exit 1
rb=$(nstat nvme_rebuild_ns); nch=$(nstat nvme_chunks); used=$(nstat nvme_used)
"$bin/ucache" read "file://$W/data/" --epochs 1 --json >"$W/ep3" 2>/dev/null
o3=$(nstat origin_bytes)
stop
echo "{\"bench\":\"nvme\",\"figure\":\"epochs\",\"chunk\":\"1M\",\"dataset_bytes\":$((16 * 64 * 1048576)),\"mem_bytes\":268435456,\"epoch1_origin_bytes\":${o1:-0},\"epoch2_origin_bytes\":$(( ${o2:-0} - ${o1:-0} )),\"epoch2_nvme_chunks\":$(jnum "$e2" nvme),\"epoch2_chunks\":$(jnum "$e2" chunks),\"epoch2_mib_s\":$(jnum "$e2" mib_per_s),\"epoch1_mib_s\":$(jnum "$e1" mib_per_s),\"restart_origin_bytes\":${o3:-0},\"epoch3_nvme_chunks\":$(jnum "$(cat "$W/ep3" | grep epoch)" nvme)}"
echo "{\"bench\":\"nvme\",\"figure\":\"rebuild\",\"records\":${nch:-0},\"bytes\":${used:-0},\"scan_s\":$(awk -v n="${rb:-0}" 'BEGIN { printf "%.4f", n / 1e9 }'),\"s_per_tb\":$(awk -v n="${rb:-0}" -v b="${used:-1}" 'BEGIN { printf "%.2f", n / 1e9 / (b / 1e12) }')}"
exit $rc
