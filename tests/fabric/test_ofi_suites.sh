#!/usr/bin/env bash
# test_ofi_suites.sh - the fabric's multi-process suites once more with
# every daemon and reader on libfabric (UCACHE_TRANSPORT=ofi): over
# tcp;ofi_rxm and over shm, each suite with its own assertions; where one
# rests on UCX's same-host mapping, the suite says what the provider does
# instead.  Not here: test_fabric.sh and test_wireup.sh (UCX's own wire and
# mapping; their transport-neutral cases are test_ofi.sh's), test_compat.sh
# (the old release has no libfabric), test_hosts.sh (test_hosts_ofi.sh).
# test_etcd.sh runs over tcp;ofi_rxm only (its hosts are network
# namespaces: no shared memory between them).  Each PASS/FAIL/SKIP line
# names the provider and the suite, a "---" line on stderr its time; the last line
# adds them up.  OFI_SUITES / OFI_TCP_SUITES choose.
set -u
dir=$(dirname "$0")
pass=0 fail=0 skip=0

# suite PROVIDER NAME: run tests/fabric/NAME on PROVIDER, count its lines
suite() {
    local out rc line p f s t0
    out=$(mktemp)
    t0=$(date +%s)
    UCACHE_TRANSPORT=ofi UCACHE_OFI_PROVIDER="$1" "$dir/$2" >"$out" 2>&1
    rc=$?
    echo "--- [ofi $1] ${2%.sh}: $(( $(date +%s) - t0 )) s" >&2
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
    grep -vE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" |
        sed -E "s/^(PASS|FAIL|SKIP) /\\1 [ofi $1] ${2%.sh}: /"
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "FAIL [ofi $1] $2 exited $rc without a summary line"
        fail=$((fail + 1))
        return
    fi
    read -r p _ f _ s _ <<<"${line//,/}"
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL [ofi $1] $2 exited $rc"
        fail=$((fail + 1))
    fi
}

for s in ${OFI_SUITES-test_meta.sh test_start.sh test_hotset.sh test_mpi.sh test_admin.sh \
               test_nvme.sh test_scale.sh}; do
    for p in "tcp;ofi_rxm" shm; do
        suite "$p" "$s"
    done
done
for s in ${OFI_TCP_SUITES-test_etcd.sh}; do
    suite "tcp;ofi_rxm" "$s"
done
echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
