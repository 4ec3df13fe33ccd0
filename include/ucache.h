/*
 * ucache.h - the one public API of libucache-rdma.
 *
 * Training jobs, the daemon (ucached), the admin CLI and ucperf all go through
 * this header.  Handles are opaque; every call returns a ucache_status_t; the
 * library never prints to stdout, never exits and never aborts on bad input.
 * Parameter structs start with a field_mask so fields can be added without
 * breaking callers; unknown bits are rejected with UCACHE_ERR_INVALID.
 */
#ifndef UCACHE_H
#define UCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UCACHE_VERSION_MAJOR 0
#define UCACHE_VERSION_MINOR 1
#define UCACHE_VERSION_STRING "0.1.0"

/* Status codes: UCACHE_FOREACH_STATUS, ucache_status_t, ucache_strerror(),
 * ucache_status_name() (util/status.h; inline in the installed header). */
#include "../util/status.h"

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

/* ucache_log_level_t, ucache_log_sink_t (util/log_level.h) */
#include "../util/log_level.h"

/** @brief Replace the log sink (NULL restores the default). Thread-safe. */
void ucache_log_set_sink(ucache_log_sink_t sink, void *arg);

/** @brief Set the level; overrides UCACHE_LOG_LEVEL. Thread-safe. */
void ucache_log_set_level(ucache_log_level_t level);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/**
 * Configuration comes from one table: each entry has a UCACHE_* environment
 * variable, a default and a help line.  Values resolve as
 * defaults < environment < ucache_params_t fields.  `ucache config` prints
 * the table, and so does ucache_config_print().
 */
typedef enum ucache_config_print_flags {
    UCACHE_CONFIG_PRINT_HELP = 1u << 0, /**< add each variable's help line  */
    UCACHE_CONFIG_PRINT_JSON = 1u << 1  /**< one JSON object, not a table   */
} ucache_config_print_flags_t;

/**
 * @brief Print every UCACHE_* variable with its current value, its default
 *        and (with UCACHE_CONFIG_PRINT_HELP) its help, to @p stream.
 * @return UCACHE_ERR_INVALID if a variable in the environment does not parse
 *         (the line says which), else UCACHE_OK.
 */
ucache_status_t ucache_config_print(FILE *stream, unsigned flags);

/**
 * @brief Write a new fabric key (32 random bytes) to a new file @p path,
 *        mode 0600: the cluster key (UCACHE_CLUSTER_KEY_FILE) or the admin
 *        key (UCACHE_ADMIN_KEY_FILE).  See docs/security.md.
 * @return UCACHE_ERR_EXISTS if something (a symlink included) is at @p path,
 *         UCACHE_ERR_IO if it cannot be written.
 */
ucache_status_t ucache_keygen(const char *path);

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

/** @brief One process's handle on the fabric. */
typedef struct ucache_context *ucache_h;

enum ucache_param_field {
    UCACHE_PARAM_FIELD_MEM_BYTES  = 1u << 0,
    UCACHE_PARAM_FIELD_MEMBERS    = 1u << 1,
    UCACHE_PARAM_FIELD_LOG_LEVEL  = 1u << 2,
    UCACHE_PARAM_FIELD_TIMEOUT_NS = 1u << 3,
    UCACHE_PARAM_FIELD_CHUNK_SIZE = 1u << 4,
    UCACHE_PARAM_FIELD_SERVE      = 1u << 5,
    UCACHE_PARAM_FIELD_ZONE       = 1u << 6,
    UCACHE_PARAM_FIELD_ALLOW      = 1u << 7,
    UCACHE_PARAM_FIELD_CONFIG     = 1u << 8
};

