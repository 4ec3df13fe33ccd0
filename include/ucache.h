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

/**
 * @brief Every status the library returns: (name, value, message).
 *
 * One list generates both the enum and ucache_strerror(), so the two can
 * never disagree.  Values are stable: new codes are appended.
 */
#define UCACHE_FOREACH_STATUS(X)                                               \
    X(UCACHE_OK,                  0, "success")                                \
    X(UCACHE_INPROGRESS,          1, "operation in progress")                  \
    X(UCACHE_ERR_NO_MEMORY,      -1, "out of memory")                          \
    X(UCACHE_ERR_INVALID,        -2, "invalid argument")                       \
    X(UCACHE_ERR_AGAIN,          -3, "resource temporarily unavailable, try again") \
    X(UCACHE_ERR_PEER,           -4, "peer unreachable or failed")             \
    X(UCACHE_ERR_CORRUPT,        -5, "verification failed")                    \
    X(UCACHE_ERR_TIMEOUT,        -6, "operation timed out")                    \
    X(UCACHE_ERR_NOT_FOUND,      -7, "not found")                              \
    X(UCACHE_ERR_UNSUPPORTED,    -8, "operation not supported")                \
    X(UCACHE_ERR_OUT_OF_RANGE,   -9, "offset or length out of range")          \
    X(UCACHE_ERR_MSG_TRUNCATED, -10, "message or reply larger than its buffer") \
    X(UCACHE_ERR_CANCELED,      -11, "operation canceled")                     \
    X(UCACHE_ERR_BUSY,          -12, "resource busy")                          \
    X(UCACHE_ERR_IO,            -13, "input/output error")                     \
    X(UCACHE_ERR_TRANSPORT,     -14, "transport error")                        \
    X(UCACHE_ERR_STALE,         -15, "stale handle or key")                    \
    X(UCACHE_ERR_MOVED,         -16, "key moved to another owner")            \
    X(UCACHE_ERR_EXISTS,        -17, "already exists")

typedef enum ucache_status {
#define UCACHE_STATUS_ENUM(name, value, msg) name = (value),
    UCACHE_FOREACH_STATUS(UCACHE_STATUS_ENUM)
#undef UCACHE_STATUS_ENUM
} ucache_status_t;

/**
 * @brief A static, human-readable message for @p status.
 * @return Never NULL; an unknown value gives "unknown status".  The string is
 *         owned by the library and valid for the life of the process.
 */
const char *ucache_strerror(ucache_status_t status);

/** @brief The status's symbolic name ("UCACHE_ERR_PEER"); never NULL. */
const char *ucache_status_name(ucache_status_t status);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum ucache_log_level {
    UCACHE_LOG_NONE  = 0,
    UCACHE_LOG_ERROR = 1,
    UCACHE_LOG_WARN  = 2,
    UCACHE_LOG_INFO  = 3,
    UCACHE_LOG_DEBUG = 4,
    UCACHE_LOG_TRACE = 5
} ucache_log_level_t;

/**
 * @brief Receives every log line the library emits at or above the level.
 * @param msg  One line without a trailing newline, valid only during the call.
 * The default sink writes to stderr (or to UCACHE_LOG_FILE), never stdout.
 */
typedef void (*ucache_log_sink_t)(void *arg, ucache_log_level_t level,
                                  const char *msg);

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
    UCACHE_PARAM_FIELD_CHUNK_SIZE = 1u << 4
};

typedef struct ucache_params {
    uint64_t           field_mask; /**< UCACHE_PARAM_FIELD_* bits that are valid */
    size_t             mem_bytes;  /**< pinned cache memory this node exports    */
    const char        *members;    /**< "dir:PATH", "file:PATH", "mpi"; copied   */
    ucache_log_level_t log_level;
    uint64_t           timeout_ns; /**< deadline of one remote operation         */
    size_t             chunk_size; /**< bytes per chunk of an object             */
} ucache_params_t;

/**
 * @brief Create a context: read the configuration, start the transport.
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
    uint64_t am_reads;         /**< served by an active-message bulk reply   */
    uint64_t rpcs;             /**< RPC requests completed (as a client)     */
    uint64_t rpcs_served;      /**< RPC requests answered (as a server)      */
    uint64_t timeouts;         /**< operations that hit their deadline       */
    uint64_t peer_failures;    /**< peers marked failed                      */
    uint64_t bad_input;        /**< malformed blobs, messages, arguments     */
    uint64_t eps_open;         /**< endpoints open now (gauge)               */
    uint64_t eps_evicted;      /**< endpoints closed by the pool's cap       */
} ucache_stats_t;

/** @brief Copy the context's counters into @p stats_p. */
ucache_status_t ucache_stats_get(ucache_h ctx, ucache_stats_t *stats_p);

/* ------------------------------------------------------------------------ */
/* Reads (shape fixed here; implemented by the fabric, issue [3/6])          */
/* ------------------------------------------------------------------------ */

/**
 * @brief Read @p len bytes at @p offset of the object @p uri through the
 *        cache into @p buf, which the caller owns.
 *
 * The bytes are exactly the origin's bytes for the object's current version:
 * every chunk is verified (key, version, checksum) before it is copied out.
 * @param nread_p  Bytes read (short only at the end of the object).
 * @return UCACHE_ERR_UNSUPPORTED until the fabric is built (issue [3/6]).
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

/** @brief Post @p n reads. @return UCACHE_ERR_UNSUPPORTED until [3/6]. */
ucache_status_t ucache_read_post(ucache_h ctx, ucache_read_req_t *reqs,
                                 size_t n);

/**
 * @brief Wait for posted reads until all complete or @p timeout_ns passes.
 * @return UCACHE_ERR_UNSUPPORTED until [3/6].
 */
ucache_status_t ucache_wait(ucache_h ctx, ucache_read_req_t *reqs, size_t n,
                            uint64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* UCACHE_H */
