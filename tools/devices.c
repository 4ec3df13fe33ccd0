/*
 * devices.c - `ucache devices`: this machine's RDMA devices and ports
 * (rdma-core, like ibv_devinfo) and the UCX transports usable here, with
 * whether each can serve one-sided reads.  No fabric is contacted.
 * Exit codes: 0 an RDMA port is active, 1 none is (the fabric runs over
 * UCX's tcp and shared-memory transports), 2 bad command line.
 */
#include "tools/commands.h"
#include "ucache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dv_json_str_list(char (*v)[40], unsigned n)
{
    unsigned i;

    printf("[");
    for (i = 0; i < n; i++) {
        printf("%s\"%s\"", i ? "," : "", v[i]);
    }
    printf("]");
}

const char *dv_memory_writable(const char *tls)
{
    static const char *const ib[] = { "rc_", "dc_", "ud_", NULL };
    const char *t = tls;
    unsigned i;

    while ((t != NULL) && (*t != '\0')) {
        for (i = 0; ib[i] != NULL; i++) {
            if (strncmp(t, ib[i], strlen(ib[i])) == 0) {
                return "UCX 1.13 registers IB memory with remote write whatever is asked: "
                       "a peer with the key can write it (docs/security.md)";
            }
        }
        t = strchr(t, ',');
        t = (t != NULL) ? t + 1 : NULL;
    }
    return NULL;
}

