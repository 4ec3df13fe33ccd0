/*
 * ucache_mpi.h - job-scoped mode: the ranks of an MPI job form the fabric.
 *
 * Header-only on purpose: libucache-rdma never links MPI; a job that wants
 * this mode includes this header (and is compiled with mpicc).  Every rank
 * calls ucache_mpi_init() collectively: each creates a serving context
 * (exporting params->mem_bytes, default UCACHE_MEM), the ranks exchange their
 * node records (worker address, remote key, weight, zone) with
 * MPI_Allgatherv, and every rank installs the same member list, in rank
 * order, as view epoch 1.  Afterwards ucache_read() works on every rank;
 * finalize with ucache_finalize() before MPI_Finalize().
 */
#ifndef UCACHE_MPI_H
#define UCACHE_MPI_H

#include "ucache.h"

#include <mpi.h>
#include <stdlib.h>

/**
 * @brief Collective over @p comm: create this rank's context and join the
 *        job's fabric.  Succeeds on every rank or on none (the outcome is
 *        agreed with an MPI_Allreduce); *ctx_p is set only on success.
 */
static inline ucache_status_t ucache_mpi_init(MPI_Comm comm,
                                              const ucache_params_t *params,
                                              ucache_h *ctx_p)
{
    ucache_params_t p;
    ucache_status_t status;
    const void *rec = NULL, **recs = NULL;
    size_t len = 0, *lens = NULL;
    int size, i, mylen, total = 0, ok, all_ok = 0;
    int *counts = NULL, *displs = NULL;
    ucache_h ctx = NULL;
    char *buf = NULL;

    if (params != NULL) {
        p = *params;
    } else {
        p.field_mask = 0;
    }
    p.field_mask |= UCACHE_PARAM_FIELD_SERVE | UCACHE_PARAM_FIELD_MEMBERS;
    p.serve   = 1;
    p.members = "mpi";
    MPI_Comm_size(comm, &size);
    status = ucache_init(&p, &ctx);
    if (status == UCACHE_OK) {
        status = ucache_member_record(ctx, &rec, &len);
    }
    mylen  = (status == UCACHE_OK) ? (int)len : 0;
    counts = (int *)calloc((size_t)size, sizeof(*counts));
    displs = (int *)calloc((size_t)size, sizeof(*displs));
    recs   = (const void **)calloc((size_t)size, sizeof(*recs));
    lens   = (size_t *)calloc((size_t)size, sizeof(*lens));
    if ((counts == NULL) || (displs == NULL) || (recs == NULL) || (lens == NULL)) {
        status = UCACHE_ERR_NO_MEMORY;
        mylen  = 0;
    }
    /* every rank takes part in every collective, whatever failed locally */
    MPI_Allgather(&mylen, 1, MPI_INT, counts, 1, MPI_INT, comm);
    for (i = 0; (counts != NULL) && (displs != NULL) && (i < size); i++) {
        displs[i] = total;
        total    += counts[i];
    }
    buf = (char *)malloc((size_t)total + 1);
    MPI_Allgatherv(rec, mylen, MPI_BYTE, buf, counts, displs, MPI_BYTE, comm);
    if ((status == UCACHE_OK) && (buf != NULL)) {
        for (i = 0; i < size; i++) {
            recs[i] = buf + displs[i];
            lens[i] = (size_t)counts[i];
        }
        status = ucache_members_set(ctx, recs, lens, (uint32_t)size, 1);
    } else if (status == UCACHE_OK) {
        status = UCACHE_ERR_NO_MEMORY;
    }
    ok = (status == UCACHE_OK);
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    free(buf);
    free(counts);
    free(displs);
    free(recs);
    free(lens);
    if (!all_ok) {
        ucache_finalize(ctx);
        return (status != UCACHE_OK) ? status : UCACHE_ERR_PEER;
    }
    *ctx_p = ctx;
    return UCACHE_OK;
}

#endif /* UCACHE_MPI_H */
