#!/usr/bin/env bash
# test_compat.sh - a rolling upgrade: nodes and readers of the release
# before [7/11] (commit COMPAT_REV, built here from the repository's history
# into build/compat/REV, once) and of this one, in one fabric.  Protocol 1
# on both sides, so they talk: a dir: fabric of two new daemons and one old
# one serves exact bytes to a new reader and to an old `ucache cat`; both
# releases' `ucache stat` read every node; an old reader's HELLO (empty:
# before versioned HELLOs) is answered by new listeners (file: list).  A
# request of another protocol version is refused as such, never misread:
# fake_owner's case in test_fabric.sh and test_proto's proto_versions.
# Needs the repository's history (git); without it, one SKIP.
# Prints PASS/FAIL/SKIP per case and "N passed, N failed, N skipped" last.
set -u
here=$(dirname "$0")
. "$here/../lib.sh"
test_setup compat
REV=${COMPAT_REV:-645b430}
ROOT=$(cd "$here/../.." && pwd)
C=$ROOT/build/compat/$REV
declare -a DP

if ! git -C "$ROOT" cat-file -e "$REV^{commit}" 2>/dev/null; then
    skp "old and new binaries together" "no git history with commit $REV (a source tarball?)"
    rm -rf "$W"; summary; exit
fi
# the old release's binaries, built once (plain, as a release is)
if [ ! -x "$C/out/bin/ucached" ] || [ ! -x "$C/out/bin/ucache" ]; then
    rm -rf "$C" && mkdir -p "$C/src" &&
        git -C "$ROOT" archive "$REV" | tar -x -C "$C/src" &&
        env -u OPT -u CFLAGS -u LDFLAGS make -C "$C/src" -j2 BUILD="$C/out" OPT="-O2 -g" \
            "$C/out/bin/ucached" "$C/out/bin/ucache" >"$C/build.log" 2>&1 ||
        { bad "building release $REV (see $C/build.log)"; tail -5 "$C/build.log"; summary; exit; }
fi
OLD=$C/out/bin
trap 'stop_all "$W" "${DP[@]}"' EXIT

mkdir -p "$W/data"
head -c 3670016 /dev/urandom >"$W/data/three"
head -c 10485777 /dev/urandom >"$W/data/ten"
FILES="$W/data/three $W/data/ten"

# --- a dir: fabric of two new daemons and one old -----------------------------
$BIN/ucached --mem 64M 2>>"$W/d1.log" & DP[1]=$!
$BIN/ucached --mem 64M 2>>"$W/d2.log" & DP[2]=$!
$OLD/ucached --mem 64M 2>>"$W/d3.log" & DP[3]=$!
wait_registered "$W/members" 3 || bad "two new daemons and one of release $REV register"

if $T/fabric_client verify 80 $FILES >"$W/v1" 2>&1 && [ "$(client_stat "$W/v1" failovers)" = 0 ]; then
    ok "a new reader in a fabric with a node of release $REV: 80 random reads + posted ones, bytes equal the origin, no owner suspect"
else bad "a new reader with an old node"; tail -5 "$W/v1"; fi
same=1
for f in $FILES; do
    $OLD/ucache cat "file://$f" >"$W/cat" 2>>"$W/old.err" && cmp -s "$W/cat" "$f" || same=0
done
if [ $same = 1 ]; then
    ok "a reader of release $REV (ucache cat) in the same fabric: exact bytes"
else bad "an old reader with new nodes"; tail -5 "$W/old.err"; fi
nn=$($BIN/ucache stat --json 2>/dev/null | grep -c '^{"node"')
no=$($OLD/ucache stat --json 2>/dev/null | grep -c '^{"node"')
if [ "$nn" = 3 ] && [ "$no" = 3 ]; then
    ok "both releases' ucache stat read every node's counters (tagged: each ignores what it does not know)"
else bad "ucache stat across releases: new saw $nn nodes, old $no"; fi
rc=0
for i in 1 2 3; do kill -TERM "${DP[$i]}"; done
for i in 1 2 3; do wait "${DP[$i]}" || rc=$?; done
DP=()
[ $rc = 0 ] && ok "SIGTERM: the new and old daemons exit 0" || bad "SIGTERM (rc $rc)"

# --- an old reader's HELLO (empty) to new listeners (file: list) --------------
base=$((18000 + $$ % 2000))
printf '127.0.0.1:%s\n127.0.0.1:%s\n' $base $((base + 1)) >"$W/list"
export UCACHE_MEMBERS=file:$W/list
$BIN/ucached --mem 64M --listen 127.0.0.1:$base 2>>"$W/f1.log" & DP[1]=$!
$BIN/ucached --mem 64M --listen 127.0.0.1:$((base + 1)) 2>>"$W/f2.log" & DP[2]=$!
if wait_for 10 listening $base $((base + 1)) &&
   $OLD/ucache cat "file://$W/data/ten" --stats >"$W/cat" 2>"$W/cat.stats" &&
   cmp -s "$W/cat" "$W/data/ten" && [ "$(client_stat "$W/cat.stats" origin_direct)" = 0 ] &&
   ! grep -q "refused a HELLO" "$W/f1.log" "$W/f2.log"; then
    ok "a reader of release $REV fetches new nodes' records with its HELLO of before (no version: protocol 1): exact bytes, all through the owners"
else bad "an old reader's HELLO to new listeners"; tail -3 "$W/cat.stats" "$W/f1.log"; fi
rc=0
for i in 1 2; do kill -TERM "${DP[$i]}"; done
for i in 1 2; do wait "${DP[$i]}" || rc=$?; done
DP=()
summary
