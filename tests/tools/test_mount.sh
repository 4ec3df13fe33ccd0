#!/usr/bin/env bash
# test_mount.sh - `ucache mount` (tools/mount.c, issue [10/11]): a file://
# dataset and an Azurite container mounted read-only through three ucached
# daemons; find, stat, cmp and python read it; writes are refused (EROFS);
# many readers at once; a changed object shows its new size and bytes after
# UCACHE_META_TTL; a daemon killed during reads (every byte still exact);
# fusermount3 -u, and SIGTERM while readers read (the mount ends, no reader
# hangs).  SKIP (counted) without /dev/fuse or fusermount3.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup mount
AZ= MP=
export UCACHE_META_TTL=$(slow 2)s
unmount_all() { for m in "$W"/mnt*; do fusermount3 -u -z "$m" 2>/dev/null; done; }
trap 'unmount_all; stop_all "$W" "${DPIDS[@]}" $AZ $MP' EXIT
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
    skp_dep "ucache mount" "no /dev/fuse or no fusermount3 (make deps installs fuse3)"
    summary; exit
fi
mounted() { grep -q " $1 fuse" /proc/mounts; }
# reading PID...: one of these readers' children (cmp, cat) has read 1 MiB
reading() {
    local p c n
    for p in "$@"; do
        for c in $(pgrep -P "$p"); do
            n=$(awk '/^rchar/ {print $2}' "/proc/$c/io" 2>/dev/null)
            [ "${n:-0}" -gt 1048576 ] && return 0
        done
    done
    return 1
}

