/*
 * test_fabric.c - the fabric's unit suites (placement, members, the wire
 * protocol), one binary; the multi-process suites are the shell scripts
 * beside it.
 */
#include "tests/common.h"

extern const tc_test_t place_tests[];
extern const tc_test_t member_tests[];
extern const tc_test_t etcd_tests[];
extern const tc_test_t proto_tests[];
extern const tc_test_t manifest_tests[];
extern const tc_test_t view_tests[];
extern const tc_test_t view_shm_tests[];
extern const tc_test_t node_tests[];
extern const tc_test_t client_tests[];
extern const tc_test_t probe_tests[];
extern const tc_test_t quota_tests[];

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    if ((tc_add_suite("place", place_tests) != 0) ||
        (tc_add_suite("member", member_tests) != 0) ||
        (tc_add_suite("etcd", etcd_tests) != 0) ||
        (tc_add_suite("proto", proto_tests) != 0) ||
        (tc_add_suite("manifest", manifest_tests) != 0) ||
        (tc_add_suite("view", view_tests) != 0) ||
        (tc_add_suite("view_shm", view_shm_tests) != 0) ||
        (tc_add_suite("node", node_tests) != 0) ||
        (tc_add_suite("client", client_tests) != 0) ||
        (tc_add_suite("probe", probe_tests) != 0) ||
        (tc_add_suite("quota", quota_tests) != 0)) {
        CU_cleanup_registry();
        return 1;
    }
    return tc_run();
}