typedef struct ucache_params {
    uint64_t           field_mask; /**< UCACHE_PARAM_FIELD_* bits that are valid */
    size_t             mem_bytes;  /**< pinned cache memory this node exports    */
    const char        *members;    /**< "dir:PATH", "file:PATH", "mpi"; copied   */
    ucache_log_level_t log_level;
    uint64_t           timeout_ns; /**< deadline of one remote operation         */
    size_t             chunk_size; /**< bytes per chunk of an object             */
    int                serve;      /**< nonzero: export mem_bytes as a cache
                                        node, serve other nodes' misses and
                                        join the members source (ucached, MPI
                                        ranks); zero: a reader only          */
    const char        *zone;       /**< failure domain of this node; copied    */
    const char        *allow;      /**< origins this node fills from, replacing
                                        UCACHE_ALLOW: rules separated by commas
                                        (docs/security.md); copied          */
    const char *const *config;     /**< NULL-terminated "NAME=VALUE" settings
                                        of the configuration table (UCACHE_
                                        prefix optional, any case:
                                        "meta_ttl=600s"):
                                        over the environment, under the
                                        fields above; copied              */
} ucache_params_t;

/**
 * @brief Create a context: read the configuration, start the transport,
 *        join the membership source (UCACHE_MEMBERS) and load its view.
 *
 * A serving context (params->serve) also exports mem_bytes of pinned memory
 * as a cache node, registers with a dir: source and serves FETCH requests
 * from its own threads.  With members "mpi" the view stays empty until
 * ucache_members_set() (ucache_mpi_init() in ucache_mpi.h does both).
 * @param params  May be NULL (all defaults).  Strings are copied.
 * @param ctx_p   Set only on success; free it with ucache_finalize().
 */
ucache_status_t ucache_init(const ucache_params_t *params, ucache_h *ctx_p);

/** @brief Tear down a context and everything it owns. Accepts NULL. */
void ucache_finalize(ucache_h ctx);

/**
 * @brief Point-in-time counters of a context (all monotonic).
 */
