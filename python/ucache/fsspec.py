"""fsspec's "ucache" protocol: objects of any origin read through the fabric.

Chained, rooted at an origin URI (the fsspec way of wrapping another
filesystem):

    import fsspec, ucache.fsspec
    with fsspec.open("ucache::az://acct/container/shard-0001.tar") as f:
        head = f.read(1 << 20)
    fs, root = fsspec.core.url_to_fs("ucache::file:///data/imagenet/")
    fs.ls("train")                  # paths relative to the root

Unchained, paths are whole origin URIs:

    fs = fsspec.filesystem("ucache")
    fs.cat_file("s3://bucket/key", start=0, end=4096)

Read-only: opening for writing raises ucache.UnsupportedError.  Storage
options: members=..., config={...} (Client settings), client=Client.
"""
import fsspec
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from . import errors
from .client import Client

ORIGINS = ("file", "az", "s3", "http", "https")


def _read_only(what):
    return errors.UnsupportedError("%s: ucache is read-only" % what, -8,
                                   "UCACHE_ERR_UNSUPPORTED")


class UcacheFileSystem(AbstractFileSystem):
    protocol = "ucache"
    root_marker = ""

    def __init__(self, fo=None, target_protocol=None, target_options=None, members=None,
                 config=None, client=None, **kwargs):
        super().__init__(**kwargs)
        self.client = client if client is not None else Client(members=members,
                                                               **(config or {}))
        self.root = None
        if target_protocol is not None:
            proto = target_protocol[0] if isinstance(target_protocol, (tuple, list)) \
                else target_protocol
            fo = fo or ""
            if proto == "file" and not fo.startswith("/"):
                fo = "/" + fo
            self.root = "%s://%s" % (proto, fo)

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("ucache://"):
            path = path[len("ucache://"):]
        return path.rstrip("/") if "://" not in path else path

    # --- names -----------------------------------------------------------

    def uri(self, path):
        """The origin URI of a path of this filesystem."""
        path = self._strip_protocol(path)
        if self.root is None:
            if "://" not in path:
                raise errors.InvalidError("%r: not an origin URI (file://, az://, s3://, "
                                          "http://)" % path, -2, "UCACHE_ERR_INVALID")
            return path
        if path in ("", "/"):
            return self.root
        return self.root.rstrip("/") + "/" + path.lstrip("/")

    def _name(self, uri):
        if self.root is None:
            return uri
        base = self.root.rstrip("/") + "/"
        return uri[len(base):] if uri.startswith(base) else uri

    # --- metadata --------------------------------------------------------

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        prefix = self.uri(path)
        try:
            st = self.client.stat(prefix)
            entries = [{"name": self._name(prefix), "size": st["size"], "type": "file"}]
            return entries if detail else [e["name"] for e in entries]
        except errors.NotFoundError:
            pass
        except errors.InvalidError:
            pass
        if not prefix.endswith("/"):
            prefix += "/"
        seen = {}
        for o in self.client.list(prefix):
            rest = o["uri"][len(prefix):]
            if "/" in rest:
                d = prefix + rest.split("/", 1)[0]
                seen.setdefault(d, {"name": self._name(d), "size": 0, "type": "directory"})
            else:
                seen[o["uri"]] = {"name": self._name(o["uri"]), "size": o["size"],
                                  "type": "file"}
        if not seen:
            raise FileNotFoundError(path)
        entries = [seen[k] for k in sorted(seen)]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path, **kwargs):
        path = self._strip_protocol(path)
        uri = self.uri(path)
        try:
            return {"name": self._name(uri), "size": self.client.stat(uri)["size"],
                    "type": "file"}
        except (errors.NotFoundError, errors.InvalidError):
            pass
        # a directory: something under it
        if self.client.list(uri.rstrip("/") + "/"):
            return {"name": self._name(uri), "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        path = self._strip_protocol(path)
        prefix = self.uri(path).rstrip("/") + "/"
        out = {}
        for o in self.client.list(prefix):
            rest = o["uri"][len(prefix):]
            if maxdepth is not None and rest.count("/") >= maxdepth:
                continue
            out[self._name(o["uri"])] = {"name": self._name(o["uri"]), "size": o["size"],
                                         "type": "file"}
        if not out and self.isfile(path):
            out[path] = self.info(path)
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    # --- data ------------------------------------------------------------

    def cat_file(self, path, start=None, end=None, **kwargs):
        uri = self.uri(path)
        size = self.client.size(uri)
        start = 0 if start is None else (size + start if start < 0 else start)
        end = size if end is None else (size + end if end < 0 else min(end, size))
        if start >= end:
            return b""
        return self.client.read(uri, start, end - start)

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None,
              **kwargs):
        if "r" not in mode or "+" in mode:
            raise _read_only("open %s mode %r" % (path, mode))
        return UcacheFile(self, path, mode, block_size=block_size or 8 << 20,
                          cache_options=cache_options, **kwargs)

    def rm_file(self, path):
        raise _read_only("rm %s" % path)

    def mkdir(self, path, create_parents=True, **kwargs):
        raise _read_only("mkdir %s" % path)

    def makedirs(self, path, exist_ok=False):
        raise _read_only("makedirs %s" % path)

    def put_file(self, lpath, rpath, **kwargs):
        raise _read_only("put %s" % rpath)

    def pipe_file(self, path, value, **kwargs):
        raise _read_only("pipe %s" % path)


class UcacheFile(AbstractBufferedFile):
    """A file open for reading: fsspec's read-ahead buffer over client reads."""

    def __init__(self, fs, path, mode="rb", **kwargs):
        uri = fs.uri(path)
        kwargs.setdefault("size", fs.client.size(uri))
        self.origin_uri = uri
        super().__init__(fs, path, mode, **kwargs)

    def _fetch_range(self, start, end):
        end = min(end, self.size)
        if start >= end:
            return b""
        return self.fs.client.read(self.origin_uri, start, end - start)

    def readinto(self, b):
        # large reads land in the caller's buffer with no copy of ours
        if self.loc >= self.size:
            return 0
        n = min(len(memoryview(b)), self.size - self.loc)
        if n >= self.blocksize:
            got = self.fs.client.readinto(self.origin_uri, memoryview(b)[:n], self.loc)
            self.loc += got
            return got
        return super().readinto(b)


class _OriginName(AbstractFileSystem):
    """An origin protocol fsspec cannot open here (no adlfs, s3fs, aiohttp):
    only so that "ucache::az://..." parses.  Reading through it directly
    is refused; through ucache it is what the fabric is for."""

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        for p in ORIGINS:
            if path.startswith(p + "://"):
                return path[len(p) + 3:]
        return path

    def _open(self, path, *args, **kwargs):
        raise errors.UnsupportedError("%s://%s: read it through ucache (ucache::%s://...)"
                                      % (self.protocol, path, self.protocol), -8,
                                      "UCACHE_ERR_UNSUPPORTED")


def register():
    """Register "ucache" with fsspec (done on import), and a name-only
    class for each origin protocol fsspec has no implementation of here."""
    fsspec.register_implementation("ucache", UcacheFileSystem, clobber=True)
    for p in ORIGINS:
        try:
            fsspec.get_filesystem_class(p)
        except (ImportError, ValueError):
            cls = type("OriginName_" + p, (_OriginName,), {"protocol": p})
            fsspec.register_implementation(p, cls, clobber=False)


register()
