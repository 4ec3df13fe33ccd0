/*
 * log.h - the one logger of the library.  Every layer logs through these
 * macros; the level comes from UCACHE_LOG_LEVEL (or ucache_log_set_level())
 * and lines go to the sink (stderr or UCACHE_LOG_FILE), never to stdout.
 * Rule: log once, where an error is first seen; callers just return status.
 */
#ifndef UC_LOG_H
#define UC_LOG_H

#include "util/log_level.h"
#include "util/status.h"

#include <stdatomic.h>

extern _Atomic int uc_log_level_cur;

void uc_log_init(void);
/** ucache_log_set_level() and ucache_log_set_sink() (fabric/api.c). */
void uc_log_set_level(ucache_log_level_t level);
void uc_log_set_sink(ucache_log_sink_t sink, void *arg);
void uc_log_emit(ucache_log_level_t level, const char *file, int line,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** Parse "error", "warn", ... or a digit 0-5. @return -1 if unknown. */
int uc_log_level_parse(const char *s);
const char *uc_log_level_name(ucache_log_level_t level);

#define UC_LOG_ENABLED(_lvl) \
    (atomic_load_explicit(&uc_log_level_cur, memory_order_relaxed) >= (int)(_lvl))

#define UC_LOG(_lvl, ...)                                                    \
    do {                                                                     \
        if (UC_LOG_ENABLED(_lvl)) {                                          \
            uc_log_emit((_lvl), __FILE__, __LINE__, __VA_ARGS__);            \
        }                                                                    \
    } while (0)

#define UC_ERROR(...) UC_LOG(UCACHE_LOG_ERROR, __VA_ARGS__)
#define UC_WARN(...)  UC_LOG(UCACHE_LOG_WARN, __VA_ARGS__)
#define UC_INFO(...)  UC_LOG(UCACHE_LOG_INFO, __VA_ARGS__)
#define UC_DEBUG(...) UC_LOG(UCACHE_LOG_DEBUG, __VA_ARGS__)
#define UC_TRACE(...) UC_LOG(UCACHE_LOG_TRACE, __VA_ARGS__)

#endif