typedef struct ucache_stats {
    uint64_t reads;            /**< read operations completed                */
    uint64_t read_bytes;
    uint64_t mapped_reads;     /**< served by a plain copy of mapped memory  */
    uint64_t get_reads;        /**< served by a one-sided get                */
    uint64_t am_reads;         /**< served by an active-message bulk reply
                                    (a FETCH with data; also counted in rpcs) */
    uint64_t rpcs;             /**< RPC requests completed (as a client)     */
    uint64_t rpcs_served;      /**< RPC requests answered (as a server)      */
    uint64_t timeouts;         /**< operations that hit their deadline       */
    uint64_t peer_failures;    /**< peers marked failed                      */
    uint64_t bad_input;        /**< malformed blobs, messages, arguments     */
    uint64_t eps_open;         /**< endpoints open now (gauge)               */
    uint64_t eps_evicted;      /**< endpoints closed by the pool's cap       */
    /* the read path (this process as a reader) */
    uint64_t chunk_reads;      /**< chunk reads made by ucache_read()        */
    uint64_t chunk_hits;       /**< chunks found cached at their owner       */
    uint64_t chunk_misses;     /**< chunks an owner filled (or was filling)  */
    uint64_t fetch_requests;   /**< FETCH requests sent to owners (misses;
                                    every read of a tcp owner)             */
    uint64_t location_hits;    /**< one-sided hits served from the location
                                    cache in one round trip                */
    uint64_t origin_direct;    /**< chunks read from the origin by this
                                    process because no owner could serve   */
    uint64_t verify_retries;   /**< torn, stale or late reads retried        */
    uint64_t failovers;        /**< owners marked suspect                    */
    uint64_t bad_replies;      /**< malformed replies from owners            */
    uint64_t stale_objects;    /**< objects found changed at their origin    */
    uint64_t bytes_returned;   /**< bytes handed to callers                  */
    uint64_t hits_sampled;     /**< hit keys reported to their owners (each
                                    distinct key once per UCACHE_MEMBERS_POLL
                                    window, for their eviction)           */
    /* the owner (serving contexts) */
    uint64_t fetches_served;   /**< FETCH requests answered                  */
    uint64_t fills;            /**< chunks read from an origin into the store */
    uint64_t fill_bytes;
    uint64_t fills_coalesced;  /**< misses that joined a fill in progress    */
    uint64_t fill_errors;
    uint64_t bad_requests;     /**< malformed FETCH/TOUCH requests refused   */
    uint64_t hits_reported;    /**< one-sided hits readers reported          */
    uint64_t chunks_cached;    /**< gauge: chunks in this node's store       */
    uint64_t bytes_cached;     /**< gauge */
    /* process-wide origin counters and the view */
    uint64_t origin_reads;     /**< data requests to origins, this process   */
    uint64_t origin_bytes;
    uint64_t view_epoch;
    uint64_t view_nodes;
    /* the owner's store (serving contexts) */
    uint64_t mem_bytes;        /**< gauge: bytes its data area holds        */
    uint64_t bytes_used;       /**< gauge: held by chunks, fills and grace  */
    uint64_t bytes_pinned;     /**< gauge */
    uint64_t evictions;        /**< chunks evicted (capacity, index, quota,
                                    explicit)                              */
    uint64_t fetch_hits;       /**< FETCH requests found in the store       */
    uint64_t origin_errors;    /**< failed origin requests, this process    */
    /** Fills (origin read + publish) by duration: bucket i counts those of at
     *  most UCACHE_FILL_BUCKET_US(i) microseconds; the last one the rest. */
#define UCACHE_FILL_BUCKETS 16
#define UCACHE_FILL_BUCKET_US(i) (100ull << (i))
    uint64_t fill_us_bucket[UCACHE_FILL_BUCKETS];
    uint64_t fill_us_sum;      /**< their total duration, microseconds      */
    uint64_t draining;         /**< gauge: 1 while drained (ucache drain)   */
    uint64_t fills_refused;    /**< FETCHes for an origin UCACHE_ALLOW does not
                                    allow (the reader reads it itself)      */
    uint64_t fills_busy;       /**< FETCHes refused with UCACHE_ERR_BUSY: the
                                    fill queue (UCACHE_FILL_QUEUE) was full */
    uint64_t owner_refusals;   /**< chunks this reader read itself because
                                    their owner refused the origin          */
    uint64_t auth_failures;    /**< requests refused: unsigned, signed with
                                    another key, replayed, addressed to
                                    another node, or an admin operation
                                    without the admin key                   */
    uint64_t hits_unreported;  /**< hit keys this reader could not report: a
                                    full report buffer or a busy lock       */
    uint64_t chunks_windowed;  /**< chunk reads that came in a window of
                                    FETCHes in flight together (tcp,
                                    UCACHE_READ_WINDOW)                     */
    uint64_t moved_refreshes;  /**< owners that answered MOVED to this reader
                                    (its view was behind theirs): it read the
                                    membership again and retried in the newer
                                    view, the owner not marked suspect     */
    uint64_t fills_moved;      /**< FETCH misses this node answered MOVED: the
                                    reader's view was older and, in this
                                    node's, the key is another node's      */
    uint64_t origin_meta;      /**< metadata requests this process made of
                                    origins (an object's size and version,
                                    a listing)                             */
    uint64_t meta_owner;       /**< object metadata and listing pages this
                                    reader had from their owners
                                    (UCACHE_META=fabric)                   */
    uint64_t meta_direct;      /**< object metadata and listings this reader
                                    asked the origin for itself (local, no
                                    owner could answer)                    */
    uint64_t meta_pinned;      /**< object metadata and listings answered by
                                    the manifest (UCACHE_MANIFEST)         */
    uint64_t meta_served;      /**< META requests this node answered (its
                                    objects' sizes and versions, listings) */
    uint64_t mem_usable;       /**< gauge: bytes of mem_bytes committed and
                                    usable; it grows to mem_bytes in the
                                    seconds after a node starts serving    */
    uint64_t mem_commit_ns;    /**< how long committing all of the node's
                                    memory took; 0 while it goes on        */
    uint64_t member_lease_ms;  /**< gauge: a node on etcd, its lease's time
                                    left as etcd last said (0: none)       */
    /* the owner's NVMe tier (UCACHE_NVME) */
    uint64_t nvme_devices;     /**< gauge: its devices                      */
    uint64_t nvme_offline;     /**< gauge: of them out of service (errors)  */
    uint64_t nvme_bytes;       /**< gauge: their capacity                   */
    uint64_t nvme_used;        /**< gauge: bytes its chunks' records take   */
    uint64_t nvme_chunks;      /**< gauge: chunks on NVMe                   */
    uint64_t nvme_hits;        /**< FETCHes answered from NVMe              */
    uint64_t nvme_demotions;   /**< chunks memory evicted, written to NVMe  */
    uint64_t nvme_promotions;  /**< chunks read from NVMe again within
                                    UCACHE_NVME_WINDOW, kept in memory      */
    uint64_t nvme_staged;      /**< gauge: chunks staged from NVMe for
                                    their readers (UCACHE_NVME_LEASE)       */
    uint64_t nvme_errors;      /**< device I/O errors                       */
    uint64_t nvme_corrupt;     /**< records that failed their checksum      */
    uint64_t nvme_read_bytes;  /**< bytes read from the devices             */
    uint64_t nvme_read_ns;     /**< device time of those reads (bandwidth =
                                    bytes / ns)                            */
    uint64_t nvme_rebuild_ns;  /**< the start-up scan that found what the
                                    devices held                           */
    uint64_t chunk_nvme;       /**< reader: chunks their owner read from its
                                    NVMe tier for this reader               */
    uint64_t nvme_pinned;      /**< gauge: of nvme_chunks those pinned (their
                                    records say so: a restart keeps them)   */
    uint64_t owner_restarts;   /**< reader: owners found restarted under
                                    their identity (file:, etcd:) after a
                                    failure: read through their new address
                                    and key from then on                    */
} ucache_stats_t;

