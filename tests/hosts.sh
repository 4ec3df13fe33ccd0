# hosts.sh - test hosts in network namespaces (sourced by the multi-host
# suites, after lib.sh): a bridge in a namespace of its own and N hosts,
# each a namespace with one veth (eth0, 10.77.0.I/24) on that bridge, so
# that what crosses between hosts crosses a real (virtual) link that a test
# can cut.  UCX in a host uses tcp on eth0 only (UCX_TLS=tcp: the hosts
# share /dev/shm, and shared memory would bypass the links); with
# HOSTS_TRANSPORT=ofi, libfabric's tcp;ofi_rxm on eth0 (FI_TCP_IFACE).
# Everything is named after the suite's pid and removed by hosts_remove.
HOSTS_PFX=uc$$
HOSTS_N=0
if [ "${HOSTS_TRANSPORT:-ucx}" = ofi ]; then
    HOSTS_ENV="UCACHE_TRANSPORT=ofi UCACHE_OFI_PROVIDER=tcp;ofi_rxm FI_TCP_IFACE=eth0"
else
    HOSTS_ENV="UCX_TLS=tcp UCX_NET_DEVICES=eth0"
fi

# hosts_possible: whether this process may make network namespaces (root,
# iproute2); prints why not
hosts_possible() {
    if [ "$(id -u)" != 0 ]; then echo "network namespaces need root"; return 1; fi
    if ! command -v ip >/dev/null; then echo "no ip (iproute2)"; return 1; fi
    if ! ip netns add "${HOSTS_PFX}probe" 2>/dev/null; then
        echo "ip netns add is not permitted here"; return 1; fi
    ip netns del "${HOSTS_PFX}probe"
}

host_ns() { echo "${HOSTS_PFX}h$1"; }
host_ip() { echo "10.77.0.$1"; }

# hosts_make N: the bridge and hosts 1..N
hosts_make() {
    local i ns br=${HOSTS_PFX}br
    ip netns add "$br" || return 1
    ip -n "$br" link add br0 type bridge || return 1
    ip -n "$br" link set br0 up
    ip -n "$br" link set lo up
    for i in $(seq "$1"); do
        ns=$(host_ns "$i")
        ip netns add "$ns" || return 1
        ip link add "${HOSTS_PFX}p$i" type veth peer name "${HOSTS_PFX}e$i" || return 1
        ip link set "${HOSTS_PFX}p$i" netns "$br" name "p$i"
        ip link set "${HOSTS_PFX}e$i" netns "$ns" name eth0
        ip -n "$br" link set "p$i" master br0
        ip -n "$br" link set "p$i" up
        ip -n "$ns" addr add "$(host_ip "$i")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        HOSTS_N=$i
    done
}

# hosts_remove: every namespace this suite made (its veths go with them)
hosts_remove() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${HOSTS_PFX}"); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
}

# on_host I CMD...: run CMD on host I, the transport on its link only
on_host() {
    local i=$1
    shift
    # shellcheck disable=SC2086 # HOSTS_ENV is a list of NAME=VALUE words
    ip netns exec "$(host_ns "$i")" env $HOSTS_ENV "$@"
}

# link_cut I / link_heal I: host I's link goes dark and comes back.  Its
# port leaves the bridge: every packet in or out is dropped, while both
# ends keep their carrier (no host sees the link go down) and the others'
# ARP entries for it stay fresh - a black hole, as a dead switch port is.
link_cut()  { ip -n "${HOSTS_PFX}br" link set "p$1" nomaster; }
link_heal() { ip -n "${HOSTS_PFX}br" link set "p$1" master br0; }
