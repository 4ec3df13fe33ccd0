/*
 * fake_owner.c - a misbehaving fabric member for test_fabric.sh: it joins a
 * dir: source like ucached but answers every FETCH wrongly (MODE):
 *   short    reply metadata too short for a FETCH reply
 *   length   a well-formed reply whose length is not the chunk's
 *   corrupt  a well-formed reply with header and payload that fail the
 *            checksum (what a torn or forged chunk looks like)
 *   old      a node of before tagged ADMIN counters: it refuses a request
 *            asking for them (UCACHE_ERR_INVALID, as its check did) and
 *            answers with 43 positional counters (fetches_served 4242,
 *            fills 17): the admin tools must ask again and read them
 * A raw FETCH (region bytes) is answered one byte short in every mode.
 * With MODE "client" it is instead a misbehaving reader: it sends malformed
 * FETCH requests to every member and expects an error reply for each.
 * Runs until SIGTERM (owner modes); prints "ready" once registered.
 */
#include "fabric/fabric.h"
#include "util/log.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *mode;
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void bad_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    static char junk[8u << 20];
    uf_fetch_req_t req;
    uf_fetch_rep_t rep;
    const char *uri;
    uf_fetch_span_t span;
    uf_fetch_raw_t raw;
    uint32_t n;

    (void)arg;
    memset(&rep, 0, sizeof(rep));
    if (uf_fetch_req_check(msg, len, &req, &uri, &span, &raw) != UCACHE_OK) {
        ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
        return;
    }
    if (req.flags & UF_FETCH_RAW) {
        memset(junk, 0x5a, sizeof(junk));
        ut_rpc_reply(rpc, UCACHE_OK, NULL, 0, junk,
                     (raw.len - 1 < sizeof(junk)) ? raw.len - 1 : sizeof(junk), 0);
        return;
    }
    n = (uint32_t)((req.obj_size - req.chunk_idx * req.chunk_size < req.chunk_size) ?
                   req.obj_size - req.chunk_idx * req.chunk_size : req.chunk_size);
    rep.version = 5;
    rep.hdr_off = 4096;
    rep.how     = UF_HOW_HIT;
    if (strcmp(mode, "short") == 0) {
        ut_rpc_reply(rpc, UCACHE_OK, &rep, 3, NULL, 0, 0);
    } else if (strcmp(mode, "length") == 0) {
        rep.length = n + 1;
        ut_rpc_reply(rpc, UCACHE_OK, &rep, sizeof(rep), NULL, 0, 0);
    } else {
        rep.length       = n;
        rep.hdr.magic    = US_CHUNK_MAGIC;
        rep.hdr.key_hi   = req.key_hi;
        rep.hdr.key_lo   = req.key_lo;
        rep.hdr.version  = rep.version;
        rep.hdr.length   = n;
        rep.hdr.checksum = 42;
        memset(junk, 0x5a, n);
        /* as much as was asked: a part's segment table and span, or all */
        ut_rpc_reply(rpc, UCACHE_OK, &rep, sizeof(rep),
                     (req.flags & UF_FETCH_DATA) ? junk : NULL,
                     !(req.flags & UF_FETCH_DATA) ? 0 :
                     (req.flags & UF_FETCH_SPAN) ? us_chunk_table_bytes(n) + span.len : n, 0);
    }
}

/* ADMIN as a node of before tagged counters answered it. */
static void old_admin_handler(void *arg, ut_rpc_t *rpc, const void *msg, size_t len)
{
    struct {
        uf_admin_msg_t hdr;
        uint64_t       v[43];          /* tags 1 .. 43, in order */
    } rep;
    uf_admin_msg_t req;

    (void)arg;
    if ((len != sizeof(req)) || (memcpy(&req, msg, sizeof(req)), req.count > UF_ADMIN_UNDRAIN)) {
        ut_rpc_reply(rpc, UCACHE_ERR_INVALID, NULL, 0, NULL, 0, 0);
        return;
    }
    memset(&rep, 0, sizeof(rep));
    rep.hdr.magic   = UF_PROTO_MAGIC;
    rep.hdr.version = UF_PROTO_VERSION;
    rep.hdr.count   = 43;
    rep.v[24]       = 4242;            /* fetches_served (tag 25) */
    rep.v[25]       = 17;              /* fills (tag 26) */
    ut_rpc_reply(rpc, UCACHE_OK, NULL, 0, &rep, sizeof(rep), 0);
}

/* Send malformed FETCH, ADMIN and TOUCH requests to every member, and a
 * well-formed FETCH of a file no owner's UCACHE_ALLOW allows: each must be
 * refused, the last with UCACHE_ERR_REFUSED.  Then raw FETCHes of region
 * bytes: one with other flags too (refused) and one past the region's end
 * (UCACHE_ERR_OUT_OF_RANGE), both counted; and one of its first 64 bytes,
 * answered with exactly those.  Last, a FETCH of another protocol version
 * (a reader of another release): UCACHE_ERR_PROTOCOL, counted. */
