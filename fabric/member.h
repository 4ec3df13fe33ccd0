/*
 * member.h - who is in the fabric: node records and the sources that hold
 * them (UCACHE_MEMBERS).  A record is small and self-checking: node id,
 * slots and weight, zone, host, pid, memory, worker address and the remote
 * key of its store.  Sources:
 *   dir:PATH  each daemon registers a record file in PATH (one host or a
 *             shared filesystem); an epoch file counts every change;
 *             records whose daemon died (same host: its pid is gone;
 *             anywhere: no heartbeat for UCACHE_MEMBERS_TTL) are reaped.
 *   file:PATH a static list, one node per line: HOST:PORT [zone=Z]
 *             [weight=W]; slots in line order.  Only host and port are
 *             known: a reader fetches the node's record (address, key) from
 *             its listener on first contact (fabric/peer.c).
 *   external  records handed in by the application (ucache_mpi.h does it
 *             with an MPI allgather), slots assigned in the order given.
 * Invariant: every member of one epoch holds distinct slots.
 */
#ifndef UF_MEMBER_H
#define UF_MEMBER_H

#include "ucache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UF_ZONE_MAX  32
#define UF_HOST_MAX  64
#define UF_BLOB_MAX  4096   /* address or rkey blob bytes */

typedef struct uf_member {
    uint64_t id;            /* random per daemon incarnation, nonzero */
    uint32_t slot0, weight;
    uint32_t pid;
    uint64_t mem_bytes;
    uint64_t heartbeat_ns;  /* dir: CLOCK_REALTIME of the last heartbeat */
    char     zone[UF_ZONE_MAX];
    char     host[UF_HOST_MAX];
    uint16_t port;          /* file: its listener; 0 for records */
    void    *addr;          /* worker address blob (owned), NULL for file: */
    size_t   addr_len;
    void    *rkey;          /* store region's rkey blob (owned) */
    size_t   rkey_len;
} uf_member_t;

/** Encode @p m as a record (malloc'd, *len_p bytes). */
ucache_status_t uf_member_encode(const uf_member_t *m, void **rec_p, size_t *len_p);

/** Decode and check a record; the blobs in @p m are malloc'd copies.
 *  UCACHE_ERR_CORRUPT for anything malformed. */
ucache_status_t uf_member_decode(const void *rec, size_t len, uf_member_t *m);

/** Set the checksum of the record of @p len bytes at @p rec (tests and
 *  fuzzing: so malformed records get past the sum to the checks). */
void uf_member_seal(void *rec, size_t len);

/** Free what a decoded member owns (not @p m itself). */
void uf_member_clear(uf_member_t *m);

#define UF_SLOT_BYTES_DEF  (4ull << 30)  /* UCACHE_SLOT_SIZE when neither it nor
                                            the fabric sets one            */

/** The weight a node of @p mem_bytes gets: one slot per started
 *  @p slot_bytes (0: UF_SLOT_BYTES_DEF), 1 .. 1024. */
uint32_t uf_member_weight(uint64_t mem_bytes, uint64_t slot_bytes);

/* dir: source ------------------------------------------------------------ */

/**
 * Register @p m in directory @p dir (created if missing): under the
 * directory's lock, reap dead records, give @p m the lowest free run of
 * m->weight slots (written to m->slot0), write its record, bump the epoch.
 */
ucache_status_t uf_dir_register(const char *dir, uf_member_t *m, uint64_t ttl_ns);

/** Remove node @p id's record and bump the epoch.  NOT_FOUND if absent. */
ucache_status_t uf_dir_unregister(const char *dir, uint64_t id);

/** Refresh node @p id's heartbeat; reap records dead for @p ttl_ns (bumping
 *  the epoch if any).  NOT_FOUND if @p id's record is gone. */
ucache_status_t uf_dir_heartbeat(const char *dir, uint64_t id, uint64_t ttl_ns);

/** The directory's epoch (0 if it has none yet).  One small read. */
uint64_t uf_dir_epoch(const char *dir);

/**
 * Every valid record of @p dir with the epoch they belong to; malformed
 * files are skipped and counted in *bad_p.  Free with uf_members_free().
 */
ucache_status_t uf_dir_scan(const char *dir, uf_member_t **members_p, uint32_t *n_p,
                            uint64_t *epoch_p, uint64_t *bad_p);

void uf_members_free(uf_member_t *members, uint32_t n);

/* file: source ----------------------------------------------------------- */

/** The id of the node listening on @p hostport (as the list spells it). */
uint64_t uf_member_id_of(const char *hostport);

/**
 * Parse the static list @p path; *epoch_p is its modification time (ns), so
 * an edited list is a new epoch.  UCACHE_ERR_INVALID (logged with the line
 * number) for a malformed line, UCACHE_ERR_NOT_FOUND for a missing file.
 */
ucache_status_t uf_file_scan(const char *path, uf_member_t **members_p, uint32_t *n_p,
                             uint64_t *epoch_p);

