#!/usr/bin/env bash
# test_hotset.sh - scan resistance through the whole fabric: one ucached
# with 64 MiB and 256 KiB chunks (about 250 of them fit); a hot set of half
# the cache (128 chunks) is read through `ucache read`, then a scan of 4x
# the cache (1024 other chunks) goes through, then the hot set is read
# once more and its hits counted.  The owner never sees a one-sided hit:
# only the readers' hit reports (fabric/touch.c) keep the hot set in its
# main queue.  Two reader shapes, each on a fresh daemon:
#   short-lived - 4 separate `ucache read` processes, one epoch each (a
#                 DataLoader worker re-created every epoch);
#   long-lived  - one `ucache read --epochs 30`.
# Both must keep >= 90% of the hot set (115 of 128).  With 1-in-16 sampled
# reports the short-lived shape kept 16 to 27 of 128.  (One scan: a second
# pass of the same 4x data finds its keys in the ghost FIFO and takes the
# main queue, as S3-FIFO means it to.)
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup hotset
export UCACHE_CHUNK_SIZE=256K
trap 'stop_all "$W" "${DPIDS[@]}"' EXIT

CHUNK=$((256 << 10))
mkdir -p "$W/data/hot" "$W/data/scan"
# the hot set: 8 objects of 16 chunks; the scan: 64 objects of 16 chunks
for i in $(seq 8); do head -c $((16 * CHUNK)) /dev/urandom >"$W/data/hot/h$i"; done
for i in $(seq 64); do head -c $((16 * CHUNK)) /dev/urandom >"$W/data/scan/s$i"; done

jsum() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | awk '{s += $1} END {print s + 0}'; }

# run_case NAME EPOCHS PROCESSES: fresh daemon, hot set read PROCESSES x
# EPOCHS (each process --epochs EPOCHS), the scan, then the hot set once:
# prints the hits of that last read (of 128)
run_case() {
    local name=$1 epochs=$2 procs=$3 k
    rm -rf "$W/members"
    start_daemons 1 64M
    for k in $(seq "$procs"); do
        $BIN/ucache read "file://$W/data/hot/" --epochs "$epochs" --verify --json \
            >"$W/$name.hot$k" 2>>"$W/$name.err" || bad "$name: hot read $k"
    done
    $BIN/ucache read "file://$W/data/scan/" --epochs 1 --verify --json >"$W/$name.scan" 2>>"$W/$name.err" ||
        bad "$name: scan"
    $BIN/ucache read "file://$W/data/hot/" --epochs 1 --verify --json >"$W/$name.check" 2>>"$W/$name.err" ||
        bad "$name: check read"
    stop_daemons >/dev/null
    HITS=$(tail -n 1 "$W/$name.check" | sed -n 's/.*"hits":\([0-9]*\).*/\1/p')
    WRONG=$(jsum "$W/$name.check" wrong)
    FAILED=$(jsum "$W/$name.check" failed)
    SCANHITS=$(tail -n 1 "$W/$name.scan" | sed -n 's/.*"hits":\([0-9]*\).*/\1/p')
}

for shape in "short 1 4" "long 30 1"; do
    set -- $shape
    run_case "$1" "$2" "$3"
    if [ -n "$HITS" ] && [ "$HITS" -ge 115 ] && [ "$WRONG" = 0 ] && [ "$FAILED" = 0 ]; then
        ok "$1-lived readers ($3 x $2 epochs): $HITS of 128 hot chunks survived a scan of 1024 (scan hits $SCANHITS)"
    else
        bad "$1-lived readers ($3 x $2 epochs): ${HITS:-?} of 128 hot chunks survived (want >= 115; wrong ${WRONG:-?}, failed ${FAILED:-?})"
        tail -n 3 "$W/$1.check" "$W/$1.err"
    fi
done

summary
