#!/usr/bin/env bash
# test_admin.sh - the admin CLI and ucached's Prometheus endpoint
# (--metrics-port, scraped with curl) against three ucached daemons on
# loopback (zones a, b, a): outputs parsed and checked - status: three
# nodes ok in two zones, capacity and chunks that add up to what was read;
# stat: counters and hit ratio that move as reads happen, per-second rates
# with --watch; health (--deep): every node probed, every chunk verified;
# pin / evict: pinned bytes and cached chunks as asked; devices: no RDMA
# here, said plainly; a node killed with -9 shows as unreachable (exit 1)
# until the members source reaps it.  Then a static file: fabric, where
# nodes stay listed: drain (and --undo) keeps bytes exact and fills off the
# drained node; health shows a killed node dead (exit 1, degraded) and two
# of three dead as broken (exit 2).  Bad input gives clear messages and
# exit codes.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup admin
export UCACHE_MEMBERS_TTL=$(slow 2)s
trap 'stop_all "$W" "${DPIDS[@]}"' EXIT

# The daemons run with a 2 s TTL (scaled) so that a killed one is reaped
# quickly; a loaded machine can starve their heartbeats past half of it,
# which health would call suspect: health judges with the default TTL.
health() { UCACHE_MEMBERS_TTL=$(slow 10)s $BIN/ucache health "$@"; }
# --deep: every cached chunk verified, none bad (a read that outlasts the
# owner's grace period still counts while its slot holds the chunk)
deep_covers() {  # FILE CHUNKS
    [ "$(sum "$1" chunks_checked)" = "$2" ] && [ "$(sum "$1" chunks_bad)" = 0 ]
}
json() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1" | tail -n 1; }
sum() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | awk '{s += $1} END {print s + 0}'; }

mkdir -p "$W/data"
head -c 5242880 /dev/urandom >"$W/data/five"
# a free port for the first daemon's metrics, below the ephemeral range
for try in $(seq 20); do
    MP=$((20000 + RANDOM % 12000))
    [ "$(ss -tanH 2>/dev/null | awk '{print $4}' | grep -c ":$MP\$")" = 0 ] && break
done
M=(--metrics-port "$MP")
# a reader's pins may hold 1% of a node's memory per dataset (480 KiB: less
# than one 1 MiB chunk); the admin's, 90%
for z in a b a; do
    UCACHE_PIN_QUOTA=1 $BIN/ucached --mem 48M --zone $z "${M[@]}" 2>>"$W/d$z.log" &
    DPIDS+=($!)
    M=()
done
wait_registered "$W/members" 3 || bad "three ucached daemons register"

$BIN/ucache status --json >"$W/s0" 2>"$W/e0"; rc=$?
if [ $rc = 0 ] && [ "$(json "$W/s0" nodes)" = 3 ] && [ "$(json "$W/s0" ok)" = 3 ] &&
   grep -q '"zones":"\(a,b\|b,a\)"' "$W/s0" &&
   [ "$(json "$W/s0" mem_bytes)" -gt $((3 * 40 << 20)) ] && [ "$(json "$W/s0" used_bytes)" = 0 ]; then
    ok "status on an empty fabric: 3 nodes ok in zones a,b, $(($(json "$W/s0" mem_bytes) >> 20)) MiB, nothing used"
else bad "status, empty fabric (rc $rc)"; cat "$W/s0" "$W/e0"; fi

$BIN/ucache cat "file://$W/data/five" >/dev/null && $BIN/ucache cat "file://$W/data/five" >/dev/null
$BIN/ucache stat --json >"$W/t1" 2>"$W/e1"; rc=$?
if [ $rc = 0 ] && [ "$(grep -c '"state":"ok"' "$W/t1")" = 3 ] && [ "$(sum "$W/t1" fills)" = 5 ] &&
   [ "$(sum "$W/t1" origin_bytes)" = 5242880 ] && [ "$(sum "$W/t1" fill_errors)" = 0 ]; then
    ok "stat after reading a 5-chunk object twice: 3 nodes, 5 fills and 5 MiB from the origin in all"