/** The list's epoch (modification time, ns; 0 if it cannot be read). */
uint64_t uf_file_epoch(const char *path);

/* etcd: source --------------------------------------------------------- */

/** A node's record as etcd holds it (JSON: id, listener HOST:PORT from
 *  m->host and m->port, zone, slot0, weight, mem, state): malloc'd. */
ucache_status_t uf_etcd_record_encode(const uf_member_t *m, bool draining, char **json_p);

/** Decode and check a record from etcd (untrusted: fuzzed); the id must be
 *  the hash of its listener.  UCACHE_ERR_CORRUPT for anything malformed. */
ucache_status_t uf_etcd_record_decode(const char *buf, size_t len, uf_member_t *m,
                                      bool *draining_p);

/** Decode and check the fabric's placement parameters from etcd
 *  (PREFIX/config, JSON: slots, slot_size; fuzzed). */
ucache_status_t uf_etcd_config_decode(const char *buf, size_t len, uint32_t *slots_p,
                                      uint64_t *slot_bytes_p);

/* For ucperf members (simulated nodes against a real etcd), on a source
 * opened with uf_source_etcd.open(): register node @p listen under
 * @p lease, as a daemon's join does (*slot0_p its first slot, *rev_p the
 * revision of its record); the source's etcd client; its nodes prefix. */
struct uf_etcd;
ucache_status_t uf_etcd_register(void *src, const char *listen, uint64_t mem_bytes,
                                 int64_t lease, uint32_t *slot0_p, int64_t *rev_p);
struct uf_etcd *uf_etcd_source_client(void *src);
const char *uf_etcd_source_nodes(void *src);

/* Sources, by UCACHE_MEMBERS prefix ------------------------------------- */

/*
 * A membership source: where views come from, and (for sources nodes join
 * themselves) how a serving node joins, stays and leaves.  `open` turns
 * what follows the prefix into the source's state, which every other
 * operation takes as @p src; a source with no `open` gets that string.
 */
/* How a source is doing (the health op; ucache status). */
typedef struct uf_source_health {
    bool     reachable;      /* it answered now (probe), or last time    */
    char     via[48];        /* how this context follows it              */
    int64_t  revision;       /* etcd: the cluster's revision now; -1     */
    int64_t  lease_left_ms;  /* a registered node's lease: time left as
                                etcd last said, aged; -1 where none      */
    char     detail[96];     /* what answered, or why not                */
} uf_source_health_t;

struct uc_config;
typedef struct uf_source_ops {
    const char *prefix;                                   /* "dir:" */
    /* NULL: src is the argument string itself */
    ucache_status_t (*open)(const char *arg, const struct uc_config *cfg, bool serve,
                            void **src_p);
    void            (*close)(void *src);
    uint64_t        (*epoch)(void *src);                  /* cheap: polled */
    ucache_status_t (*scan)(void *src, uf_member_t **members_p, uint32_t *n_p,
                            uint64_t *epoch_p, uint64_t *bad_p);
    /* NULL where nodes do not register (file: lists name them) */
    ucache_status_t (*join)(void *src, uf_member_t *self, uint64_t ttl_ns);
    ucache_status_t (*heartbeat)(void *src, uint64_t id, uint64_t ttl_ns);
    ucache_status_t (*leave)(void *src, uint64_t id);
    /* nodes that left within 10 x ttl_ns (reaped or unregistered), their
     * heartbeat_ns when they left; NULL where the source does not keep them */
    ucache_status_t (*left)(void *src, uint64_t ttl_ns, uf_member_t **members_p,
                            uint32_t *n_p);
    /* the placement's slot count the source fixes for every reader (0:
     * the view sizes it); NULL where the source fixes none */
    uint32_t        (*slots)(void *src);
    /* the memory one slot stands for, fixed by the source for every node
     * (0: UCACHE_SLOT_SIZE); NULL where the source fixes none */
    uint64_t        (*slot_bytes)(void *src);
    /* how the source is doing; @p probe: ask it now (else local facts
     * only: the lease).  NULL: a scan that works is all there is */
    ucache_status_t (*health)(void *src, bool probe, uf_source_health_t *h);
    bool            listens;  /* nodes are named by their listener (HOST:PORT) */
    bool            global_epochs; /* every context sees the same epoch for the
                                      same membership (dir:'s counter, etcd's
                                      revision; not file:'s per-host mtime), so
                                      an owner may tell a reader it is behind */
    bool            publishes; /* a serving node publishes its view for the
                                  readers of its host (view_shm.h)         */
} uf_source_ops_t;

/* The sources: member_dir.c, member_file.c, member_etcd.c. */
extern const uf_source_ops_t uf_source_dir;
extern const uf_source_ops_t uf_source_file;
extern const uf_source_ops_t uf_source_etcd;

/** The source @p members names, *arg_p pointing into it; NULL if none. */
const uf_source_ops_t *uf_source_find(const char *members, const char **arg_p);

#endif
