"""ucache.Client: one process's handle on the fabric (a ucache context).

Every call that waits runs in the library with the GIL released (cffi
releases it around each foreign call), so threads read in parallel.

Fork safety: UCX state does not survive a fork, and a fork taken while
another thread is inside UCX leaves its locks held in the child.  So a fork
(os.fork, multiprocessing, a DataLoader starting its workers) first waits
until no thread of this process is inside a client's call, and frees every
client's context; the parent makes a new one at its next call, a forked
child at its first (the pid check); the child never touches the parent's
endpoints.  A call that comes while a fork is in progress waits for it.
"""
import json
import os
import threading
import weakref

from . import errors
from ._lib import ffi, lib, PARAM_FIELD_CONFIG, WARM_PIN, WARM_UNPIN, INPROGRESS

_clients = weakref.WeakSet()

_U64_MAX = (1 << 64) - 1


def _before_fork():
    for c in sorted(_clients, key=id):
        c._quiesce()


def _after_fork_in_parent():
    for c in sorted(_clients, key=id):
        c._resume()


def _after_fork_in_child():
    # Only the forking thread lives on: a lock another thread held at the
    # fork would never be released, so every client gets new ones.
    for c in list(_clients):
        c._reset_locks()
        c._ctx = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def _check(status, what):
    if status != 0:
        L = lib()
        raise errors.error(status, what, ffi.string(L.ucache_status_name(status)).decode(),
                           ffi.string(L.ucache_strerror(status)).decode())


def _info(uri, info):
    return {"uri": uri, "size": int(info.size), "mtime": int(info.mtime),
            "version": int(info.version)}


def _enc(uri):
    if isinstance(uri, bytes):
        return uri
    if not isinstance(uri, str):
        raise TypeError("a URI is a str, not %s" % type(uri).__name__)
    return uri.encode()


class _Target:
    """A writable buffer as (pointer, length), kept alive while in use."""
    __slots__ = ("ptr", "len", "keep")

    def __init__(self, buffer):
        # torch tensors have no buffer protocol: their CPU storage pointer
        if hasattr(buffer, "data_ptr") and hasattr(buffer, "is_contiguous"):
            if getattr(buffer, "device", None) is not None and buffer.device.type != "cpu":
                raise errors.InvalidError("readinto: a tensor must be on the CPU, not %s"
                                          % buffer.device, -2, "UCACHE_ERR_INVALID")
            if not buffer.is_contiguous():
                raise errors.InvalidError("readinto: the tensor is not contiguous",
                                          -2, "UCACHE_ERR_INVALID")
            self.len = buffer.numel() * buffer.element_size()
            self.ptr = ffi.cast("void *", buffer.data_ptr())
            self.keep = buffer
            return
        try:
            self.keep = ffi.from_buffer(buffer, require_writable=True)
        except (TypeError, BufferError):
            raise TypeError("readinto needs a writable buffer (bytearray, memoryview, "
                            "numpy array, torch tensor), not %s" % type(buffer).__name__)
        self.ptr = self.keep
        self.len = len(self.keep)


