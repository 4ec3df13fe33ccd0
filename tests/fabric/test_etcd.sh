#!/usr/bin/env bash
# test_etcd.sh - membership on etcd (UCACHE_MEMBERS=etcd://...): a real
# three-member etcd cluster (etcd-server from Debian) on hosts 1-3, three
# owners on hosts 4-6 and a reader on host 7, each host a network namespace
# on a bridge (tests/hosts.sh).  Cases: owners register under the prefix
# with a lease, one slot key each, and the records hold no address or key;
# a reader's view comes from etcd and its reads are verified; then one
# long-lived reader reads random ranges, each compared with the origin,
# while: the etcd leader is killed and restarted; an owner is frozen past
# its lease (it leaves etcd within TTL + 1 s, and thawed it registers
# again on its former slots); an owner is killed -9 and restarted under its
# identity (it takes its record and slots over at once); all of etcd is
# stopped for 20 s (the owners keep their leases: no node re-registers);
# an owner's link is cut past its lease (it leaves when the lease
# expires, and comes back when the link does).  0 wrong bytes, 0 failed
# reads, every read within its bound.  Then etcds:// (mutual TLS, a user),
# and a reader that follows its daemon's view when the daemon is killed -9:
# it watches etcd itself and reads through a node only etcd told it of.
# Needs root (network namespaces)
# and etcd (make deps); without etcd under CI=true, a failure.
# Prints PASS/FAIL/SKIP per case and "N passed, N failed, N skipped" last.
set -u
here=$(dirname "$0")
. "$here/../lib.sh"
. "$here/../hosts.sh"
test_setup etcd
declare -a DP EP
PORT=7800
OWNERS="4 5 6" READER=7 JOINER=8

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    skp_dep "the etcd suite" "no etcd or etcdctl (make deps installs etcd-server and etcd-client)"
    rm -rf "$W"; summary; exit
fi
if ! why=$(hosts_possible); then
    skp "the etcd suite" "$why"
    rm -rf "$W"; summary; exit
fi
trap '{ hosts_remove; stop_all "$W" "${DP[@]}" "${EP[@]}"; } 2>/dev/null' EXIT

CLUSTER="e1=http://$(host_ip 1):2380,e2=http://$(host_ip 2):2380,e3=http://$(host_ip 3):2380"
ENDPOINTS="$(host_ip 1):2379,$(host_ip 2):2379,$(host_ip 3):2379"
export UCACHE_MEMBERS="etcd://$ENDPOINTS/ucache-test"
TTL=3
export UCACHE_MEMBERS_TTL=${TTL}s