/** @brief Copy the context's counters into @p stats_p. */
ucache_status_t ucache_stats_get(ucache_h ctx, ucache_stats_t *stats_p);

/**
 * @brief Format @p stats as one JSON object whose keys are the field names
 *        of ucache_stats_t ({"stats":"WHO",...} with @p who, else without
 *        that key), as snprintf does: at most @p len bytes, terminated.
 * @return The length of the whole object (without the terminator).
 */
size_t ucache_stats_format(const ucache_stats_t *stats, const char *who, char *buf,
                           size_t len);

/**
 * @brief The context's counters as ucache_stats_format() writes them, into
 *        @p buf of @p len bytes; *need_p (may be NULL) gets the bytes needed
 *        with the terminator (4 KiB is enough today).  For bindings that do
 *        not mirror ucache_stats_t (the Python package).
 * @return UCACHE_ERR_MSG_TRUNCATED if @p len is short.
 */
ucache_status_t ucache_stats_json(ucache_h ctx, char *buf, size_t len, size_t *need_p);

/* ------------------------------------------------------------------------ */
/* Membership supplied by the application (members "mpi")                    */
/* ------------------------------------------------------------------------ */

/**
 * @brief This serving context's node record, to hand to the other members
 *        (e.g. by MPI_Allgatherv).  Owned by @p ctx; valid until finalize.
 * @return UCACHE_ERR_INVALID for a context that does not serve.
 */
ucache_status_t ucache_member_record(ucache_h ctx, const void **rec_p,
                                     size_t *len_p);

/**
 * @brief Install the fabric's members: @p n records from
 *        ucache_member_record() of each member, the same list in the same
 *        order on every member (slots are assigned in that order).
 * @param epoch  Nonzero, and higher on every later call.
 * @return UCACHE_ERR_CORRUPT if a record is malformed (nothing installed),
 *         UCACHE_ERR_INVALID unless the context's members are "mpi".
 */
ucache_status_t ucache_members_set(ucache_h ctx, const void *const *recs,
                                   const size_t *lens, uint32_t n, uint64_t epoch);

/* ------------------------------------------------------------------------ */
/* The fabric's nodes (admin tools)                                          */
/* ------------------------------------------------------------------------ */

/** @brief One node of the current view, as this process sees it. */
typedef struct ucache_node_info {
    uint64_t id;               /**< the node's incarnation id              */
    char     host[64];
    uint16_t port;             /**< its listener (file: members), else 0   */
    char     zone[32];         /**< "" if unknown (file: without zone=)     */
    uint32_t weight;           /**< slots it holds in placement            */
    uint64_t mem_bytes;        /**< as registered (0 if unknown)           */
    uint64_t heartbeat_ns;     /**< dir: CLOCK_REALTIME of its last heartbeat, else 0 */
    uint32_t pid;              /**< dir:/mpi: its process id, else 0       */
    int      suspect;          /**< this process saw it fail recently      */
    int      self;             /**< this process's own store               */
} ucache_node_info_t;

