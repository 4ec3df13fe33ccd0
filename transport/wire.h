/*
 * wire.h - the transport backends' wire formats (all little-endian, this
 * host's layout; versioned by magic): the bodies of their self-checking
 * address and key blobs, and the headers of their requests and replies -
 * active messages in the UCX backend (transport/ucx*.c), messages and
 * tagged messages in the libfabric one (transport/ofi*.c); each backend
 * has its own blob magics, so a blob of one is refused by the other.  The
 * tests and fuzz targets that forge or replay messages use them from here.
 */
#ifndef UT_WIRE_H
#define UT_WIRE_H

#include "transport/auth.h"
#include "transport/mapfd.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UT_ADDR_MAGIC     0x44414355u /* "UCAD" */
#define UT_RKEY_MAGIC     0x4b524355u /* "UCRK" */
#define UT_AM_MAGIC       0x32414355u /* "UCA2": requests carry a signature */
#define UT_OFI_ADDR_MAGIC 0x414f4355u /* "UCOA": a libfabric endpoint's address */
#define UT_OFI_RKEY_MAGIC 0x4b4f4355u /* "UCOK": a libfabric region's key      */
#define UT_OFI_NAME_MAX   64          /* bytes of an endpoint name (fi_getname) */
#define UT_OFI_PROV_MAX   32
#define UT_AM_ID_REQ      10
#define UT_AM_ID_REP      11
#define UT_OP_NONE        0          /* no operation (RPC ids are 1..63): refused */
#define UT_OP_PING        64         /* built-in round trip that ends a connect */
#define UT_OP_MAP         65         /* a read-only descriptor (unix socket)   */
#define UT_OP_KEEPALIVE   66         /* are you there, and still working on
                                        these requests?  payload: up to
                                        UT_KA_IDS request ids (uint64);
                                        reply meta: ut_ka_rep             */
#define UT_KA_IDS         16

typedef struct ut_ka_rep {
    uint64_t uuid;        /* the answering context                        */
    uint64_t pending;     /* bit i: request i of the keepalive still owed  */
} ut_ka_rep;

/*
 * A KEEPALIVE's payload, as its receiver takes it: whole ids only, at most
 * UT_KA_IDS of them.  Returns how many ids were copied into @p ids, or -1
 * for a payload that is not a keepalive's (the sender gets INVALID).
 */
static inline int ut_ka_ids_parse(const void *data, size_t len,
                                  uint64_t ids[UT_KA_IDS])
{
    size_t i;

    if ((len % sizeof(uint64_t) != 0) || (len > UT_KA_IDS * sizeof(uint64_t)) ||
        ((data == NULL) && (len > 0))) {
        return -1;
    }
    for (i = 0; i < len / sizeof(uint64_t); i++) {
        memcpy(&ids[i], (const uint8_t *)data + i * sizeof(uint64_t), sizeof(uint64_t));
    }
    return (int)i;
}
#define UT_HOST_MAX       64

typedef struct ut_addr_body {
    uint64_t uuid;        /* random per context                           */
    uint32_t pid;
    uint32_t reserved;
    char     host[UT_HOST_MAX];
    char     mapname[UT_MAPFD_NAME_MAX]; /* its read-only mapping service */
} ut_addr_body;

typedef struct ut_rkey_body {
    uint64_t base;        /* remote address of the region                 */
    uint64_t len;
    uint64_t cookie;      /* random per region: stale rkeys are refused   */
    uint64_t ctx_uuid;
    uint32_t region_id;
    uint32_t reserved;
} ut_rkey_body;

/* A libfabric address blob's payload: ut_addr_body's, then this. */
typedef struct ut_ofi_name {
    char     prov[UT_OFI_PROV_MAX]; /* provider, as fi_info names it ("shm") */
    uint32_t addr_format;           /* FI_SOCKADDR_IN, FI_ADDR_STR, ...      */
    uint32_t len;                   /* bytes of name used                    */
    uint8_t  name[UT_OFI_NAME_MAX]; /* fi_getname()                           */
} ut_ofi_name;

/* A libfabric key blob's payload: ut_rkey_body's, then this. */
typedef struct ut_ofi_key {
    uint64_t key;         /* fi_mr_key()                                  */
    uint32_t virt;        /* 1: reads address the region by virtual
                             address (FI_MR_VIRT_ADDR), 0: by offset      */
    uint32_t reserved;
} ut_ofi_key;

typedef struct ut_am_req_hdr {
    uint32_t magic;
    uint16_t op;          /* an RPC handler id or a UT_OP_*               */
    uint16_t reserved;
    uint64_t id;          /* the requester's id, echoed in the reply      */
    uint64_t from;        /* the requester's context uuid (its address
                             blob, sent with its PING, says where it is) */
    ut_auth_tag_t auth;   /* signature over this header and the payload  */
} ut_am_req_hdr;

/* UT_OP_MAP's payload: which region a same-host reader would map. */
typedef struct ut_am_map_desc {
    uint32_t region_id;
    uint32_t reserved;
    uint64_t cookie;
} ut_am_map_desc;


typedef struct ut_am_rep_hdr {
    uint32_t magic;
    int32_t  status;      /* ucache_status_t                              */
    uint64_t id;
    uint32_t meta_len;    /* bytes of metadata following this header      */
    uint32_t reserved;
} ut_am_rep_hdr;

#endif
