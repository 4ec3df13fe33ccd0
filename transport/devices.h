/*
 * devices.h - what ucache_devices_query() reports (transport/devices.c):
 * this machine's RDMA devices and ports and its UCX transports.  The
 * public header includes it (the installed ucache.h has it written in).
 */
#ifndef UCACHE_DEVICES_H
#define UCACHE_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#define UCACHE_DEV_PORTS   4
#define UCACHE_DEV_GIDS    8

/** @brief One port of an RDMA device (rdma-core, ibv_query_port). */
typedef struct ucache_rdma_port {
    uint32_t num;              /**< port number (from 1)                    */
    char     state[16];        /**< "PORT_ACTIVE", "PORT_DOWN", ...          */
    char     link_layer[16];   /**< "InfiniBand", "Ethernet"                 */
    double   gbps;             /**< active width x lane speed, Gb/s          */
    char     width_speed[24];  /**< "4X EDR"                                 */
    uint32_t mtu;              /**< active MTU, bytes                        */
    uint32_t lid;
    unsigned ngids;            /**< non-zero GIDs, at most UCACHE_DEV_GIDS   */
    char     gids[UCACHE_DEV_GIDS][40];
} ucache_rdma_port_t;

typedef struct ucache_rdma_device {
    char     name[64];         /**< "mlx5_0"                                 */
    char     node_guid[20];    /**< "0c42:a103:0065:2a4e"                    */
    char     node_type[16];    /**< "CA", "RNIC", ...                        */
    char     fw_ver[64];
    unsigned nports;           /**< ports listed (at most UCACHE_DEV_PORTS)  */
    ucache_rdma_port_t ports[UCACHE_DEV_PORTS];
} ucache_rdma_device_t;

/** @brief One UCX transport resource (UCT) of this machine. */
typedef struct ucache_ucx_tl {
    char     tl[16];           /**< "rc_mlx5", "tcp", "posix", ...           */
    char     dev[32];          /**< "mlx5_0:1", "eth0", "memory"             */
    char     type[8];          /**< "net", "shm", "self", "acc"              */
    int      get;              /**< one-sided get (zero-copy or buffered)    */
    int      rdma;             /**< through an RDMA device (verbs)           */
    double   latency_us;       /**< UCX's own estimate                       */
    double   bandwidth_gbs;    /**< UCX's own estimate, GB/s (10^9 bytes)    */
} ucache_ucx_tl_t;

#define UCACHE_DEV_MAX 32
#define UCACHE_TL_MAX  64
#define UCACHE_OFI_MAX 32

/** A libfabric provider the libfabric backend (UCACHE_TRANSPORT=ofi) could
 *  use here: reliable datagrams, tagged messages, remote reads. */
typedef struct ucache_ofi_prov {
    char     prov[32];         /**< "tcp;ofi_rxm", "shm", "efa", ...          */
    char     fabric[48];       /**< "192.0.2.0/24", "shm", ...                */
    char     domain[48];       /**< "eth0", "shm", "mlx5_0", ...              */
    int      one_sided;        /**< reads need no CPU of the owner (fi_read) */
    int      listener;         /**< host:port addresses (UCACHE_LISTEN)      */
} ucache_ofi_prov_t;

typedef struct ucache_devices {
    int                  rdma_errno;   /**< 0, or why rdma-core could not list
                                            devices (ENOSYS: no kernel RDMA) */
    size_t               nrdma;
    ucache_rdma_device_t rdma[UCACHE_DEV_MAX];
    size_t               ntls;
    ucache_ucx_tl_t      tls[UCACHE_TL_MAX];
    char                 ucx_version[16];
    size_t               nofi;         /**< libfabric providers listed      */
    ucache_ofi_prov_t    ofi[UCACHE_OFI_MAX];
    char                 ofi_version[16];
} ucache_devices_t;

#endif
