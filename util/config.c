/*
 * config.c - parsing, loading and printing of the configuration table.
 * A value that does not parse is an error naming the variable and the value
 * (never silently replaced by the default): a typo must not change behaviour.
 */
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define UC_CFG_FIELD(_f) offsetof(uc_config_t, _f), sizeof(((uc_config_t *)0)->_f)

static const char *const uc_log_level_names[] = {
    "none", "error", "warn", "info", "debug", "trace", NULL
};
static const char *const uc_read_path_names[] = { "auto", "get", "am", NULL };
static const char *const uc_bool_names[] = { "no", "yes", NULL };
static const char *const uc_meta_names[] = { "fabric", "local", NULL };
static const char *const uc_azid_names[] = { "auto", "workload", "imds", "none", NULL };

const uc_config_entry_t uc_config_table[] = {
    {"LOG_LEVEL", "warn",
     "Log level: none, error, warn, info, debug, trace. Logs go to stderr, never stdout.",
     UC_CFG_FIELD(log_level), UC_CFG_ENUM, uc_log_level_names, 0, 0},
    {"LOG_FILE", "",
     "Append log lines to this file instead of stderr.",
     UC_CFG_FIELD(log_file), UC_CFG_STRING, NULL, 0, 0},
    {"MEM", "1G",
     "Pinned cache memory a node exports (K/M/G suffixes). Used by the node store.",
     UC_CFG_FIELD(mem_bytes), UC_CFG_SIZE, NULL, 4096, 1ull << 50},
    {"CHUNK_SIZE", "4M",
     "Bytes per chunk of an object. Used by the fabric's read path.",
     UC_CFG_FIELD(chunk_size), UC_CFG_SIZE, NULL, 4096, 1ull << 30},
    {"MEMBERS", "",
     "Membership source (empty: dir:/run/ucache for root, dir:$XDG_RUNTIME_DIR/ucache "
     "otherwise, dir:/tmp/ucache-UID without it): dir:PATH (daemons register record files "
     "in PATH, a directory of their user's alone), file:PATH (a "
     "static list of HOST:PORT [zone=Z] [weight=W] lines), etcd://HOST:PORT[,HOST:PORT...]"
     "/PREFIX (an etcd cluster's v3 gateway; etcds:// for TLS: daemons register under "
     "PREFIX/nodes/ with a lease and every context watches the prefix) or mpi (the ranks "
     "of an MPI job, joined with ucache_mpi_init() from ucache_mpi.h).",
     UC_CFG_FIELD(members), UC_CFG_STRING, NULL, 0, 0},
    {"LISTEN", "",
     "HOST:PORT a serving node accepts bootstrap connections on (a reader that knows only "
     "host:port fetches the node's record there); needed with file: members, where it "
     "is the node's line in the list. Empty: no listener.",
     UC_CFG_FIELD(listen), UC_CFG_STRING, NULL, 0, 0},
    {"MEMBERS_POLL", "500ms",
     "How often a context checks its membership source for a new epoch (and a serving "
     "node refreshes its heartbeat); a background thread does it, never a read.",
     UC_CFG_FIELD(members_poll_ns), UC_CFG_TIME, NULL, 1000000, 3600ull * 1000000000ull},
    {"MEMBERS_TTL", "10s",
     "A registered node whose heartbeat is older than this is reaped from a dir: "
     "source (a dead process on the same host is reaped at once); on etcd, the lease "
     "of a node's record (whole seconds, at least 2), kept alive every third of it.",
     UC_CFG_FIELD(members_ttl_ns), UC_CFG_TIME, NULL, 1000000, 3600ull * 1000000000ull},
    {"PLACE_SLOTS", "0",
     "Placement capacity in slots (a power of two; a node holds one slot per 4 GiB "
     "of --mem): the most the cluster will ever hold, fixed for its life so growth "
     "moves only the joiners' keys. The same on every node and reader: on etcd the "
     "first daemon stores it (65536 when 0) and a context given another refuses to "
     "start; 0 takes the fabric's.",
     UC_CFG_FIELD(place_slots), UC_CFG_UINT, NULL, 0, 1u << 26},
    {"SLOT_SIZE", "0",
     "Memory one placement slot stands for: a node holds one slot per started "
     "SLOT_SIZE of --mem (1 .. 1024 slots; at most 127 on etcd). The same on every "
     "node: on etcd the first daemon stores it (4G when 0) and a context given "
     "another refuses to start; 0 takes the fabric's (4G elsewhere). 100,000 nodes "
     "of 1-2 TB: 128G keeps a view within 16 MB (docs/scale.md).",
     UC_CFG_FIELD(slot_size), UC_CFG_SIZE, NULL, 0, 1ull << 50},
    {"VIEW_SHM", "",
     "The file a daemon on etcd members publishes its view in for the readers of its "
     "host, who map it instead of watching etcd (empty: RUNTIME_DIR/view-HASH of "
     "UCACHE_MEMBERS, RUNTIME_DIR the default dir: source's directory). One daemon "
     "per file; set it per daemon to run two on one host.",
     UC_CFG_FIELD(view_shm), UC_CFG_STRING, NULL, 0, 0},
    {"ETCD_CA", "",
     "etcds:// members: the CA file that signed etcd's certificate (empty: the "
     "system's). etcd users: ETCD_USER and ETCD_PASSWORD in the environment or the "
     "credentials file.",
     UC_CFG_FIELD(etcd_ca), UC_CFG_STRING, NULL, 0, 0},
    {"ETCD_CERT", "",
     "etcds:// members: this node's client certificate (PEM) for etcd's mutual TLS.",
     UC_CFG_FIELD(etcd_cert), UC_CFG_STRING, NULL, 0, 0},
    {"ETCD_KEY", "",
     "etcds:// members: the private key of UCACHE_ETCD_CERT.",
     UC_CFG_FIELD(etcd_key), UC_CFG_STRING, NULL, 0, 0},
    {"ZONE", "",
     "This node's failure domain (rack, zone); replicas go to distinct zones.",
     UC_CFG_FIELD(zone), UC_CFG_STRING, NULL, 0, 0},
    {"REPLICAS", "2",
     "Owners a read tries for a chunk, in placement order, before it reads the origin "
     "itself (a failed or silent owner is skipped at once).",
     UC_CFG_FIELD(replicas), UC_CFG_UINT, NULL, 1, 8},
    {"FETCH_THREADS", "4",
     "Threads a serving node fills missing chunks from origins with.",
     UC_CFG_FIELD(fetch_threads), UC_CFG_UINT, NULL, 1, 256},
    {"NVME", "",
     "The NVMe tier: devices (or preallocated files) a serving node caches on past its "
     "memory, PATH[:SIZE] separated by commas (ucached --nvme, repeatable). Each is its "
     "own extent pool, opened O_DIRECT and driven through io_uring; what it held is found "
     "again after a restart. Formatted when it holds no ucache data: all data on it is "
     "lost. Empty: memory only.",
     UC_CFG_FIELD(nvme), UC_CFG_STRING, NULL, 0, 0},
    {"NVME_THREADS", "2",
     "Threads a serving node with an NVMe tier reads chunks from its devices with, each "
     "with up to 64 reads in flight on its own io_uring (FETCHes of chunks on NVMe: they "
     "never wait behind origin fills).",
     UC_CFG_FIELD(nvme_threads), UC_CFG_UINT, NULL, 1, 256},
    {"NVME_STAGE", "0",
     "The NVMe tier's staging pool: memory of UCACHE_MEM that chunks read from NVMe are "
     "staged in for their readers, leaving the memory tier alone (0: an eighth of "
     "UCACHE_MEM; a quarter at most).",
     UC_CFG_FIELD(nvme_stage), UC_CFG_SIZE, NULL, 0, 1ull << 50},
    {"NVME_LEASE", "10ms",
     "How long a chunk read from NVMe stays staged for the readers that asked for it (at "
     "least UCACHE_GRACE): its reply's way and the start of their reads. A reader that "
     "vanished holds nothing past it; one that comes later reads it from NVMe again.",
     UC_CFG_FIELD(nvme_lease_ns), UC_CFG_TIME, NULL, 1000000, 60ull * 1000000000ull},
    {"NVME_WINDOW", "30s",
     "A chunk read from NVMe again within this window is promoted to the memory tier; "
     "read once, it is only staged.",
     UC_CFG_FIELD(nvme_window_ns), UC_CFG_TIME, NULL, 0, 24ull * 3600 * 1000000000ull},
    {"COMMIT_THREADS", "0",
     "Threads a serving node commits its memory with after it starts serving (faulted in "
     "and locked 64 MiB at a time, usable as it goes; 0: one per online CPU, at most 8).",
     UC_CFG_FIELD(commit_threads), UC_CFG_UINT, NULL, 0, 256},
    {"FETCH_TIMEOUT", "30s",
     "Deadline of a miss: the owner's origin fetch plus its reply. Past it the reader "
     "reads the origin itself.",
     UC_CFG_FIELD(fetch_timeout_ns), UC_CFG_TIME, NULL, 1000000, 3600ull * 1000000000ull},
    {"READ_WINDOW", "8",
     "Chunks one read keeps in flight (one-sided gets, FETCHes): a ucache_read of "
     "many chunks, and each read posted with ucache_read_post, asks for the next "
     "ones while the first arrive. 1: one chunk at a time.",
     UC_CFG_FIELD(read_window), UC_CFG_UINT, NULL, 1, 64},
    {"ORIGIN_RETRIES", "5",
     "Retries of an origin request that failed with 429, 5xx or a network error "
     "(exponential backoff with jitter; Retry-After is honoured).",
     UC_CFG_FIELD(origin_retries), UC_CFG_UINT, NULL, 0, 100},
    {"ORIGIN_BACKOFF", "50ms",
     "Delay before the first retry of an origin request; it doubles each time (at most 5s).",
     UC_CFG_FIELD(origin_backoff_ns), UC_CFG_TIME, NULL, 1000, 60ull * 1000000000ull},
    {"ORIGIN_TIMEOUT", "30s",
     "An origin connection that cannot be made, or a transfer that moves no data, "
     "for this long fails (and is retried).",
     UC_CFG_FIELD(origin_timeout_ns), UC_CFG_TIME, NULL, 1000000000ull, 3600ull * 1000000000ull},
    {"TOKEN_COMMAND", "",
     "Shell command that prints a bearer token (Azure managed identity / Entra ID) for "
     "origins with neither key nor SAS: line 1 the token, line 2 its lifetime in seconds "
     "(default 300); run again a minute before it expires. An application's "
     "ucache_token_provider_set() wins.",
     UC_CFG_FIELD(token_command), UC_CFG_STRING, NULL, 0, 0},
    {"AZURE_IDENTITY", "auto",
     "The Azure identity Azure Blob is read with when there is neither key, SAS, token "
     "command nor application provider: workload (Azure Workload Identity: "
     "AZURE_FEDERATED_TOKEN_FILE exchanged at AZURE_AUTHORITY_HOST for a token of "
     "AZURE_CLIENT_ID in AZURE_TENANT_ID), imds (the node's managed identity; "
     "AZURE_CLIENT_ID picks a user-assigned one), none, or auto (workload if its variables "
     "are set, else imds if UCACHE_IMDS_ENDPOINT is, else none). Tokens are cached and "
     "fetched again a minute before they expire.",
     UC_CFG_FIELD(azure_identity), UC_CFG_ENUM, uc_azid_names, 0, 0},
    {"IMDS_ENDPOINT", "",
     "The instance metadata service's token endpoint the managed identity asks (empty: "
     "Azure's, http://169.254.169.254/metadata/identity/oauth2/token; never proxied).",
     UC_CFG_FIELD(imds_endpoint), UC_CFG_STRING, NULL, 0, 0},
    {"LIST_PAGE", "1000",
     "Objects asked for per page when a prefix is listed (Azure List Blobs maxresults, "
     "S3 ListObjectsV2 max-keys).",
     UC_CFG_FIELD(list_page), UC_CFG_UINT, NULL, 1, 5000},
    {"CREDENTIALS", "~/.config/ucache/credentials",
     "File of origin credentials by their conventional names (AZURE_STORAGE_*, AWS_*), "
     "one NAME = value a line, read when the environment lacks a name; keep it mode "
     "600. AWS also reads ~/.aws/credentials and ~/.aws/config.",
     UC_CFG_FIELD(credentials), UC_CFG_STRING, NULL, 0, 0},
    {"ORIGIN_PART", "16M",
     "A chunk larger than this is fetched from its origin as parallel ranged GETs of about "
     "this size (at most 16, on one HTTP/2 connection where the origin speaks it); 0 never "
     "splits.",
     UC_CFG_FIELD(origin_part), UC_CFG_SIZE, NULL, 0, 1ull << 30},
    {"ORIGIN_CA", "",
     "CA bundle (PEM file) that https origins are verified against, for a private CA; "
     "empty: the system's.",
     UC_CFG_FIELD(origin_ca), UC_CFG_STRING, NULL, 0, 0},
    {"ORIGIN_DEADLINE", "60s",
     "Longest one origin request may take, retries included, however steadily it moves "
     "(a slow-drip origin cannot hold a fill thread); also the longest UCACHE_TOKEN_COMMAND "
     "may run.",
     UC_CFG_FIELD(origin_deadline_ns), UC_CFG_TIME, NULL, 1000000000ull, 3600ull * 1000000000ull},
    {"ALLOW", "az://,s3://,https://",
     "Origins a serving node fills from, whoever asks: rules separated by commas. az://, "
     "s3://, https:// (http://) alone allow any account, bucket or host at public "
     "addresses only; az://ACCOUNT, s3://BUCKET, https://HOST[:PORT][/PATH] name one, which "
     "may be private; file:///DIR/ allows regular files under DIR; none allows nothing. "
     "A refused FETCH is read by the reader itself (docs/security.md).",
     UC_CFG_FIELD(allow), UC_CFG_STRING, NULL, 0, 0},
    {"FILL_QUEUE", "1024",
     "Fills a serving node holds queued or running; a FETCH past it is answered "
     "UCACHE_ERR_BUSY (the reader backs off, then reads the origin itself).",
     UC_CFG_FIELD(fill_queue), UC_CFG_UINT, NULL, 1, 1u << 20},
    {"META_TTL", "2s",
     "How long a reader trusts an object's size and version (ETag, mtime) before it asks "
     "the origin again; a changed object is never served from old chunks once seen.",
     UC_CFG_FIELD(meta_ttl_ns), UC_CFG_TIME, NULL, 0, 3600ull * 1000000000ull},
    {"META", "fabric",
     "Who asks the origin for an object's size and version, and for listings: fabric (the "
     "object's owner node, placed by its URI, asks at most once per its UCACHE_META_TTL "
     "and answers every reader; a prefix's listing likewise) or local (every process asks "
     "the origin itself, once per UCACHE_META_TTL).",
     UC_CFG_FIELD(meta_mode), UC_CFG_ENUM, uc_meta_names, 0, 0},
    {"META_MEM", "64M",
     "Memory a serving node keeps listings in for readers (UCACHE_META=fabric); a listing "
     "larger than this is not kept: its readers list the origin themselves.",
     UC_CFG_FIELD(meta_mem), UC_CFG_SIZE, NULL, 65536, 1ull << 31},
    {"MANIFEST", "",
     "A dataset manifest (written by `ucache manifest PREFIX`) whose objects' sizes and "
     "versions this process takes as given: it never asks the origin or an owner about "
     "them, and lists the manifest's prefixes from it. An object changed since fails "
     "with UCACHE_ERR_STALE.",
     UC_CFG_FIELD(manifest), UC_CFG_STRING, NULL, 0, 0},
    {"TRANSPORT", "ucx",
     "Transport backend. 'ucx' (UCX selects tcp/shm/verbs itself; steer it with UCX_TLS) "
     "or 'ofi' (libfabric, the provider UCACHE_OFI_PROVIDER names).",
     UC_CFG_FIELD(transport), UC_CFG_STRING, NULL, 0, 0},
    {"OFI_PROVIDER", "tcp;ofi_rxm",
     "The libfabric provider of UCACHE_TRANSPORT=ofi, as fi_info names it: tcp;ofi_rxm, "
     "shm (same host only), verbs;ofi_rxm, efa.",
     UC_CFG_FIELD(ofi_provider), UC_CFG_STRING, NULL, 0, 0},
    {"READ_PATH", "auto",
     "Remote read primitive when the peer's memory is not mapped: auto (native one-sided "
     "get on RDMA transports, active-message bulk read otherwise), get, am.",
     UC_CFG_FIELD(read_path), UC_CFG_ENUM, uc_read_path_names, 0, 0},
    {"TIMEOUT", "2s",
     "Deadline of one remote operation (read, RPC); a peer silent past it is failed.",
     UC_CFG_FIELD(timeout_ns), UC_CFG_TIME, NULL, 1000, 3600ull * 1000000000ull},
    {"MAX_EPS", "1024",
     "Cap on open endpoints; the least recently used idle one is closed past it.",
     UC_CFG_FIELD(max_eps), UC_CFG_UINT, NULL, 1, 1u << 24},
    {"PEER_RETRY", "1s",
     "After a peer fails, how long operations on it fail fast before a reconnect is tried.",
     UC_CFG_FIELD(peer_retry_ns), UC_CFG_TIME, NULL, 0, 3600ull * 1000000000ull},
    {"PEER_RETRY_MAX", "30s",
     "Cap of the back-off: each failure in a row doubles a peer's PEER_RETRY, up to this; "
     "a success resets it.  Retries are probes off the read path.",
     UC_CFG_FIELD(peer_retry_max_ns), UC_CFG_TIME, NULL, 0, 3600ull * 1000000000ull},
    {"MAX_OUTSTANDING", "4096",
     "Operations in flight per context; posting more returns UCACHE_ERR_AGAIN.",
     UC_CFG_FIELD(max_outstanding), UC_CFG_UINT, NULL, 1, 1u << 20},
    {"RPC_MAX", "64K",
     "Largest RPC request a node accepts; larger ones get an error reply and a counter.",
     UC_CFG_FIELD(rpc_max), UC_CFG_SIZE, NULL, 256, 16ull << 20},
    {"PROGRESS_SPIN", "50us",
     "How long a progress thread polls after the last event before it sleeps on the event fd.",
     UC_CFG_FIELD(progress_spin_ns), UC_CFG_TIME, NULL, 0, 1000000000ull},
    {"GRACE", "10ms",
     "Grace period of the node store: evicted memory is reused only this long after its "
     "index slot was unpublished, and a reader discards any lookup + chunk read that took "
     "longer (it retries).",
     UC_CFG_FIELD(grace_ns), UC_CFG_TIME, NULL, 1000, 60ull * 1000000000ull},
    {"INDEX_CHUNK", "64K",
     "Mean chunk size the store's index is sized for (2 slots of 16 bytes per "
     "UCACHE_MEM / UCACHE_INDEX_CHUNK chunks); smaller objects make more, smaller chunks.",
     UC_CFG_FIELD(index_chunk), UC_CFG_SIZE, NULL, 64, 1ull << 30},
    {"MEM_LOCK", "yes",
     "mlock the store's memory so it is never swapped (yes/no); a failure is logged.",
     UC_CFG_FIELD(mem_lock), UC_CFG_ENUM, uc_bool_names, 0, 0},
    {"MAP_POPULATE", "yes",
     "Prefault a same-host peer's mapped region once when its key is unpacked, so reads "
     "never take page faults (yes/no).",
     UC_CFG_FIELD(map_populate), UC_CFG_ENUM, uc_bool_names, 0, 0},
    {"MAP_DIR", "",
     "A directory the daemon and the readers of its host share (in Kubernetes a hostPath "
     "both mount, e.g. /run/ucache): the daemon's same-host mapping service listens there "
     "(ucache-ID.sock) and a reader finds it there whatever its network, PID, mount or UTS "
     "namespace; the socket's presence tells the reader the owner is on its host. Empty: "
     "an abstract socket, for readers in the daemon's network namespace with its hostname.",
     UC_CFG_FIELD(map_dir), UC_CFG_STRING, NULL, 0, 0},
    {"CLUSTER_KEY_FILE", "",
     "File holding the fabric's cluster key (32 bytes, `ucache keygen FILE`; no access for "
     "others). Every control message is signed with it (HMAC-SHA256, replay window) and "
     "every unsigned, wrongly signed or replayed one is refused. Empty: an open fabric.",
     UC_CFG_FIELD(cluster_key_file), UC_CFG_STRING, NULL, 0, 0},
    {"ADMIN_KEY_FILE", "",
     "File holding the admin key. An admin tool signs with it; a daemon that has it "
     "accepts evict, unpin and drain/undrain only when signed with it.",
     UC_CFG_FIELD(admin_key_file), UC_CFG_STRING, NULL, 0, 0},
    {"AUTH_WINDOW", "30s",
     "How far a signed message's timestamp may be from the receiver's clock; replays "
     "inside the window are refused by sequence number.",
     UC_CFG_FIELD(auth_window_ns), UC_CFG_TIME, NULL, 1000000000ull, 3600ull * 1000000000ull},
    {"PIN_QUOTA", "50",
     "Percent of a serving node's memory that the pins of readers (cluster-key holders) "
     "may hold per dataset namespace (scheme, account or bucket, container or first "
     "path segment); pins signed with the admin key are bounded only by the 90% limit.",
     UC_CFG_FIELD(pin_quota_pct), UC_CFG_UINT, NULL, 1, 90},
    {"QUOTA", "",
     "Dataset quotas of a serving node: ROOT=PCT% rules separated by commas, e.g. "
     "az://acct/ckpt=30%,s3://bucket/scratch=10%. ROOT is a dataset's root (scheme, "
     "account, bucket or host, and one path segment); its chunks may take PCT of the node's memory "
     "and PCT of each NVMe device, past which its own oldest go first. Empty: none.",
     UC_CFG_FIELD(quota), UC_CFG_STRING, NULL, 0, 0},
    {"EMULATED_RMA", "no",
     "A test mode: turn on UCX's software RMA where no transport has native RMA, so "
     "UCACHE_READ_PATH=get works over tcp. Any peer that reaches the process can then "
     "write its memory; a context in this mode says so when it starts.",
     UC_CFG_FIELD(emulated_rma), UC_CFG_ENUM, uc_bool_names, 0, 0},
};

