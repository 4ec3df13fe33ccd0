/*
 * mpi_job.c - job-scoped mode under mpirun: the ranks join with
 * ucache_mpi_init(), every rank reads the whole dataset (the files on the
 * command line) and random ranges of it through the cache and compares
 * each byte with the file.  Rank 0 prints the totals; exit 0 only if no
 * byte was wrong, no read failed and every chunk was read from its origin
 * exactly once across the job (the owners' fills add up to the chunks).
 */
#include "ucache_mpi.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    ucache_params_t p = { .field_mask = UCACHE_PARAM_FIELD_MEM_BYTES |
                                        UCACHE_PARAM_FIELD_CHUNK_SIZE,
                          .mem_bytes = 64u << 20, .chunk_size = 1u << 20 };
    unsigned long long mine[5] = { 0 }, sum[5] = { 0 }, chunks = 0;
    char uri[1100], *a, *b;
    uint64_t seed, off, len;
    ucache_stats_t st;
    ucache_status_t status;
    int rank, size, f, k, fd, rc;
    struct stat sb;
    size_t got;
    ssize_t n;
    ucache_h ctx;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    status = ucache_mpi_init(MPI_COMM_WORLD, &p, &ctx);
    if (status != UCACHE_OK) {
        fprintf(stderr, "rank %d: ucache_mpi_init: %s\n", rank, ucache_strerror(status));
        MPI_Finalize();
        return 1;
    }
    a = malloc(16u << 20);
    b = malloc(16u << 20);
    seed = 88172645463325252ull ^ (uint64_t)rank;
    for (f = 1; f < argc; f++) {
        snprintf(uri, sizeof(uri), "file://%s", argv[f]);
        stat(argv[f], &sb);
        chunks += ((unsigned long long)sb.st_size + (1u << 20) - 1) >> 20;
        fd = open(argv[f], O_RDONLY);
        for (k = 0; k < 21; k++) {
            if (k == 0) {               /* the whole file, then 20 ranges */
                off = 0;
                len = (uint64_t)sb.st_size;
            } else {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                off = seed % (uint64_t)(sb.st_size + 1);
                len = 1 + (seed >> 20) % (4u << 20);
            }
            if (len == 0) {
                continue;
            }
            mine[0]++;
            if (ucache_read(ctx, uri, off, len, a, &got) != UCACHE_OK) {
                mine[1]++;
                continue;
            }
            n = pread(fd, b, len, (off_t)off);
            if ((n < 0) || ((size_t)n != got) || memcmp(a, b, got)) {
                mine[2]++;
            }
        }
        close(fd);
    }
    MPI_Barrier(MPI_COMM_WORLD);        /* every read is done before counting */
    ucache_stats_get(ctx, &st);
    mine[3] = st.fills;
    mine[4] = st.origin_direct;
    MPI_Reduce(mine, sum, 5, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    rc = 0;
    if (rank == 0) {
        printf("mpi job: %d ranks, %llu reads, %llu failed, %llu wrong, %llu chunks, "
               "%llu origin fills, %llu direct origin reads\n", size, sum[0], sum[1],
               sum[2], chunks, sum[3], sum[4]);
        rc = (sum[1] || sum[2] || (sum[3] != chunks) || sum[4]) ? 1 : 0;
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);        /* no rank leaves while others read */
    ucache_finalize(ctx);
    free(a);
    free(b);
    MPI_Finalize();
    return rc;
}
