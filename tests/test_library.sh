#!/usr/bin/env bash
# test_library.sh - the library as a program gets it.  Its namespace:
# every symbol libucache-rdma.a
# and libucache-rdma.so define for others carries its layer's prefix
# (ucache_ public; uc_ util, ut_ transport, us_ store and origin, uf_
# fabric), so a program that links the library never meets a clash with a
# name of its own; the only others are the three UCX 1.13 functions that
# transport/ucx_guard.c replaces on purpose.  A file split into objects
# (transport/ucx*.c) shares its internals under these prefixes only.  Its
# header: the one make install copies ($BUILD/include/ucache.h) includes
# no other of ours (status codes, log levels, the devices and token types
# written in) and a C and a C++ program build against it alone, the C one
# run against the .so.
# The layers below the API (util, transport, store, origin) include no
# public header.
# Last line: "N passed, N failed, N skipped".
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
B=${BUILD:-build}
guard='^(ucp_request_send_state_ff|uct_tcp_sockcm_ep_send|uct_tcp_ep_handle_io_err)$'
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
    # names that begin with __ are the compiler's (__odr_asan.* under ASan)
    stray=$(echo "$syms" | grep -Ev "$prefixes" | grep -Ev "$guard" | grep -v '^__' | sort -u)
    if [ "$n" -gt 100 ] && [ -z "$stray" ]; then
        ok "$(basename "$lib"): all $n symbols it defines for others carry a layer prefix (or are the guard's three)"
    else bad "$(basename "$lib"): $n symbols; without a prefix: $(echo $stray)"; fi
done

# the layers below the API include no public header: what they share with
# it (status codes, log levels, the devices and token types) lives with
# them, and the public header includes that
root=$(cd "$here/.." && pwd)
up=$(cd "$root" && grep -ln '#include "ucache\(_mpi\)\?\.h"\|#include <ucache' \
     util/*.[ch] transport/*.[ch] store/*.[ch] origin/*.[ch] 2>/dev/null)
below=$(cd "$root" && ls util/*.[ch] transport/*.[ch] store/*.[ch] origin/*.[ch] | wc -l)
if [ -z "$up" ] && [ "$below" -gt 40 ]; then
    ok "none of the $below files of util/, transport/, store/ and origin/ includes the public header"
else bad "lower-layer files that include the public header: $(echo $up)"; fi

# the header as installed ($B/include/ucache.h, what make install copies),
# alone; linked to the .so and run unless the build is a sanitizer's
D=$(mktemp -d /tmp/ucache-inst.XXXXXX)
trap 'rm -rf "$D"' EXIT
H=$B/include/ucache.h
printf '#include <ucache.h>\n#include <stdio.h>\nint main(void) { puts(ucache_strerror(UCACHE_ERR_PEER)); return ucache_status_name(UCACHE_OK)[0] != %s; }\n' "'U'" >"$D/t.c"
cpp_ok=1; run=""
command -v c++ >/dev/null && { c++ -fsyntax-only -Wall -Werror -x c++ -I"$B/include" "$D/t.c" 2>>"$D/cc.log" || cpp_ok=0; }
if ldd "$B/lib/libucache-rdma.so" 2>/dev/null | grep -q 'libasan\|libtsan'; then
    cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$B/include" "$D/t.c" 2>>"$D/cc.log" && run="built"
else
    # as installed: the .so under its soname
    cp "$B/lib/libucache-rdma.so" "$D/libucache-rdma.so.0" && ln -s libucache-rdma.so.0 "$D/libucache-rdma.so" &&
    cc -std=c11 -Wall -Wextra -Werror -I"$B/include" "$D/t.c" -o "$D/t" -L"$D" -lucache-rdma \
        -Wl,-rpath,"$D" 2>>"$D/cc.log" &&
        [ "$("$D/t")" = "peer unreachable or failed" ] && run="built and run against the .so"
fi
if [ -f "$H" ] && ! grep -q '#include "' "$H" && grep -q 'UCACHE_FOREACH_STATUS(X)' "$H" &&
   [ -n "$run" ] && [ $cpp_ok = 1 ]; then
    ok "the installed ucache.h is one file (status codes, log levels, device and token types written in): a C$(command -v c++ >/dev/null && echo ' and a C++') program against it alone, $run"
else bad "the installed header ($H)"; tail -5 "$D/cc.log" 2>/dev/null; fi
summary