# start_etcd I: etcd member eI on host I (its data kept across restarts)
start_etcd() {
    ip netns exec "$(host_ns "$1")" etcd --name "e$1" --data-dir "$W/etcd$1" \
        --listen-client-urls "http://$(host_ip "$1"):2379" \
        --advertise-client-urls "http://$(host_ip "$1"):2379" \
        --listen-peer-urls "http://$(host_ip "$1"):2380" \
        --initial-advertise-peer-urls "http://$(host_ip "$1"):2380" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new \
        --initial-cluster-token "uc$$" >>"$W/etcd$1.log" 2>&1 &
    EP[$1]=$!
}
# ctl ARGS...: etcdctl from the reader's host, against every member
ctl() { on_host $READER etcdctl --endpoints "$ENDPOINTS" --command-timeout=2s "$@"; }
healthy() { ctl endpoint health >/dev/null 2>&1; }
# nodes: how many node records etcd holds
nodes() { ctl get --prefix ucache-test/nodes/ --keys-only 2>/dev/null | grep -c .; }
has_nodes() { [ "$(nodes)" = "$1" ]; }
# record_of I FIELD: a field (CreateRevision, Lease, Value) of host I's record
record_of() {
    ctl -w fields get "ucache-test/nodes/$(host_ip "$1"):$PORT" 2>/dev/null |
        sed -n "s/^\"$2\" : //p"
}
slot_of() { record_of "$1" Value | sed -n 's/.*\\"slot0\\":\([0-9]*\).*/\1/p'; }
# leader: the host number of etcd's leader
leader() {
    local i id lid
    for i in 1 2 3; do
        st=$(on_host $READER etcdctl --endpoints "$(host_ip $i):2379" --command-timeout=1s \
             -w fields endpoint status 2>/dev/null) || continue
        id=$(echo "$st" | sed -n 's/^"MemberID" : //p')
        lid=$(echo "$st" | sed -n 's/^"Leader" : //p')
        [ -n "$id" ] && [ "$id" = "$lid" ] && { echo "$i"; return; }
    done
}
# Owner 6 is killed -9 and restarted under its identity (case 3): its
# lease lasts the TTL times the sanitizers' allowance, so that a restart
# slowed by a sanitizer still finds its record alive to take over (under
# TSan a daemon's start can take longer than the 3 s TTL itself).
start_owner() {
    ip netns exec "$(host_ns "$1")" env UCX_TLS=tcp UCX_NET_DEVICES=eth0 \
        UCACHE_VIEW_SHM="$W/view-$1" \
        UCACHE_MEMBERS_TTL="$( [ "$1" = 6 ] && slow $TTL || echo $TTL )s" \
        $BIN/ucached --mem 64M --listen "$(host_ip "$1"):$PORT" 2>>"$W/d$1.log" &
    DP[$1]=$!
}
# gone_within I LIMIT_S: host I's record leaves etcd within LIMIT_S of now;
# prints the seconds it took
gone_within() {
    local t0=$(date +%s%N) lim_ms
    lim_ms=$(awk -v s="$2" 'BEGIN { printf "%d", s * 1000 }')
    until [ -z "$(record_of "$1" CreateRevision)" ]; do
        [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt $((lim_ms + 2000)) ] || break
        sleep 0.1
    done
    awk -v ns=$(( $(date +%s%N) - t0 )) 'BEGIN { printf "%.1f", ns / 1e9 }'
}
within() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

hosts_make $JOINER || { bad "making $JOINER network namespaces"; exit 1; }
for i in 1 2 3; do start_etcd "$i"; done
if wait_for 30 healthy; then ok "a three-member etcd cluster on hosts 1-3 (leader on host $(leader))"
else bad "etcd cluster up"; tail -5 "$W/etcd1.log"; exit 1; fi

# --- registration ------------------------------------------------------------
for i in $OWNERS; do start_owner "$i"; done
if wait_for 20 has_nodes 3 &&
   [ "$(ctl get --prefix ucache-test/slots/ --keys-only | grep -c .)" = 3 ] &&
   [ "$(ctl get ucache-test/config --print-value-only)" = '{"v":1,"slots":65536,"slot_size":4294967296}' ] &&
   ! ctl get --prefix ucache-test/nodes/ --print-value-only | grep -q '"addr\|rkey\|pid'; then
    ok "3 owners registered in etcd with leases: 3 records, 3 slot keys, the placement's 65536 slots of 4 GiB; no address, key or pid in a record"
else bad "registration in etcd"; ctl get --prefix ucache-test/ | head -20; fi
l4=$(record_of 4 Lease)
if [ -n "$l4" ] && ctl lease timetolive "$(printf '%x' "$l4")" | grep -q "granted with TTL(${TTL}s)"; then
    ok "a record's lease has UCACHE_MEMBERS_TTL ($TTL s)"
else bad "the record's lease TTL"; ctl lease timetolive "$(printf '%x' "$l4")"; fi

# ucache status: the source's health, each node's lease time left
on_host $READER $BIN/ucache status --json >"$W/st1" 2>&1; rc=$?
leases=$(grep '"node"' "$W/st1" | sed -n 's/.*"lease_left_ms":\([0-9]*\).*/\1/p' |
         awk -v t="$(slow $TTL)" '$1 > 0 && $1 <= t * 1000' | wc -l)
if [ $rc = 0 ] && grep -q '"members":"etcd","via":"etcd watch","reachable":true,"revision":[1-9]' "$W/st1" &&
   [ "$leases" = 3 ] && on_host $READER $BIN/ucache status | grep -qE "^members: etcd \(etcd watch\): reachable, revision [0-9]+"; then
    ok "ucache status: members etcd, reachable, its revision; each of the 3 nodes' lease has time left (0 < left <= its TTL)"
