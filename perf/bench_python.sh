#!/usr/bin/env bash
# bench_python.sh - where training code reads (issue [10/11]), each figure
# against its baseline in the same run, through three ucached daemons on
# this host with the datasets warm in them:
#   mount      a sequential read of 1 GiB (16 objects of 64 MiB) through
#              `ucache mount` (dd bs=1M, the kernel's page cache dropped
#              first) vs `ucache read` of the same objects (MB/s)
#   readinto   Python's Client.readinto of 1 MiB objects, one at a time,
#              vs the C library reading the same objects one at a time
#              (`ucache read --depth 1`): MB/s
#   dataloader a DataLoader epoch (4 workers, batches of 4) over the demo
#              dataset (32 objects of 8 MiB) from the fabric
#              (ucache.torch.FileDataset, as_tensor) vs the same files on
#              local disk, page cache warm: seconds, best of 3
# Prints one JSON line per figure ({"bench":"python",...}).
# Usage: perf/bench_python.sh [BUILD]
set -uo pipefail
build=${1:-build}
bin=$build/bin
py=$build/venv/bin/python
W=$(mktemp -d /tmp/ucache-bench-py.XXXXXX)
export UCACHE_MEMBERS=dir:$W/members UCACHE_MEMBERS_POLL=100ms UCACHE_MEM_LOCK=no
export UCACHE_LOG_LEVEL=${UCACHE_LOG_LEVEL:-warn} UCACHE_ALLOW="file://$W/" UCACHE_CHUNK_SIZE=1M
export UCACHE_META_TTL=600s
[ -n "${UCACHE_CLUSTER_KEY_FILE:-}" ] || { "$bin/ucache" keygen "$W/key" >/dev/null &&
                                           export UCACHE_CLUSTER_KEY_FILE=$W/key; }
pids=()
cleanup() {
    fusermount3 -u -z "$W/mnt" 2>/dev/null
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.1f", b / (t1 - t0) / 1e6 }'; }
[ -x "$py" ] || { echo "bench_python: no $py (make python)" >&2; exit 1; }

mkdir -p "$W/big" "$W/small" "$W/demo" "$W/mnt"
for i in $(seq -w 1 16); do head -c 67108864 /dev/urandom >"$W/big/o$i"; done
for i in $(seq -w 1 512); do head -c 1048576 /dev/urandom >"$W/small/s$i"; done
for i in $(seq -w 1 32); do head -c 8388608 /dev/urandom >"$W/demo/shard-$i.bin"; done
for i in 1 2 3; do "$bin/ucached" --mem 1G 2>>"$W/d$i.log" & pids+=($!); done
for i in $(seq 100); do [ "$(ls "$W/members" 2>/dev/null | grep -c rec)" -ge 3 ] && break; sleep 0.1; done
for d in big small demo; do
    "$bin/ucache" warmup "file://$W/$d/" >/dev/null 2>&1 || { echo "warmup $d failed" >&2; exit 1; }
done

# --- the mount vs ucache read ------------------------------------------------
bytes=$((16 * 67108864))
best_r=0 best_m=0
"$bin/ucache" mount "file://$W/big" "$W/mnt" 2>"$W/mount.log" || { cat "$W/mount.log" >&2; exit 1; }
for run in 1 2 3; do
    r=$("$bin/ucache" read "file://$W/big/" --epochs 1 --json 2>/dev/null |
        sed -n 's/.*"epoch":1,.*"mib_per_s":\([0-9.]*\).*/\1/p')
    r=$(awk -v m="${r:-0}" 'BEGIN { printf "%.1f", m * 1048576 / 1e6 }')
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
    t0=$(now)
    for i in $(seq -w 1 16); do dd if="$W/mnt/o$i" of=/dev/null bs=1M status=none || exit 1; done
    t1=$(now)
    m=$(mbps $bytes "$t0" "$t1")
    best_r=$(awk -v a="$best_r" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
    best_m=$(awk -v a="$best_m" -v b="$m" 'BEGIN { print (b > a) ? b : a }')
done
fusermount3 -u "$W/mnt"
echo "{\"bench\":\"python\",\"figure\":\"mount\",\"bytes\":$bytes,\"mount_mbps\":$best_m,\"ucache_read_mbps\":$best_r,\"runs\":3}"

# --- readinto vs the C library -----------------------------------------------
best_c=0 best_p=0
for run in 1 2 3; do
    c=$("$bin/ucache" read "file://$W/small/" --epochs 1 --depth 1 --json 2>/dev/null |
        sed -n 's/.*"epoch":1,.*"mib_per_s":\([0-9.]*\).*/\1/p')
    c=$(awk -v m="${c:-0}" 'BEGIN { printf "%.1f", m * 1048576 / 1e6 }')
    p=$("$py" - "file://$W/small/" <<'PY'
import sys, time, ucache
c = ucache.Client()
objs = sorted(o["uri"] for o in c.list(sys.argv[1]))
buf = bytearray(1 << 20)
c.readinto(objs[0], buf)
t0 = time.perf_counter()
n = 0
for u in objs:
    n += c.readinto(u, buf)
t1 = time.perf_counter()
print("%.1f" % (n / (t1 - t0) / 1e6))
PY
)
    best_c=$(awk -v a="$best_c" -v b="$c" 'BEGIN { print (b > a) ? b : a }')
    best_p=$(awk -v a="$best_p" -v b="${p:-0}" 'BEGIN { print (b > a) ? b : a }')
done
echo "{\"bench\":\"python\",\"figure\":\"readinto\",\"objects\":512,\"python_mbps\":$best_p,\"c_mbps\":$best_c,\"runs\":3}"

# --- a DataLoader epoch: the fabric vs local disk ----------------------------
dl=$("$py" - "file://$W/demo/" "$W/demo" <<'PY'
import os, sys, time, torch
from torch.utils.data import DataLoader, Dataset
from ucache.torch import FileDataset

class Local(Dataset):
    def __init__(self, root):
        self.paths = sorted(os.path.join(root, n) for n in os.listdir(root))
    def __len__(self):
        return len(self.paths)
    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)

def epoch(ds):
    t0 = time.perf_counter()
    n = 0
    for b in DataLoader(ds, batch_size=4, num_workers=4):
        n += b.numel()
    return time.perf_counter() - t0, n

fab, loc = FileDataset(sys.argv[1], as_tensor=True), Local(sys.argv[2])
epoch(loc)                                  # the page cache warm
tf, tl = [], []
for _ in range(3):
    tf.append(epoch(fab)[0]); tl.append(epoch(loc)[0])
print("%.3f %.3f" % (min(tf), min(tl)))
PY
)
echo "{\"bench\":\"python\",\"figure\":\"dataloader\",\"objects\":32,\"fabric_s\":${dl% *},\"local_s\":${dl#* },\"runs\":3}"
