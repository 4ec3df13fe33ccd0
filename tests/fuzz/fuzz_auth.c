/*
 * fuzz_auth.c - the signature check every request passes first
 * (transport/auth.c), as a keyed node sees requests from anyone.  Input: a
 * flags byte, a request header as the UCX backend frames one (magic, op,
 * id, sender, tag), then the payload.  With flag 1 the header is signed
 * with the node's own cluster key over whatever tag the input holds (so the
 * checks past the MAC - receiver, time window, sequence - are reached);
 * flag 2 allows a tag addressed to no one (a PING).  Properties: an accepted
 * request was signed with a key the node holds, has the matching role, is
 * addressed to the node (or to no one where that is allowed), lies inside
 * the time window, and the same bytes are refused when they come again.
 */
#include "transport/auth.h"
#include "transport/wire.h"
#include "tests/fuzz/fuzz.h"
#include "util/time.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef ut_am_req_hdr fz_req_t;   /* as the UCX backend frames a request */

#define FZ_SELF 0x0123456789abcdefull

static ut_auth_t *node;
static uc_mac_t *signer;

static void fz_setup(void)
{
    static const char key[UC_KEY_LEN] = "fuzzing key of 32 bytes, no more";
    char path[] = "/tmp/ucache-fuzz-auth.XXXXXX";
    ut_config_t cfg;
    uc_key_t k;
    int fd;

    fd = mkstemp(path);
    FZ_CHECK((fd >= 0) && (write(fd, key, sizeof(key)) == (ssize_t)sizeof(key)));
    close(fd);
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_window_ns = 30 * UC_NSEC_PER_SEC;
    snprintf(cfg.cluster_key_file, sizeof(cfg.cluster_key_file), "%s", path);
    FZ_CHECK(ut_auth_create(&cfg, &node) == UCACHE_OK);
    FZ_CHECK(uc_key_load(path, &k) == UCACHE_OK);
    FZ_CHECK(uc_mac_create(&k, &signer) == UCACHE_OK);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ut_role_t role = UT_ROLE_NONE;
    const uint8_t *payload;
    struct timespec now;
    uint64_t now_ns, skew;
    fz_req_t req;
    size_t len;
    bool any_to;

    fz_quiet();
    if (node == NULL) {
        fz_setup();
    }
    if (size < 1 + sizeof(req)) {
        return 0;
    }
    memcpy(&req, data + 1, sizeof(req));
    payload = data + 1 + sizeof(req);
    len     = size - 1 - sizeof(req);
    any_to  = (data[0] & 2) != 0;
    if (data[0] & 1) {
        memset(req.auth.mac, 0, sizeof(req.auth.mac));
        FZ_CHECK(uc_mac_compute(signer, &req, sizeof(req), payload, len, req.auth.mac) ==
                 UCACHE_OK);
    }
    if (data[0] & 4) {   /* a fresh timestamp, to reach the sequence window */
        clock_gettime(CLOCK_REALTIME, &now);
        req.auth.ts_ns = (uint64_t)now.tv_sec * UC_NSEC_PER_SEC + (uint64_t)now.tv_nsec;
        memset(req.auth.mac, 0, sizeof(req.auth.mac));
        FZ_CHECK(uc_mac_compute(signer, &req, sizeof(req), payload, len, req.auth.mac) ==
                 UCACHE_OK);
    }
    if (ut_auth_check(node, &req, sizeof(req), offsetof(fz_req_t, auth), req.from, FZ_SELF,
                      any_to, payload, len, &role) != UCACHE_OK) {
        return 0;
    }
    FZ_CHECK(req.auth.key_id == UT_KEY_CLUSTER);   /* the only key it holds */
    FZ_CHECK(role == UT_ROLE_READER);
    FZ_CHECK((req.auth.to == FZ_SELF) || (any_to && (req.auth.to == 0)));
    clock_gettime(CLOCK_REALTIME, &now);
    now_ns = (uint64_t)now.tv_sec * UC_NSEC_PER_SEC + (uint64_t)now.tv_nsec;
    skew = (now_ns > req.auth.ts_ns) ? now_ns - req.auth.ts_ns : req.auth.ts_ns - now_ns;
    FZ_CHECK(skew <= 31 * UC_NSEC_PER_SEC);
    FZ_CHECK(ut_auth_check(node, &req, sizeof(req), offsetof(fz_req_t, auth), req.from,
                           FZ_SELF, any_to, payload, len, &role) == UCACHE_ERR_AUTH);
    return 0;
}
