#!/usr/bin/env bash
# test_azure.sh - Azure Blob origins against the Azurite emulator (npm
# package azurite, installed by make deps into build/npm), started on
# 127.0.0.1 with its well-known development account: blobs of several sizes
# uploaded (tests/origin/az_put.c), then read through three ucached daemons
# with Shared Key (az:// URIs) and with an account SAS, every byte compared;
# a wrong key gives UCACHE_ERR_DENIED at once.  SKIP (counted) if Azurite
# is not installed.  Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup azure
AZ=
trap 'stop_all "$W" "${DPIDS[@]}" $AZ' EXIT
if ! start_azurite; then
    skp_dep "Azure Blob through Azurite" "Azurite is not installed (make deps installs it with npm)"
    summary; exit
fi
KEY=$AZ_KEY

mkdir -p "$W/data"
head -c 1 /dev/urandom >"$W/data/one"
head -c 200000 /dev/urandom >"$W/data/small"
head -c 1048576 /dev/urandom >"$W/data/chunk"
head -c 3145731 /dev/urandom >"$W/data/three"
FILES="$W/data/one $W/data/small $W/data/chunk $W/data/three"
if ! $T/az_put data $FILES >"$W/put.log" 2>&1; then
    bad "upload the test blobs to Azurite"; cat "$W/put.log" "$W/azurite.log" | tail -5
    summary; exit 1
fi
start_daemons 3 64M

export FC_ORIGIN=az://$ACCT/data FC_ROOT=$W/data
if $T/fabric_client verify 150 $FILES >"$W/v1" 2>&1 &&
   [ "$(client_stat "$W/v1" origin_direct)" = 0 ]; then
    ok "Azure Shared Key (az:// URIs): 150 random reads + 8 posted through 3 owners equal the blobs"
else bad "Azure Shared Key reads"; tail -5 "$W/v1"; fi

UCACHE_LIST_PAGE=2 $BIN/ucache warmup --json "az://$ACCT/data/" >"$W/w1" 2>"$W/e1"; rc=$?
if [ $rc = 0 ] && grep -q '"objects":4,' "$W/w1" && grep -q '"ok":true' "$W/w1"; then
    ok "warmup az://$ACCT/data/: List Blobs in pages of 2 finds the 4 blobs, all warm ($(grep -o '"chunks":[0-9]*' "$W/w1"))"
else bad "Azure listing + warmup (rc $rc)"; cat "$W/w1" "$W/e1"; fi
if $T/fabric_client verify 50 $FILES >"$W/v2" 2>&1 && [ "$(client_stat "$W/v2" chunk_misses)" = 0 ]; then
    ok "after warmup: 50 random reads of the blobs, all hits, exact"
else bad "Azure reads after warmup"; tail -3 "$W/v2"; fi

SAS=$($T/az_put --sas)
if [ -n "$SAS" ] &&
   AZURE_STORAGE_CONNECTION_STRING="BlobEndpoint=$EP;SharedAccessSignature=$SAS" \
       $BIN/ucache cat "az://$ACCT/data/three" >"$W/out" 2>"$W/err" &&
   cmp -s "$W/out" "$W/data/three"; then
    ok "Azure SAS token (no key): a 3 MiB blob reads exact"
else bad "Azure SAS reads"; cat "$W/err"; fi
if $BIN/ucache cat "az://$ACCT/data/small?$SAS" >"$W/out" 2>"$W/err" &&
   cmp -s "$W/out" "$W/data/small" && ! grep -q "sig=" "$W/err"; then
    ok "a SAS in the URI's query: exact bytes, the token never logged"
else bad "SAS in the URI"; cat "$W/err"; fi

BAD="AAAA${KEY:4}"
# (UCACHE_META=local: the reader asks the origin with its own key; through
# the owners it would need none - the cluster key is the access, security.md)
UCACHE_META=local AZURE_STORAGE_CONNECTION_STRING="AccountName=$ACCT;AccountKey=$BAD;BlobEndpoint=$EP;" \
    $BIN/ucache cat "az://$ACCT/data/one" >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "access denied" "$W/err" && ! grep -q "$BAD" "$W/err"; then
    ok "a wrong account key: 'access denied by the origin', the key never logged"
else bad "wrong key (rc $rc)"; cat "$W/err"; fi

stop_daemons
summary