const size_t uc_config_table_len = sizeof(uc_config_table) / sizeof(uc_config_table[0]);

ucache_status_t uc_parse_size(const char *s, uint64_t *bytes_p)
{
    unsigned long long v;
    unsigned shift = 0;
    char *end;

    if ((s == NULL) || !isdigit((unsigned char)s[0])) {
        return UCACHE_ERR_INVALID;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0) {
        return UCACHE_ERR_INVALID;
    }
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
    }
    if ((shift != 0) && (*end == 'i')) {
        end++;
    }
    if ((*end == 'B') || (*end == 'b')) {
        end++;
    }
    if ((*end != '\0') || ((shift != 0) && (v > (UINT64_MAX >> shift)))) {
        return UCACHE_ERR_INVALID;
    }
    *bytes_p = (uint64_t)v << shift;
    return UCACHE_OK;
}

ucache_status_t uc_parse_time(const char *s, uint64_t *ns_p)
{
    static const struct { const char *sfx; uint64_t mul; } units[] = {
        {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000ull},
        {"m", 60000000000ull}, {"", 1000000000ull} /* bare number: seconds */
    };
    unsigned long long v;
    char *end;
    unsigned i;

    if ((s == NULL) || !isdigit((unsigned char)s[0])) {
        return UCACHE_ERR_INVALID;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0) {
        return UCACHE_ERR_INVALID;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].sfx) == 0) {
            if (v > UINT64_MAX / units[i].mul) {
                return UCACHE_ERR_INVALID;
            }
            *ns_p = v * units[i].mul;
            return UCACHE_OK;
        }
    }
    return UCACHE_ERR_INVALID;
}

