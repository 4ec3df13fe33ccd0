/*
 * ucx_listen.c - the UCX backend's listener (bootstrap by address): it
 * accepts connections within per-host and total caps and closes those
 * that send no authenticated request in time.
 */
#include "transport/ucx_int.h"

#include <netdb.h>


/* Forget an accepted connection and close its endpoint (lock held). */
static void do_accepted_close(ut_ucx_ctx_t *ctx, ut_ucx_accepted_t *a)
{
    ut_ucx_accepted_t **pp;

    for (pp = &ctx->accepted; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    ctx->naccepted--;
    ctx->nunauthed -= !a->authed;
    ut_ucx_do_ep_close(ctx, a->ep);
    free(a);
}

static void ut_ucx_accepted_err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    ut_ucx_accepted_t *a = arg;

    (void)ep;
    UC_DEBUG("an accepted connection ended: %s", ucs_status_string(status));
    do_accepted_close(a->ctx, a);
}

/* An authenticated request came on @p ep: if the listener accepted it, the
 * connection has proved itself and stays (lock held). */
void ut_ucx_do_accepted_authed(ut_ucx_ctx_t *ctx, ucp_ep_h ep)
{
    ut_ucx_accepted_t *a;

    for (a = ctx->accepted; (a != NULL) && (ctx->nunauthed > 0); a = a->next) {
        if ((a->ep == ep) && !a->authed) {
            a->authed = true;
            ctx->nunauthed--;
            return;
        }
    }
}

/* Close the listener's connections that sent no authenticated request
 * within UCACHE_TIMEOUT of their accept; checked at most every 10 ms. */
void ut_ucx_do_accepted_reap(ut_ucx_ctx_t *ctx)
{
    ut_ucx_accepted_t *a, *next;
    uint64_t now = uc_time_ns();

    if ((ctx->nunauthed == 0) || (now - ctx->accept_check_ns < 10 * UC_NSEC_PER_MSEC)) {
        return;
    }
    ctx->accept_check_ns = now;
    for (a = ctx->accepted; a != NULL; a = next) {
        next = a->next;
        if (!a->authed && (now > a->deadline)) {
            UT_STAT_ADD(ctx, conns_unauth_closed, 1);
            UC_DEBUG("closing a listener connection that sent no authenticated request");
            do_accepted_close(ctx, a);
        }
    }
}

static bool ut_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    }
    return false;
}

/* A client connects to the listener (progress, lock held): accept it. */
static void ut_ucx_conn_cb(ucp_conn_request_h conn_request, void *arg)
{
    ut_ucx_ctx_t *ctx = arg;
    ucp_ep_params_t params = {
        .field_mask   = UCP_EP_PARAM_FIELD_CONN_REQUEST |
                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .conn_request = conn_request,
        .err_mode     = UCP_ERR_HANDLING_MODE_PEER
    };
    ucp_conn_request_attr_t attr = { .field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR };
    ut_ucx_accepted_t *a = NULL, *o;
    ucs_status_t status;
    unsigned same = 0;

    /* Bounded: UCACHE_MAX_EPS connections in all, UT_ACCEPT_PER_HOST from
     * one address; each must authenticate within UCACHE_TIMEOUT. */
    ut_ucx_do_accepted_reap(ctx);
    if (ucp_conn_request_query(conn_request, &attr) == UCS_OK) {
        for (o = ctx->accepted; o != NULL; o = o->next) {
            same += ut_same_host(&o->from, &attr.client_address);
        }
    } else {
        memset(&attr.client_address, 0, sizeof(attr.client_address));
    }
    if ((ctx->naccepted < ctx->cfg.max_eps) && (same < UT_ACCEPT_PER_HOST)) {
        a = calloc(1, sizeof(*a));
    }
    if (a == NULL) {
        UT_STAT_ADD(ctx, conns_refused, 1);
        UC_WARN("refused a listener connection: %u open (UCACHE_MAX_EPS %u), %u from its "
                "address (at most %u)", ctx->naccepted, ctx->cfg.max_eps, same,
                UT_ACCEPT_PER_HOST);
        ucp_listener_reject(ctx->listener, conn_request);
        return;
    }
    a->ctx      = ctx;
    a->from     = attr.client_address;
    a->deadline = uc_deadline(ctx->cfg.timeout_ns);
    a->authed   = !ut_auth_keyed(ctx->auth);   /* an open node trusts all */
    params.err_handler.cb  = ut_ucx_accepted_err_cb;
    params.err_handler.arg = a;
    status = ucp_ep_create(ctx->worker, &params, &a->ep);
    if (status != UCS_OK) {
        UC_WARN("cannot accept a connection: %s", ucs_status_string(status));
        free(a);
        return;
    }
    a->next       = ctx->accepted;
    ctx->accepted = a;
    ctx->naccepted++;
    ctx->nunauthed += !a->authed;
}

ucache_status_t ut_ucx_listen(ut_ctx_t *c, const char *ip, uint16_t port,
                              uint16_t *port_p)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_PASSIVE }, *res = NULL;
    ut_ucx_ctx_t *ctx = ut_ctx_of(c);
    ucp_listener_params_t params;
    ucp_listener_attr_t attr = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
    ucs_status_t status;
    char service[8];
    int rc;

    snprintf(service, sizeof(service), "%u", port);
    rc = getaddrinfo((ip != NULL) && (ip[0] != '\0') ? ip : NULL, service, &hints, &res);
    if ((rc != 0) || (res == NULL)) {
        UC_ERROR("cannot listen on %s:%u: %s", ip ? ip : "*", port, gai_strerror(rc));
        return UCACHE_ERR_INVALID;
    }
    memset(&params, 0, sizeof(params));
    params.field_mask       = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
                              UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
    params.sockaddr.addr    = res->ai_addr;
    params.sockaddr.addrlen = res->ai_addrlen;
    params.conn_handler.cb  = ut_ucx_conn_cb;
    params.conn_handler.arg = ctx;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->listener != NULL) {
        pthread_mutex_unlock(&ctx->lock);
        freeaddrinfo(res);
        return UCACHE_ERR_EXISTS;
    }
    status = ucp_listener_create(ctx->worker, &params, &ctx->listener);
    if ((status == UCS_OK) && (port_p != NULL)) {
        if (ucp_listener_query(ctx->listener, &attr) == UCS_OK) {
            *port_p = ntohs((attr.sockaddr.ss_family == AF_INET6) ?
                            ((struct sockaddr_in6 *)&attr.sockaddr)->sin6_port :
                            ((struct sockaddr_in *)&attr.sockaddr)->sin_port);
        } else {
            *port_p = port;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    freeaddrinfo(res);
    if (status != UCS_OK) {
        UC_ERROR("cannot listen on %s:%u: %s", ip ? ip : "*", port,
                 ucs_status_string(status));
        return (status == UCS_ERR_BUSY) ? UCACHE_ERR_BUSY : UCACHE_ERR_TRANSPORT;
    }
    return UCACHE_OK;
}
