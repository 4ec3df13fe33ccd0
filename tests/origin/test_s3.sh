#!/usr/bin/env bash
# test_s3.sh - s3:// origins against an S3-compatible server that checks
# SigV4 signatures (npm @20minutes/s3rver, installed by make deps into
# build/npm), started on 127.0.0.1: objects of several sizes uploaded with
# curl --aws-sigv4, then read through three ucached daemons with our SigV4
# (path-style, AWS_ENDPOINT_URL), every byte compared; the same from the
# ucache credentials file and from ~/.aws files of a profile; a rewritten
# object returns its new bytes; a wrong secret gives UCACHE_ERR_DENIED at
# once (no retries) and is never logged.  SKIP (counted) if the server is
# not installed.  Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
NPM=${NPM:-build/npm}
if [ ! -d "$NPM/node_modules/@20minutes/s3rver" ] || ! command -v node >/dev/null; then
    skp_dep "S3 through s3rver" "the S3 test server is not installed ($NPM; make deps installs it with npm)"
    summary; exit
fi
test_setup s3
export UCACHE_META_TTL=200ms UCACHE_CREDENTIALS=$W/none HOME=$W
S3=
trap 'stop_all "$W" "${DPIDS[@]}" $S3' EXIT

for try in $(seq 10); do
    port=$((20000 + RANDOM % 12000))   # below the ephemeral range
    mkdir -p "$W/s3"
    # the legacy provider: s3rver's continuation tokens use DES, which
    # OpenSSL 3 leaves out by default
    NODE_PATH=$NPM/node_modules node --openssl-legacy-provider "$(dirname "$0")/s3rver.js" \
        $port "$W/s3" data \
        >"$W/s3.log" 2>&1 &
    S3=$!
    # ready, or gone (a port someone took): then another port
    s3_settled() { grep -q ready "$W/s3.log" || ! kill -0 $S3 2>/dev/null; }
    wait_for 10 s3_settled
    grep -q ready "$W/s3.log" && break