void uc_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char sfx[] = "KMGT";
    int i;

    for (i = 3; i >= 0; i--) {
        uint64_t unit = 1ull << (10 * (i + 1));
        if ((bytes >= unit) && ((bytes % unit) == 0)) {
            snprintf(buf, len, "%llu%c", (unsigned long long)(bytes / unit), sfx[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

void uc_format_time(uint64_t ns, char *buf, size_t len)
{
    if ((ns != 0) && (ns % 1000000000ull) == 0) {
        snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000ull));
    } else if ((ns != 0) && (ns % 1000000ull) == 0) {
        snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000ull));
    } else if ((ns != 0) && (ns % 1000ull) == 0) {
        snprintf(buf, len, "%lluus", (unsigned long long)(ns / 1000ull));
    } else {
        snprintf(buf, len, "%lluns", (unsigned long long)ns);
    }
}

static const uc_config_entry_t *uc_config_find(const char *name)
{
    size_t i;

    for (i = 0; i < uc_config_table_len; i++) {
        if (strcmp(uc_config_table[i].name, name) == 0) {
            return &uc_config_table[i];
        }
    }
    return NULL;
}

static ucache_status_t uc_config_parse(uc_config_t *cfg,
                                       const uc_config_entry_t *e,
                                       const char *value)
{
    char *field = (char *)cfg + e->offset;
    uint64_t v;
    unsigned i;

    switch (e->type) {
    case UC_CFG_STRING:
        if (strlen(value) >= e->size) {
            return UCACHE_ERR_INVALID;
        }
        memcpy(field, value, strlen(value) + 1);
        return UCACHE_OK;
    case UC_CFG_ENUM:
        for (i = 0; e->names[i] != NULL; i++) {
            if (strcasecmp(value, e->names[i]) == 0) {
                *(int *)field = (int)i;
                return UCACHE_OK;
            }
        }
        return UCACHE_ERR_INVALID;
    case UC_CFG_SIZE:
    case UC_CFG_UINT:
    case UC_CFG_TIME:
        if (e->type == UC_CFG_TIME) {
            if (uc_parse_time(value, &v) != UCACHE_OK) {
                return UCACHE_ERR_INVALID;
            }
        } else if (e->type == UC_CFG_SIZE) {
            if (uc_parse_size(value, &v) != UCACHE_OK) {
                return UCACHE_ERR_INVALID;
            }
        } else {
            char *end;
            if (!isdigit((unsigned char)value[0])) {
                return UCACHE_ERR_INVALID;
            }
            errno = 0;
            v = strtoull(value, &end, 10);
            if ((errno != 0) || (*end != '\0')) {
                return UCACHE_ERR_INVALID;
            }
        }
        if ((v < e->min) || (v > e->max)) {
            return UCACHE_ERR_OUT_OF_RANGE;
        }
        if (e->size == sizeof(uint64_t)) {
            *(uint64_t *)field = v;
        } else {
            *(unsigned *)field = (unsigned)v;
        }
        return UCACHE_OK;
    }
    return UCACHE_ERR_INVALID;
}