else bad "stat counters (rc $rc)"; cat "$W/t1" "$W/e1"; fi
# one-sided hits reach the owners as readers report them: read some more
$T/fabric_client hits 400 "$W/data/five" >/dev/null 2>&1
# status_hits: the owners count hits (their reports arrive in the background)
status_hits() {
    $BIN/ucache status --json >"$W/s1" 2>/dev/null
    [ "$(json "$W/s1" used_bytes)" -ge 5242880 ] && [ "$(sum "$W/s1" chunks)" = 5 ] &&
        awk -v h="$(json "$W/s1" hit_ratio)" 'BEGIN { exit !(h > 0) }'
}
if wait_for 5 status_hits; then
    ok "status after 400 more hits: 5 chunks, $(($(json "$W/s1" used_bytes) >> 10)) KiB used, hit ratio $(json "$W/s1" hit_ratio)"
else bad "status after reads"; cat "$W/s1"; fi
$BIN/ucache status >"$W/s2" 2>&1
if grep -q "^fabric: view epoch [0-9]*, 3 nodes: 3 ok, 0 suspect, 0 unreachable; zones: " "$W/s2" &&
   grep -q "^capacity: .* used of .* free), .* pinned$" "$W/s2" && [ "$(grep -c ' ok  ' "$W/s2")" = 3 ]; then
    ok "status as a table: the view line, capacity, one row per node"
else bad "status table"; cat "$W/s2"; fi

# Prometheus metrics of the first daemon, against its own counters (its ADMIN answer)
curl -s "http://127.0.0.1:$MP/metrics" >"$W/m1"; rc=$?
grep "\"pid\":${DPIDS[0]}," "$W/t1" >"$W/t1a"
fills=$(json "$W/t1a" fills)
mfills=$(sed -n 's/^ucache_fills_total \([0-9]*\)$/\1/p' "$W/m1")
names=$(grep -v '^#' "$W/m1" | sed 's/[{ ].*//' | sed 's/_bucket$\|_sum$\|_count$//' | sort -u)
undeclared=0
for n in $names; do grep -q "^# TYPE $n " "$W/m1" || undeclared=$((undeclared + 1)); done
buckets=$(sed -n 's/^ucache_fill_duration_seconds_bucket{le="[^"]*"} \([0-9]*\)$/\1/p' "$W/m1")
inf=$(sed -n 's/^ucache_fill_duration_seconds_bucket{le="+Inf"} \([0-9]*\)$/\1/p' "$W/m1")
count=$(sed -n 's/^ucache_fill_duration_seconds_count \([0-9]*\)$/\1/p' "$W/m1")
if [ $rc = 0 ] && [ -n "$fills" ] && [ "$mfills" = "$fills" ] && [ $undeclared = 0 ] &&
   [ "$(echo "$buckets" | sort -n | tr '\n' ' ')" = "$(echo "$buckets" | tr '\n' ' ')" ] &&
   [ "$inf" = "$fills" ] && [ "$count" = "$fills" ] &&
   grep -q '^ucache_memory_bytes [1-9]' "$W/m1" && grep -q '^# TYPE ucache_fill_duration_seconds histogram' "$W/m1"; then
    ok "ucached --metrics-port: /metrics scraped with curl: $(echo "$names" | wc -w) metrics, each with # TYPE; ucache_fills_total $mfills = its ADMIN answer; fill histogram monotonic, +Inf = count = $count"
else bad "metrics (rc $rc, fills $fills vs $mfills, $undeclared undeclared, inf $inf count $count)"; head -20 "$W/m1"; fi
c404=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/other")
c405=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MP/metrics")
if [ "$c404" = 404 ] && [ "$c405" = 405 ] && ss -ltnH | grep -q "127.0.0.1:$MP " &&
   ! ss -ltnH | grep -q "0.0.0.0:$MP "; then
    ok "metrics endpoint: bound to 127.0.0.1 only; other paths 404, POST 405"
else bad "metrics endpoint ($c404 $c405)"; ss -ltnH | grep ":$MP"; fi
$BIN/ucached --mem 16M --metrics-port "$MP" >/dev/null 2>"$W/m2"; r1=$?
$BIN/ucached --metrics-port 70000 >/dev/null 2>&1; r2=$?
$BIN/ucached --metrics-port 1 --metrics-addr not-an-ip --mem 16M >/dev/null 2>"$W/m3"; r3=$?
if [ $r1 = 1 ] && grep -q "cannot serve metrics" "$W/m2" && [ $r2 = 2 ] && [ $r3 = 1 ] &&
   grep -q "not an IPv4 address" "$W/m3"; then
    ok "metrics bad input: the port in use (1), --metrics-port 70000 (2), a bad --metrics-addr (1)"
