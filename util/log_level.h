/*
 * log_level.h - the log levels and the log sink's type: the logger
 * (util/log.h) and the public header (include/ucache.h, which includes
 * this; the installed ucache.h has it written in) share them.
 */
#ifndef UCACHE_LOG_LEVEL_H
#define UCACHE_LOG_LEVEL_H

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

#endif
