/*
 * context.c - the public context (ucache_h): configuration, logging and the
 * transport a process uses.  Training jobs and tools create one per process
 * with ucache_init(); the fabric's placement and read path will hang off it.
 * Invariant: a context is fully built or not returned at all.
 */
#include "ucache.h"
#include "transport/transport.h"
#include "util/config.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

#define UCACHE_PARAM_FIELDS_ALL                                              \
    (UCACHE_PARAM_FIELD_MEM_BYTES | UCACHE_PARAM_FIELD_MEMBERS |              \
     UCACHE_PARAM_FIELD_LOG_LEVEL | UCACHE_PARAM_FIELD_TIMEOUT_NS |           \
     UCACHE_PARAM_FIELD_CHUNK_SIZE)

struct ucache_context {
    uc_config_t cfg;
    ut_ctx_t   *transport;
};

/* Apply explicit parameters over defaults + environment. */
static ucache_status_t uf_params_apply(uc_config_t *cfg, const ucache_params_t *p)
{
    if (p->field_mask & ~(uint64_t)UCACHE_PARAM_FIELDS_ALL) {
        UC_ERROR("unknown ucache_params_t field bits 0x%llx",
                 (unsigned long long)(p->field_mask & ~(uint64_t)UCACHE_PARAM_FIELDS_ALL));
        return UCACHE_ERR_INVALID;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_MEM_BYTES) {
        if (p->mem_bytes < 4096) {
            UC_ERROR("mem_bytes %zu is below the 4 KiB minimum", p->mem_bytes);
            return UCACHE_ERR_INVALID;
        }
        cfg->mem_bytes = p->mem_bytes;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_MEMBERS) {
        if ((p->members == NULL) || (strlen(p->members) >= sizeof(cfg->members))) {
            UC_ERROR("members must be a string shorter than %zu bytes",
                     sizeof(cfg->members));
            return UCACHE_ERR_INVALID;
        }
        strcpy(cfg->members, p->members);
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_LOG_LEVEL) {
        if ((p->log_level < UCACHE_LOG_NONE) || (p->log_level > UCACHE_LOG_TRACE)) {
            UC_ERROR("log_level %d is out of range", (int)p->log_level);
            return UCACHE_ERR_INVALID;
        }
        cfg->log_level = p->log_level;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_TIMEOUT_NS) {
        if (p->timeout_ns == 0) {
            UC_ERROR("timeout_ns must be positive");
            return UCACHE_ERR_INVALID;
        }
        cfg->timeout_ns = p->timeout_ns;
    }
    if (p->field_mask & UCACHE_PARAM_FIELD_CHUNK_SIZE) {
        if ((p->chunk_size < 4096) || (p->chunk_size > (1u << 30))) {
            UC_ERROR("chunk_size %zu must be within 4 KiB .. 1 GiB", p->chunk_size);
            return UCACHE_ERR_INVALID;
        }
        cfg->chunk_size = p->chunk_size;
    }
    return UCACHE_OK;
}

ucache_status_t ucache_init(const ucache_params_t *params, ucache_h *ctx_p)
{
    ut_params_t tparams = { .field_mask = UT_PARAM_FIELD_CONFIG };
    struct ucache_context *ctx;
    ucache_status_t status;

    if (ctx_p == NULL) {
        return UCACHE_ERR_INVALID;
    }
    uc_log_init();
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    status = uc_config_load(&ctx->cfg);
    if (status != UCACHE_OK) {
        goto err_free;
    }
    if (params != NULL) {
        status = uf_params_apply(&ctx->cfg, params);
        if (status != UCACHE_OK) {
            goto err_free;
        }
        if (params->field_mask & UCACHE_PARAM_FIELD_LOG_LEVEL) {
            ucache_log_set_level(params->log_level);
        }
    }
    tparams.config = &ctx->cfg;
    status = ut_ctx_create(ctx->cfg.transport, &tparams, &ctx->transport);
    if (status != UCACHE_OK) {
        goto err_free;
    }
    *ctx_p = ctx;
    return UCACHE_OK;

err_free:
    free(ctx);
    return status;
}

void ucache_finalize(ucache_h ctx)
{
    if (ctx == NULL) {
        return;
    }
    ut_ctx_destroy(ctx->transport);
    free(ctx);
}

ucache_status_t ucache_stats_get(ucache_h ctx, ucache_stats_t *stats_p)
{
    ut_stats_t ts;

    if ((ctx == NULL) || (stats_p == NULL)) {
        return UCACHE_ERR_INVALID;
    }
    ut_stats(ctx->transport, &ts);
    memset(stats_p, 0, sizeof(*stats_p));
    stats_p->reads         = ts.reads;
    stats_p->read_bytes    = ts.read_bytes;
    stats_p->mapped_reads  = ts.mapped_reads;
    stats_p->get_reads     = ts.get_reads;
    stats_p->am_reads      = ts.am_reads;
    stats_p->rpcs          = ts.rpcs;
    stats_p->rpcs_served   = ts.rpcs_served;
    stats_p->timeouts      = ts.timeouts;
    stats_p->peer_failures = ts.peer_failures;
    stats_p->bad_input     = ts.bad_input;
    stats_p->eps_open      = ts.eps_open;
    stats_p->eps_evicted   = ts.eps_evicted;
    return UCACHE_OK;
}

/* The cache read path arrives with the fabric (issue [3/6]); until then these
 * say so plainly rather than pretend. */
static ucache_status_t uf_read_unsupported(ucache_h ctx)
{
    if (ctx == NULL) {
        return UCACHE_ERR_INVALID;
    }
    UC_ERROR("cache reads need the fabric, which this build does not have yet");
    return UCACHE_ERR_UNSUPPORTED;
}

ucache_status_t ucache_read(ucache_h ctx, const char *uri, uint64_t offset,
                            size_t len, void *buf, size_t *nread_p)
{
    (void)uri; (void)offset; (void)len; (void)buf; (void)nread_p;
    return uf_read_unsupported(ctx);
}

ucache_status_t ucache_read_post(ucache_h ctx, ucache_read_req_t *reqs, size_t n)
{
    (void)reqs; (void)n;
    return uf_read_unsupported(ctx);
}

ucache_status_t ucache_wait(ucache_h ctx, ucache_read_req_t *reqs, size_t n,
                            uint64_t timeout_ns)
{
    (void)reqs; (void)n; (void)timeout_ns;
    return uf_read_unsupported(ctx);
}
