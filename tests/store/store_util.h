/*
 * store_util.h - helpers of the store's suites (store_util.c).
 */
#ifndef UCACHE_TESTS_STORE_UTIL_H
#define UCACHE_TESTS_STORE_UTIL_H

#include "store/store.h"
#include "tests/common.h"
#include "util/time.h"

#include <stddef.h>
#include <stdint.h>

#define MiB (1ull << 20)
#define KiB 1024ull

us_key_t key_of(uint64_t id);
void fill_pattern(uint8_t *p, size_t len, uint64_t id);
size_t pattern_bad(const uint8_t *p, size_t len, uint64_t id);
us_store_t *make_store(size_t len, uint64_t grace_ns, size_t index_chunk,
                       size_t max_payload);
ucache_status_t put_id(us_store_t *s, uint64_t id, uint16_t ns, size_t len);
int get_id(us_store_t *s, uint64_t id, size_t len);
uint64_t rss_bytes(void);
void check_budget(us_store_t *s);
/** Free the buffer put_id() keeps (main, at the end). */
void store_util_cleanup(void);

#endif