ucache_status_t uc_config_set(uc_config_t *cfg, const char *name,
                              const char *value)
{
    const uc_config_entry_t *e = uc_config_find(name);
    ucache_status_t status;

    if ((e == NULL) || (value == NULL)) {
        UC_ERROR("unknown configuration variable UCACHE_%s", name);
        return UCACHE_ERR_INVALID;
    }
    status = uc_config_parse(cfg, e, value);
    if (status != UCACHE_OK) {
        UC_ERROR("UCACHE_%s='%s' is invalid (%s): %s", e->name, value,
                 ucache_strerror(status), e->help);
    }
    return status;
}

/* The default members directory: a runtime directory of this user's, never
 * a name in /tmp that another user could have made first (the dir: source
 * checks the directory's owner and mode either way). */
void uc_runtime_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (geteuid() == 0) {
        snprintf(buf, len, "/run/ucache");
    } else if ((xdg != NULL) && (xdg[0] == '/') && (strlen(xdg) + 8 < len)) {
        snprintf(buf, len, "%s/ucache", xdg);
    } else {
        snprintf(buf, len, "/tmp/ucache-%u", (unsigned)geteuid());
    }
}

static void uc_members_default(char *buf, size_t len)
{
    char dir[256];

    uc_runtime_dir(dir, sizeof(dir));
    snprintf(buf, len, "dir:%s", dir);
}

