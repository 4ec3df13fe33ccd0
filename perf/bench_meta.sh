#!/usr/bin/env bash
# bench_meta.sh - origin metadata requests per epoch (issue [7/11]): a
# dataset of N blobs (default 128 of 64 KiB) in the Azurite emulator (the
# Azure Blob API; make deps installs it), three ucached daemons, and each
# epoch R reader processes (default 32) started together - DataLoader
# workers re-created every epoch - each listing the container and reading
# every blob (`ucache read`).  Azurite's own request log is the count: HEADs
# (Get Blob Properties) and List Blobs calls per epoch, for
#   local    - every process asks the origin itself (UCACHE_META=local: the
#              release before; daemons too);
#   fabric   - the default: the owner of an object's (a prefix's) metadata
#              asks, at most once per its UCACHE_META_TTL (2 s here);
#   manifest - readers pin a manifest written once (ucache manifest).
# Fresh daemons (a cold cache) for each; the same epochs, the same TTL.
# Prints one JSON line per mode and epoch ({"bench":"meta",...}).
# Usage: perf/bench_meta.sh [READERS] [OBJECTS] [EPOCHS] [BUILD]
set -uo pipefail
readers=${1:-32}
nobj=${2:-128}
epochs=${3:-3}
build=${4:-build}
bin=$build/bin
AZURITE=${AZURITE:-build/npm/node_modules/.bin/azurite-blob}
if [ ! -x "$AZURITE" ] || ! command -v node >/dev/null || [ ! -x "$build/tests/az_put" ]; then
    echo "bench_meta: Azurite ($AZURITE) or $build/tests/az_put missing (make deps tests)" >&2
    exit 1
fi
W=$(mktemp -d /tmp/ucache-bench-meta.XXXXXX)
export UCACHE_MEMBERS=dir:$W/members UCACHE_MEMBERS_POLL=100ms UCACHE_MEM_LOCK=no
export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-error} UCACHE_CHUNK_SIZE=1M
pids=() az=
cleanup() {
    for p in "${pids[@]}" $az; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ACCT=devstoreaccount1
for try in $(seq 10); do
    port=$((20000 + RANDOM % 12000))
    mkdir -p "$W/azurite"
    "$AZURITE" --blobHost 127.0.0.1 --blobPort $port --location "$W/azurite" --silent \
        --skipApiVersionCheck --loose --debug "$W/az.log" >"$W/az.out" 2>&1 &
    az=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
    kill -0 $az 2>/dev/null && break
done
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$ACCT;AccountKey=$KEY;BlobEndpoint=http://127.0.0.1:$port/$ACCT;"
mkdir -p "$W/data"
for i in $(seq -w 1 "$nobj"); do head -c 65536 /dev/urandom >"$W/data/blob-$i"; done
"$build/tests/az_put" bench "$W"/data/blob-* >"$W/put.log" 2>&1 ||
    { echo "bench_meta: upload to Azurite failed" >&2; cat "$W/put.log" >&2; exit 1; }
PREFIX=az://$ACCT/bench/

# requests Azurite has logged so far: "HEADS LISTS GETS", once its log
# (written behind the requests) has stood still for a second
requests() {
    local n m=-1 i
    for i in $(seq 60); do
        n=$(wc -l <"$W/az.log")
        [ "$n" = "$m" ] && break
        m=$n
        sleep 1
    done
    awk '/RequestMethod=HEAD/ { h++ } /RequestMethod=GET/ && /comp=list/ { l++ }
         /RequestMethod=GET/ && !/comp=list/ { g++ } END { print h + 0, l + 0, g + 0 }' "$W/az.log"
}
start_daemons() {
    local i
    rm -rf "$W/members"
    for i in 1 2 3; do "$bin/ucached" --mem 256M 2>>"$W/d$i.log" & pids+=($!); done
    for _ in $(seq 100); do [ "$(ls "$W/members"/node-*.rec 2>/dev/null | wc -l)" = 3 ] && return; sleep 0.1; done
    echo "bench_meta: daemons did not register" >&2; exit 1
}
stop_daemons() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    pids=()
}

"$bin/ucache" manifest "$PREFIX" --output "$W/bench.manifest" 2>"$W/manifest.err" ||
    { echo "bench_meta: ucache manifest failed" >&2; cat "$W/manifest.err" >&2; exit 1; }

for mode in local fabric manifest; do
    case $mode in
    local)    env=(UCACHE_META=local) ;;
    fabric)   env=() ;;
    manifest) env=(UCACHE_MANIFEST=$W/bench.manifest) ;;
    esac
    if [ "$mode" = local ]; then UCACHE_META=local start_daemons; else start_daemons; fi
    for e in $(seq "$epochs"); do
        read -r h0 l0 g0 < <(requests)
        t0=$(date +%s.%N)
        rp=()
        for r in $(seq "$readers"); do
            env "${env[@]}" "$bin/ucache" read --epochs 1 --json --stats "$PREFIX" \
                >"$W/r.$r" 2>"$W/r.err.$r" &
            rp+=($!)
        done
        bad=0
        for p in "${rp[@]}"; do wait "$p" || bad=$((bad + 1)); done
        t1=$(date +%s.%N)
        read -r h1 l1 g1 < <(requests)
        objs=$(sed -n 's/.*"objects":\([0-9]*\).*/\1/p' "$W/r.1")
        echo "{\"bench\":\"meta\",\"mode\":\"$mode\",\"epoch\":$e,\"readers\":$readers,\"objects\":${objs:-0},\"heads\":$((h1 - h0)),\"lists\":$((l1 - l0)),\"gets\":$((g1 - g0)),\"failed_readers\":$bad,\"seconds\":$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')}"
    done
    stop_daemons
done