else bad "ucache status with etcd (rc $rc, $leases leases)"; cat "$W/st1"; fi

mkdir -p "$W/data"
head -c 4095 /dev/urandom >"$W/data/small"
head -c 3670016 /dev/urandom >"$W/data/three"
head -c 10485777 /dev/urandom >"$W/data/ten"
FILES="$W/data/small $W/data/three $W/data/ten"
if on_host $READER $T/fabric_client verify 60 $FILES >"$W/v1" 2>&1 &&
   [ "$(client_stat "$W/v1" origin_direct)" = 0 ] && [ "$(client_stat "$W/v1" chunk_hits)" -gt 0 ]; then
    ok "a reader's view from etcd: 60 random reads + posted ones, bytes equal the origin, all through the owners"
else bad "reads with an etcd view"; tail -5 "$W/v1"; fi

# ucperf members, small: simulated nodes under their own prefix, watchers
out=$(on_host $READER $BIN/ucperf members --json --nodes 200 --watchers 5 --duration 2 --ttl 10 \
      --members "etcd://$ENDPOINTS/ucperf-test" 2>&1)
f() { echo "$out" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
if [ "$(f register_failed)" = 0 ] && [ "$(f keepalive_failed)" = 0 ] &&
   awk -v j="$(f join_to_watchers_ms_max)" -v l="$(f leave_to_watchers_ms_max)" \
       -v r="$(f steady_requests_per_s)" 'BEGIN { exit !(j > 0 && l > 0 && r > 0) }' &&
   [ -z "$(ctl get --prefix ucperf-test/nodes/ --keys-only)" ]; then
    ok "ucperf members: 200 simulated nodes registered and kept alive, a join in $(f join_to_watchers_ms_max) ms to 5 watchers, all removed after"
else bad "ucperf members"; echo "$out" | tail -3; fi

# --- a reader whose view is behind the owners' ---------------------------------
# The reader never polls (UCACHE_MEMBERS_POLL=3600s); a fourth owner joins;
# new versions of two 16-chunk files make every chunk a miss at the owners of
# the reader's old view, which answer MOVED where the key is now the
# joiner's.  The reader reads its membership again, retries in the newer
# view, and marks no owner suspect.
head -c 16777216 /dev/urandom >"$W/data/moved1"
head -c 16777216 /dev/urandom >"$W/data/moved2"
rm -f "$W/flag"
UCACHE_MEMBERS_POLL=3600s UCACHE_META_TTL=1ms on_host $READER $T/fabric_client pause "$W/flag" \
    "$W/data/moved1" "$W/data/moved2" >"$W/mv" 2>&1 & MP=$!
wait_for 30 grep -q warm "$W/mv"
start_owner $JOINER
wait_for 20 has_nodes 4
sleep 1    # the owners' views (UCACHE_MEMBERS_POLL 100 ms) have the joiner
for f in moved1 moved2; do
    head -c 16777216 /dev/urandom >"$W/data/$f.new" && mv "$W/data/$f.new" "$W/data/$f"
done
touch "$W/flag"
rm=0; wait $MP || rm=$?
fm=$(on_host $READER $BIN/ucache stat --json 2>/dev/null |
     sed -n 's/^{"node".*"fills_moved":\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
if [ $rm = 0 ] && [ "$(client_stat "$W/mv" moved_refreshes)" -gt 0 ] &&
   [ "$(client_stat "$W/mv" failovers)" = 0 ] && [ "$(client_stat "$W/mv" origin_direct)" = 0 ] &&
   [ "$fm" -gt 0 ]; then
    ok "a reader behind the owners' view: $fm miss(es) answered MOVED, the reader read etcd again ($(client_stat "$W/mv" moved_refreshes) time(s)) and got every byte through the new owners, none suspect, none from the origin"
else bad "MOVED to a reader behind (rc $rm, fills_moved $fm)"; tail -3 "$W/mv"; fi
kill -TERM "${DP[$JOINER]}"; wait "${DP[$JOINER]}" 2>/dev/null; unset 'DP[$JOINER]'
wait_for 10 has_nodes 3

# --- faults during reads -----------------------------------------------------
BOUND_MS=$(awk -v s="$(slow 3.5)" 'BEGIN { printf "%d", s * 1000 }')
PAUSE=3
FC_BOUND_MS=$BOUND_MS FC_MARK=$W/mark FC_STOP=$W/stop FC_MAX_READS=100000000 \
    on_host $READER $T/fabric_client loop 300 $FILES >"$W/loop" 2>"$W/loop.err" & LP=$!
sleep 2
stamp() { echo "$(date +%s.%N | cut -c1-14) $*" >>"$W/faults.log"; }

# 1. the etcd leader killed, restarted
L=$(leader)
stamp "kill -9 etcd leader e$L"
kill -9 "${EP[$L]}"; wait "${EP[$L]}" 2>/dev/null
sleep 3
start_etcd "$L"; stamp "e$L restarted"
if wait_for 20 healthy && wait_for 10 has_nodes 3; then
    ok "etcd's leader (host $L) killed and restarted: 3 members healthy, the 3 nodes registered (new leader host $(leader))"
else bad "the etcd leader killed and restarted"; fi
sleep $PAUSE

# 2. an owner frozen past its lease: it leaves, and comes back on its slots
s5=$(slot_of 5)
stamp "SIGSTOP owner 5"
kill -STOP "${DP[5]}"
t=$(gone_within 5 $((TTL + 1)))
if within "$t" "$(slow $((TTL + 1)))"; then
    ok "an owner frozen (SIGSTOP) left etcd's view in $t s (TTL $TTL s + 1 s)"
else bad "a frozen owner leaves within TTL + 1 s (took $t s)"; fi
kill -CONT "${DP[5]}"; stamp "SIGCONT owner 5"
if wait_for 10 has_nodes 3 && [ "$(slot_of 5)" = "$s5" ]; then
    ok "the thawed owner found its lease expired and registered again, on its former slot ($s5)"
else bad "the thawed owner registers again (slot $(slot_of 5), was $s5)"; fi
sleep $PAUSE

# 3. an owner killed and restarted under the same identity
s6=$(slot_of 6) l6=$(record_of 6 Lease)
stamp "kill -9 owner 6"
kill -9 "${DP[6]}"; wait "${DP[6]}" 2>/dev/null
sleep 1
start_owner 6; stamp "owner 6 restarted"
if wait_for 10 eval '[ -n "$(record_of 6 Lease)" ] && [ "$(record_of 6 Lease)" != "$l6" ]' &&
   has_nodes 3 && ! ctl lease list | grep -q "$(printf '%x' "$l6")" &&
   [ "$(slot_of 6)" = "$s6" ] &&
   [ "$(ctl get --prefix ucache-test/slots/ --keys-only | grep -c .)" = 3 ]; then
    ok "an owner killed -9 and restarted under its identity took its record and slot ($s6) over at once, the former lease revoked"
else bad "a restarted owner takes its record over"; ctl get --prefix ucache-test/ --keys-only; fi
# ... and the reader reads through it again: its record names the same
# listener, which gives the new address and key (the reader once kept the
# dead process's and read that owner's chunks through the others)
served6() {
    daemon_stats "${DP[6]}" "$W/d6.log" && [ "$(client_stat "$W/d6.log" fetches_served)" -gt 0 ]
}
if wait_for 15 served6; then
    ok "the reader reads through the restarted owner again ($(client_stat "$W/d6.log" fetches_served) FETCHes served by its new process)"
else bad "the reader reaches the restarted owner"; grep "restarted\|suspect" "$W/loop.err" | tail -3; fi
sleep $PAUSE

# 4. all of etcd stopped for 20 s: the fabric serves on, no node is reaped
declare -A cr
for i in $OWNERS; do cr[$i]=$(record_of "$i" CreateRevision); done
stamp "etcd stopped (all members)"
for i in 1 2 3; do kill -TERM "${EP[$i]}"; done
for i in 1 2 3; do wait "${EP[$i]}" 2>/dev/null; done
# a reader started on owner 4's host while etcd is down: it follows its
# daemon's view (a file the daemon publishes), never etcd
if on_host 4 env UCACHE_VIEW_SHM="$W/view-4" UCACHE_LOG_LEVEL=info \
       $BIN/ucache cat "file://$W/data/ten" >"$W/shmcat" 2>"$W/shmcat.err" &&
   cmp -s "$W/shmcat" "$W/data/ten" &&
   grep -q "following the local daemon's view at $W/view-4" "$W/shmcat.err"; then
    ok "a reader started on an owner's host while etcd is down: the local daemon's published view, no etcd connection, exact bytes"
else bad "a reader following its daemon's view"; tail -5 "$W/shmcat.err"; fi
on_host 4 env UCACHE_VIEW_SHM="$W/view-4" $BIN/ucache status >"$W/st2" 2>&1; rc=$?
if [ $rc = 1 ] && grep -q "^members: etcd (the local daemon's view): UNREACHABLE" "$W/st2" &&
   grep -q "0 unreachable" "$W/st2"; then
    ok "ucache status while etcd is down: members UNREACHABLE (exit 1), every node still answers"
else bad "ucache status with etcd down (rc $rc)"; cat "$W/st2"; fi
sleep 20
for i in 1 2 3; do start_etcd "$i"; done
stamp "etcd started again"
same=1
if wait_for 30 healthy; then
    sleep $((TTL + 1))   # any lease etcd were to expire would have by now
    for i in $OWNERS; do [ "$(record_of "$i" CreateRevision)" = "${cr[$i]}" ] || same=0; done
else same=0; fi
if [ $same = 1 ] && has_nodes 3; then
    ok "etcd stopped entirely for 20 s and restarted: every owner kept its lease and record (none reaped, none re-registered)"
else bad "etcd outage: records $(nodes), creation revisions changed"; fi
sleep $PAUSE

# 5. an owner's link cut past its lease: it leaves when the lease expires
stamp "link of owner 4 cut"
link_cut 4
t=$(gone_within 4 $((TTL + 1)))
link_heal 4; stamp "link of owner 4 back"
if within "$t" "$(slow $((TTL + 1)))" && wait_for 10 has_nodes 3; then
    ok "an owner cut off left etcd's view when its lease expired ($t s), and registered again once its link was back"
else bad "a cut-off owner leaves at its lease's expiry ($t s) and comes back"; fi
sleep $PAUSE
# The reader skips the cut-off owner for its back-off (doubled by each
# failure in a row, up to UCACHE_PEER_RETRY_MAX; longer under a sanitizer,
# whose timeouts are): the tail begins once that owner serves it again
# (under ASan a fixed pause once left 800 of its reads to the origin).
served() { daemon_stats "${DP[4]}" "$W/d4.log" && client_stat "$W/d4.log" fetches_served; }
f0=$(served)
serves_again() { [ "$(served)" -gt "${f0:-0}" ]; }
wait_for 30 serves_again || bad "owner 4 serves the reader again after its link is back"

touch "$W/mark"
sleep "$(slow 4)"
touch "$W/stop"
rl=0; wait $LP || rl=$?
last=$(tail -n 1 "$W/loop")
if echo "$last" | grep -q "wrong 0 failed 0 .*over_bound 0"; then
    ok "faults during reads (etcd leader killed, owner frozen, owner killed, etcd down 20 s, link cut): $(echo "$last" | awk '{print $2}') random reads, 0 wrong bytes, 0 failed, longest $(echo "$last" | awk '{print $8}') ms (bound $BOUND_MS ms)"
else bad "faults during reads (rc $rl): $last"; grep -m5 "WRONG\|SLOW\|read " "$W/loop.err"; cat "$W/faults.log"; fi

# between the mark and the end, every read is served by an owner again
m_line=$(grep '"stats":"mark"' "$W/loop" | tail -n 1)
e_line=$(grep '"stats":"fabric_client"' "$W/loop" | tail -n 1)
val() { local v; v=$(echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"); echo "${v:-0}"; }
dreads=$(( $(val "$e_line" chunk_reads) - $(val "$m_line" chunk_reads) ))
dorig=$(( $(val "$e_line" origin_direct) - $(val "$m_line" origin_direct) ))
if [ -n "$m_line" ] && [ "$dreads" -gt 20 ] && [ "$dorig" = 0 ] &&
   [ "$(val "$e_line" owner_restarts)" -ge 1 ]; then
    ok "after the faults the reader reaches every owner again: $dreads chunk reads, none from the origin ($(val "$e_line" owner_restarts) owner(s) found restarted under their identity)"
else bad "after the faults: $dreads chunk reads, $dorig from the origin (mark: ${m_line:+seen})"; fi

# every owner stops cleanly: its record leaves with its revoked lease
rc=0
for i in $OWNERS; do kill -TERM "${DP[$i]}"; done
for i in $OWNERS; do wait "${DP[$i]}" || rc=$?; done
if [ $rc = 0 ] && wait_for 5 has_nodes 0 &&
   [ "$(ctl get --prefix ucache-test/slots/ --keys-only | grep -c .)" = 0 ]; then
    ok "owners stopped with SIGTERM exit 0 and leave etcd at once (records and slots revoked)"
else bad "clean stop (rc $rc, $(nodes) records left)"; fi

# --- etcds://: one etcd on loopback with mutual TLS and a user --------------
TD=$W/tls
mkdir -p "$TD"
tls_cert() { # NAME SUBJECT: a key and a certificate signed by the test CA
    openssl req -newkey rsa:2048 -nodes -keyout "$TD/$1.key" -out "$TD/$1.csr" -subj "$2" \
        2>/dev/null &&
    openssl x509 -req -in "$TD/$1.csr" -CA "$TD/ca.pem" -CAkey "$TD/ca.key" -CAcreateserial \
        -out "$TD/$1.pem" -days 1 -extfile <(printf "subjectAltName=IP:127.0.0.1") 2>/dev/null
}
TP=$((21000 + $$ % 500 * 2)) PP=$((21001 + $$ % 500 * 2))
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TD/ca.key" -out "$TD/ca.pem" -days 1 \
       -subj "/CN=ucache-test-ca" 2>/dev/null && tls_cert server /CN=etcd &&
   tls_cert client /O=ucache-node; then   # (etcd's gateway refuses a client CN)
    etcd --name tls --data-dir "$W/etcd-tls" --listen-client-urls "https://127.0.0.1:$TP" \
        --advertise-client-urls "https://127.0.0.1:$TP" --listen-peer-urls "http://127.0.0.1:$PP" \
        --initial-advertise-peer-urls "http://127.0.0.1:$PP" --initial-cluster "tls=http://127.0.0.1:$PP" \
        --cert-file "$TD/server.pem" --key-file "$TD/server.key" --client-cert-auth \
        --trusted-ca-file "$TD/ca.pem" >"$W/etcd-tls.log" 2>&1 &
    EP[9]=$!
    tctl() { etcdctl --endpoints "https://127.0.0.1:$TP" --cacert "$TD/ca.pem" --cert "$TD/client.pem" \
                 --key "$TD/client.key" --command-timeout=2s "$@"; }
    wait_for 20 tctl endpoint health >/dev/null 2>&1
    tctl user add root:rootpw >/dev/null 2>&1 && tctl user grant-role root root >/dev/null 2>&1 &&
        tctl auth enable >/dev/null 2>&1
    TLSENV=(UCACHE_MEMBERS="etcds://127.0.0.1:$TP/tls" UCACHE_ETCD_CA="$TD/ca.pem"
            UCACHE_ETCD_CERT="$TD/client.pem" UCACHE_ETCD_KEY="$TD/client.key"
            ETCD_USER=root ETCD_PASSWORD=rootpw UCX_TLS=tcp,self UCX_NET_DEVICES=lo
            UCACHE_VIEW_SHM="$W/view-none")   # readers here talk to etcd itself
    env "${TLSENV[@]}" UCACHE_VIEW_SHM="$W/view-tls" $BIN/ucached --mem 64M \
        --listen "127.0.0.1:$((TP + 1000))" \
        2>>"$W/dtls.log" & DP[9]=$!
    tls_nodes() { tctl --user root:rootpw get --prefix tls/nodes/ --keys-only 2>/dev/null | grep -c .; }
    if wait_for 20 eval '[ "$(tls_nodes)" = 1 ]' &&
       env "${TLSENV[@]}" $BIN/ucache cat "file://$W/data/three" >"$W/tlscat" 2>"$W/tlscat.err" &&
       cmp -s "$W/tlscat" "$W/data/three" && ! grep -q rootpw "$W/dtls.log" "$W/tlscat.err"; then
        ok "etcds:// with mutual TLS and an etcd user (ETCD_USER/ETCD_PASSWORD): a daemon registers, a reader's view from it reads exact bytes; the password in no log"
    else bad "etcds:// with TLS and a user"; tail -3 "$W/dtls.log" "$W/tlscat.err"; fi
    # the wrong password, and no CA: refused, and said why
    if ! env "${TLSENV[@]}" ETCD_PASSWORD=wrong $BIN/ucache cat "file://$W/data/three" \
            >/dev/null 2>"$W/tlsbad.err" && grep -q "cannot authenticate" "$W/tlsbad.err" &&
       ! env "${TLSENV[@]}" UCACHE_ETCD_CA= $BIN/ucache cat "file://$W/data/three" \
            >/dev/null 2>"$W/tlsca.err" && ! grep -q wrong "$W/tlsbad.err"; then
        ok "etcds:// refused: a wrong password (said: cannot authenticate; the password in no log), an etcd certificate not checked against its CA"
    else bad "etcds:// refusals"; tail -3 "$W/tlsbad.err" "$W/tlsca.err"; fi
    # a reader following its daemon's view when the daemon dies: it watches
    # etcd itself from then on, and finds a node only etcd tells it about
    env "${TLSENV[@]}" UCACHE_VIEW_SHM="$W/view-tls" UCACHE_LOG_LEVEL=info UCACHE_MEMBERS_TTL=3s \
        FC_STOP="$W/fb.stop" FC_MAX_READS=100000000 $T/fabric_client loop 120 "$W/data/three" \
        >"$W/fb.out" 2>"$W/fb.err" & FB=$!
    wait_for 10 grep -q "following the local daemon's view at $W/view-tls" "$W/fb.err"
    kill -9 "${DP[9]}"; wait "${DP[9]}" 2>/dev/null
    env "${TLSENV[@]}" UCACHE_VIEW_SHM="$W/view-tls2" $BIN/ucached --mem 64M \
        --listen "127.0.0.1:$((TP + 1001))" 2>>"$W/dtls2.log" & DP[9]=$!
    fb_served() { # the new daemon's FETCHes served, by its stats at SIGUSR1
        daemon_stats "${DP[9]}" "$W/dtls2.log" >/dev/null 2>&1
        grep '"stats":"ucached"' "$W/dtls2.log" | tail -n 1 | sed -n 's/.*"fetches_served":\([0-9]*\).*/\1/p'
    }
    fb_new_owner() { [ "$(fb_served)" -gt 0 ] 2>/dev/null; }
    wait_for 20 grep -q "watching etcd from now on" "$W/fb.err" && wait_for 20 fb_new_owner
    touch "$W/fb.stop"; rc=0; wait $FB || rc=$?
    if [ $rc = 0 ] && grep -q "watching etcd from now on" "$W/fb.err" &&
       tail -n 1 "$W/fb.out" | grep -q "wrong 0 failed 0" && fb_new_owner; then
        ok "a reader whose local daemon is killed -9 leaves its view for etcd's, reads on exact ($(tail -n 1 "$W/fb.out" | awk '{print $2}') reads, 0 wrong, 0 failed), and reads through a node only etcd told it of"
    else bad "a reader's fallback from its dead daemon's view to etcd (rc $rc)"; tail -n 3 "$W/fb.err" "$W/fb.out"; fi
    kill -TERM "${DP[9]}"; wait "${DP[9]}" 2>/dev/null; unset 'DP[9]'
else skp_dep "etcds://" "openssl cannot make test certificates"; fi
summary
