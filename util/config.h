/*
 * config.h - the one configuration table.  Each entry is
 * {name, default, help, offset, type}: it drives the UCACHE_* environment
 * variables, ucache_config_print() (`ucache config`) and the README's list.
 * Values resolve as defaults < environment < explicit parameters.
 */
#ifndef UC_CONFIG_H
#define UC_CONFIG_H

#include "util/log_level.h"
#include "util/status.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How a transport reads remote memory (UCACHE_READ_PATH). */
typedef enum uc_read_path {
    UC_READ_PATH_AUTO = 0, /* mapped if possible, else native get, else am   */
    UC_READ_PATH_GET  = 1, /* mapped if possible, else ucp_get (even if emulated) */
    UC_READ_PATH_AM   = 2  /* mapped if possible, else active-message read   */
} uc_read_path_t;

/* How a context progresses its transport (UCACHE_PROGRESS). */
typedef enum uc_progress_mode {
    UC_PROGRESS_POLL   = 0, /* callers progress while they wait (clients) */
    UC_PROGRESS_THREAD = 1  /* a progress thread (serving nodes)          */
} uc_progress_mode_t;

typedef struct uc_config {
    int      log_level;        /* ucache_log_level_t */
    char     log_file[256];
    size_t   mem_bytes;
    size_t   chunk_size;
    char     members[512];
    char     listen[128];
    uint64_t members_poll_ns;
    uint64_t members_ttl_ns;
    unsigned place_slots;
    size_t   slot_size;
    char     view_shm[256];
    char     etcd_ca[256];
    char     etcd_cert[256];
    char     etcd_key[256];
    char     zone[32];
    unsigned replicas;
    unsigned fetch_threads;
    unsigned commit_threads;   /* 0: one per online CPU, at most 8 */
    char     nvme[1024];       /* PATH[:SIZE],... (the NVMe tier) */
    unsigned nvme_threads;
    size_t   nvme_stage;
    uint64_t nvme_lease_ns;
    uint64_t nvme_window_ns;
    unsigned read_window;
    uint64_t fetch_timeout_ns;
    uint64_t meta_ttl_ns;
    int      meta_mode;        /* UC_META_FABRIC, UC_META_LOCAL */
    uint64_t meta_mem;
    char     manifest[256];
    char     credentials[256];
    char     token_command[512];
    int      azure_identity;   /* us_azid_mode_t: auto workload imds none */
    char     imds_endpoint[512];
    unsigned list_page;
    unsigned origin_retries;
    uint64_t origin_backoff_ns;
    uint64_t origin_timeout_ns;
    size_t   origin_part;
    char     origin_ca[256];
    uint64_t origin_deadline_ns;
    char     allow[1024];
    unsigned fill_queue;
    char     transport[16];
    char     ofi_provider[64];  /* UCACHE_OFI_PROVIDER */
    int      read_path;        /* uc_read_path_t */
    uint64_t timeout_ns;
    unsigned max_eps;
    uint64_t peer_retry_ns;
    uint64_t peer_retry_max_ns;
    unsigned max_outstanding;
    size_t   rpc_max;
    uint64_t progress_spin_ns;
    uint64_t grace_ns;
    size_t   index_chunk;
    int      mem_lock;         /* bool */
    int      map_populate;     /* bool */
    char     map_dir[256];     /* same-host mapping sockets' directory */
    int      emulated_rma;     /* bool: UCX's software RMA (a test mode) */
    char     cluster_key_file[256];
    char     admin_key_file[256];
    uint64_t auth_window_ns;
    unsigned pin_quota_pct;
    char     quota[1024];      /* dataset quotas, ROOT=PCT%,... (fabric/quota.h) */
} uc_config_t;

typedef enum uc_config_type {
    UC_CFG_SIZE,   /* bytes, with K/M/G/T suffixes (powers of 1024)      */
    UC_CFG_UINT,
    UC_CFG_TIME,   /* ns in memory; "500ms", "2s", "100us", "30ns", "1m"  */
    UC_CFG_STRING,
    UC_CFG_ENUM    /* one of a NULL-terminated list of names, stored int  */
} uc_config_type_t;

typedef struct uc_config_entry {
    const char         *name;    /* without the UCACHE_ prefix */
    const char         *dflt;
    const char         *help;
    size_t              offset;
    size_t              size;    /* of the field (strings: capacity) */
    uc_config_type_t    type;
    const char *const  *names;   /* UC_CFG_ENUM only */
    uint64_t            min, max; /* inclusive bounds for numbers */
} uc_config_entry_t;

extern const uc_config_entry_t uc_config_table[];
extern const size_t            uc_config_table_len;

/** Fill @p cfg with defaults, then the environment. Logs what fails. */
ucache_status_t uc_config_load(uc_config_t *cfg);
/** This user's runtime directory for ucache: /run/ucache for root, else
 *  $XDG_RUNTIME_DIR/ucache, else /tmp/ucache-UID (the default dir: source). */
void uc_runtime_dir(char *buf, size_t len);

enum { UC_META_FABRIC = 0, UC_META_LOCAL = 1 }; /* uc_config_t.meta_mode */

/** Set one entry (by name without prefix) from a string. */
ucache_status_t uc_config_set(uc_config_t *cfg, const char *name,
                              const char *value);

/** Format the entry's value in @p cfg into @p buf. */
void uc_config_format(const uc_config_t *cfg, const uc_config_entry_t *e,
                      char *buf, size_t len);

/** ucache_config_print() (fabric/api.c): every variable, its value, default
 *  and help, as text or JSON (the flags are UCACHE_CONFIG_PRINT_*'s). */
enum { UC_CONFIG_PRINT_HELP = 1u << 0, UC_CONFIG_PRINT_JSON = 1u << 1 };
ucache_status_t uc_config_print(FILE *out, unsigned flags);

ucache_status_t uc_parse_size(const char *s, uint64_t *bytes_p);
ucache_status_t uc_parse_time(const char *s, uint64_t *ns_p);
void uc_format_size(uint64_t bytes, char *buf, size_t len);
void uc_format_time(uint64_t ns, char *buf, size_t len);

#endif