mkdir -p "$W/data/sub/deeper" "$W/mnt" "$W/mnt2" "$W/mnt3"
for i in $(seq -w 1 10); do head -c $((10#$i * 700001)) /dev/urandom >"$W/data/f$i"; done
head -c 1 /dev/urandom >"$W/data/sub/one"
head -c 33554437 /dev/urandom >"$W/data/sub/big"          # 33 chunks
head -c 4097 /dev/urandom >"$W/data/sub/deeper/x"
if start_azurite; then
    mkdir -p "$W/az"
    for f in a b c; do head -c $((RANDOM * 50 + 1)) /dev/urandom >"$W/az/$f"; done
    $T/az_put mnt "$W/az/a" "$W/az/b" "$W/az/c" >"$W/put.log" 2>&1 ||
        { bad "upload to Azurite"; tail -n 5 "$W/put.log" "$W/azurite.log"; }
fi
start_daemons 3 128M

# --- a file:// dataset -------------------------------------------------------
if $BIN/ucache mount "file://$W/data" "$W/mnt" 2>"$W/mount.log" && mounted "$W/mnt" &&
   M1=$(pgrep -n -f "^$BIN/ucache mount file://$W/data $W/mnt\$"); then
    ok "ucache mount file://$W/data: detached once mounted ($(tail -n 1 "$W/mount.log" | cut -c1-80))"
else bad "mount file://"; cat "$W/mount.log"; fi

want=$(cd "$W/data" && find . -type f -printf '%P %s %T@\n' | sed 's/\.[0-9]*$//' | sort)
got=$(cd "$W/mnt" && find . -type f -printf '%P %s %T@\n' | sed 's/\.[0-9]*$//' | sort)
if [ -n "$got" ] && [ "$got" = "$want" ]; then
    ok "find: the same $(echo "$got" | wc -l) paths, sizes and mtimes as the origin (directories from the listing)"
else bad "find through the mount"; diff <(echo "$want") <(echo "$got") | head; fi

n=0 nbad=0
for f in $(cd "$W/data" && find . -type f -printf '%P\n'); do
    n=$((n + 1)); cmp -s "$W/data/$f" "$W/mnt/$f" || { nbad=$((nbad + 1)); echo "differs: $f"; }
done
if [ $nbad = 0 ]; then ok "cmp: all $n files exact through the mount"
else bad "cmp: $nbad of $n files differ"; fi

py=$(/usr/bin/python3 - "$W/data" "$W/mnt" <<'PY' 2>&1
import hashlib, os, sys
src, mnt = sys.argv[1], sys.argv[2]
n = 0
for d, _, names in os.walk(mnt):
    for name in names:
        p = os.path.join(d, name)
        with open(p, "rb", buffering=0) as f:
            f.seek(12345 % max(1, os.path.getsize(p)))
            part = f.read(3 << 20)
        with open(os.path.join(src, os.path.relpath(p, mnt)), "rb") as g:
            g.seek(12345 % max(1, os.path.getsize(p)))
            assert part == g.read(3 << 20), p
        n += 1
print(n)
PY
)
if [ "$py" = 13 ]; then ok "python: os.walk and seek + read of every file, exact"
else bad "python through the mount: $py"; fi

errs=""
touch "$W/mnt/new" 2>>"$W/ro.err" && errs="$errs touch"
sh -c "echo x >>'$W/mnt/f01'" 2>>"$W/ro.err" && errs="$errs append"
mkdir "$W/mnt/d" 2>>"$W/ro.err" && errs="$errs mkdir"
rm -f "$W/mnt/f02" 2>>"$W/ro.err" && errs="$errs rm"
mv "$W/mnt/f03" "$W/mnt/g" 2>>"$W/ro.err" && errs="$errs mv"
if [ -z "$errs" ] && [ "$(grep -c "Read-only file system" "$W/ro.err")" = 5 ] &&
   cmp -s "$W/data/f02" "$W/mnt/f02"; then
    ok "writes refused: touch, append, mkdir, rm, mv all 'Read-only file system'"
else bad "writes through the mount:$errs"; cat "$W/ro.err"; fi

pids=() rc=0
for i in $(seq 8); do
    f=$( [ $((i % 2)) = 0 ] && echo sub/big || echo "f$(printf %02d $i)")
    cmp -s "$W/data/$f" "$W/mnt/$f" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
if [ $rc = 0 ]; then ok "8 readers at once (4 of one 32 MiB file): all exact"
else bad "many readers at once"; fi

head -c 1000 /dev/urandom >>"$W/data/f04"
same_size() { [ "$(stat -c %s "$W/mnt/f04")" = "$(stat -c %s "$W/data/f04")" ]; }
if wait_for 6 same_size && cmp -s "$W/data/f04" "$W/mnt/f04"; then
    ok "a changed object: its new size and bytes after UCACHE_META_TTL"
else bad "changed object: size $(stat -c %s "$W/mnt/f04") want $(stat -c %s "$W/data/f04")"; fi

# a daemon killed while readers read (the mount's reads fail over, exact)
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
pids=() rc=0
for i in 1 2 3 4; do
    (for r in 1 2; do cmp -s "$W/data/sub/big" "$W/mnt/sub/big" || exit 1; done) & pids+=($!)
done
wait_for 10 reading "${pids[@]}"   # the kill lands during their reads
kill -9 "${DPIDS[0]}"
for p in "${pids[@]}"; do wait "$p" || rc=1; done
if [ $rc = 0 ]; then ok "a daemon killed -9 during 4 readers of a 32 MiB file: every byte exact"
else bad "reads with a daemon killed"; fi

fusermount3 -u "$W/mnt"; rc=$?
if [ $rc = 0 ] && ! mounted "$W/mnt" && wait_for 30 daemon_gone "${M1:-0}"; then
    ok "fusermount3 -u: unmounted, the mount process gone"
else bad "fusermount3 -u (rc $rc; still mounted: $(mounted "$W/mnt" && echo yes || echo no))"; fi

# --- an Azurite container ---------------------------------------------------
if [ -n "$AZ" ]; then
    if $BIN/ucache mount "az://$ACCT/mnt/" "$W/mnt2" 2>"$W/mount2.log" &&
       cmp -s "$W/az/a" "$W/mnt2/a" && cmp -s "$W/az/b" "$W/mnt2/b" &&
       cmp -s "$W/az/c" "$W/mnt2/c" && [ "$(ls "$W/mnt2" | tr '\n' ' ')" = "a b c " ] &&
       [ "$(stat -c %Y "$W/mnt2/a")" -gt 1700000000 ]; then
        ok "an Azurite container mounted: 3 blobs listed with their Last-Modified, exact"
    else bad "mount az://"; cat "$W/mount2.log"; ls -la "$W/mnt2"; fi
    fusermount3 -u "$W/mnt2"
else skp_dep "mount an Azurite container" "Azurite is not installed (make deps installs it with npm)"; fi

# --- SIGTERM while readers read ----------------------------------------------
$BIN/ucache mount --foreground "file://$W/data" "$W/mnt3" 2>"$W/mount3.log" & MP=$!
wait_for 10 mounted "$W/mnt3"
pids=()
for i in 1 2 3; do
    (for r in $(seq 20); do cat "$W/mnt3/sub/big" >/dev/null 2>&1; done) & pids+=($!)
done
wait_for 10 reading "${pids[@]}"   # SIGTERM lands under load
kill -TERM $MP
rc=0; wait_for 20 daemon_gone $MP || rc=1
wait $MP; mrc=$?
for p in "${pids[@]}"; do wait_for 20 daemon_gone "$p" || rc=1; done
if [ $rc = 0 ] && [ $mrc = 0 ] && ! mounted "$W/mnt3"; then
    ok "SIGTERM under load: the mount exits 0 and is gone, no reader hangs"
else bad "SIGTERM under load (mount rc $mrc, rc $rc)"; cat "$W/mount3.log"; fi
MP=

DPIDS=("${DPIDS[@]:1}")   # the one killed above is gone
stop_daemons
summary
