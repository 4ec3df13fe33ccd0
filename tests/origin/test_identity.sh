#!/usr/bin/env bash
# test_identity.sh - the Azure identities built in (origin/azure_identity.c)
# against a local Entra token endpoint and IMDS that check every exchange
# (tests/origin/token_endpoint.c), reading az:// blobs from the test HTTP
# origin, whose /bearer/ paths answer only "Bearer good-token":
# Azure Workload Identity (the federated token file exchanged, read anew
# when the kubelet rotates it, the token cached and fetched again before it
# expires, inside a daemon that fills for a reader with no identity of its
# own), the managed identity through IMDS, a refused exchange, and the
# order of precedence (a token command wins).  No secret reaches a log.
# Last line: "N passed, N failed, N skipped".
set -u
. "$(dirname "$0")/../lib.sh"
test_setup identity
SRV= TEP=
trap 'stop_all "$W" "${DPIDS[@]}" $SRV $TEP' EXIT

mkdir -p "$W/data/bearer/cont" "$W/nobody"
for i in 1 2 3; do head -c $((1500000 + i)) /dev/urandom >"$W/data/bearer/cont/b$i"; done
$T/http_origin "$W/data" 0 >"$W/origin.port" 2>>"$W/origin.log" &
SRV=$!
wait_for 5 test -s "$W/origin.port"
URL=http://127.0.0.1:$(awk '{print $2}' "$W/origin.port")
printf 'eyJhbGciOiJSUzI1NiJ9.federated-one.sig\n' >"$W/fed"
# tokens live 62 s: fetched again after 2 s (a minute's margin)
$T/token_endpoint 0 tenant-1 client-1 "$W/fed" good-token 62 >"$W/tep.port" 2>>"$W/tep.log" &
TEP=$!
wait_for 5 test -s "$W/tep.port"
TURL=http://127.0.0.1:$(awk '{print $2}' "$W/tep.port")
tstat() { curl -s "$TURL/_ctl/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
export AZURE_STORAGE_CONNECTION_STRING="BlobEndpoint=$URL/bearer;"
# no secret in any log: the federated token, the issued token
no_secret() { ! grep -qE "federated-|good-token" "$@"; }

# --- workload identity: one exchange, exact bytes ------------------------------
wi_env=(AZURE_FEDERATED_TOKEN_FILE="$W/fed" AZURE_CLIENT_ID=client-1
        AZURE_TENANT_ID=tenant-1 AZURE_AUTHORITY_HOST="$TURL/")
if env "${wi_env[@]}" UCACHE_MEMBERS=dir:$W/nobody UCACHE_LOG_LEVEL=debug \
       $BIN/ucache cat az://acct/cont/b1 >"$W/out" 2>"$W/err" &&
   cmp -s "$W/out" "$W/data/bearer/cont/b1" && [ "$(tstat wi)" = 1 ] &&
   [ "$(tstat wi_bad)" = 0 ] && no_secret "$W/err"; then
    ok "workload identity: the federated token exchanged once (checked by the endpoint) for a HEAD and its GETs, exact bytes, no secret in a debug log"
else bad "workload identity (wi $(tstat wi), bad $(tstat wi_bad))"; tail -3 "$W/err"; fi

# --- a refused exchange: access denied, said once, nothing secret --------------
env "${wi_env[@]}" AZURE_CLIENT_ID=client-2 UCACHE_MEMBERS=dir:$W/nobody \
    $BIN/ucache cat az://acct/cont/b1 >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "access denied" "$W/err" &&
   grep -q "answered HTTP 400 (unauthorized_client)" "$W/err" && no_secret "$W/err"; then
    ok "a refused exchange (another client id): 'access denied', the endpoint's error code logged, no secret"
else bad "refused exchange (rc $rc)"; cat "$W/err"; fi

# --- in a daemon: cached, fetched again before expiry, a rotated file ----------
wi0=$(tstat wi)
env "${wi_env[@]}" $BIN/ucached --mem 64M 2>>"$W/d1.log" &
DPIDS+=($!)
wait_registered "$W/members" 1 || bad "the daemon registers"
UCACHE_REPLICAS=1 $BIN/ucache cat az://acct/cont/b2 >"$W/out2" 2>"$W/err"; rc2=$?
n1=$(( $(tstat wi) - wi0 ))
sleep 2.5
# the kubelet rotates the projected token: the next exchange sends the new one
printf 'eyJhbGciOiJSUzI1NiJ9.federated-two.sig\n' >"$W/fed.new" && mv "$W/fed.new" "$W/fed"
UCACHE_REPLICAS=1 $BIN/ucache cat az://acct/cont/b3 >"$W/out3" 2>>"$W/err"; rc3=$?
n2=$(( $(tstat wi) - wi0 ))
if [ $rc2 = 0 ] && [ $rc3 = 0 ] && cmp -s "$W/out2" "$W/data/bearer/cont/b2" &&
   cmp -s "$W/out3" "$W/data/bearer/cont/b3" && [ $n1 = 1 ] && [ $n2 = 2 ] &&
   [ "$(tstat wi_bad)" = 1 ]; then
    ok "a daemon with workload identity fills for readers without one: 1 exchange for the first blob, the 62 s token fetched again 2.5 s later with the rotated federated token (exact bytes)"
else bad "daemon with workload identity (rc $rc2/$rc3, exchanges $n1 then $n2, bad $(tstat wi_bad))"
     tail -3 "$W/err"; tail -3 "$W/d1.log"; fi
stop_daemons
no_secret "$W"/d1.log && ok "the daemon's log holds no secret" || bad "a secret in the daemon's log"

# --- the managed identity through IMDS -----------------------------------------
if UCACHE_IMDS_ENDPOINT="$TURL/metadata/identity/oauth2/token" AZURE_CLIENT_ID=client-1 \
       UCACHE_MEMBERS=dir:$W/nobody $BIN/ucache cat az://acct/cont/b1 >"$W/out" 2>"$W/err" &&
   cmp -s "$W/out" "$W/data/bearer/cont/b1" && [ "$(tstat imds)" = 1 ] &&
   [ "$(tstat imds_bad)" = 0 ]; then
    ok "managed identity: IMDS asked once with 'Metadata: true', the resource and the client id (auto: UCACHE_IMDS_ENDPOINT set), exact bytes"
else bad "IMDS (imds $(tstat imds), bad $(tstat imds_bad))"; tail -3 "$W/err"; fi
UCACHE_AZURE_IDENTITY=imds UCACHE_IMDS_ENDPOINT="$TURL/nothing-here" \
    UCACHE_MEMBERS=dir:$W/nobody $BIN/ucache cat az://acct/cont/b1 >/dev/null 2>"$W/err"; rc=$?
if [ $rc = 1 ] && grep -q "access denied" "$W/err" && grep -q "answered HTTP 404" "$W/err"; then
    ok "IMDS that answers 404: access denied with the endpoint's answer in the log"
else bad "IMDS 404 (rc $rc)"; cat "$W/err"; fi

# --- precedence: a token command comes before the identities -------------------
printf '#!/bin/sh\necho x >>"%s/tok.count"\nprintf "good-token\\n3600\\n"\n' "$W" >"$W/tok.sh"
chmod +x "$W/tok.sh"
wi0=$(tstat wi)
if env "${wi_env[@]}" UCACHE_TOKEN_COMMAND=$W/tok.sh UCACHE_MEMBERS=dir:$W/nobody \
       $BIN/ucache cat az://acct/cont/b1 >"$W/out" 2>"$W/err" &&
   cmp -s "$W/out" "$W/data/bearer/cont/b1" && [ "$(tstat wi)" = "$wi0" ] &&
   [ "$(wc -l <"$W/tok.count")" = 1 ]; then
    ok "UCACHE_TOKEN_COMMAND comes before workload identity: the command ran, no exchange"
else bad "precedence"; tail -3 "$W/err"; fi
summary
