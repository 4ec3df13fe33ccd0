#!/usr/bin/env bash
# test_kubernetes.sh - deploy/ as far as this machine goes (no cluster, no
# container engine here):
#   - deploy/kubernetes and its etcd/ render with `kubectl kustomize`, lint
#     clean with yamllint (deploy/.yamllint), and pass the field checks of
#     tests/deploy/check_manifests.py (probes, limits, security context,
#     host paths, metrics, rolling update, the etcd quorum) - which fail on
#     a manifest broken on purpose;
#   - the DaemonSet's own container command and environment, read out of
#     the rendered manifest, run on network-namespace hosts 2 and 3 as the
#     kubelet would run them: each in a mount and UTS namespace of its own
#     with the node's run directory and the Secret's key file at the
#     manifest's mount paths, status.hostIP its host's address; its
#     readiness and liveness commands exit 0, Prometheus scrapes its port;
#   - a training pod on node 2: another network, PID, mount and UTS
#     namespace with the node's run directory mounted, reads a dataset byte
#     for byte, node 2's chunks out of its memory (mapped through the
#     socket in UCACHE_MAP_DIR), the rest over tcp;
#   - deploy/systemd/ucached.service, as `make install` writes it, passes
#     `systemd-analyze verify` without a word.
# What the test sets over the manifest, and why: UCACHE_MEMBERS (a test
# etcd on host 1 for the cluster's DNS names), UCACHE_MEM (256M for 16G),
# UCACHE_ALLOW (plus the test's file:// origin), UCX_TLS=tcp (the test
# hosts share /dev/shm, cluster nodes do not).
# Last line: "N passed, N failed, N skipped".
set -u
here=$(dirname "$0")
. "$here/../lib.sh"
. "$here/../hosts.sh"
test_setup k8s
PY=/usr/bin/python3
ABIN=$(cd "$BIN" && pwd)
declare -a DP
EP=

# kubectl is the machine's (Debian 12 packages none: make deps cannot
# install it); the rest make deps installs
if ! command -v kubectl >/dev/null; then
    skp "the deployment suite" "no kubectl on this machine (Debian 12 has no package of it)"
    rm -rf "$W"; summary; exit
fi
missing=
for t in yamllint systemd-analyze unshare etcd etcdctl; do
    command -v $t >/dev/null || missing="$missing $t"
done
$PY -c 'import yaml' 2>/dev/null || missing="$missing python3-yaml"
if [ -n "$missing" ]; then
    skp_dep "the deployment suite" "missing:$missing (make deps installs them)"
    rm -rf "$W"; summary; exit
fi

# --- render, lint, field checks ------------------------------------------------
K=$W/kustomize
cp -r deploy/kubernetes "$K"
$BIN/ucache keygen "$K/cluster.key" >/dev/null
if kubectl kustomize "$K" >"$W/node.yaml" 2>"$W/kust.err" &&
   kubectl kustomize "$K/etcd" >"$W/etcd.yaml" 2>>"$W/kust.err" &&
   [ "$(grep -c '^kind:' "$W/node.yaml")" = 4 ] && [ "$(grep -c '^kind:' "$W/etcd.yaml")" = 4 ]; then
    ok "kubectl kustomize renders deploy/kubernetes (Namespace, ConfigMap, Secret, DaemonSet) and its etcd/ (Namespace, Service, PodDisruptionBudget, StatefulSet)"
else bad "kustomize"; cat "$W/kust.err"; fi
if yamllint -s -c deploy/.yamllint deploy "$W/node.yaml" "$W/etcd.yaml" >"$W/lint" 2>&1; then
    ok "yamllint: deploy/ and the rendered manifests lint clean"
else bad "yamllint"; cat "$W/lint"; fi
if $PY tests/deploy/check_manifests.py "$W/node.yaml" "$W/etcd.yaml" --emit-sh "$W/ds.sh" \
       >"$W/checks" 2>&1; then
    ok "field checks: $(grep -c '^ok' "$W/checks") of the rendered manifests hold (probes, limits, security context, host paths, metrics, rolling update, etcd quorum)"
else bad "field checks"; grep -v '^ok' "$W/checks"; fi
# the checks bite: a manifest broken on purpose fails them
sed -e 's/- IPC_LOCK/- SYS_ADMIN/' -e 's/maxUnavailable: 1$/maxUnavailable: 10/' \
    -e 's/- --local/- --deep/' "$W/node.yaml" >"$W/broken.yaml"
$PY tests/deploy/check_manifests.py "$W/broken.yaml" "$W/etcd.yaml" >"$W/checks2" 2>&1; rc=$?
if [ $rc = 1 ] && [ "$(grep -c '^FAIL' "$W/checks2")" = 3 ]; then
    ok "a manifest broken three ways (SYS_ADMIN, 10 nodes at a time, a probe without --local) fails exactly those 3 checks"
else bad "broken manifest (rc $rc)"; grep '^FAIL' "$W/checks2"; fi