class Client:
    """A handle on the fabric.

    members: the membership source ("dir:PATH", "file:PATH", "etcd:..."; default
    UCACHE_MEMBERS or its default); **config: any setting of the configuration
    table by name, lower case without UCACHE_ (meta_ttl="600s",
    timeout="5s", chunk_size="1M", log_level="warn"), over the environment.
    """

    def __init__(self, members=None, **config):
        settings = []
        if members is not None:
            settings.append("MEMBERS=%s" % members)
        for k, v in config.items():
            if isinstance(v, bool):
                v = "yes" if v else "no"
            settings.append("%s=%s" % (k.upper(), v))
        self._settings = [s.encode() for s in settings]
        self._reset_locks()
        self._ctx = None
        self._pid = None
        self._closed = False
        _clients.add(self)
        self._call(lambda ctx: None)  # fail here, not at the first read, on a bad setting

    # --- the context -----------------------------------------------------

    def _reset_locks(self):
        self._lock = threading.Lock()   # making or freeing the context
        self._gate = threading.Condition(threading.Lock())
        self._active = 0                # calls inside the library now
        self._forking = False

    def _enter(self):
        """The context, for one call; _leave() when the call has ended."""
        with self._gate:
            while self._forking:
                self._gate.wait()
            self._active += 1
        try:
            return self._handle()
        except BaseException:
            self._leave()
            raise

    def _leave(self):
        with self._gate:
            self._active -= 1
            if self._active == 0:
                self._gate.notify_all()

    def _quiesce(self):
        # before a fork: no call inside the library, the context freed
        with self._gate:
            self._forking = True
            while self._active > 0:
                self._gate.wait()
        with self._lock:
            ctx, self._ctx = self._ctx, None
            if ctx is not None and self._pid == os.getpid():
                lib().ucache_finalize(ctx)

    def _resume(self):
        with self._gate:
            self._forking = False
            self._gate.notify_all()

    def _handle(self):
        ctx, pid = self._ctx, self._pid
        if ctx is not None and pid == os.getpid():
            return ctx
        with self._lock:
            if self._closed:
                raise errors.InvalidError("the client is closed", -2, "UCACHE_ERR_INVALID")
            if self._ctx is not None and self._pid == os.getpid():
                return self._ctx
            # a new process (or the first call): the parent's context, if
            # any, stays as it is - it is the parent's
            L = lib()
            keep = [ffi.new("char[]", s) for s in self._settings] + [ffi.NULL]
            cfg = ffi.new("const char *[]", keep)
            params = ffi.new("ucache_params_t *")
            params.field_mask = PARAM_FIELD_CONFIG
            params.config = cfg
            ctx_p = ffi.new("ucache_h *")
            _check(L.ucache_init(params, ctx_p), "ucache_init")
            self._ctx, self._pid = ctx_p[0], os.getpid()
            return self._ctx

    def _call(self, fn, *args):
        """fn(ctx, *args) inside the gate."""
        ctx = self._enter()
        try:
            return fn(ctx, *args)
        finally:
            self._leave()

    def close(self):
        """Free the context (in the process that made it; a forked child's
        copy of a parent's client only forgets it)."""
        with self._gate:
            while self._active > 0:
                self._gate.wait()
            with self._lock:
                ctx, self._ctx = self._ctx, None
                self._closed = True
                if ctx is not None and self._pid == os.getpid():
                    lib().ucache_finalize(ctx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._ctx is not None and self._pid == os.getpid():
                lib().ucache_finalize(self._ctx)
                self._ctx = None
        except Exception:
            pass

    def __getstate__(self):
        # a client travels to spawned workers as its settings
        return {"settings": self._settings}

    def __setstate__(self, state):
        self._settings = state["settings"]
        self._reset_locks()
        self._ctx = None
        self._pid = None
        self._closed = False
        _clients.add(self)

    # --- reads -----------------------------------------------------------

    def stat(self, uri):
        """{"uri", "size", "mtime", "version"} of the object (as cached for
        UCACHE_META_TTL; mtime: seconds since the epoch at the origin, 0 if
        unknown)."""
        info = ffi.new("ucache_object_info_t *")
        _check(self._call(lib().ucache_stat_info, _enc(uri), info), "stat %s" % uri)
        return _info(uri, info)

    def size(self, uri):
        return self.stat(uri)["size"]

    def read(self, uri, offset=0, length=None):
        """Bytes [offset, offset + length) of the object (to its end if
        length is None; short only at the end)."""
        if length is None:
            length = self.size(uri) - offset
            if length < 0:
                raise errors.OutOfRangeError("read %s: offset %d past the end" % (uri, offset),
                                             -9, "UCACHE_ERR_OUT_OF_RANGE")
        if length == 0:
            return b""
        buf = bytearray(length)
        n = self._read(uri, offset, buf, length)
        if n == length:
            return bytes(buf)
        return bytes(memoryview(buf)[:n])

    def readinto(self, uri, buffer, offset=0):
        """Read len(buffer) bytes at offset straight into buffer (bytearray,
        memoryview, numpy array, torch CPU tensor); the bytes read."""
        t = _Target(buffer)
        if t.len == 0:
            return 0
        return self._read(uri, offset, t.ptr, t.len)

    def _read(self, uri, offset, target, length):
        nread = ffi.new("size_t *")
        if not isinstance(target, ffi.CData):
            target = ffi.from_buffer(target, require_writable=True)
        _check(self._call(lib().ucache_read, _enc(uri), offset, length, target, nread),
               "read %s" % uri)
        return int(nread[0])

    def read_many(self, reads):
        """Reads in flight together: each (uri, offset, length, buffer) with
        buffer None (then bytes are returned for it) or writable.  Returns a
        list: bytes, or the count read into the buffer.  The first failure
        raises once every read has ended."""
        reads = list(reads)
        out = [None] * len(reads)     # bytearray of a read that returns bytes
        res = [None] * len(reads)
        posted = []                   # indices of the reads posted
        keep = []
        for i, r in enumerate(reads):
            uri, offset, length, buffer = r
            if buffer is None:
                if length is None or length < 0:
                    raise errors.InvalidError("read_many: read %d has no length" % i, -2,
                                              "UCACHE_ERR_INVALID")
                out[i] = bytearray(length)
                t = _Target(out[i]) if length > 0 else None
            else:
                t = _Target(buffer)
                if length is None:
                    length = t.len
                if length > t.len:
                    raise errors.InvalidError("read_many: read %d wants %d bytes, its buffer "
                                              "holds %d" % (i, length, t.len), -2,
                                              "UCACHE_ERR_INVALID")
            if length == 0:
                res[i] = b"" if buffer is None else 0
                continue
            posted.append((i, _enc(uri), offset, length, t))
        n = len(posted)
        if n == 0:
            return res
        reqs = ffi.new("ucache_read_req_t[]", n)
        for k, (i, uri, offset, length, t) in enumerate(posted):
            u = ffi.new("char[]", uri)
            keep.append(u)
            reqs[k].uri = u
            reqs[k].offset = offset
            reqs[k].len = length
            reqs[k].buf = t.ptr
        L = lib()

        def post_and_wait(ctx):
            st = L.ucache_read_post(ctx, reqs, n)
            # each read is bounded by the library's deadlines (UCACHE_TIMEOUT
            # a remote operation): wait until all have ended
            while st == 0 and L.ucache_wait(ctx, reqs, n, _U64_MAX) == INPROGRESS:
                pass
            return st

        _check(self._call(post_and_wait), "read_many")
        for k, p in enumerate(posted):
            _check(reqs[k].status, "read %s" % reads[p[0]][0])
        for k, p in enumerate(posted):
            i, nr = p[0], int(reqs[k].nread)
            if out[i] is not None:
                res[i] = bytes(out[i]) if nr == len(out[i]) else bytes(memoryview(out[i])[:nr])
            else:
                res[i] = nr
        return res

    # --- objects ---------------------------------------------------------

    def list(self, prefix):
        """Every object under prefix, as [{"uri", "size", "mtime", "version"}]
        (the listing's order: URI order when an owner lists it)."""
        found = []
        errs = []

        @ffi.callback("ucache_status_t(void *, const char *, const ucache_object_info_t *)")
        def each(arg, uri, info):
            try:
                found.append(_info(ffi.string(uri).decode(), info))
                return 0
            except BaseException as e:  # noqa: B902 - reported after the listing
                errs.append(e)
                return -11  # UCACHE_ERR_CANCELED stops the listing

        st = self._call(lib().ucache_list_info, _enc(prefix), each, ffi.NULL)
        if errs:
            raise errs[0]
        _check(st, "list %s" % prefix)
        return found

    def warmup(self, prefix, pin=False, unpin=False, threads=8):
        """Load every object under prefix into its owners (pin: against
        eviction; unpin: release pins instead).  Totals of ucache_warm_result_t."""
        flags = (WARM_PIN if pin else 0) | (WARM_UNPIN if unpin else 0)
        objs = self.list(prefix)
        L = lib()
        total = {"objects": 0, "chunks": 0, "bytes": 0, "hits": 0, "filled": 0,
                 "unpinned": 0}

        def one(o):
            res = ffi.new("ucache_warm_result_t *")
            _check(self._call(L.ucache_warm, _enc(o["uri"]), 0, _U64_MAX, flags, res),
                   "warm %s" % o["uri"])
            return res

        if threads > 1 and len(objs) > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=threads) as ex:
                results = list(ex.map(one, objs))
        else:
            results = [one(o) for o in objs]
        for r in results:
            total["objects"] += 1
            for k in ("chunks", "bytes", "hits", "filled", "unpinned"):
                total[k] += int(getattr(r, k))
        return total

    def stats(self):
        """This process's counters (ucache_stats_t by field name)."""
        L = lib()
        need = ffi.new("size_t *")
        size = 8192
        while True:
            buf = ffi.new("char[]", size)
            st = self._call(L.ucache_stats_json, buf, size, need)
            if st == -10 and need[0] > size:  # UCACHE_ERR_MSG_TRUNCATED
                size = int(need[0])
                continue
            _check(st, "stats")
            return json.loads(ffi.string(buf).decode())
