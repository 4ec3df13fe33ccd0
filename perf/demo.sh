#!/usr/bin/env bash
# make demo: the main job of this build.  Until the fabric exists (issue
# [3/6]) that is the transport: an exporter process serves a region and a
# reader pulls it over shared memory (mapped, one-sided) and over tcp
# (active-message bulk reads), checking the bytes, with latency and bandwidth;
# then the node store: a 256 MiB store filled past capacity and read back
# through the verified raw-memory reader path.
set -euo pipefail
ucperf=${1:-build/bin/ucperf}
echo "ucache transport demo: one exporter process, one reader, loopback only"
echo
first=1
run() {
    if [ $first = 1 ]; then "$ucperf" raw "$@"; first=0; else "$ucperf" raw "$@" | tail -n 1; fi
}
run -T shm -s 4K  -n 20000
run -T shm -s 1M  -n 2000
run -T shm -s 4M  -n 500 -o 4
run -T tcp -s 4K  -n 5000
run -T tcp -s 1M  -n 1000 -o 8
run -T tcp -s 4M  -n 200 -o 8
echo
echo "path: mapped = the owner's memory mapped into the reader (plain copy, no"
echo "syscall, no owner CPU); am = one request answered with the bytes in one"
echo "bulk reply (tcp has no native one-sided get).  errors counts reads whose"
echo "bytes did not match what the exporter wrote.  More: ucperf raw --help."
echo
echo "ucache node store demo: a 256 MiB store, 1 MiB chunks, filled twice over"
echo
"$ucperf" store -s 1M -r 256M -n 2000
echo
echo "read-verify / read-batch: bucket pair, chunk, key/version/checksum check,"
echo "copy (one at a time / 16 at a time); memcpy: the same sizes copied from the"
echo "same arena, the baseline.  errors counts failed fills and reads that did not"
echo "verify or did not match.  More: ucperf --help."