# --- systemd -------------------------------------------------------------------
if make --no-print-directory install BUILD="$BUILD" prefix="$W/usr" sysconfdir="$W/etc" \
       >"$W/install.log" 2>&1 &&
   out=$(systemd-analyze verify "$W/usr/lib/systemd/system/ucached.service" 2>&1) &&
   [ -z "$out" ] && grep -q "^ExecStart=$W/usr/bin/ucached " "$W/usr/lib/systemd/system/ucached.service" &&
   [ -x "$W/usr/bin/ucached" ] && [ -f "$W/etc/ucache/ucached.env" ]; then
    exposure=$(systemd-analyze security --offline=yes "$W/usr/lib/systemd/system/ucached.service" 2>/dev/null |
               sed -n 's/.*Overall exposure level for ucached.service: \([0-9.]*\).*/\1/p')
    ok "make install writes ucached.service; systemd-analyze verify: not a word; exposure ${exposure:-?} (systemd-analyze security)"
else bad "systemd unit"; tail -3 "$W/install.log"; echo "${out:-}"; fi

if ! why=$(hosts_possible); then
    skp "the DaemonSet on network-namespace hosts" "$why"
    rm -rf "$W"; summary; exit
fi
[ -f "$W/ds.sh" ] || { bad "no DaemonSet to run"; summary; exit; }
. "$W/ds.sh"
trap '{ hosts_remove; stop_all "$W" "${DP[@]}" $EP; } 2>/dev/null' EXIT
hosts_make 4 || { bad "making 4 network namespaces"; exit 1; }
ip netns exec "$(host_ns 1)" etcd --name e1 --data-dir "$W/etcd" \
    --listen-client-urls "http://$(host_ip 1):2379" --advertise-client-urls "http://$(host_ip 1):2379" \
    --listen-peer-urls "http://$(host_ip 1):2380" >>"$W/etcd.log" 2>&1 &
EP=$!
TEST_MEMBERS="etcd://$(host_ip 1):2379/ucache-k8s"
etcd_up() { on_host 2 etcdctl --endpoints "$(host_ip 1):2379" endpoint health >/dev/null 2>&1; }
wait_for 30 etcd_up || bad "the test etcd starts"

# the Secret as the kubelet mounts it; the mount points the manifest names
mkdir -p "$W/keys" && cp "$K/cluster.key" "$W/keys/cluster.key" && chmod 0400 "$W/keys/cluster.key"
made_key_dir=0
[ -d "$DS_KEY_DIR" ] || { mkdir -p "$DS_KEY_DIR" && made_key_dir=1; }
mkdir -p "$DS_RUN_DIR"
mkdir -p "$W/data"
head -c 25165831 /dev/urandom >"$W/data/shard"

# container_env I: the container's environment on node I (fieldRefs and
# $(VAR) references resolved as the kubelet does), with the overrides
container_env() {
    local e n v f ip=$(host_ip "$1")
    declare -A ref=()
    for f in "${DS_FIELDREFS[@]}"; do
        [ "${f#*=}" = status.hostIP ] && ref[${f%%=*}]=$ip && echo "${f%%=*}=$ip"
    done
    for e in "${DS_ENV[@]}"; do
        n=${e%%=*} v=${e#*=}
        for f in "${!ref[@]}"; do v=${v//\$($f)/${ref[$f]}}; done
        case $n in
            UCACHE_MEMBERS) v=$TEST_MEMBERS ;;
            UCACHE_MEM) v=256M ;;
            UCACHE_ALLOW) v="$v,file://$W/" ;;
        esac
        echo "$n=$v"
    done
    echo UCX_TLS=tcp; echo UCX_NET_DEVICES=eth0
}
# in_pod I NODE HOSTNAME CMD...: CMD in host I's network namespace, in mount
# and UTS namespaces of its own (hostname HOSTNAME), node NODE's run
# directory at the manifest's path and the Secret at its mount path
# (IN_POD_EXEC=1: in place of the calling shell, so that a job's pid is CMD's)
in_pod() {
    local i=$1 node=$2 name=$3
    shift 3
    mkdir -p "$W/node$node/run"
    ${IN_POD_EXEC:+exec} ip netns exec "$(host_ns "$i")" unshare --mount --uts --propagation private \
        sh -c 'hostname "$1" && mount --bind "$2" "$3" && mount --bind "$4" "$5" && shift 5 &&
               exec "$@"' sh "$name" "$W/node$node/run" "$DS_RUN_DIR" "$W/keys" "$DS_KEY_DIR" "$@"
}
# harness_env: what the test harness gives every process besides the
# manifest's environment - the sanitizers' options (tests/run.sh collects
# their reports through log_path) and UCX's settings under them
harness_env() {
    local v
    for v in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS LSAN_OPTIONS UCX_MEM_EVENTS \
             UCX_MEM_MALLOC_HOOKS UCX_MEM_MMAP_HOOK_MODE; do
        [ -n "${!v:-}" ] && echo "$v=${!v}"
    done
    return 0
}
# node_run I CMD...: CMD as the DaemonSet's container on node I would run it
node_run() {
    local i=$1
    shift
    mapfile -t envi < <(container_env "$i"; harness_env)
    in_pod "$i" "$i" "node-$i" env -i PATH="$ABIN:/usr/bin:/bin" "${envi[@]}" "$@"
}
for i in 2 3; do
    IN_POD_EXEC=1 node_run $i "${DS_CMD[@]}" 2>>"$W/d$i.log" &
    DP[$i]=$!
