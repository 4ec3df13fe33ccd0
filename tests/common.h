/*
 * common.h - shared helpers of the CUnit suites: a runner that prints the
 * CUnit summary plus one "N passed, N failed, N skipped" line, and a SKIP
 * that is counted and says why (a test that cannot run here is never
 * silently dropped).
 */
#ifndef UCACHE_TESTS_COMMON_H
#define UCACHE_TESTS_COMMON_H

#include <CUnit/Basic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned tc_skipped;

/* Mark the running test skipped, with the reason; the caller returns. */
#define TC_SKIP(...)                                                         \
    do {                                                                      \
        tc_skipped++;                                                        \
        fprintf(stderr, "SKIP %s: ", __func__);                               \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
    } while (0)

/*
 * The allowance for speed, stated once for every suite: UCACHE_TEST_SLOW
 * (make asan sets 3, make tsan 10; 1 otherwise) multiplies every bound a
 * test puts on how long something may take (an upper bound on an elapsed
 * time, a deadline that must not expire).  Lower bounds (a deadline must
 * have passed) are the product's and are never scaled.
 */
static inline uint64_t tc_slow(uint64_t ns)
{
    const char *env = getenv("UCACHE_TEST_SLOW");
    unsigned long k = (env != NULL) ? strtoul(env, NULL, 10) : 1;

    return ns * ((k >= 1 && k <= 100) ? k : 1);
}

/* A skip for a missing dependency that make deps installs: under CI
 * (CI=true) it is a failure, never a skip.  The caller returns. */
#define TC_SKIP_DEP(...)                                                     \
    do {                                                                      \
        const char *ci_ = getenv("CI");                                       \
        if ((ci_ != NULL) && (strcmp(ci_, "true") == 0)) {                    \
            fprintf(stderr, "FAIL %s (CI=true): ", __func__);                 \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            CU_FAIL("a dependency make deps installs is missing");           \
        } else {                                                              \
            TC_SKIP(__VA_ARGS__);                                            \
        }                                                                     \
    } while (0)

typedef struct tc_test {
    const char *name;
    void      (*fn)(void);
} tc_test_t;

/* Register one suite of tests; returns 0 on success. */
static inline int tc_add_suite(const char *name, const tc_test_t *tests)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    const char *only = getenv("UCACHE_TEST_ONLY"); /* run only tests named like this */

    if (suite == NULL) {
        return -1;
    }
    for (; tests->name != NULL; tests++) {
        if ((only != NULL) && (strstr(tests->name, only) == NULL)) {
            continue;
        }
        if (CU_add_test(suite, tests->name, tests->fn) == NULL) {
            return -1;
        }
    }
    return 0;
}

/* Run everything registered; exit status 0 only if every test passed. */
static inline int tc_run(void)
{
    unsigned run, failed;

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    run    = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    printf("\n%u passed, %u failed, %u skipped\n", run - failed - tc_skipped,
           failed, tc_skipped);
    CU_cleanup_registry();
    return (failed == 0) ? 0 : 1;
}

#endif
