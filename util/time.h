/*
 * time.h - monotonic clock helpers shared by every layer.  Deadlines are
 * absolute CLOCK_MONOTONIC nanoseconds; clock_gettime() is a vDSO call here,
 * not a syscall, so it is cheap enough for the read path.
 */
#ifndef UC_TIME_H
#define UC_TIME_H

#include <stdint.h>
#include <time.h>

#define UC_NSEC_PER_USEC 1000ull
#define UC_NSEC_PER_MSEC 1000000ull
#define UC_NSEC_PER_SEC  1000000000ull

static inline uint64_t uc_time_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UC_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/** An absolute deadline @p timeout_ns from now (saturating). */
static inline uint64_t uc_deadline(uint64_t timeout_ns)
{
    uint64_t now = uc_time_ns();

    return (timeout_ns > UINT64_MAX - now) ? UINT64_MAX : now + timeout_ns;
}

#endif
