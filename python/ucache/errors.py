"""Exceptions named after the library's status codes (util/status.h).

Every error is a ucache.Error with .status (the code), .name
("UCACHE_ERR_DENIED") and the library's message; the common ones also
derive from the builtin a Python caller would catch (NotFoundError is a
FileNotFoundError, TimeoutError a builtin TimeoutError, ...).
"""
import builtins


class Error(Exception):
    """A ucache call failed; .status is its ucache_status_t."""
    status = None
    name = None

    def __init__(self, message, status=None, name=None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if name is not None:
            self.name = name


def _cls(name, status, status_name, *bases):
    return type(name, (Error,) + bases, {"status": status, "name": status_name,
                                         "__module__": "ucache"})


# (class, code, builtin bases): the values of UCACHE_FOREACH_STATUS
_TABLE = [
    ("NoMemoryError", -1, "UCACHE_ERR_NO_MEMORY", (MemoryError,)),
    ("InvalidError", -2, "UCACHE_ERR_INVALID", (ValueError,)),
    ("AgainError", -3, "UCACHE_ERR_AGAIN", (BlockingIOError,)),
    ("PeerError", -4, "UCACHE_ERR_PEER", (ConnectionError,)),
    ("CorruptError", -5, "UCACHE_ERR_CORRUPT", (OSError,)),
    ("TimeoutError", -6, "UCACHE_ERR_TIMEOUT", (builtins.TimeoutError,)),
    ("NotFoundError", -7, "UCACHE_ERR_NOT_FOUND", (FileNotFoundError,)),
    ("UnsupportedError", -8, "UCACHE_ERR_UNSUPPORTED", (NotImplementedError,)),
    ("OutOfRangeError", -9, "UCACHE_ERR_OUT_OF_RANGE", (ValueError,)),
    ("MsgTruncatedError", -10, "UCACHE_ERR_MSG_TRUNCATED", ()),
    ("CanceledError", -11, "UCACHE_ERR_CANCELED", ()),
    ("BusyError", -12, "UCACHE_ERR_BUSY", ()),
    ("IOError", -13, "UCACHE_ERR_IO", (OSError,)),
    ("TransportError", -14, "UCACHE_ERR_TRANSPORT", (ConnectionError,)),
    ("StaleError", -15, "UCACHE_ERR_STALE", ()),
    ("MovedError", -16, "UCACHE_ERR_MOVED", ()),
    ("ExistsError", -17, "UCACHE_ERR_EXISTS", (FileExistsError,)),
    ("DeniedError", -18, "UCACHE_ERR_DENIED", (PermissionError,)),
    ("RefusedError", -19, "UCACHE_ERR_REFUSED", (PermissionError,)),
    ("AuthError", -20, "UCACHE_ERR_AUTH", (PermissionError,)),
    ("ProtocolError", -21, "UCACHE_ERR_PROTOCOL", ()),
]

BY_STATUS = {}
for _name, _code, _sname, _bases in _TABLE:
    BY_STATUS[_code] = _cls(_name, _code, _sname, *_bases)
    globals()[_name] = BY_STATUS[_code]
__all__ = ["Error"] + [t[0] for t in _TABLE]


def error(status, what, name, message):
    """The exception for @status, its message saying what failed."""
    cls = BY_STATUS.get(status, Error)
    return cls("%s: %s (%s)" % (what, message, name), status, name)
