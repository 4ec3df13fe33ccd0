/*
 * fuzz.h - what the libFuzzer harnesses share (make fuzz): the entry point
 * and a check that aborts, so libFuzzer saves the input, when a property a
 * parser promises does not hold.  Logs go nowhere: a parser refusing bad
 * input loudly is its job, not a finding.
 */
#ifndef UCACHE_FUZZ_H
#define UCACHE_FUZZ_H

#include "ucache.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz: %s:%d: %s does not hold\n", __FILE__,      \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* Silence the library's log once (every harness calls it first). */
static inline void fz_quiet(void)
{
    static int done;

    if (!done) {
        ucache_log_set_level(UCACHE_LOG_NONE);
        done = 1;
    }
}

#endif
