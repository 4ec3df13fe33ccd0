/*
 * replayer.c - an attacker with a copy of the fabric's traffic, for
 * test_fabric.sh (issue [3/11]).  For every member of a dir: source it
 * sends, signed with the cluster key, one FETCH (of FILE_URI), one TOUCH,
 * one ADMIN (the counters) and one HELLO - each answered - then sends each
 * again byte for byte (a replay), then an unsigned copy of each: the
 * member must refuse those eight, which the test reads from its
 * auth_failures counter (their answers come back to requests that are no
 * longer waiting).  Prints one line per member: the first answers.
 * Built with the UCX backend's source to reach its wire format.
 */
#include "fabric/fabric.h"
#include "transport/ucx_int.h"
#include "tests/transport/ucx_raw.h"

#include <stdio.h>


int main(int argc, char **argv)
{
    static uint8_t data[1u << 20];
    uint8_t meta[UT_RPC_META_MAX], fetch[512], touch[64];
    us_object_t obj = { 0 };
    const char *uri;
    uf_fetch_req_t fr;
    uf_touch_req_t tq;
    uf_admin_msg_t am = { .magic = UF_PROTO_MAGIC, .version = UF_PROTO_VERSION,
                          .count = UF_ADMIN_STATS };
    struct op { unsigned id; const void *msg; size_t len; const char *name; } ops[4];
    uf_member_t *v;
    uint64_t epoch, bad;
    ut_am_req_hdr hdr;
    ut_peer_t *peer;
    ut_ctx_t *tr;
    ut_req_t r;
    us_key_t key;
    uint32_t n, i, k;
    int fails = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: replayer MEMBERS_DIR FILE_URI SIZE MTIME_VERSION\n");
        return 2;
    }
    uri = argv[2];
    obj.size    = strtoull(argv[3], NULL, 10);
    obj.version = strtoull(argv[4], NULL, 10);
    key = uf_chunk_key(uri, &obj, 0, 1u << 20);
    memset(&fr, 0, sizeof(fr));
    fr.magic = UF_PROTO_MAGIC;
    fr.version = UF_PROTO_VERSION;
    fr.key_hi = key.hi;
    fr.key_lo = key.lo;
    fr.obj_size = obj.size;
    fr.obj_version = obj.version;
    fr.chunk_size = 1u << 20;
    fr.uri_len = (uint16_t)strlen(uri);
    memcpy(fetch, &fr, sizeof(fr));
    memcpy(fetch + sizeof(fr), uri, fr.uri_len);
    memset(&tq, 0, sizeof(tq));
    tq.magic = UF_PROTO_MAGIC;
    tq.version = UF_PROTO_VERSION;
    tq.count = 1;
    tq.weight = 1;
    memcpy(touch, &tq, sizeof(tq));
    memcpy(touch + sizeof(tq), &key, sizeof(key));
    ops[0] = (struct op){ UF_RPC_FETCH, fetch, sizeof(fr) + fr.uri_len, "FETCH" };
    ops[1] = (struct op){ UF_RPC_TOUCH, touch, sizeof(tq) + sizeof(key), "TOUCH" };
    ops[2] = (struct op){ UF_RPC_ADMIN, &am, sizeof(am), "ADMIN" };
    ops[3] = (struct op){ UF_RPC_HELLO, NULL, 0, "HELLO" };

    if ((ut_ctx_create(NULL, NULL, &tr) != UCACHE_OK) ||
        (uf_dir_scan(argv[1], &v, &n, &epoch, &bad) != UCACHE_OK)) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (ut_peer_create(tr, v[i].addr, v[i].addr_len, &peer) != UCACHE_OK) {
            fails++;
            continue;
        }
        printf("%016llx:", (unsigned long long)v[i].id);
        for (k = 0; k < 4; k++) {
            ut_rpc_post_timeout(&r, peer, ops[k].id, ops[k].msg, ops[k].len, meta,
                                sizeof(meta), data, sizeof(data), 10 * UC_NSEC_PER_SEC);
            ut_wait(tr, &r, 1, 10 * UC_NSEC_PER_SEC);
            printf(" %s %s", ops[k].name, ucache_status_name(r.status));
            fails += (r.status == UCACHE_ERR_AUTH) || (r.status == UCACHE_INPROGRESS);
            memcpy(&hdr, r.priv.wire, sizeof(hdr));        /* what went on the wire */
            raw_send(tr, (ut_ucx_peer_t *)peer, &hdr, ops[k].msg, ops[k].len);  /* replay */
            hdr.id ^= 1;                                   /* and unsigned */
            memset(&hdr.auth, 0, sizeof(hdr.auth));
            raw_send(tr, (ut_ucx_peer_t *)peer, &hdr, ops[k].msg, ops[k].len);
        }
        printf("\n");
        for (k = 0; k < 100; k++) {       /* take in the refusals (late replies) */
            ut_progress(tr);
            usleep(1000);
        }
        ut_peer_destroy(peer);
    }
    uf_members_free(v, n);
    ut_ctx_destroy(tr);
    return fails ? 1 : 0;
}