static int bad_client(ut_ctx_t *tr, uf_member_t *v, uint32_t n)
{
    uint8_t msg[256], data[64];
    uf_fetch_req_t req;
    ut_peer_t *peer;
    ut_req_t r;
    uint32_t i;
    int fails = 0, k;

    for (i = 0; i < n; i++) {
        if (ut_peer_create(tr, v[i].addr, v[i].addr_len, &peer) != UCACHE_OK) {
            fails++;
            continue;
        }
        for (k = 0; k < 11; k++) {
            us_object_t obj = { .size = 100, .version = 1 };
            us_key_t key = uf_chunk_key("file:///etc/hosts", &obj, 0, 4096);
            ucache_status_t want = UCACHE_ERR_INVALID;
            unsigned rpc = UF_RPC_FETCH;

            memset(&req, 0, sizeof(req));
            req.magic = UF_PROTO_MAGIC;
            req.version = UF_PROTO_VERSION;
            req.obj_size = 100;
            req.obj_version = 1;
            req.chunk_size = 4096;
            req.uri_len = 17;
            /* the key is right for the URI in every case but 3, so each
             * malformed request is refused for what it is built to test */
            req.key_hi = key.hi;
            req.key_lo = key.lo;
            if (k == 3) {
                req.key_lo ^= 1;             /* key does not match the URI */
            } else if (k == 6) {             /* well formed: a file it may not read */
                want = UCACHE_ERR_REFUSED;
            }
            memcpy(msg, &req, sizeof(req));
            memcpy(msg + sizeof(req), "file:///etc/hosts", 17);
            size_t len = sizeof(req) + 17;
            if (k == 0) {
                msg[0] ^= 1;                 /* bad magic */
            } else if (k == 1) {
                len = 5;                     /* truncated */
            } else if (k == 2) {
                len -= 3;                    /* uri shorter than it says */
            } else if (k == 4) {
                rpc = UF_RPC_ADMIN;          /* a zero-length ADMIN request */
                len = 0;
            } else if (k == 5) {
                rpc = UF_RPC_TOUCH;          /* a zero-length TOUCH request */
                len = 0;
            } else if (k == 10) {            /* a reader of another release */
                req.version = UF_PROTO_VERSION + 1;
                memcpy(msg, &req, sizeof(req));
                want = UCACHE_ERR_PROTOCOL;
            } else if (k >= 7) {             /* raw: region bytes */
                uf_fetch_raw_build(msg, (k == 8) ? (1ull << 40) : 0, 64);
                len = UF_FETCH_RAW_MSG;
                want = (k == 7) ? UCACHE_ERR_INVALID :
                       (k == 8) ? UCACHE_ERR_OUT_OF_RANGE : UCACHE_OK;
                if (k == 7) {
                    msg[offsetof(uf_fetch_req_t, flags)] |= UF_FETCH_DATA;
                }
            }
            ut_rpc_post(&r, peer, rpc, (len > 0) ? msg : NULL, len, NULL, 0, data,
                        sizeof(data));
            ut_wait(tr, &r, 1, 5000000000ull);
            if ((r.status != want) || ((k == 9) && (r.length != 64))) {
                fprintf(stderr, "malformed request %d to %s: %s, want %s\n", k, v[i].host,
                        ucache_status_name(r.status), ucache_status_name(want));
                fails++;
            }
        }
        ut_peer_destroy(peer);
    }
    printf("malformed requests refused by %u members (%d failures)\n", n, fails);
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    ut_params_t tp = { .field_mask = UT_PARAM_FIELD_PROGRESS,
                       .progress = UC_PROGRESS_THREAD };
    const void *blob;
    uf_member_t m, *v;
    uint64_t epoch, bad;
    ut_mem_t *mem;
    ut_ctx_t *tr;
    uint32_t n;
    size_t len;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: fake_owner short|length|corrupt|old|client MEMBERS_DIR\n");
        return 2;
    }
    mode = argv[1];
    if (ut_ctx_create(NULL, &tp, &tr) != UCACHE_OK) {
        return 1;
    }
    if (strcmp(mode, "client") == 0) {
        if (uf_dir_scan(argv[2], &v, &n, &epoch, &bad) != UCACHE_OK) {
            return 1;
        }
        rc = bad_client(tr, v, n);
        uf_members_free(v, n);
        ut_ctx_destroy(tr);
        return rc;
    }
    if ((ut_mem_export(tr, 1u << 20, &mem) != UCACHE_OK) ||
        (ut_rpc_handler_set(tr, UF_RPC_FETCH, bad_handler, NULL) != UCACHE_OK) ||
        ((strcmp(mode, "old") == 0) &&
         (ut_rpc_handler_set(tr, UF_RPC_ADMIN, old_admin_handler, NULL) != UCACHE_OK))) {
        return 1;
    }
    memset(&m, 0, sizeof(m));
    m.id = 0xbad0000000000000ull | (uint64_t)getpid();
    m.weight = 8; /* most slots: it owns some chunk of any dataset the test reads */
    m.pid = (uint32_t)getpid();
    gethostname(m.host, sizeof(m.host) - 1);
    ut_address(tr, &blob, &len);
    m.addr = (void *)blob;
    m.addr_len = len;
    ut_mem_pack(mem, &blob, &len);
    m.rkey = (void *)blob;
    m.rkey_len = len;
    if (uf_dir_register(argv[2], &m, 0) != UCACHE_OK) {
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        usleep(100000);
        if (uf_dir_heartbeat(argv[2], m.id, 0) == UCACHE_ERR_NOT_FOUND) {
            break;
        }
    }
    uf_dir_unregister(argv[2], m.id);
    ut_mem_destroy(mem);
    ut_ctx_destroy(tr);
    return 0;
}