else bad "metrics bad input ($r1 $r2 $r3)"; cat "$W/m2" "$W/m3"; fi

# --watch: two samples with per-second rates in between
( sleep 0.3; for i in $(seq 5); do $BIN/ucache cat "file://$W/data/five" >/dev/null; done ) &
busy=$!
$BIN/ucache stat --watch=1 --count 2 --json >"$W/t2" 2>&1; rc=$?
wait $busy
if [ $rc = 0 ] && [ "$(grep -c '"state":"ok"' "$W/t2")" = 6 ] &&
   [ "$(grep -c 'fetches_served_per_s' "$W/t2")" = 3 ]; then
    ok "stat --watch=1 --count 2: 2 samples of 3 nodes, the second with per-second rates"
else bad "stat --watch (rc $rc)"; cat "$W/t2"; fi
$BIN/ucache stat --watch=0.2 --count 2 >"$W/t3" 2>&1
if [ "$(grep -c '^node ' "$W/t3")" = 2 ] && grep -q '/s' "$W/t3"; then
    ok "stat --watch as tables: rates after the first sample"
else bad "stat --watch table"; cat "$W/t3"; fi

# health: every node probed; --deep verifies every cached chunk.  The path
# to an owner on this host: UCX maps its memory; libfabric reads it with
# fi_read over shm (cross-memory attach), by RPC over tcp;ofi_rxm
case "${UCACHE_TRANSPORT:-ucx}/${UCACHE_OFI_PROVIDER:-tcp;ofi_rxm}" in
ofi/shm) HPATH=get HTRANS=ofi/shm ;;
ofi/*)   HPATH=am HTRANS="ofi/${UCACHE_OFI_PROVIDER:-tcp;ofi_rxm}" ;;
*)       HPATH=mapped HTRANS= ;;
esac
$BIN/ucache status --json >"$W/h0" 2>/dev/null
health --json --iters 16 --size 256K >"$W/h1" 2>"$W/he1"; rc=$?
if [ $rc = 0 ] && [ "$(grep -c '"state":"ok"' "$W/h1")" = 3 ] && [ "$(json "$W/h1" health)" = healthy ] &&
   [ "$(grep -c '"lat_reads":16,' "$W/h1")" = 3 ] &&
   [ "$(grep -c "\"path\":\"$HPATH\",\"transport\":\"$HTRANS" "$W/h1")" = 3 ] &&
   [ "$(grep -c '"memory":"read-only"' "$W/h1")" = 3 ] &&
   [ "$(sum "$W/h1" bw_bytes)" = $((3 * 16 * 262144)) ] && [ ! -s "$W/he1" ]; then
    ok "health: 3 nodes ok, read over $HPATH${HTRANS:+ ($HTRANS)} from read-only memory, 16 timed reads each (p50 $(json "$W/h1" lat_p50_us) us), 3 x 4 MiB bandwidth pass, exit 0"
else bad "health (rc $rc)"; cat "$W/h1" "$W/he1"; fi
health --deep --json >"$W/h2" 2>&1; rc=$?
grep '^{"node"' "$W/h2" >"$W/h2n"
if [ $rc = 0 ] && deep_covers "$W/h2n" "$(sum "$W/h0" chunks)" &&
   [ "$(json "$W/h2" chunks_checked)" = "$(sum "$W/h2n" chunks_checked)" ] &&
   [ "$(sum "$W/h0" chunks)" -ge 5 ]; then
    ok "health --deep: all $(sum "$W/h2n" chunks_checked) cached chunks read one-sidedly and verified, none bad"
else bad "health --deep (rc $rc, status says $(sum "$W/h0" chunks) chunks)"; cat "$W/h2"; fi
health --deep=8 >"$W/h3" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "^fabric: view epoch [0-9]*, 3 nodes: 3 ok, 0 suspect, 0 dead: HEALTHY$" "$W/h3" &&
   grep -q "^index check: [0-9]* chunks read and verified, 0 bad$" "$W/h3" &&
   [ "$(grep -c " ok  *$HPATH " "$W/h3")" = 3 ]; then
    ok "health as a table: the verdict line, the index check, one row per node"
else bad "health table"; cat "$W/h3"; fi

# over tcp: UCX reads by active messages (libfabric: tcp;ofi_rxm is the
# case above, by RPC; its shm provider has no tcp to switch to)
if [ -z "$HTRANS" ]; then
    UCX_TLS=tcp,self health --deep --json >"$W/h4" 2>&1; rc=$?
    grep '^{"node"' "$W/h4" >"$W/h4n"
    if [ $rc = 0 ] &&
       [ "$(grep -c '"path":"am","transport":"tcp/[^"]*","memory":"read-only"' "$W/h4n")" = 3 ] &&
       deep_covers "$W/h4n" "$(sum "$W/h0" chunks)"; then
        ok "health over tcp (UCX_TLS=tcp,self): 3 nodes read by active messages on tcp/lo, the index check verifies all $(sum "$W/h4n" chunks_checked) chunks again"
    else bad "health over tcp (rc $rc)"; cat "$W/h4"; fi
fi

# pin and evict
$BIN/ucache pin "file://$W/data/five" >"$W/p1" 2>&1; r1=$?
$BIN/ucache status --json >"$W/p2" 2>/dev/null
$BIN/ucache evict "file://$W/data/five" --json >"$W/p3" 2>/dev/null; r3=$?
$BIN/ucache status --json >"$W/p4" 2>/dev/null
$BIN/ucache cat "file://$W/data/five" | cmp -s - "$W/data/five"; r5=$?
$BIN/ucache status --json >"$W/p5" 2>/dev/null
if [ $r1 = 0 ] && [ "$(json "$W/p2" pinned_bytes)" -ge 5242880 ] && [ $r3 = 0 ] &&
   [ "$(json "$W/p3" evicted)" -ge 5 ] && [ "$(json "$W/p3" chunks)" = 5 ] &&
   [ "$(sum "$W/p4" chunks)" = 0 ] && [ "$(json "$W/p4" pinned_bytes)" = 0 ] &&
   [ $r5 = 0 ] && [ "$(sum "$W/p5" chunks)" = 5 ]; then
    ok "pin: 5 MiB pinned; evict: $(json "$W/p3" evicted) copies dropped, pinned or not, 0 chunks left; the next read is exact and fills 5 again"
else bad "pin/evict ($r1 $r3 $r5)"; cat "$W/p1" "$W/p2" "$W/p3" "$W/p4"; fi

$BIN/ucache read "file://$W/data/five" --verify --json >"$W/q1" 2>/dev/null; r1=$?
$BIN/ucache version --json >"$W/q2"; r2=$?
if [ $r1 = 0 ] && [ "$(grep -c '"wrong":0}' "$W/q1")" = 2 ] && grep -q '"epoch":2,.*"chunks":5,"hits":5,' "$W/q1" &&
   [ "$(json "$W/q1" objects)" = 1 ] && [ $r2 = 0 ] && grep -q '^{"version":"[0-9.]*"}$' "$W/q2"; then
    ok "read --json: one object per epoch, bytes verified, epoch 2 all 5 chunks hits; version --json"
else bad "read/version --json ($r1 $r2)"; cat "$W/q1" "$W/q2"; fi

# keys and roles: the daemons and the tools hold the cluster and the admin
# key (tests/run.sh).  With the cluster key alone a tool is a reader: it may
# read and pin within its dataset's pin quota, not evict, unpin or drain.
# Without the key, or with another fabric's, every request is refused: such
# a reader reads the origin itself.
rk() { UCACHE_ADMIN_KEY_FILE= "$@"; }
$BIN/ucache status --json >"$W/k0" 2>/dev/null
$BIN/ucache stat --json >"$W/k0s" 2>/dev/null
a0=$(sum "$W/k0s" auth_failures)
n1=$(grep -o '"node":"[0-9a-f]*"' "$W/k0" | head -1 | cut -d'"' -f4)
rk $BIN/ucache evict "file://$W/data/five" --json >"$W/k1" 2>"$W/k1e"; r1=$?
rk $BIN/ucache pin --unpin "file://$W/data/five" >"$W/k2" 2>&1; r2=$?
rk $BIN/ucache drain "$n1" >"$W/k3" 2>&1; r3=$?
rk $BIN/ucache pin "file://$W/data/five" >"$W/k4" 2>&1; r4=$?
$BIN/ucache status --json >"$W/k4s" 2>/dev/null        # past the quota: nothing pinned
head -c 4000 /dev/urandom >"$W/data/tiny"
rk $BIN/ucache pin "file://$W/data/tiny" >"$W/k4t" 2>&1; r4t=$?
$BIN/ucache status --json >"$W/k4u" 2>/dev/null        # within it: pinned
$BIN/ucache pin "file://$W/data/five" >"$W/k4a" 2>&1; r4a=$?    # the admin: pinned
rk $BIN/ucache cat "file://$W/data/five" --stats 2>"$W/k5e" | cmp -s - "$W/data/five"; r5=$?
$BIN/ucache status --json >"$W/k5" 2>/dev/null
UCACHE_CLUSTER_KEY_FILE= UCACHE_ADMIN_KEY_FILE= $BIN/ucache cat "file://$W/data/five" \
    --stats 2>"$W/k6e" | cmp -s - "$W/data/five"; r6=$?
$BIN/ucache keygen "$W/other.key"
UCACHE_CLUSTER_KEY_FILE="$W/other.key" UCACHE_ADMIN_KEY_FILE= $BIN/ucache cat \
    "file://$W/data/five" --stats 2>"$W/k7e" | cmp -s - "$W/data/five"; r7=$?
$BIN/ucache stat --json >"$W/k8" 2>/dev/null
a1=$(sum "$W/k8" auth_failures)
if [ $r1 != 0 ] && [ $r2 != 0 ] && [ $r3 != 0 ] && grep -q "refused by the fabric" "$W/k3" &&
   [ $r4 = 1 ] && grep -q "5 NOT pinned" "$W/k4" && [ "$(json "$W/k4s" pinned_bytes)" = 0 ] &&
   [ $r4t = 0 ] && [ "$(json "$W/k4u" pinned_bytes)" -ge 4000 ] &&
   [ "$(json "$W/k4u" pinned_bytes)" -lt 65536 ] && [ $r4a = 0 ] &&
   [ $r5 = 0 ] && [ "$(client_stat "$W/k5e" origin_direct)" = 0 ] &&
   [ "$(sum "$W/k5" chunks)" = 6 ] && [ "$(json "$W/k5" pinned_bytes)" -ge 5242880 ] &&
   [ "$(json "$W/k5" ok)" = 3 ] && ! grep -q '"state":"draining"' "$W/k8" &&
   [ $r6 = 0 ] && [ "$(client_stat "$W/k6e" origin_direct)" = 5 ] &&
   [ $r7 = 0 ] && [ "$(client_stat "$W/k7e" origin_direct)" = 5 ] &&
   grep -q "refused by the fabric" "$W/k6e" && [ $((a1 - a0)) -ge 5 ]; then
    ok "roles: with the cluster key alone evict, unpin and drain are refused (nothing evicted, unpinned or drained) and reads work; its pins stay within the dataset's pin quota (1 MiB chunks past 1% of a node not pinned, exit 1; a 4 KB one pinned) while the admin pins all 5 MiB; a reader with no key or another fabric's is refused by every owner and reads the origin itself, exact; the daemons counted $((a1 - a0)) auth failures"
else bad "keys and roles ($r1 $r2 $r3 $r4 $r4t $r4a $r5 $r6 $r7, auth failures $a0 -> $a1)"
     cat "$W/k4s" "$W/k4u" | grep pinned
     cat "$W/k1e" "$W/k3" "$W/k5" "$W/k6e" | tail -20; fi
$BIN/ucache pin --unpin "file://$W/data/five" >/dev/null 2>&1
$BIN/ucache pin --unpin "file://$W/data/tiny" >/dev/null 2>&1

# devices: this machine has no RDMA device; UCX's transports are listed
$BIN/ucache devices >"$W/v1" 2>&1; r1=$?
$BIN/ucache devices --json >"$W/v2" 2>/dev/null; r2=$?
$BIN/ucache devices --bogus >/dev/null 2>&1; r3=$?
if [ -e /sys/class/infiniband ] && [ -n "$(ls /sys/class/infiniband 2>/dev/null)" ]; then
    if [ $r2 -le 1 ] && grep -q '"rdma_devices":\[{"name"' "$W/v2"; then
        ok "devices: $(ls /sys/class/infiniband | wc -l) RDMA devices listed"
    else bad "devices with RDMA hardware ($r2)"; cat "$W/v2"; fi
elif [ $r1 = 1 ] && grep -q "^RDMA devices: none (rdma-core: " "$W/v1" && grep -q "^tcp  *lo  *net " "$W/v1" &&
     grep -q '"rdma_devices":\[\],"rdma_error":"[^"]' "$W/v2" && grep -q '"tl":"posix","dev":"memory","type":"shm","get":true' "$W/v2" &&
     grep -q "^Exported memory is read-only to peers over every transport here" "$W/v1" &&
     grep -q '"exported_memory":"read-only",' "$W/v2" && ! grep -q '"memory":"writable"' "$W/v2" &&
     grep -q '{"provider":"shm","fabric":"shm","domain":"shm","one_sided":true,"listener":false}' "$W/v2" &&
     grep -q '^tcp;ofi_rxm  *[^ ]*  *lo  *by RPC  *yes$' "$W/v1" &&
     [ $r2 = 1 ] && [ $r3 = 2 ]; then
    ok "devices: no RDMA device here, said plainly ($(sed -n 's/.*rdma-core: \(.*\))\./\1/p' "$W/v1")), exit 1; UCX transports listed ($(grep -o '"tl":"[a-z]*"' "$W/v2" | wc -l)), shm ones with one-sided get; exported memory read-only over each; libfabric providers listed ($(grep -o '"provider":' "$W/v2" | wc -l): shm one-sided, tcp;ofi_rxm by RPC with a listener)"
else bad "devices ($r1 $r2 $r3)"; cat "$W/v1" "$W/v2"; fi

# a node killed: unreachable (exit 1) until reaped, then gone from the view
kill -9 "${DPIDS[1]}"; wait "${DPIDS[1]}" 2>/dev/null; unset "DPIDS[1]"   # not asked to stop at the end
$BIN/ucache status --json --timeout "$(slow 500)ms" >"$W/s3" 2>/dev/null; rc=$?
if [ $rc = 1 ] && [ "$(json "$W/s3" unreachable)" = 1 ] && grep -q '"state":"unreachable"' "$W/s3"; then
    ok "a node killed with -9: status shows it unreachable and exits 1"
else
    # the dir: source may already have reaped it (same host: at once)
    if [ $rc = 0 ] && [ "$(json "$W/s3" nodes)" = 2 ]; then
        ok "a node killed with -9: already reaped, status shows 2 nodes ok"
    else bad "killed node (rc $rc)"; cat "$W/s3"; fi
fi
wait_for 5 holds_records "$W/members" 2
$BIN/ucache status --json >"$W/s4" 2>/dev/null; rc=$?
if [ $rc = 0 ] && [ "$(json "$W/s4" nodes)" = 2 ] && [ "$(json "$W/s4" ok)" = 2 ]; then
    ok "after it is reaped: 2 nodes, all ok, exit 0"
else bad "after reaping (rc $rc)"; cat "$W/s4"; fi

# drain on dir:: the node leaves the membership; reads stay exact
keep=$(grep -o '"node":"[0-9a-f]*"' "$W/s4" | head -1 | cut -d'"' -f4)
gone=$(grep -o '"node":"[0-9a-f]*"' "$W/s4" | tail -1 | cut -d'"' -f4)
$BIN/ucache drain "${gone:0:8}" >"$W/r1" 2>&1; r1=$?
$BIN/ucache status --json >"$W/r2" 2>/dev/null; r2=$?
$BIN/ucache cat "file://$W/data/five" | cmp -s - "$W/data/five"; r3=$?
$BIN/ucache drain "$gone" --undo >/dev/null 2>"$W/r4"; r4=$?
if [ $r1 = 0 ] && grep -q "drained: .* it left the view: it can be stopped" "$W/r1" && [ $r2 = 0 ] &&
   [ "$(json "$W/r2" nodes)" = 1 ] && grep -q "\"node\":\"$keep\"" "$W/r2" && [ $r3 = 0 ] &&
   [ $r4 = 1 ] && grep -q "has left the view; restart its ucached" "$W/r4"; then
    ok "drain by an id prefix on dir:: the node leaves the view (1 node left), reads stay exact; --undo says how to bring it back"
else bad "drain on dir: ($r1 $r2 $r3 $r4)"; cat "$W/r1" "$W/r2" "$W/r4"; fi

# bad input
$BIN/ucache stat --bogus >/dev/null 2>&1; r1=$?
$BIN/ucache stat --watch=0 >/dev/null 2>"$W/b2"; r2=$?
$BIN/ucache status --timeout soon >/dev/null 2>"$W/b3"; r3=$?
$BIN/ucache status --watch >/dev/null 2>&1; r4=$?
$BIN/ucache status extra >/dev/null 2>"$W/b5"; r5=$?
$BIN/ucache status --members file:$W/none >/dev/null 2>"$W/b6"; r6=$?
mkdir -p "$W/empty"
$BIN/ucache stat --members dir:$W/empty >"$W/b7" 2>&1; r7=$?
if [ $r1 = 2 ] && [ $r2 = 2 ] && grep -q "bad --watch" "$W/b2" && [ $r3 = 2 ] &&
   grep -q "bad --timeout" "$W/b3" && [ $r4 = 2 ] && [ $r5 = 2 ] && grep -q "unexpected" "$W/b5" &&
   [ $r6 = 1 ] && grep -q "cannot reach the members source" "$W/b6" && [ $r7 = 1 ]; then
    ok "bad input: unknown flag, --watch=0, --timeout soon, status --watch, an extra word (2); a missing members list, an empty fabric (1)"
else bad "bad input ($r1 $r2 $r3 $r4 $r5 $r6 $r7)"; cat "$W/b2" "$W/b3" "$W/b6" "$W/b7"; fi

health --deep=x >/dev/null 2>"$W/b8"; r8=$?
health --size 1 >/dev/null 2>"$W/b9"; r9=$?
$BIN/ucache drain >/dev/null 2>"$W/b10"; r10=$?
$BIN/ucache drain 0123456789abcdef >/dev/null 2>"$W/b11"; r11=$?
$BIN/ucache pin >/dev/null 2>&1; r12=$?
$BIN/ucache evict --pin "file://$W/data/five" >/dev/null 2>&1; r13=$?
health --members file:$W/none >"$W/b14" 2>&1; r14=$?
health --json --members dir:$W/empty >"$W/b15" 2>&1; r15=$?
$BIN/ucache stat --deep >/dev/null 2>"$W/b16"; r16=$?
if [ $r8 = 2 ] && grep -q "bad --deep 'x'" "$W/b8" && [ $r9 = 2 ] && grep -q "bad --size" "$W/b9" &&
   [ $r10 = 2 ] && grep -q "which node?" "$W/b10" && [ $r11 = 1 ] && grep -q "no node '0123456789abcdef'" "$W/b11" &&
   [ $r12 = 2 ] && [ $r13 = 2 ] && [ $r14 = 2 ] && grep -q "cannot reach the members source" "$W/b14" &&
   [ $r15 = 2 ] && grep -q '"health":"broken"' "$W/b15" && [ $r16 = 2 ] && grep -q "unknown option '--deep'" "$W/b16"; then
    ok "bad input: --deep=x, --size 1, drain without a node, evict --pin, stat --deep (2); an unknown node (1); health on a missing list or an empty fabric (2, broken)"
else bad "bad input 2 ($r8 $r9 $r10 $r11 $r12 $r13 $r14 $r15 $r16)"; cat "$W/b8" "$W/b10" "$W/b11" "$W/b14" "$W/b15" "$W/b16"; fi

stop_daemons

# --- a static file: fabric: drained and dead nodes stay listed -------------
# (a file: list names host:port listeners; libfabric's shm has no ports)
if [ "$HTRANS" = ofi/shm ]; then
    skp "a static file: fabric (drain, dead nodes)" "libfabric's shm provider has no host:port addresses to list"
    summary
    exit
fi
base=0
for try in $(seq 20); do
    b=$((20000 + RANDOM % 12000))
    used=$(ss -tanH 2>/dev/null | awk '{print $4}' | grep -cE ":($b|$((b+1))|$((b+2)))\$")
    [ "$used" = 0 ] && { base=$b; break; }
done
for i in 0 1 2; do echo "127.0.0.1:$((base + i)) zone=z$i"; done >"$W/list"
export UCACHE_MEMBERS=file:$W/list
for i in 0 1 2; do
    $BIN/ucached --mem 48M --listen 127.0.0.1:$((base + i)) 2>>"$W/f$i.log" &
    DPIDS+=($!)
done
wait_for 10 listening $base $((base + 1)) $((base + 2))
health --json >"$W/g1" 2>&1; rc=$?
if [ $rc = 0 ] && [ "$(grep -c '"state":"ok"' "$W/g1")" = 3 ]; then
    ok "file: fabric: health finds 3 listeners ok"
else bad "file: health (rc $rc)"; cat "$W/g1"; fi
$BIN/ucache drain 127.0.0.1:$((base + 1)) --json >"$W/g2" 2>&1; r1=$?
health --json >"$W/g3" 2>&1; r2=$?
$BIN/ucache stat --json >"$W/g4" 2>/dev/null
$BIN/ucache cat "file://$W/data/five" | cmp -s - "$W/data/five"; r3=$?
$BIN/ucache stat --json >"$W/g5" 2>/dev/null
dn=$(json "$W/g2" node)
f4=$(grep "\"node\":\"$dn\"" "$W/g4" | sed -n 's/.*"fills":\([0-9]*\).*/\1/p')
f5=$(grep "\"node\":\"$dn\"" "$W/g5" | sed -n 's/.*"fills":\([0-9]*\).*/\1/p')
$BIN/ucache drain 127.0.0.1:$((base + 1)) --undo >"$W/g6" 2>&1; r4=$?
health --json >"$W/g7" 2>&1; r5=$?
if [ $r1 = 0 ] && grep -q '"draining":true,"in_view":true' "$W/g2" && [ $r2 = 1 ] &&
   grep -q '"state":"suspect","why":"drained' "$W/g3" && [ "$(json "$W/g3" health)" = degraded ] &&
   grep -q '"state":"draining"' "$W/g4" && [ $r3 = 0 ] && [ -n "$f4" ] && [ "$f4" = "$f5" ] &&
   [ "$(sum "$W/g5" fills)" -ge 5 ] && [ $r4 = 0 ] && grep -q "back in service" "$W/g6" && [ $r5 = 0 ]; then
    ok "drain HOST:PORT on a static list: listed as draining, health degraded (exit 1); reads exact, the drained node filled none of them ($f4 before and after); --undo: healthy again"
