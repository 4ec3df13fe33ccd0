/*
 * fuzz_member_list.c - file: member lists (fabric/member_file.c uf_file_scan):
 * "HOST:PORT [zone=Z] [weight=W]" lines an operator writes, read from a
 * file (here a memfd holding the input).  Properties: every member
 * accepted has a terminated host and zone, a port, a weight in range, and
 * distinct ids; slots are handed out in order.
 */
#include "fabric/member.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uf_member_t *v = NULL;
    uint32_t n = 0, i, j, slot = 0;
    uint64_t epoch;
    char path[64];
    int fd;

    fz_quiet();
    fd = memfd_create("members", MFD_CLOEXEC);
    if ((fd < 0) || (write(fd, data, size) != (ssize_t)size)) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (uf_file_scan(path, &v, &n, &epoch) == UCACHE_OK) {
        for (i = 0; i < n; i++) {
            FZ_CHECK(memchr(v[i].host, '\0', sizeof(v[i].host)) != NULL);
            FZ_CHECK(memchr(v[i].zone, '\0', sizeof(v[i].zone)) != NULL);
            FZ_CHECK((v[i].port > 0) && (v[i].weight > 0) && (v[i].slot0 == slot));
            slot += v[i].weight;
            for (j = 0; j < i; j++) {
                FZ_CHECK(v[j].id != v[i].id);
            }
        }
        uf_members_free(v, n);
    }
    close(fd);
    return 0;
}
