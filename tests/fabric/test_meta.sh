#!/usr/bin/env bash
# test_meta.sh - object metadata owned by the fabric (issue [7/11]): three
# ucached daemons and the test HTTP origin (which counts HEADs); reader
# processes started together, as DataLoader workers are each epoch.
#  - UCACHE_META=local (before): every reader asks the origin for every
#    object: HEADs = readers x objects;
#  - UCACHE_META=fabric (the default): one HEAD per object for all readers
#    and a second epoch of new processes (the owners' TTL), every byte
#    exact, no reader asked the origin;
#  - a listing through its owner; a manifest (ucache manifest) pinned by
#    readers asks nobody, and a changed object then fails STALE, named;
#  - an object outside the owners' UCACHE_ALLOW: the owner refuses, the
#    reader asks the origin itself; an owner killed: reads stay exact.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup meta
SRV=
OUT=$(mktemp -d /tmp/ucache-meta-out.XXXXXX)  # outside every UCACHE_ALLOW rule
trap 'stop_all "$W" "${DPIDS[@]}" $SRV; rm -rf "$OUT"' EXIT

NREAD=8 NOBJ=12
export UCACHE_META_TTL=60s   # the whole test is one TTL: each object asked once
mkdir -p "$W/data" "$W/ds/sub"
for i in $(seq -w 1 $((2 * NOBJ))); do head -c $((100000 + 997 * 10#$i)) /dev/urandom >"$W/data/o$i"; done
for i in $(seq 1 20); do head -c $((3000 * i)) /dev/urandom >"$W/ds/f$i"; done
head -c 5000 /dev/urandom >"$W/ds/sub/g"
head -c 7000 /dev/urandom >"$OUT/x"
SETA=$(for i in $(seq -w 1 $NOBJ); do echo -n "$W/data/o$i "; done)
SETB=$(for i in $(seq -w $((NOBJ + 1)) $((2 * NOBJ))); do echo -n "$W/data/o$i "; done)

$T/http_origin "$W/data" 0 >"$W/origin.port" 2>>"$W/origin.log" &
SRV=$!
wait_for 5 test -s "$W/origin.port"
URL=http://127.0.0.1:$(awk '{print $2}' "$W/origin.port")
heads() { curl -s "$URL/_ctl/stats" | sed -n 's/.*"heads":\([0-9]*\).*/\1/p'; }
start_daemons 3 64M

# readers NAME SET [ENV...]: NREAD fabric_client processes at once, each
# verifying 30 random reads of every object of SET; 0 if all were exact
readers() {
    local name=$1 set=$2 i rc=0 pids=()
    shift 2
    for i in $(seq $NREAD); do
        env "$@" FC_ORIGIN=$URL FC_ROOT=$W/data $T/fabric_client verify 30 $set \
            >"$W/$name.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    return $rc
}
# sum NAME FIELD: FIELD of the readers' counters, summed
sum() { local i s=0; for i in $(seq $NREAD); do s=$((s + $(client_stat "$W/$1.$i" "$2") + 0)); done; echo $s; }

h0=$(heads)
if readers local "$SETA" UCACHE_META=local; then
    hl=$(( $(heads) - h0 ))
    if [ $hl -ge $((NREAD * NOBJ)) ] && [ "$(sum local meta_owner)" = 0 ]; then
        ok "before (UCACHE_META=local): $NREAD readers x $NOBJ objects asked the origin $hl times (>= $((NREAD * NOBJ))), bytes exact"
    else bad "UCACHE_META=local: $hl HEADs for $NREAD x $NOBJ"; fi
else bad "UCACHE_META=local readers"; tail -n 3 "$W"/local.*; fi

h0=$(heads)
if readers fab1 "$SETB"; then
    hf=$(( $(heads) - h0 ))
    if [ $hf = $NOBJ ] && [ "$(sum fab1 meta_direct)" = 0 ] && [ "$(sum fab1 meta_owner)" -ge $NOBJ ]; then
        ok "after (UCACHE_META=fabric): $NREAD readers x $NOBJ objects cost the origin $hf HEADs (one an object, by its owner); $(sum fab1 meta_owner) answers from owners, none from the origin, bytes exact"
    else bad "UCACHE_META=fabric: $hf HEADs (want $NOBJ), meta_direct $(sum fab1 meta_direct)"; fi
else bad "UCACHE_META=fabric readers"; tail -n 3 "$W"/fab1.*; fi

h0=$(heads)
if readers fab2 "$SETB" && [ $(( $(heads) - h0 )) = 0 ] && [ "$(sum fab2 meta_direct)" = 0 ]; then
    ok "a second epoch of $NREAD new reader processes: 0 HEADs (the owners' answers hold for their TTL), bytes exact"
else bad "second epoch: $(( $(heads) - h0 )) HEADs, meta_direct $(sum fab2 meta_direct)"; fi

# a listing through its owner: the prefix's owner lists, readers page through it
pids=()
for i in 1 2 3 4; do
    $BIN/ucache read --verify --json --epochs 1 --stats "file://$W/ds/" >"$W/ls.$i" 2>"$W/ls.err.$i" &
    pids+=($!)
done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
nobj=$(sed -n 's/.*"objects":\([0-9]*\).*/\1/p' "$W/ls.1")
lsd=0; for i in 1 2 3 4; do lsd=$((lsd + $(client_stat "$W/ls.err.$i" meta_direct))); done
if [ $rc = 0 ] && [ "$nobj" = 21 ] && [ $lsd = 0 ] && ! grep -q '"wrong":[1-9]' "$W"/ls.? &&
   [ "$(client_stat "$W/ls.err.1" meta_owner)" -ge 1 ]; then
    ok "4 readers list file://…/ds/ through its owner: 21 objects (a subdirectory's too), no reader listed the origin, bytes verified"
else bad "listing through the owner (rc $rc, $nobj objects, meta_direct $lsd)"
    for i in 1 2 3 4; do echo "reader $i:"; head -c 300 "$W/ls.$i"; grep -v '^{"stats"' "$W/ls.err.$i" | tail -5; done; fi

# a manifest pinned: nobody is asked
if $BIN/ucache manifest "file://$W/ds/" --output "$W/ds.manifest" 2>"$W/mf.err" &&
   [ "$(grep -c $'\t' "$W/ds.manifest")" = 21 ] && head -1 "$W/ds.manifest" | grep -q "^# ucache manifest 1"; then
    ok "ucache manifest file://…/ds/: 21 objects with sizes and versions"
else bad "ucache manifest"; cat "$W/mf.err"; fi
if UCACHE_MANIFEST=$W/ds.manifest $BIN/ucache read --verify --json --epochs 2 --stats "file://$W/ds/" \
       >"$W/pin.out" 2>"$W/pin.err" &&
   [ "$(client_stat "$W/pin.err" meta_owner)" = 0 ] && [ "$(client_stat "$W/pin.err" meta_direct)" = 0 ] &&
   [ "$(client_stat "$W/pin.err" origin_meta)" = 0 ] && [ "$(client_stat "$W/pin.err" meta_pinned)" -ge 1 ] &&
   ! grep -q '"wrong":[1-9]' "$W/pin.out"; then
    ok "a job with UCACHE_MANIFEST reads 2 epochs of the dataset asking no owner and no origin for metadata, bytes verified"
else bad "a pinned manifest"; tail -n 3 "$W/pin.err"; fi
if $BIN/ucache read --verify --json --epochs 1 --manifest "$W/ds.manifest" >"$W/pin2.out" 2>"$W/pin2.err" &&
   grep -q '"objects":21' "$W/pin2.out"; then
    ok "ucache read --manifest takes a ucache manifest (URIs and pinned versions)"
else bad "read --manifest FILE"; tail -n 3 "$W/pin2.err"; fi
# pinned f1 is cached: its pinned version's bytes; h, never read, changed: STALE
mkdir -p "$W/ds2"; head -c 4000 /dev/urandom >"$W/ds2/h"
$BIN/ucache manifest "file://$W/ds/" "file://$W/ds2/" --output "$W/ds12.manifest" 2>/dev/null
cp "$W/ds/f1" "$W/f1.old"; cp "$W/ds2/h" "$W/h.old"
head -c 3000 /dev/urandom >"$W/ds/f1"; head -c 4000 /dev/urandom >"$W/ds2/h"
touch -m -d "@$(( $(date +%s) + 60 ))" "$W/ds/f1" "$W/ds2/h"  # a new mtime: a new version
UCACHE_MANIFEST=$W/ds12.manifest $BIN/ucache cat "file://$W/ds/f1" >"$W/f1.out" 2>"$W/f1.err"; rc1=$?
UCACHE_MANIFEST=$W/ds12.manifest $BIN/ucache cat "file://$W/ds2/h" >/dev/null 2>"$W/stale.err"; rc=$?
if [ $rc1 = 0 ] && cmp -s "$W/f1.out" "$W/f1.old" && [ $rc = 1 ] &&
   grep -q "changed at its origin since the manifest" "$W/stale.err"; then
    ok "objects changed since the manifest: one still cached reads as its pinned version (exact old bytes); one that must be filled fails UCACHE_ERR_STALE, saying so"
else bad "pinned objects changed (rc $rc1, $rc)"; cat "$W/f1.err" "$W/stale.err"; fi
printf '# ucache manifest 1\nfile:///x\t12\tnothex\t\n' >"$W/bad.manifest"
UCACHE_MANIFEST=$W/bad.manifest $BIN/ucache cat "file://$W/ds/f2" >/dev/null 2>"$W/badm.err"; rc=$?
if [ $rc = 1 ] && grep -q "manifest line 2 is malformed" "$W/badm.err"; then
    ok "a malformed manifest is refused, naming the line"
else bad "malformed manifest (rc $rc)"; cat "$W/badm.err"; fi

# not the owners' to ask: they refuse, the reader asks the origin itself
if $BIN/ucache cat --stats "file://$OUT/x" >"$W/x.out" 2>"$W/x.err" && cmp -s "$W/x.out" "$OUT/x" &&
   [ "$(client_stat "$W/x.err" meta_direct)" -ge 1 ] && [ "$(client_stat "$W/x.err" meta_owner)" = 0 ]; then
    ok "an object outside the owners' UCACHE_ALLOW: no owner asks its origin for it; the reader does, bytes exact"
else bad "metadata outside UCACHE_ALLOW"; tail -n 3 "$W/x.err"; fi

# an owner killed: its objects' metadata comes from the next owner or the origin
kill -9 "${DPIDS[0]}"; wait "${DPIDS[0]}" 2>/dev/null; DPIDS=("${DPIDS[@]:1}")
if readers kill "$SETA" && [ "$(sum kill failed)" = 0 ]; then
    ok "an owner killed: $NREAD readers still read every object exactly"
else bad "reads with an owner killed"; tail -n 3 "$W"/kill.*; fi

stop_daemons
summary
