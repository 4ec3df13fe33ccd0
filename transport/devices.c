/*
 * devices.c - this machine's RDMA devices (rdma-core: ibv_get_device_list,
 * ibv_query_device, ibv_query_port, ibv_query_gid) and UCX transport
 * resources (UCT: components, memory domains, their transports, each
 * interface's capabilities), for `ucache devices`.  A machine without RDMA
 * devices (no hardware, or a kernel without InfiniBand support, where
 * ibv_get_device_list fails with ENOSYS) lists none and says why.
 */
#include "transport/devices.h"
#include "transport/transport.h"
#include "util/log.h"

#include <errno.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <ucp/api/ucp.h>
#include <uct/api/uct.h>

/* Lanes of an active_width code; Gb/s per lane of an active_speed code. */
static unsigned ud_lanes(uint8_t width)
{
    switch (width) {
    case 1:  return 1;
    case 2:  return 4;
    case 4:  return 8;
    case 8:  return 12;
    case 16: return 2;
    default: return 0;
    }
}

static double ud_lane_gbps(uint32_t speed, const char **name_p)
{
    static const struct { uint32_t code; double gbps; const char *name; } t[] = {
        { 1, 2.5, "SDR" }, { 2, 5.0, "DDR" }, { 4, 10.0, "QDR" }, { 8, 10.3125, "FDR10" },
        { 16, 14.0625, "FDR" }, { 32, 25.78125, "EDR" }, { 64, 53.125, "HDR" },
        { 128, 106.25, "NDR" }, { 256, 212.5, "XDR" }
    };
    unsigned i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (t[i].code == speed) {
            *name_p = t[i].name;
            return t[i].gbps;
        }
    }
    *name_p = "?";
    return 0;
}

static void ud_port(struct ibv_context *ibctx, uint8_t num, ucache_rdma_port_t *out)
{
    struct ibv_port_attr pa;
    union ibv_gid gid;
    const char *sname;
    double lane;
    int i;

    memset(out, 0, sizeof(*out));
    out->num = num;
    if (ibv_query_port(ibctx, num, &pa) != 0) {
        snprintf(out->state, sizeof(out->state), "unknown");
        return;
    }
    snprintf(out->state, sizeof(out->state), "%s", ibv_port_state_str(pa.state));
    snprintf(out->link_layer, sizeof(out->link_layer), "%s",
             (pa.link_layer == IBV_LINK_LAYER_ETHERNET) ? "Ethernet" :
             (pa.link_layer == IBV_LINK_LAYER_INFINIBAND) ? "InfiniBand" : "unspecified");
    lane = ud_lane_gbps(pa.active_speed, &sname);
    out->gbps = lane * ud_lanes(pa.active_width);
    snprintf(out->width_speed, sizeof(out->width_speed), "%uX %s",
             ud_lanes(pa.active_width), sname);
    out->mtu = (pa.active_mtu >= IBV_MTU_256) ? 128u << pa.active_mtu : 0;
    out->lid = pa.lid;
    for (i = 0; (i < pa.gid_tbl_len) && (out->ngids < UCACHE_DEV_GIDS); i++) {
        if ((ibv_query_gid(ibctx, num, i, &gid) != 0) ||
            ((gid.global.subnet_prefix == 0) && (gid.global.interface_id == 0))) {
            continue;
        }
        snprintf(out->gids[out->ngids], sizeof(out->gids[0]),
                 "%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x",
                 gid.raw[0] << 8 | gid.raw[1], gid.raw[2] << 8 | gid.raw[3],
                 gid.raw[4] << 8 | gid.raw[5], gid.raw[6] << 8 | gid.raw[7],
                 gid.raw[8] << 8 | gid.raw[9], gid.raw[10] << 8 | gid.raw[11],
                 gid.raw[12] << 8 | gid.raw[13], gid.raw[14] << 8 | gid.raw[15]);
        out->ngids++;
    }
}

static void ud_rdma(ucache_devices_t *d)
{
    struct ibv_device **list;
    struct ibv_device_attr attr;
    struct ibv_context *ibctx;
    ucache_rdma_device_t *o;
    uint64_t guid;
    int n = 0, i;
    uint8_t p;

    errno = 0;
    list = ibv_get_device_list(&n);
    if (list == NULL) {
        d->rdma_errno = (errno != 0) ? errno : ENODEV;
        UC_INFO("rdma-core lists no devices: %s", strerror(d->rdma_errno));
        return;
    }
    if (n == 0) {
        d->rdma_errno = ENODEV;
    }
    for (i = 0; (i < n) && (d->nrdma < UCACHE_DEV_MAX); i++) {
        o = &d->rdma[d->nrdma++];
        memset(o, 0, sizeof(*o));
        snprintf(o->name, sizeof(o->name), "%s", ibv_get_device_name(list[i]));
        guid = be64toh(ibv_get_device_guid(list[i]));
        snprintf(o->node_guid, sizeof(o->node_guid), "%04x:%04x:%04x:%04x",
                 (unsigned)(guid >> 48) & 0xffff, (unsigned)(guid >> 32) & 0xffff,
                 (unsigned)(guid >> 16) & 0xffff, (unsigned)guid & 0xffff);
        snprintf(o->node_type, sizeof(o->node_type), "%s",
                 ibv_node_type_str(list[i]->node_type));
        ibctx = ibv_open_device(list[i]);
        if (ibctx == NULL) {
            snprintf(o->fw_ver, sizeof(o->fw_ver), "(cannot open: %s)", strerror(errno));
            continue;
        }
        if (ibv_query_device(ibctx, &attr) == 0) {
            snprintf(o->fw_ver, sizeof(o->fw_ver), "%s", attr.fw_ver);
            for (p = 1; (p <= attr.phys_port_cnt) && (o->nports < UCACHE_DEV_PORTS); p++) {
                ud_port(ibctx, p, &o->ports[o->nports++]);
            }
        }
        ibv_close_device(ibctx);
    }
    ibv_free_device_list(list);
}

