"""libucache-rdma through cffi's ABI mode: the declarations the package
uses, and where the library is found (loaded on first use, never at import).

Order: $UCACHE_LIBRARY (a path); next to this package (make python puts it
there); the libdir of pkg-config's ucache.pc (make install); the dynamic
linker's search path.
"""
import os
import shutil
import subprocess
import threading

import cffi

CDEF = """
typedef int ucache_status_t;
typedef struct ucache_context *ucache_h;

typedef struct ucache_params {
    uint64_t           field_mask;
    size_t             mem_bytes;
    const char        *members;
    int                log_level;
    uint64_t           timeout_ns;
    size_t             chunk_size;
    int                serve;
    const char        *zone;
    const char        *allow;
    const char *const *config;
} ucache_params_t;

typedef struct ucache_read_req {
    const char     *uri;
    uint64_t        offset;
    size_t          len;
    void           *buf;
    size_t          nread;
    ucache_status_t status;
    void           *priv[4];
} ucache_read_req_t;

typedef struct ucache_warm_result {
    uint64_t chunks, bytes, hits, filled, unpinned, evicted;
} ucache_warm_result_t;

typedef struct ucache_object_info {
    uint64_t size;
    uint64_t mtime;
    uint64_t version;
} ucache_object_info_t;

typedef ucache_status_t (*ucache_list_info_fn_t)(void *arg, const char *uri,
                                                 const ucache_object_info_t *info);

ucache_status_t ucache_init(const ucache_params_t *params, ucache_h *ctx_p);
void            ucache_finalize(ucache_h ctx);
ucache_status_t ucache_read(ucache_h ctx, const char *uri, uint64_t offset,
                            size_t len, void *buf, size_t *nread_p);
ucache_status_t ucache_read_post(ucache_h ctx, ucache_read_req_t *reqs, size_t n);
ucache_status_t ucache_wait(ucache_h ctx, ucache_read_req_t *reqs, size_t n,
                            uint64_t timeout_ns);
ucache_status_t ucache_stat_info(ucache_h ctx, const char *uri, ucache_object_info_t *info);
ucache_status_t ucache_list_info(ucache_h ctx, const char *prefix, ucache_list_info_fn_t fn,
                                 void *arg);
ucache_status_t ucache_warm(ucache_h ctx, const char *uri, uint64_t offset,
                            uint64_t len, unsigned flags, ucache_warm_result_t *res);
ucache_status_t ucache_stats_json(ucache_h ctx, char *buf, size_t len, size_t *need_p);
const char     *ucache_strerror(ucache_status_t status);
const char     *ucache_status_name(ucache_status_t status);
"""

# include/ucache.h
PARAM_FIELD_CONFIG = 1 << 8
WARM_PIN = 1 << 0
WARM_UNPIN = 1 << 1
WARM_EVICT = 1 << 2
WARM_NVME = 1 << 3
INPROGRESS = 1

ffi = cffi.FFI()
ffi.cdef(CDEF)

_lib = None
_lock = threading.Lock()
SONAME = "libucache-rdma.so.0"


def _pkgconfig_libdir():
    if shutil.which("pkg-config") is None:
        return None
    try:
        out = subprocess.run(["pkg-config", "--variable=libdir", "ucache"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def candidates():
    """The paths tried, in order (a name alone: the linker's search)."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = []
    env = os.environ.get("UCACHE_LIBRARY")
    if env:
        paths.append(env)
    paths += [os.path.join(here, SONAME), os.path.join(here, "libucache-rdma.so")]
    libdir = _pkgconfig_libdir()
    if libdir:
        paths += [os.path.join(libdir, SONAME), os.path.join(libdir, "libucache-rdma.so")]
    paths += [SONAME, "libucache-rdma.so"]
    return paths


def lib():
    """The loaded library (loads it on the first call)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            errors = []
            env = os.environ.get("UCACHE_LIBRARY")
            for path in candidates():
                if os.sep in path and not os.path.exists(path):
                    if path == env:
                        errors.append("%s: no such file (UCACHE_LIBRARY)" % path)
                    continue
                try:
                    _lib = ffi.dlopen(path)
                    break
                except OSError as e:
                    errors.append("%s: %s" % (path, e))
            if _lib is None:
                raise ImportError("libucache-rdma not found (set UCACHE_LIBRARY, "
                                  "run make python or make install): " + "; ".join(errors))
    return _lib


def path():
    """The file the library was loaded from (after lib())."""
    lib()
    # /proc/self/maps names every mapped file: the one with our soname
    with open("/proc/self/maps") as f:
        for line in f:
            if "libucache-rdma" in line:
                return line.split(None, 5)[-1].strip()
    return None
