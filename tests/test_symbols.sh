#!/usr/bin/env bash
# test_symbols.sh - the library's namespace: every symbol libucache-rdma.a
# and libucache-rdma.so define for others carries its layer's prefix
# (ucache_ public; uc_ util, ut_ transport, us_ store and origin, uf_
# fabric), so a program that links the library never meets a clash with a
# name of its own; the only others are the two UCX 1.13 functions that
# transport/ucx_guard.c replaces on purpose.  A file split into objects
# (transport/ucx*.c) shares its internals under these prefixes only.
# Last line: "N passed, N failed, N skipped".
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
B=${BUILD:-build}
guard='^(ucp_request_send_state_ff|uct_tcp_sockcm_ep_send)$'
prefixes='^(ucache_|uc_|ut_|us_|uf_)'

for lib in "$B/lib/libucache-rdma.a" "$B/lib/libucache-rdma.so"; do
    if [ ! -f "$lib" ]; then
        bad "$lib: not built"
        continue
    fi
    if [ "${lib##*.}" = so ]; then
        syms=$(nm -D --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBRVW]/ { print $3 }')
    else
        syms=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }')
    fi
    n=$(echo "$syms" | grep -c .)
    stray=$(echo "$syms" | grep -Ev "$prefixes" | grep -Ev "$guard" | sort -u)
    if [ "$n" -gt 100 ] && [ -z "$stray" ]; then
        ok "$(basename "$lib"): all $n symbols it defines for others carry a layer prefix (or are the guard's two)"
    else bad "$(basename "$lib"): $n symbols; without a prefix: $(echo $stray)"; fi
done
summary