else bad "drain on file: ($r1 $r2 $r3 $r4 $r5, fills $f4 -> $f5)"; cat "$W/g2" "$W/g3" "$W/g6"; fi
kill -9 "${DPIDS[2]}"; wait "${DPIDS[2]}" 2>/dev/null
health --json --timeout "$(slow 1)s" >"$W/g8" 2>"$W/g8e"; r1=$?
health --timeout "$(slow 1)s" >"$W/g9" 2>/dev/null; r2=$?
kill -9 "${DPIDS[1]}"; wait "${DPIDS[1]}" 2>/dev/null
health --json --timeout "$(slow 1)s" >"$W/g10" 2>/dev/null; r3=$?
if [ $r1 = 1 ] && [ "$(json "$W/g8" health)" = degraded ] && [ "$(json "$W/g8" dead)" = 1 ] &&
   [ "$(grep -c '"state":"dead"' "$W/g8")" = 1 ] && ! grep -q "UCX" "$W/g9" && [ $r2 = 1 ] &&
   grep -q "^fabric: .* 3 nodes: 2 ok, 0 suspect, 1 dead: DEGRADED$" "$W/g9" &&
   [ $r3 = 2 ] && [ "$(json "$W/g10" health)" = broken ] && [ "$(json "$W/g10" dead)" = 2 ]; then
    ok "a listed node killed with -9: health shows it dead, degraded (exit 1, nothing on stdout but the report); two of three dead: broken (exit 2)"
else bad "health with dead nodes ($r1 $r2 $r3)"; cat "$W/g8" "$W/g9" "$W/g10"; fi
# the two killed above are not asked to stop
DPIDS=("${DPIDS[0]}")
stop_daemons
summary