done
ready() { node_run 2 "${DS_READY[@]}" >"$W/ready2" 2>&1 && node_run 3 "${DS_READY[@]}" >"$W/ready3" 2>&1; }
if wait_for 30 ready && grep -q "1 nodes: 1 ok" "$W/ready2" && grep -q "1 nodes: 1 ok" "$W/ready3"; then
    ok "the DaemonSet's command and environment serve on nodes 2 and 3 (etcd members, its key, its listener from status.hostIP): the readiness probe's own command exits 0 on each, its node alone"
else bad "the DaemonSet's container (readiness)"; cat "$W/ready2" "$W/ready3" 2>/dev/null; tail -3 "$W/d2.log"; fi
if node_run 2 "${DS_LIVE[@]}" >/dev/null 2>&1 && node_run 3 "${DS_LIVE[@]}" >/dev/null 2>&1; then
    ok "the liveness probe's own command exits 0 on both nodes"
else bad "liveness probe"; fi
if on_host 4 curl -s --max-time 5 "http://$(host_ip 2):$DS_METRICS_PORT/metrics" >"$W/metrics" &&
   grep -q "^ucache_memory_usable_bytes " "$W/metrics" && grep -q "^ucache_members_lease_left_milliseconds [1-9]" "$W/metrics"; then
    ok "Prometheus scrapes node 2 at the annotated port $DS_METRICS_PORT from another host: $(grep -c '^# TYPE' "$W/metrics") metrics, its lease time left among them"
else bad "metrics scrape"; head -3 "$W/metrics"; fi

# --- a training pod on node 2 -------------------------------------------------
mapfile -t penv < <(printf '%s\n' "UCACHE_MEMBERS=$TEST_MEMBERS" "UCACHE_MAP_DIR=$DS_RUN_DIR" \
                    "UCACHE_CLUSTER_KEY_FILE=$DS_KEY_DIR/cluster.key" UCX_TLS=tcp UCX_NET_DEVICES=eth0 \
                    UCACHE_LOG_LEVEL=warn; harness_env)
# it reads the shard twice (a job's second epoch): the second read's counters
in_pod 4 2 pod-train unshare --pid --fork --mount-proc \
    sh -c 'echo "pid $$"; env -i PATH="$0" "$@" >/dev/null 2>&1 &&
           exec env -i PATH="$0" "$@" --stats' "$ABIN:/usr/bin:/bin" "${penv[@]}" \
    ucache cat "file://$W/data/shard" >"$W/pod.out" 2>"$W/pod.err"; rc=$?
mapped=$(client_stat "$W/pod.err" mapped_reads)
gets=$(client_stat "$W/pod.err" get_reads); ams=$(client_stat "$W/pod.err" am_reads)
remote=$(( ${gets:-0} + ${ams:-0} ))
if [ $rc = 0 ] && [ "$(head -n 1 "$W/pod.out")" = "pid 1" ] &&
   cmp -s <(tail -c +7 "$W/pod.out") "$W/data/shard" && [ "${mapped:-0}" -gt 0 ] && [ "$remote" -gt 0 ]; then
    ok "a training pod on node 2 (its own network, PID - it is pid 1 -, mount and UTS namespaces; the node's run directory mounted): 24 MiB exact, $mapped chunks out of node 2's memory through the socket in UCACHE_MAP_DIR, $remote from node 3 over tcp"
else bad "the training pod (rc $rc, mapped ${mapped:-?}, remote $remote)"; tail -5 "$W/pod.err"; fi

# --- SIGTERM, as a rolling update sends it ------------------------------------
n=0
for i in 2 3; do
    kill -TERM "${DP[$i]}" 2>/dev/null
    wait_for "$DS_GRACE" daemon_gone "${DP[$i]}" || kill -9 "${DP[$i]}" 2>/dev/null
    wait "${DP[$i]}"; [ $? = 0 ] && n=$((n + 1))
done
[ $n = 2 ] && ok "SIGTERM: both nodes unregister and exit 0 within the grace period ($DS_GRACE s)" ||
    bad "SIGTERM ($n of 2 exited 0)"
DP=()
[ $made_key_dir = 1 ] && rmdir "$DS_KEY_DIR" "$(dirname "$DS_KEY_DIR")" 2>/dev/null
summary