/**
 * @brief The nodes of the current view, in slot order: up to @p cap into
 *        @p nodes; *count_p is how many there are (call again if more).
 */
ucache_status_t ucache_nodes(ucache_h ctx, ucache_node_info_t *nodes, size_t cap,
                             size_t *count_p);

/**
 * @brief The nodes that left the fabric recently - reaped (dead, frozen past
 *        the TTL) or unregistered - within 10 x UCACHE_MEMBERS_TTL, as the
 *        members source remembers them (dir:; other sources keep none):
 *        up to @p cap into @p nodes, *count_p how many there are.  Each
 *        one's heartbeat_ns is when it left.  A node that came back is not
 *        listed.
 */
ucache_status_t ucache_nodes_left(ucache_h ctx, ucache_node_info_t *nodes, size_t cap,
                                  size_t *count_p);

/** How the members source is doing, as ucache_members_health() finds it. */
typedef struct ucache_members_health {
    char     source[16];     /**< "etcd", "dir" or "file"                  */
    char     via[48];        /**< how this context follows it              */
    int      reachable;      /**< it answered just now                     */
    int64_t  revision;       /**< etcd's revision now; -1 for other sources */
    int64_t  lease_left_ms;  /**< a serving context on etcd: its lease's
                                  time left as etcd last said; -1: none    */
    uint64_t epoch;          /**< the view's epoch in this context         */
    char     detail[96];     /**< what answered, or why it did not         */
} ucache_members_health_t;

/**
 * @brief Ask the members source now how it is doing (etcd: its status, over
 *        a client of its own where this context follows its local daemon's
 *        view; dir: and file:, a scan) within the source's own deadline.
 * @return UCACHE_OK if it answered; otherwise the error, with @p h filled.
 */
ucache_status_t ucache_members_health(ucache_h ctx, ucache_members_health_t *h);

/**
 * @brief Node @p id's own counters (its ucache_stats_get()), asked over the
 *        fabric (an ADMIN request) within @p timeout_ns.
 * @return UCACHE_ERR_NOT_FOUND if no node of the view has that id,
 *         UCACHE_ERR_PEER / UCACHE_ERR_TIMEOUT if it does not answer.
 */
ucache_status_t ucache_node_stats(ucache_h ctx, uint64_t id, uint64_t timeout_ns,
                                  ucache_stats_t *stats_p);

/**
 * @brief Drain node @p id (@p drain nonzero) or return it to service.  A
 *        drained node fills no more chunks (a miss sent to it is refused
 *        with UCACHE_ERR_MOVED, so readers go to the next owner or the
 *        origin) but still serves what it holds; on a source nodes join
 *        (dir:) it also leaves the membership, so every view stops placing
 *        chunks on it and it can be stopped without a miss storm.
 * @param stats_p  The node's counters afterwards (draining is 1 or 0).
 * @return as ucache_node_stats(); UCACHE_ERR_INVALID for a reader-only node.
 */
ucache_status_t ucache_node_drain(ucache_h ctx, uint64_t id, int drain,
                                  uint64_t timeout_ns, ucache_stats_t *stats_p);

enum ucache_probe_field {
    UCACHE_PROBE_FIELD_SIZE       = 1u << 0,
    UCACHE_PROBE_FIELD_ITERS      = 1u << 1,
    UCACHE_PROBE_FIELD_TIMEOUT_NS = 1u << 2,
    UCACHE_PROBE_FIELD_DEEP       = 1u << 3,
    UCACHE_PROBE_FIELD_LAT_NS     = 1u << 4
};

/** @brief What ucache_node_probe() measures (unset fields: defaults). */
typedef struct ucache_probe_params {
    uint64_t  field_mask;  /**< UCACHE_PROBE_FIELD_* bits that are valid      */
    size_t    size;        /**< bytes per bandwidth read (1 MiB), at most the
                                node's data area                           */
    unsigned  iters;       /**< reads in each pass (32), 1 .. 100000        */
    uint64_t  timeout_ns;  /**< deadline of the whole probe (2 s)           */
    unsigned  deep;        /**< chunks to sample from the node's index, read
                                and verify (0: no index check)             */
    uint64_t *lat_ns;      /**< if set: the latency pass's iters latencies   */
} ucache_probe_params_t;