int cmd_devices(int argc, char **argv)
{
    ucache_devices_t *d;
    unsigned active = 0, writable = 0;
    size_t i, p;
    int json = 0, a;

    for (a = 2; a < argc; a++) {
        if (strcmp(argv[a], "--json") == 0) {
            json = 1;
        } else if ((strcmp(argv[a], "--help") == 0) || (strcmp(argv[a], "-h") == 0)) {
            printf("usage: ucache devices [--json]\n"
                   "This machine's RDMA devices and ports through rdma-core (state, link\n"
                   "layer, speed, MTU, GIDs), and the UCX transports usable here (type,\n"
                   "one-sided get, UCX's latency and bandwidth estimates, whether the\n"
                   "cache's exported memory is read-only to peers over it).  Exit 0 when an\n"
                   "RDMA port is active, 1 when none is (the fabric then runs over tcp and\n"
                   "shared memory), and the libfabric providers UCACHE_TRANSPORT=ofi could use\n"
                   "(reads one-sided or by RPC, a host:port listener or not).\n");
            return 0;
        } else {
            fprintf(stderr, "ucache devices: unknown option '%s' (see ucache devices "
                    "--help)\n", argv[a]);
            return 2;
        }
    }
    d = calloc(1, sizeof(*d));
    if ((d == NULL) || (ucache_devices_query(d) != UCACHE_OK)) {
        fprintf(stderr, "ucache devices: UCX cannot list its transports\n");
        free(d);
        return 1;
    }
    for (i = 0; i < d->nrdma; i++) {
        for (p = 0; p < d->rdma[i].nports; p++) {
            active += (strcmp(d->rdma[i].ports[p].state, "PORT_ACTIVE") == 0);
        }
    }
    if (json) {
        printf("{\"rdma_devices\":[");
        for (i = 0; i < d->nrdma; i++) {
            const ucache_rdma_device_t *r = &d->rdma[i];

            printf("%s{\"name\":\"%s\",\"node_guid\":\"%s\",\"node_type\":\"%s\","
                   "\"fw_ver\":\"%s\",\"ports\":[", i ? "," : "", r->name, r->node_guid,
                   r->node_type, r->fw_ver);
            for (p = 0; p < r->nports; p++) {
                const ucache_rdma_port_t *q = &r->ports[p];

                printf("%s{\"port\":%u,\"state\":\"%s\",\"link_layer\":\"%s\","
                       "\"gbps\":%.2f,\"width_speed\":\"%s\",\"mtu\":%u,\"lid\":%u,\"gids\":",
                       p ? "," : "", q->num, q->state, q->link_layer, q->gbps,
                       q->width_speed, q->mtu, q->lid);
                dv_json_str_list((char (*)[40])q->gids, q->ngids);
                printf("}");
            }
            printf("]}");
        }
        printf("],\"rdma_error\":\"%s\",\"active_ports\":%u,\"ucx_version\":\"%s\","
               "\"ucx_transports\":[", d->rdma_errno ? strerror(d->rdma_errno) : "",
               active, d->ucx_version);
        for (i = 0; i < d->ntls; i++) {
            const ucache_ucx_tl_t *t = &d->tls[i];

            printf("%s{\"tl\":\"%s\",\"dev\":\"%s\",\"type\":\"%s\",\"get\":%s,"
                   "\"rdma\":%s,\"latency_us\":%.3f,\"bandwidth_gbs\":%.2f,"
                   "\"memory\":\"%s\"}", i ? "," : "",
                   t->tl, t->dev, t->type, t->get ? "true" : "false",
                   t->rdma ? "true" : "false", t->latency_us, t->bandwidth_gbs,
                   dv_memory_writable(t->tl) ? "writable" : "read-only");
            writable += (dv_memory_writable(t->tl) != NULL);
        }
        printf("],\"exported_memory\":\"%s\",\"libfabric_version\":\"%s\","
               "\"libfabric_providers\":[", writable ? "writable over rdma" : "read-only",
               d->ofi_version);
        for (i = 0; i < d->nofi; i++) {
            const ucache_ofi_prov_t *o = &d->ofi[i];

            printf("%s{\"provider\":\"%s\",\"fabric\":\"%s\",\"domain\":\"%s\","
                   "\"one_sided\":%s,\"listener\":%s}", i ? "," : "", o->prov, o->fabric,
                   o->domain, o->one_sided ? "true" : "false", o->listener ? "true" : "false");
        }
        printf("]}\n");
    } else {
        if (d->nrdma == 0) {
            printf("RDMA devices: none (rdma-core: %s).\n"
                   "  This machine has no usable RDMA NIC (or its kernel has no RDMA\n"
                   "  support); the fabric runs over the UCX transports below.\n",
                   strerror(d->rdma_errno ? d->rdma_errno : ENODEV));
        }
        for (i = 0; i < d->nrdma; i++) {
            const ucache_rdma_device_t *r = &d->rdma[i];

            printf("%s: node_guid %s, %s, fw %s\n", r->name, r->node_guid, r->node_type,
                   r->fw_ver);
            for (p = 0; p < r->nports; p++) {
                const ucache_rdma_port_t *q = &r->ports[p];
                unsigned g;

                printf("  port %u: %s, %s, %s (%.1f Gb/s), MTU %u, LID %u\n", q->num,
                       q->state, q->link_layer, q->width_speed, q->gbps, q->mtu, q->lid);
                for (g = 0; g < q->ngids; g++) {
                    printf("    GID[%u] %s\n", g, q->gids[g]);
                }
            }
        }
        printf("\nUCX %s transports:\n%-12s %-16s %-5s %-4s %-5s %10s %12s  %s\n",
               d->ucx_version, "transport", "device", "type", "get", "rdma", "latency",
               "bandwidth", "memory");
        for (i = 0; i < d->ntls; i++) {
            const ucache_ucx_tl_t *t = &d->tls[i];

            printf("%-12s %-16s %-5s %-4s %-5s %8.2fus %7.2f GB/s  %s\n", t->tl, t->dev,
                   t->type, t->get ? "yes" : "no", t->rdma ? "yes" : "no", t->latency_us,
                   t->bandwidth_gbs, dv_memory_writable(t->tl) ? "WRITABLE" : "read-only");
            writable += (dv_memory_writable(t->tl) != NULL);
        }
        printf("\nlibfabric %s providers (UCACHE_TRANSPORT=ofi UCACHE_OFI_PROVIDER=...):\n"
               "%-16s %-20s %-12s %-10s %s\n", d->ofi_version, "provider", "fabric", "domain",
               "reads", "listener");
        for (i = 0; i < d->nofi; i++) {
            const ucache_ofi_prov_t *o = &d->ofi[i];

            printf("%-16s %-20s %-12s %-10s %s\n", o->prov, o->fabric, o->domain,
                   o->one_sided ? "one-sided" : "by RPC", o->listener ? "yes" : "no");
        }
        if (d->nofi == 0) {
            printf("  none with reliable datagrams, tagged messages and remote reads\n");
        }
        if (writable > 0) {
            printf("\nExported memory is WRITABLE by peers over the transports marked so: %s.\n",
                   dv_memory_writable("rc_"));
        } else {
            printf("\nExported memory is read-only to peers over every transport here "
                   "(shared memory: a sealed, read-only mapping; tcp: requests only).\n");
        }
    }
    free(d);
    return (active > 0) ? 0 : 1;
}