ucache_status_t uc_config_load(uc_config_t *cfg)
{
    ucache_status_t status, ret = UCACHE_OK;
    char var[64];
    const char *env;
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    for (i = 0; i < uc_config_table_len; i++) {
        status = uc_config_parse(cfg, &uc_config_table[i], uc_config_table[i].dflt);
        if (status != UCACHE_OK) {
            UC_ERROR("built-in default of UCACHE_%s does not parse",
                     uc_config_table[i].name);
            return status;
        }
    }
    for (i = 0; i < uc_config_table_len; i++) {
        snprintf(var, sizeof(var), "UCACHE_%s", uc_config_table[i].name);
        env = getenv(var);
        if (env == NULL) {
            continue;
        }
        status = uc_config_set(cfg, uc_config_table[i].name, env);
        if (status != UCACHE_OK) {
            ret = status; /* keep going: report every bad variable once */
        }
    }
    if (cfg->members[0] == '\0') {
        uc_members_default(cfg->members, sizeof(cfg->members));
    }
    return ret;
}

void uc_config_format(const uc_config_t *cfg, const uc_config_entry_t *e,
                      char *buf, size_t len)
{
    const char *field = (const char *)cfg + e->offset;
    uint64_t v = 0;

    if ((e->type == UC_CFG_SIZE) || (e->type == UC_CFG_UINT) ||
        (e->type == UC_CFG_TIME)) {
        v = (e->size == sizeof(uint64_t)) ? *(const uint64_t *)field :
                                            *(const unsigned *)field;
    }
    switch (e->type) {
    case UC_CFG_STRING: snprintf(buf, len, "%s", field); break;
    case UC_CFG_ENUM:   snprintf(buf, len, "%s", e->names[*(const int *)field]); break;
    case UC_CFG_SIZE:   uc_format_size(v, buf, len); break;
    case UC_CFG_TIME:   uc_format_time(v, buf, len); break;
    case UC_CFG_UINT:   snprintf(buf, len, "%llu", (unsigned long long)v); break;
    }
}

