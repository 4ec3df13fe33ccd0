#!/usr/bin/env bash
# make demo: the main job.  A local fabric with the embedded defaults:
# three ucached daemons on this host register in the dir: members source,
# a sample dataset (256 MiB in 32 files) is the file:// origin, and a reader
# reads it through the cache twice - a cold epoch (owners fill from the
# origin) and a warm epoch (every chunk a hit) - then once more over tcp, as
# a reader on another host would; bytes are verified against the files.
# The daemons are stopped (SIGTERM) at the end, or on any exit.
set -euo pipefail
BIN=${1:-build/bin}
DATA=${UCACHE_DEMO_DATA:-build/demo-data}
NODES=3
MEM=${UCACHE_DEMO_MEM:-160M}
members=$("$BIN/ucache" config | sed -n 's/^UCACHE_MEMBERS=\([^ ]*\).*/\1/p')
case $members in dir:*) ;; *) echo "demo: UCACHE_MEMBERS must be dir:PATH here" >&2; exit 1;; esac
dir=${members#dir:}
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "ucache demo: $NODES ucached daemons x $MEM on this host, members $members"
# the fabric runs with a cluster key, as every deployment should: the
# daemons and the readers below sign every control message with it
if [ -z "${UCACHE_CLUSTER_KEY_FILE:-}" ]; then
    key=build/demo-cluster.key
    [ -f "$key" ] || "$BIN/ucache" keygen "$key"
    export UCACHE_CLUSTER_KEY_FILE=$key
fi
echo "cluster key: $UCACHE_CLUSTER_KEY_FILE (ucache keygen; every request is signed with it)"
if [ ! -f "$DATA/.complete" ]; then
    echo "creating the sample dataset in $DATA (32 files x 8 MiB)"
    mkdir -p "$DATA"
    for i in $(seq -w 1 32); do head -c 8388608 /dev/urandom >"$DATA/shard-$i.bin"; done
    touch "$DATA/.complete"
fi
data=$(cd "$DATA" && pwd)
before=$(ls "$dir"/node-*.rec 2>/dev/null | wc -l || true)
for i in $(seq $NODES); do
    "$BIN/ucached" --mem "$MEM" --allow "file://$data/" 2>"build/ucached-$i.log" &
    pids+=($!)
done
for i in $(seq 100); do
    n=$(ls "$dir"/node-*.rec 2>/dev/null | wc -l || true)
    [ "$n" -ge $((before + NODES)) ] && break
    sleep 0.1
done
echo "fabric up: $n nodes registered in $dir"
echo
echo "== reader on this host (owners' memory mapped: one-sided, no syscall per hit)"
"$BIN/ucache" read "file://$data" --epochs 2 --verify
echo
echo "== reader over tcp (UCX_TLS=tcp: as from another host; owners reply with the chunk)"
UCX_TLS=tcp "$BIN/ucache" read "file://$data" --epochs 1 --verify
echo
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
fills=0; served=0
for i in $(seq $NODES); do
    l=$(grep '"stats":"ucached"' "build/ucached-$i.log" | tail -n 1)
    fills=$((fills + $(echo "$l" | sed -n 's/.*"fills":\([0-9]*\).*/\1/p')))
    served=$((served + $(echo "$l" | sed -n 's/.*"fetches_served":\([0-9]*\).*/\1/p')))
done
echo "daemons stopped: $fills chunks filled from the origin in all (each chunk once: the"
echo "cold epoch's fills), $served requests served; logs in build/ucached-*.log"
echo "More: ucache --help, ucperf --help, README.md."
