/*
 * status.h - every status ucache returns, at the bottom of the layers: the
 * lower layers (util, transport, store, origin) include this, not the
 * public header; include/ucache.h includes it (and `make install` writes
 * it into the installed ucache.h, which stays one file).
 */
#ifndef UCACHE_STATUS_H
#define UCACHE_STATUS_H

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
    X(UCACHE_ERR_EXISTS,        -17, "already exists")                        \
    X(UCACHE_ERR_DENIED,        -18, "access denied by the origin")            \
    X(UCACHE_ERR_REFUSED,       -19, "origin not allowed by the owner's configuration") \
    X(UCACHE_ERR_AUTH,          -20, "refused by the fabric: not signed with its key, replayed, or not an admin") \
    X(UCACHE_ERR_PROTOCOL,      -21, "the peer speaks another protocol version (a node or reader of another release)")

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

#endif