/** @brief One node's health, as this process reaches it. */
typedef struct ucache_probe_result {
    ucache_status_t status;    /**< OK: it answered its ADMIN request and the
                                    one-sided reads; else why not          */
    char     path[8];          /**< "mapped", "get", "am": how one-sided
                                    reads reach it from here               */
    char     transport[64];    /**< UCX transports of its endpoint
                                    ("rc_mlx5/mlx5_0:1,..."), or "shm" when
                                    its memory is mapped here              */
    uint64_t connect_ns;       /**< setting up the peer (connect, key,
                                    superblock), 0 if it was set up already */
    uint64_t rpc_ns;           /**< its counters' round trip (owner CPU)     */
    uint64_t lat_reads;        /**< 64-byte one-sided reads timed, one at a time */
    uint64_t lat_ns_sum;
    uint64_t bw_reads;         /**< size-byte reads, 4 in flight             */
    uint64_t bw_bytes;
    uint64_t bw_ns;            /**< wall time of the bandwidth pass          */
    /* the index check (params deep > 0) */
    uint64_t buckets_scanned;
    uint64_t chunks_checked;   /**< published chunks read and verified       */
    uint64_t chunks_bad;       /**< failed verification twice at an unchanged
                                    slot: the index and data disagree      */
    uint64_t chunks_changed;   /**< evicted or replaced while being checked  */
    uint64_t chunks_misplaced; /**< cached there, owned elsewhere in this view
                                    (left from an older view; they age out) */
    ucache_stats_t stats;      /**< the node's counters                     */
    uint32_t index_cut;        /**< 1: the deadline ended the index check
                                    before it settled deep chunks or walked
                                    the whole index (the counts are partial) */
} ucache_probe_result_t;

/**
 * @brief Probe node @p id of the view (`ucache health`): ask its counters,
 *        time one-sided reads of its exported memory (latency: 64-byte
 *        reads one at a time; bandwidth: params->size reads, 4 in flight)
 *        and, with params->deep, walk its index from a random bucket and
 *        verify that many chunks (key, version, checksum, bucket) the way a
 *        reader does.  The bytes read are never handed out.  Safe from many
 *        threads at once (one probe per node).
 * @return res->status: UCACHE_ERR_NOT_FOUND (no such node in the view),
 *         UCACHE_ERR_PEER / UCACHE_ERR_TIMEOUT (it does not answer),
 *         UCACHE_ERR_INVALID (bad parameters).
 */
ucache_status_t ucache_node_probe(ucache_h ctx, uint64_t id,
                                  const ucache_probe_params_t *params,
                                  ucache_probe_result_t *res);

/* ------------------------------------------------------------------------ */
/* This machine's devices (ucache devices)                                   */
/* ------------------------------------------------------------------------ */

/* ucache_devices_t and its parts (transport/devices.h) */
#include "../transport/devices.h"

/**
 * @brief This machine's RDMA devices and ports (rdma-core) and the UCX
 *        transports usable here.  Needs no context.  A machine without RDMA
 *        devices is not an error: nrdma is 0 and rdma_errno says why.
 * @return UCACHE_ERR_TRANSPORT if UCX cannot list its transports.
 */
ucache_status_t ucache_devices_query(ucache_devices_t *devs);

/* ------------------------------------------------------------------------ */
/* Origin credentials                                                        */
/* ------------------------------------------------------------------------ */

/* ucache_token_fn_t (origin/token.h) */
#include "../origin/token.h"

/**
 * @brief Register the process's bearer-token provider (NULL removes it).
 *        Azure origins with neither an account key nor a SAS then send
 *        "Authorization: Bearer TOKEN".
 */