static void uc_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if ((*s == '"') || (*s == '\\')) {
            fprintf(out, "\\%c", *s);
        } else if ((unsigned char)*s < 0x20) {
            fprintf(out, "\\u%04x", (unsigned char)*s);
        } else {
            fputc(*s, out);
        }
    }
    fputc('"', out);
}

ucache_status_t uc_config_print(FILE *out, unsigned flags)
{
    ucache_status_t status;
    uc_config_t cfg, dflt;
    char val[1100], def[1100];
    size_t i;

    if ((out == NULL) ||
        (flags & ~(unsigned)(UC_CONFIG_PRINT_HELP | UC_CONFIG_PRINT_JSON))) {
        return UCACHE_ERR_INVALID;
    }
    status = uc_config_load(&cfg);
    /* Defaults alone: parse each default into a second copy. */
    memset(&dflt, 0, sizeof(dflt));
    for (i = 0; i < uc_config_table_len; i++) {
        uc_config_parse(&dflt, &uc_config_table[i], uc_config_table[i].dflt);
    }

    if (flags & UC_CONFIG_PRINT_JSON) {
        fputs("{\"variables\":[", out);
    }
    for (i = 0; i < uc_config_table_len; i++) {
        const uc_config_entry_t *e = &uc_config_table[i];
        char var[64];

        snprintf(var, sizeof(var), "UCACHE_%s", e->name);
        uc_config_format(&cfg, e, val, sizeof(val));
        uc_config_format(&dflt, e, def, sizeof(def));
        if ((strcmp(e->name, "TOKEN_COMMAND") == 0) && (val[0] != '\0')) {
            /* a command line may carry a secret (a client secret, a token) */
            snprintf(val, sizeof(val), "(set, %zu bytes; not shown: it may hold a secret)",
                     strlen(cfg.token_command));
        }
        if (flags & UC_CONFIG_PRINT_JSON) {
            fputs(i ? ",{\"name\":" : "{\"name\":", out);
            uc_json_string(out, var);
            fputs(",\"value\":", out);
            uc_json_string(out, val);
            fputs(",\"default\":", out);
            uc_json_string(out, def);
            fprintf(out, ",\"set\":%s,\"help\":", getenv(var) ? "true" : "false");
            uc_json_string(out, e->help);
            fputc('}', out);
        } else {
            fprintf(out, "%s=%s%s\n", var, val,
                    getenv(var) ? "" : "    # default");
            if (flags & UC_CONFIG_PRINT_HELP) {
                fprintf(out, "    %s (default: '%s')\n", e->help, def);
            }
        }
    }
    if (flags & UC_CONFIG_PRINT_JSON) {
        fprintf(out, "],\"valid\":%s}\n", (status == UCACHE_OK) ? "true" : "false");
    }
    return status;
}
