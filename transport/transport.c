/*
 * transport.c - backend selection for the transport layer.  The ops tables
 * are listed here; ut_ctx_create() picks one by name (UCACHE_TRANSPORT).
 */
#include "transport.h"
#include "transport/wire.h"
#include "util/log.h"
#include "util/time.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const ut_ops_t *const ut_backends[] = {
    &ut_ucx_ops,
    &ut_ofi_ops,
};

void ut_config_from(ut_config_t *tc, const uc_config_t *cfg)
{
    memset(tc, 0, sizeof(*tc));
    _Static_assert(sizeof(tc->transport) == sizeof(cfg->transport), "same size");
    _Static_assert(sizeof(tc->cluster_key_file) == sizeof(cfg->cluster_key_file), "same size");
    _Static_assert(sizeof(tc->admin_key_file) == sizeof(cfg->admin_key_file), "same size");
    memcpy(tc->transport, cfg->transport, sizeof(tc->transport));
    _Static_assert(sizeof(tc->ofi_provider) == sizeof(cfg->ofi_provider), "same size");
    memcpy(tc->ofi_provider, cfg->ofi_provider, sizeof(tc->ofi_provider));
    tc->read_path         = cfg->read_path;
    tc->timeout_ns        = cfg->timeout_ns;
    tc->max_eps           = cfg->max_eps;
    tc->peer_retry_ns     = cfg->peer_retry_ns;
    tc->peer_retry_max_ns = cfg->peer_retry_max_ns;
    tc->max_outstanding   = cfg->max_outstanding;
    tc->rpc_max           = cfg->rpc_max;
    tc->progress_spin_ns  = cfg->progress_spin_ns;
    tc->map_populate      = cfg->map_populate;
    _Static_assert(sizeof(tc->map_dir) == sizeof(cfg->map_dir), "same size");
    memcpy(tc->map_dir, cfg->map_dir, sizeof(tc->map_dir));
    tc->emulated_rma      = cfg->emulated_rma;
    memcpy(tc->cluster_key_file, cfg->cluster_key_file, sizeof(tc->cluster_key_file));
    memcpy(tc->admin_key_file, cfg->admin_key_file, sizeof(tc->admin_key_file));
    tc->auth_window_ns    = cfg->auth_window_ns;
}

ucache_status_t ut_params_take(const ut_params_t *params, ut_config_t *cfg,
                               uc_progress_mode_t *progress, bool *serve)
{
    uc_config_t whole;
    ucache_status_t ret;

    if ((params != NULL) &&
        (params->field_mask & ~(uint64_t)(UT_PARAM_FIELD_CONFIG | UT_PARAM_FIELD_PROGRESS |
                                          UT_PARAM_FIELD_SERVE))) {
        UC_ERROR("unknown transport parameter bits 0x%llx",
                 (unsigned long long)params->field_mask);
        return UCACHE_ERR_INVALID;
    }
    if ((params != NULL) && (params->field_mask & UT_PARAM_FIELD_CONFIG) &&
        (params->config != NULL)) {
        *cfg = *params->config;
    } else {
        ret = uc_config_load(&whole);
        if (ret != UCACHE_OK) {
            return ret;
        }
        ut_config_from(cfg, &whole);
    }
    *progress = ((params != NULL) && (params->field_mask & UT_PARAM_FIELD_PROGRESS)) ?
                params->progress : UC_PROGRESS_POLL;
    *serve = (params != NULL) && (params->field_mask & UT_PARAM_FIELD_SERVE) && params->serve;
    return UCACHE_OK;
}

ucache_status_t ut_ctx_create(const char *name, const ut_params_t *params,
                              ut_ctx_t **ctx_p)
{
    uc_config_t cfg;
    size_t i;

    if (ctx_p == NULL) {
        return UCACHE_ERR_INVALID;
    }
    if (name == NULL) {
        if ((params != NULL) && (params->field_mask & UT_PARAM_FIELD_CONFIG) &&
            (params->config != NULL)) {
            name = params->config->transport;
        } else {
            if (uc_config_load(&cfg) != UCACHE_OK) {
                return UCACHE_ERR_INVALID;
            }
            name = cfg.transport;
        }
    }
    for (i = 0; i < sizeof(ut_backends) / sizeof(ut_backends[0]); i++) {
        if (strcmp(ut_backends[i]->name, name) == 0) {
            return ut_backends[i]->ctx_create(params, ctx_p);
        }
    }
    UC_ERROR("unknown transport '%s' (available: ucx, ofi)", name);
    return UCACHE_ERR_UNSUPPORTED;
}

const char *ut_path_name(ut_path_t path)
{
    switch (path) {
    case UT_PATH_MAPPED: return "mapped";
    case UT_PATH_GET:    return "get";
    case UT_PATH_AM:     return "am";
    case UT_PATH_RPC:    return "rpc";
    case UT_PATH_NONE:   break;
    }
    return "none";
}

uint64_t ut_random64(void)
{
    uint64_t v;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        v = uc_time_ns() ^ ((uint64_t)getpid() << 32); /* unique, if not secret */
    }
    return v;
}

ucache_status_t ut_sockaddr_resolve(const char *host, uint16_t port, int family,
                                    struct sockaddr_storage *sa, socklen_t *len_p)
{
    struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV }, *res = NULL;
    char service[8];
    int rc;

    snprintf(service, sizeof(service), "%u", port);
    rc = (host != NULL) ? getaddrinfo(host, service, &hints, &res) : EAI_NONAME;
    if ((rc != 0) || (res == NULL) || (res->ai_addrlen > sizeof(*sa))) {
        UC_ERROR("cannot resolve %s:%u: %s", host ? host : "(null)", port,
                 (rc != 0) ? gai_strerror(rc) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return UCACHE_ERR_INVALID;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len_p = res->ai_addrlen;
    freeaddrinfo(res);
    return UCACHE_OK;
}

ucache_status_t ut_rpc_args_take(ut_req_t *req, size_t rpc_max, unsigned id, const void *msg,
                                 size_t len, void *meta, size_t meta_cap, void *data,
                                 size_t data_cap)
{
    if ((id == UT_OP_NONE) || (id > UT_RPC_MAX_ID) || (len > rpc_max) ||
        ((len > 0) && (msg == NULL)) || ((meta_cap > 0) && (meta == NULL)) ||
        ((data_cap > 0) && (data == NULL))) {
        UC_DEBUG("RPC %u of %zu bytes refused (UCACHE_RPC_MAX %zu)", id, len, rpc_max);
        req->status = UCACHE_ERR_INVALID;
        return req->status;
    }
    req->priv.buf      = data;
    req->priv.cap      = data_cap;
    req->priv.meta     = meta;
    req->priv.meta_cap = meta_cap;
    return UCACHE_OK;
}
