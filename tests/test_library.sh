#!/usr/bin/env bash
# test_library.sh - the library as a program gets it.  Its namespace:
# every symbol libucache-rdma.a
# and libucache-rdma.so define for others carries its layer's prefix
# (ucache_ public; uc_ util, ut_ transport, us_ store and origin, uf_
# fabric), so a program that links the library never meets a clash with a
# name of its own; the only others are the two UCX 1.13 functions that
# transport/ucx_guard.c replaces on purpose.  A file split into objects
# (transport/ucx*.c) shares its internals under these prefixes only.  Its
# header: `make install` into a scratch DESTDIR gives one ucache.h (the
# status codes of util/status.h written in) that a C and a C++ program
# build against alone, and the program runs against the installed .so.
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
if [ -f "$H" ] && ! grep -q 'util/status.h"' "$H" && grep -q 'UCACHE_FOREACH_STATUS(X)' "$H" &&
   [ -n "$run" ] && [ $cpp_ok = 1 ]; then
    ok "the installed ucache.h is one file (status codes written in): a C$(command -v c++ >/dev/null && echo ' and a C++') program against it alone, $run"
else bad "the installed header ($H)"; tail -5 "$D/cc.log" 2>/dev/null; fi
summary
