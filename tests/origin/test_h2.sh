#!/usr/bin/env bash
# test_h2.sh - https:// origins over HTTP/2, and large chunks fetched as
# parallel ranged GETs: a TLS origin the test starts on 127.0.0.1
# (tests/origin/h2_origin.js, node's http2 module, a self-signed CA made
# here and given with UCACHE_ORIGIN_CA) serves objects to three ucached
# daemons that split each 1 MiB chunk into 256 KiB ranges
# (UCACHE_ORIGIN_PART); every byte compared, every request HTTP/2, the
# ranges of a chunk multiplexed on one connection; 503s on some ranges are
# retried alone; without the CA the TLS error is clear and not retried.
# SKIP (counted) without node or openssl.  Last line: "N passed, ...".
set -u
. "$(dirname "$0")/../lib.sh"
if ! command -v node >/dev/null || ! command -v openssl >/dev/null; then
    skp_dep "HTTP/2 origin" "node or openssl is not installed (make deps installs them)"
    summary; exit
fi
test_setup h2
SRV=
trap 'stop_all "$W" "${DPIDS[@]}" $SRV' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
mkdir -p "$W/data"
head -c 1 /dev/urandom >"$W/data/one"
head -c 700000 /dev/urandom >"$W/data/small"
head -c 4194304 /dev/urandom >"$W/data/four"
head -c 5767171 /dev/urandom >"$W/data/odd"
FILES="$W/data/one $W/data/small $W/data/four $W/data/odd"
node "$(dirname "$0")/h2_origin.js" 0 "$W/data" "$W/key.pem" "$W/cert.pem" >"$W/port" 2>"$W/h2.log" &
SRV=$!
wait_for 5 test -s "$W/port"
URL=https://127.0.0.1:$(awk '{print $2}' "$W/port")
hstat() { curl -s --cacert "$W/cert.pem" "$URL/_ctl/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

export UCACHE_ORIGIN_CA=$W/cert.pem UCACHE_ORIGIN_PART=256K
start_daemons 3 64M

export FC_ORIGIN=$URL FC_ROOT=$W/data
if $T/fabric_client verify 150 $FILES >"$W/v1" 2>&1 && [ "$(client_stat "$W/v1" origin_direct)" = 0 ]; then
    ok "https + HTTP/2 origin (private CA): 150 random reads + 8 posted through 3 owners equal the files"
else bad "HTTP/2 reads"; tail -5 "$W/v1"; cat "$W/h2.log"; fi
chunks=0
for f in $FILES; do s=$(stat -c %s "$f"); chunks=$((chunks + (s + 1048575) / 1048576)); done
h1=$(hstat h1); h2=$(hstat h2); gets=$(hstat gets); ms=$(hstat max_streams); sess=$(hstat sessions)
if [ "$h1" = 0 ] && [ "$h2" -gt 0 ] && [ "$gets" -ge $((chunks * 3)) ] && [ "$ms" -ge 2 ]; then
    ok "every request HTTP/2 ($h2); $chunks chunks fetched as $gets ranged GETs of <= 256 KiB, up to $ms streams at once on one of $sess connections"
else bad "HTTP/2 and parallel ranges (h1 $h1, h2 $h2, $gets GETs for $chunks chunks, max streams $ms)"; fi

# 503 on two ranges of a chunk: those two are retried, the bytes exact
head -c 1048576 /dev/urandom >"$W/data/flaky"
f0=$(hstat faults)
curl -s --cacert "$W/cert.pem" "$URL/_ctl/fail?n=3&code=503" >/dev/null
if $BIN/ucache cat "$URL/flaky" >"$W/out" 2>"$W/err" && cmp -s "$W/out" "$W/data/flaky" &&
   [ $(( $(hstat faults) - f0 )) = 3 ]; then
    ok "503 on a HEAD and two of four parallel ranges: retried, exact bytes"
else bad "503 on ranges"; cat "$W/err"; fi

g0=$(hstat gets)
UCACHE_META=local UCACHE_ORIGIN_CA= $BIN/ucache cat "$URL/small" >"$W/out" 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -qi "certificate\|SSL" "$W/err" && [ "$(hstat gets)" = "$g0" ]; then
    ok "without the CA: '$(grep -oi 'SSL[^:]*\|certificate[^:]*' "$W/err" | head -1)', rc 1, no retries"
else bad "TLS verification (rc $rc)"; cat "$W/err"; fi

stop_daemons
summary
