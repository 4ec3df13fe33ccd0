"""ucache: the Python client of the ucache cache fabric.

    import ucache
    c = ucache.Client()                       # UCACHE_MEMBERS, or members=...
    data = c.read("az://acct/container/shard-0001.tar")
    n = c.readinto("file:///data/x.bin", tensor, offset=1 << 20)

ucache.fsspec (the "ucache" protocol) and ucache.torch (datasets) are
imported on their own: they need fsspec and torch.
"""
from .client import Client
from .errors import *  # noqa: F401,F403 - the exceptions, named after the status codes
from .errors import Error, __all__ as _errors

__version__ = "0.1.0"
__all__ = ["Client", "Error", "__version__"] + list(_errors)
