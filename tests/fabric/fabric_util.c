/*
 * fabric_util.c - what the fabric's unit suites share: a scratch
 * directory, files written whole, member records, and a pair of serving
 * contexts in one process joined by "mpi" records.
 */
#include "tests/common.h"
#include "tests/fabric/fabric_util.h"
#include "fabric/fabric.h"
#include "util/time.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char tdir[] = "/tmp/ucache-tmember.XXXXXX";

void tdir_make(void)
{
    strcpy(tdir, "/tmp/ucache-tmember.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tdir));
}

void tdir_remove(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

uf_member_t tmember(uint64_t id, uint32_t weight, uint32_t pid)
{
    static char addr[] = "address-bytes", rkey[] = "rkey";
    uf_member_t m;

    memset(&m, 0, sizeof(m));
    m.id = id;
    m.weight = weight;
    m.pid = pid;
    m.mem_bytes = 1u << 30;
    strcpy(m.zone, "rack-7");
    gethostname(m.host, sizeof(m.host) - 1);
    m.addr = addr;
    m.addr_len = sizeof(addr);
    m.rkey = rkey;
    m.rkey_len = sizeof(rkey);
    return m;
}

void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

/* Serving contexts of 16 MiB in 64 KiB chunks, joined by "mpi" records. */
const ucache_params_t pair_params = {
    .field_mask = UCACHE_PARAM_FIELD_SERVE | UCACHE_PARAM_FIELD_MEMBERS |
                  UCACHE_PARAM_FIELD_MEM_BYTES | UCACHE_PARAM_FIELD_CHUNK_SIZE |
                  UCACHE_PARAM_FIELD_ALLOW,
    .serve = 1, .members = "mpi", .mem_bytes = 16u << 20, .chunk_size = 64u << 10,
    .allow = "file:///tmp/"      /* the tests' objects live in /tmp/ucache-* */
};

/* A 300000-byte object of pattern i * @p mul + i / @p div at @p uri, and
 * two serving contexts of @p p with their records (not yet joined). */
char *pair_start(const ucache_params_t *p, unsigned mul, unsigned div, char *uri,
                 size_t cap, ucache_h c[2], const void *recs[2], size_t lens[2])
{
    char path[128], *data = malloc(300000);
    unsigned i, k;

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    tdir_make();
    snprintf(path, sizeof(path), "%s/obj", tdir);
    snprintf(uri, cap, "file://%s", path);
    for (i = 0; i < 300000; i++) {
        data[i] = (char)(i * mul + i / div);
    }
    write_file(path, data, 300000);
    for (k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL_FATAL(ucache_init(p, &c[k]), UCACHE_OK);
        CU_ASSERT_EQUAL_FATAL(ucache_member_record(c[k], &recs[k], &lens[k]), UCACHE_OK);
    }
    return data;
}