done
EP=http://127.0.0.1:$port
S3AUTH=(--aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
put() { curl -sf -o /dev/null "${S3AUTH[@]}" -T "$1" "$EP/data/$2"; }
s3gets() { grep -c "GET /data/$1" "$W/s3.log"; }

mkdir -p "$W/data/dir"
head -c 1 /dev/urandom >"$W/data/one"
head -c 200000 /dev/urandom >"$W/data/small"
head -c 1048576 /dev/urandom >"$W/data/chunk"
head -c 3145731 /dev/urandom >"$W/data/three"
head -c 5000 /dev/urandom >"$W/data/dir/a b+c"
FILES="$W/data/one $W/data/small $W/data/chunk $W/data/three"
for f in one small chunk three; do put "$W/data/$f" $f || bad "upload $f"; done
put "$W/data/dir/a b+c" "dir/a%20b%2Bc" || bad "upload 'dir/a b+c'"

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=$EP
start_daemons 3 64M

export FC_ORIGIN=s3://data FC_ROOT=$W/data
if $T/fabric_client verify 150 $FILES >"$W/v1" 2>&1 &&
   [ "$(client_stat "$W/v1" origin_direct)" = 0 ] && [ "$(client_stat "$W/v1" chunk_misses)" -gt 0 ] &&
   ! grep -q SignatureDoesNotMatch "$W/s3.log"; then
    ok "S3 SigV4 (s3:// path-style): 150 random reads + 8 posted through 3 owners equal the objects"
else bad "S3 SigV4 reads"; tail -5 "$W/v1"; grep -m3 -i "error\|403" "$W/s3.log"; fi

if $BIN/ucache cat "s3://data/dir/a b+c" >"$W/out" 2>"$W/err" && cmp -s "$W/out" "$W/data/dir/a b+c"; then
    ok "a key with a space, '+' and '/' is encoded and signed right"
else bad "key encoding"; cat "$W/err"; fi

# a prefix listed with ListObjectsV2, 2 keys a page, and warmed
# (UCACHE_META=local: this process lists, in its pages, not the prefix's owner)
UCACHE_META=local UCACHE_LIST_PAGE=2 $BIN/ucache warmup --json s3://data/ >"$W/w1" 2>"$W/e1"; rc=$?
if [ $rc = 0 ] && grep -q '"objects":5,' "$W/w1" && grep -q '"ok":true' "$W/w1" &&
   [ "$(grep -c 'list-type=2' "$W/s3.log")" -ge 3 ]; then
    ok "warmup s3://data/: ListObjectsV2 in pages of 2 finds the 5 objects, all warm ($(grep -o '"chunks":[0-9]*' "$W/w1"))"
else bad "S3 listing + warmup (rc $rc)"; cat "$W/w1" "$W/e1"; fi
UCACHE_LIST_PAGE=2 $BIN/ucache read --epochs 1 s3://data/dir/ s3://data/three >"$W/r1" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "(100%)" "$W/r1"; then
    ok "ucache read of a listed S3 prefix after warmup: 100% hits"
else bad "S3 read after warmup (rc $rc)"; cat "$W/r1"; fi

# the credentials file, then ~/.aws of a profile, instead of the environment
printf 'AWS_ACCESS_KEY_ID = S3RVER\nAWS_SECRET_ACCESS_KEY = S3RVER\nAWS_ENDPOINT_URL = %s\n' "$EP" >"$W/cred"
chmod 600 "$W/cred"
if env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL UCACHE_CREDENTIALS=$W/cred \
       $BIN/ucache cat s3://data/small >"$W/out" 2>"$W/err" && cmp -s "$W/out" "$W/data/small"; then
    ok "credentials from the ucache credentials file (UCACHE_CREDENTIALS)"
else bad "credentials file"; cat "$W/err"; fi
mkdir -p "$W/.aws"
printf '[train]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$W/.aws/credentials"
printf '[profile train]\nregion = us-east-1\nendpoint_url = %s\n' "$EP" >"$W/.aws/config"
if env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL AWS_PROFILE=train \
       $BIN/ucache cat s3://data/chunk >"$W/out" 2>"$W/err" && cmp -s "$W/out" "$W/data/chunk"; then
    ok "credentials from ~/.aws/credentials and ~/.aws/config (AWS_PROFILE=train)"
else bad "~/.aws files"; cat "$W/err"; fi

# a rewritten object: the new bytes, never the old chunks
$BIN/ucache cat s3://data/three >/dev/null 2>&1
head -c 2097152 /dev/urandom >"$W/data/three2"
put "$W/data/three2" three
# (UCACHE_META_TTL=0: no answer older than now - the owner asks the origin again)
if UCACHE_META_TTL=0 $BIN/ucache cat s3://data/three >"$W/out" 2>"$W/err" &&
   cmp -s "$W/out" "$W/data/three2"; then
    ok "an object rewritten at the origin: the new 2 MiB read exact, not the cached 3 MiB"
else bad "rewritten object"; cat "$W/err"; fi

# a wrong secret: 403 at once, no retry storm, the secret never logged
before=$(grep -c " 403 " "$W/s3.log")
# (UCACHE_META=local: the reader asks the origin with its own secret; through
# the owners it would need none - the cluster key is the access, security.md)
UCACHE_META=local AWS_SECRET_ACCESS_KEY=WRONGSECRETxyz $BIN/ucache cat s3://data/one \
    >/dev/null 2>"$W/err"; rc=$?
more_403() { [ "$(grep -c " 403 " "$W/s3.log")" -gt "$before" ]; }
wait_for 5 more_403       # the server logs its answers as it goes
n403=$(( $(grep -c " 403 " "$W/s3.log") - before ))
if [ $rc = 1 ] && grep -q "access denied" "$W/err" && ! grep -q WRONGSECRET "$W/err" && [ "$n403" -le 2 ]; then
    ok "a wrong secret: 'access denied by the origin' after $n403 refused request(s), never logged"
else bad "wrong secret (rc $rc, $n403 refusals)"; cat "$W/err"; fi

stop_daemons
summary