/* One transport resource: its interface's capabilities. */
static void ud_tl(uct_md_h md, uct_worker_h worker, const uct_tl_resource_desc_t *r,
                  int rdma_md, ucache_ucx_tl_t *o)
{
    static const char *const types[] = { "net", "shm", "acc", "self" };
    uct_iface_config_t *cfg;
    uct_iface_params_t ip;
    uct_iface_attr_t attr;
    uct_iface_h iface;

    memset(o, 0, sizeof(*o));
    snprintf(o->tl, sizeof(o->tl), "%s", r->tl_name);
    snprintf(o->dev, sizeof(o->dev), "%s", r->dev_name);
    snprintf(o->type, sizeof(o->type), "%s",
             ((unsigned)r->dev_type < 4) ? types[r->dev_type] : "?");
    o->rdma = rdma_md && (r->dev_type == UCT_DEVICE_TYPE_NET);
    if (uct_md_iface_config_read(md, r->tl_name, NULL, NULL, &cfg) != UCS_OK) {
        return;
    }
    memset(&ip, 0, sizeof(ip));
    ip.field_mask = UCT_IFACE_PARAM_FIELD_OPEN_MODE | UCT_IFACE_PARAM_FIELD_DEVICE |
                    UCT_IFACE_PARAM_FIELD_STATS_ROOT | UCT_IFACE_PARAM_FIELD_RX_HEADROOM |
                    UCT_IFACE_PARAM_FIELD_CPU_MASK;
    ip.open_mode            = UCT_IFACE_OPEN_MODE_DEVICE;
    ip.mode.device.tl_name  = r->tl_name;
    ip.mode.device.dev_name = r->dev_name;
    UCS_CPU_ZERO(&ip.cpu_mask);
    if (uct_iface_open(md, worker, &ip, cfg, &iface) == UCS_OK) {
        if (uct_iface_query(iface, &attr) == UCS_OK) {
            o->get = !!(attr.cap.flags & (UCT_IFACE_FLAG_GET_ZCOPY | UCT_IFACE_FLAG_GET_BCOPY));
            o->latency_us    = attr.latency.c * 1e6;
            o->bandwidth_gbs = (attr.bandwidth.dedicated + attr.bandwidth.shared) / 1e9;
        }
        uct_iface_close(iface);
    }
    uct_config_release(cfg);
}

static ucache_status_t ud_ucx(ucache_devices_t *d)
{
    uct_component_h *comps = NULL;
    uct_component_attr_t ca;
    uct_md_resource_desc_t *mds;
    uct_tl_resource_desc_t *tls;
    ucs_async_context_t *async = NULL;
    uct_worker_h worker = NULL;
    uct_md_config_t *mcfg;
    unsigned ncomps = 0, c, m, t, ntls;
    unsigned major, minor, release;
    uct_md_h md;

    ucp_get_version(&major, &minor, &release);
    snprintf(d->ucx_version, sizeof(d->ucx_version), "%u.%u.%u", major, minor, release);
    if ((uct_query_components(&comps, &ncomps) != UCS_OK) ||
        (ucs_async_context_create(UCS_ASYNC_MODE_THREAD_SPINLOCK, &async) != UCS_OK) ||
        (uct_worker_create(async, UCS_THREAD_MODE_SINGLE, &worker) != UCS_OK)) {
        UC_ERROR("UCX cannot list its transports");
        if (async != NULL) {
            ucs_async_context_destroy(async);
        }
        if (comps != NULL) {
            uct_release_component_list(comps);
        }
        return UCACHE_ERR_TRANSPORT;
    }
    for (c = 0; c < ncomps; c++) {
        memset(&ca, 0, sizeof(ca));
        ca.field_mask = UCT_COMPONENT_ATTR_FIELD_NAME |
                        UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT;
        if (uct_component_query(comps[c], &ca) != UCS_OK) {
            continue;
        }
        mds = calloc(ca.md_resource_count + 1, sizeof(*mds));
        if (mds == NULL) {
            continue;
        }
        ca.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
        ca.md_resources = mds;
        if ((ca.md_resource_count == 0) || (uct_component_query(comps[c], &ca) != UCS_OK) ||
            (uct_md_config_read(comps[c], NULL, NULL, &mcfg) != UCS_OK)) {
            free(mds);
            continue;
        }
        for (m = 0; m < ca.md_resource_count; m++) {
            if (uct_md_open(comps[c], mds[m].md_name, mcfg, &md) != UCS_OK) {
                continue;
            }
            if (uct_md_query_tl_resources(md, &tls, &ntls) == UCS_OK) {
                for (t = 0; (t < ntls) && (d->ntls < UCACHE_TL_MAX); t++) {
                    ud_tl(md, worker, &tls[t], strcmp(ca.name, "ib") == 0,
                          &d->tls[d->ntls++]);
                }
                uct_release_tl_resource_list(tls);
            }
            uct_md_close(md);
        }
        uct_config_release(mcfg);
        free(mds);
    }
    uct_worker_destroy(worker);
    ucs_async_context_destroy(async);
    uct_release_component_list(comps);
    return UCACHE_OK;
}

ucache_status_t ut_devices_query(ucache_devices_t *devs)
{
    if (devs == NULL) {
        return UCACHE_ERR_INVALID;
    }
    memset(devs, 0, sizeof(*devs));
    ud_rdma(devs);
    ut_ofi_devices(devs);
    return ud_ucx(devs);
}