void ucache_token_provider_set(ucache_token_fn_t fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Reads                                                                     */
/* ------------------------------------------------------------------------ */

/**
 * @brief Read @p len bytes at @p offset of the object @p uri through the
 *        cache into @p buf, which the caller owns.
 *
 * The bytes are exactly the origin's bytes for the object's current version
 * (as last seen, at most UCACHE_META_TTL ago): every chunk is verified (key,
 * version, checksum) before it is copied out.  A hit on a same-host owner
 * makes no system call.  If every owner of a chunk fails, this process reads
 * the origin itself; the caller gets correct bytes either way.
 * @param nread_p  Bytes read: short only at the end of the object, 0 if
 *                 @p offset is exactly its size.
 * @return UCACHE_ERR_INVALID (NULL arguments, @p len 0, malformed URI),
 *         UCACHE_ERR_UNSUPPORTED (no origin serves the URI's scheme),
 *         UCACHE_ERR_NOT_FOUND (no such object), UCACHE_ERR_OUT_OF_RANGE
 *         (@p offset past the end), UCACHE_ERR_DENIED (the origin refused
 *         the credentials), UCACHE_ERR_IO (the origin failed).
 */
ucache_status_t ucache_read(ucache_h ctx, const char *uri, uint64_t offset,
                            size_t len, void *buf, size_t *nread_p);

/**
 * @brief A non-blocking read, owned by the caller until ucache_wait()
 *        returns for it.  Many may be posted; one wait completes them.
 */
typedef struct ucache_read_req {
    const char     *uri;     /**< borrowed until the request completes */
    uint64_t        offset;
    size_t          len;
    void           *buf;
    size_t          nread;   /**< out */
    ucache_status_t status;  /**< out: UCACHE_INPROGRESS while pending */
    void           *priv[4]; /**< library-owned; do not touch          */
} ucache_read_req_t;

/**
 * @brief Post @p n reads.  They start no thread: ucache_wait() (with any
 *        timeout, 0 too) drives every read posted to the context - each
 *        keeps up to UCACHE_READ_WINDOW of its chunks in flight as
 *        transport requests - so post many, then wait.  Each request's
 *        status is UCACHE_INPROGRESS until ucache_wait() reports it done;
 *        ucache_finalize() completes the ones still posted.
 * @return UCACHE_ERR_INVALID if a request is malformed, UCACHE_ERR_NO_MEMORY
 *         (none is posted either way).
 */
ucache_status_t ucache_read_post(ucache_h ctx, ucache_read_req_t *reqs,
                                 size_t n);

/**
 * @brief Drive the context's posted reads until all of @p reqs complete or
 *        @p timeout_ns passes (0: one round, then return).  While one caller
 *        drives, others sleep until a read completes, then take their turn.
 * @return UCACHE_OK if all succeeded, UCACHE_INPROGRESS if some are still
 *         running, else the status of a failed one (each request has its own).
 */
ucache_status_t ucache_wait(ucache_h ctx, ucache_read_req_t *reqs, size_t n,
                            uint64_t timeout_ns);

/* ------------------------------------------------------------------------ */
/* Objects and warm-up                                                       */
/* ------------------------------------------------------------------------ */

/** @brief The size of object @p uri (as cached for UCACHE_META_TTL).
 *  @return as ucache_read() for a bad or missing object. */
ucache_status_t ucache_stat(ucache_h ctx, const char *uri, uint64_t *size_p);

/** @brief Called for each object a listing finds; non-OK stops the listing
 *         and ucache_list() returns it. */
typedef ucache_status_t (*ucache_list_fn_t)(void *arg, const char *uri, uint64_t size);

/** @brief What is known of an object (as cached for UCACHE_META_TTL). */
typedef struct ucache_object_info {
    uint64_t size;
    uint64_t mtime;    /**< last modified at the origin, seconds since the
                            epoch; 0 if unknown (a manifest's objects, an
                            origin that does not say, an owner of an
                            older release)                              */
    uint64_t version;  /**< digest of the origin's version (ETag, or
                            mtime and size): changes when the object does */
} ucache_object_info_t;

/** @brief ucache_stat() with the object's mtime and version. */
ucache_status_t ucache_stat_info(ucache_h ctx, const char *uri, ucache_object_info_t *info);

/** @brief Called for each object ucache_list_info() finds (@p info is the
 *         callee's only during the call); non-OK stops the listing. */
typedef ucache_status_t (*ucache_list_info_fn_t)(void *arg, const char *uri,
                                                 const ucache_object_info_t *info);

/** @brief ucache_list() with each object's mtime and version. */
ucache_status_t ucache_list_info(ucache_h ctx, const char *prefix, ucache_list_info_fn_t fn,
                                 void *arg);

/**
 * @brief Every object under @p prefix: file:///DIR/ (walked recursively,
 *        links not followed), az://ACCOUNT/CONTAINER/[PREFIX] (List Blobs),
 *        s3://BUCKET/[PREFIX] (ListObjectsV2).  Listed by the prefix's owner
 *        (UCACHE_META=fabric: at most once per UCACHE_META_TTL for every
 *        reader, objects in URI order) or from a pinned manifest that covers
 *        the prefix; by the origin itself, in its order, when no owner can.
 * @return UCACHE_ERR_UNSUPPORTED for an origin that cannot list (http).
 */
ucache_status_t ucache_list(ucache_h ctx, const char *prefix, ucache_list_fn_t fn,
                            void *arg);

/**
 * @brief Take the sizes and versions of the objects in manifest @p path
 *        (written by ucache_manifest_write or `ucache manifest`) as given:
 *        reads of them ask no origin and no owner, and listings of a prefix
 *        the manifest was written for come from it.  An object changed at
 *        its origin since fails with UCACHE_ERR_STALE (never served mixed).
 *        The same as UCACHE_MANIFEST; one manifest a context, loaded before
 *        the reads it is for.
 * @return UCACHE_ERR_INVALID for a malformed manifest (the line is logged),
 *         UCACHE_ERR_NOT_FOUND if there is no such file.
 */
ucache_status_t ucache_manifest_load(ucache_h ctx, const char *path);

/**
 * @brief Write a manifest of every object under @p prefixes (@p n of them)
 *        to @p out, with the size and version each has at its origin now
 *        (listed there, not taken from a cache); *objects_p (may be NULL)
 *        gets how many.  Prefixes carry no query: a SAS belongs in the
 *        credentials, never in a manifest.
 */
ucache_status_t ucache_manifest_write(ucache_h ctx, const char *const *prefixes, unsigned n,
                                      FILE *out, uint64_t *objects_p);

#define UCACHE_WARM_PIN    (1u << 0) /**< pin the chunks against eviction    */
#define UCACHE_WARM_UNPIN  (1u << 1) /**< unpin them instead (fills nothing) */
#define UCACHE_WARM_EVICT  (1u << 2) /**< drop them from every owner, pinned
                                          or not (fills nothing)            */
#define UCACHE_WARM_NVME   (1u << 3) /**< load them onto their owners' NVMe
                                          tier, out of memory (an owner
                                          without one keeps them in memory) */

/** @brief What ucache_warm() did; it adds to the fields (sum over calls). */
typedef struct ucache_warm_result {
    uint64_t chunks;    /**< chunks covered                                 */
    uint64_t bytes;     /**< their bytes                                    */
    uint64_t hits;      /**< already cached at their owners                 */
    uint64_t filled;    /**< filled from the origin by their owners now     */
    uint64_t unpinned;  /**< with UCACHE_WARM_PIN: cached but left unpinned
                             (pins may take 90% of an owner's memory)       */
    uint64_t evicted;   /**< with UCACHE_WARM_EVICT: copies dropped          */
} ucache_warm_result_t;

/**
 * @brief Load the chunks of @p uri that begin in [@p offset, @p offset +
 *        @p len) into their owners (with UCACHE_WARM_EVICT: make every owner
 *        of each drop its copy, and fill nothing) (so ranges that split an object between
 *        callers cover each chunk once), without moving their bytes here:
 *        each owner fills its chunks from the origin (once, however many
 *        callers warm or read them at the same time).  @p len may run past
 *        the end (UINT64_MAX: to the end).  Safe from many threads.
 * @return UCACHE_OK, an origin error (as ucache_read()), or UCACHE_ERR_PEER
 *         when no owner could take a chunk (no live node).
 */
ucache_status_t ucache_warm(ucache_h ctx, const char *uri, uint64_t offset, uint64_t len,
                            unsigned flags, ucache_warm_result_t *res);

#ifdef __cplusplus
}
#endif
#endif /* UCACHE_H */
