#!/usr/bin/env bash
# test_hosts_ofi.sh - tests/fabric/test_hosts.sh once more, every host on
# libfabric's tcp;ofi_rxm (UCACHE_TRANSPORT=ofi) instead of UCX: the same
# cases and bounds (verified reads across the links, a black-holed owner,
# health isolating a frozen, a dark and a killed node, kill -9 / STOP / cut
# / TERM during reads with 0 wrong bytes and 0 failed reads).
HOSTS_TRANSPORT=ofi exec "$(dirname "$0")/test_hosts.sh" "$@"
