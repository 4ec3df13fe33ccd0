"""ucache.Client against a 3-node fabric: every byte compared with the origin."""
import os
import threading

import numpy
import pytest
import torch

import ucache


def test_read_whole_objects(client, files, prefix):
    for name, data in files.items():
        assert client.read(prefix + name) == data, name


def test_read_ranges(client, files, prefix):
    name = max(files, key=lambda n: len(files[n]))
    data = files[name]
    size = len(data)
    assert size > 3 << 20  # spans chunks (1 MiB chunks)
    for off, n in [(0, 1), ((1 << 20) - 7, 14), (12345, 2 << 20), (size - 10, 10),
                   (size - 10, 100)]:
        assert client.read(prefix + name, off, n) == data[off:off + n]
    assert client.read(prefix + name, size, 5) == b""


def test_readinto_every_buffer(client, files, prefix):
    name = max(files, key=lambda n: len(files[n]))
    data = files[name]
    off, n = 777, 3 << 20
    ba = bytearray(n)
    assert client.readinto(prefix + name, ba, off) == n and bytes(ba) == data[off:off + n]
    big = bytearray(n + 100)
    mv = memoryview(big)[50:50 + n]
    assert client.readinto(prefix + name, mv, off) == n
    assert bytes(big[50:50 + n]) == data[off:off + n] and big[:50] == bytearray(50)
    arr = numpy.zeros(n // 4, dtype=numpy.float32)
    assert client.readinto(prefix + name, arr, off) == n
    assert arr.tobytes() == data[off:off + n]
    t = torch.zeros(n, dtype=torch.uint8)
    assert client.readinto(prefix + name, t, off) == n
    assert bytes(t.numpy()) == data[off:off + n]
    # short at the end of the object
    tail = bytearray(100)
    assert client.readinto(prefix + name, tail, len(data) - 40) == 40
    assert bytes(tail[:40]) == data[-40:]


def test_readinto_refuses_what_it_cannot_fill(client, files, prefix):
    name = next(iter(files))
    with pytest.raises(TypeError):
        client.readinto(prefix + name, b"immutable")
    with pytest.raises(ucache.InvalidError):
        client.readinto(prefix + name, torch.zeros(8, 8, dtype=torch.uint8).t())


def test_read_many(client, files, prefix):
    names = sorted(files)
    reads, want = [], []
    bufs = {}
    for k, name in enumerate(names):
        data = files[name]
        off = (k * 4099) % max(1, len(data))
        n = min(len(data) - off, 1 << 20)
        if k % 2:
            bufs[k] = bytearray(n)
            reads.append((prefix + name, off, n, bufs[k]))
        else:
            reads.append((prefix + name, off, n, None))
        want.append(data[off:off + n])
    got = client.read_many(reads)
    for k, g in enumerate(got):
        if k in bufs:
            assert g == len(want[k]) and bytes(bufs[k]) == want[k], names[k]
        else:
            assert g == want[k], names[k]


def test_read_many_reports_a_failure(client, files, prefix):
    name = next(iter(files))
    with pytest.raises(ucache.NotFoundError):
        client.read_many([(prefix + name, 0, 10, None), (prefix + "no-such-object", 0, 10, None)])


def test_stat_and_list(client, files, prefix, data_dir):
    for name, data in files.items():
        st = client.stat(prefix + name)
        assert st["size"] == len(data)
        assert st["mtime"] == int(os.stat(os.path.join(data_dir, name)).st_mtime)
    listed = {o["uri"][len(prefix):]: (o["size"], o["mtime"]) for o in client.list(prefix)}
    assert listed == {n: (len(d), int(os.stat(os.path.join(data_dir, n)).st_mtime))
                      for n, d in files.items()}
    sub = {o["uri"] for o in client.list(prefix + "sub/")}
    assert sub == {prefix + n for n in files if n.startswith("sub/")} and sub


def test_warmup_then_hits(files, prefix):
    with ucache.Client() as c:
        res = c.warmup(prefix + "sub/")
        assert res["objects"] == len([n for n in files if n.startswith("sub/")])
        assert res["chunks"] >= res["objects"] and res["hits"] + res["filled"] == res["chunks"]
        for n in files:
            if n.startswith("sub/"):
                assert c.read(prefix + n) == files[n]
        s = c.stats()
        assert s["origin_direct"] == 0 and s["chunk_reads"] >= res["chunks"]


def test_stats(client):
    s = client.stats()
    for k in ("chunk_reads", "chunk_hits", "bytes_returned", "view_nodes", "nvme_pinned"):
        assert isinstance(s[k], int), k
    assert s["view_nodes"] == 3


def test_threads_read_together(client, files, prefix):
    names = sorted(files)
    bad = []

    def reader(k):
        for r in range(20):
            n = names[(k + r) % len(names)]
            if client.read(prefix + n) != files[n]:
                bad.append(n)

    ts = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert bad == []


def test_http_origin(client, files, http_url):
    if not http_url:
        pytest.fail("UCACHE_TEST_HTTP is not set")
    name = sorted(n for n in files if "/" not in n)[0]
    assert client.read(http_url + "/" + name) == files[name]
    with pytest.raises(ucache.UnsupportedError):
        client.list(http_url + "/")


def test_errors(client, prefix, files):
    with pytest.raises(ucache.NotFoundError) as e:
        client.read(prefix + "missing.bin")
    assert isinstance(e.value, FileNotFoundError) and e.value.name == "UCACHE_ERR_NOT_FOUND"
    name = next(iter(files))
    with pytest.raises(ucache.OutOfRangeError):
        client.read(prefix + name, len(files[name]) + 1, 1)
    with pytest.raises(ucache.UnsupportedError):
        client.read("gopher://example/x", 0, 1)
    with pytest.raises(ucache.InvalidError):
        ucache.Client(no_such_setting="1")
    with pytest.raises(ucache.InvalidError):
        ucache.Client(timeout="not-a-time")
    c = ucache.Client()
    c.close()
    with pytest.raises(ucache.InvalidError):
        c.read(prefix + name)


def test_every_status_has_its_exception():
    from ucache._lib import ffi, lib
    L = lib()
    for code in range(-1, -40, -1):
        name = ffi.string(L.ucache_status_name(code)).decode()
        if name == "UCACHE_ERR_UNKNOWN":
            break
        cls = ucache.errors.BY_STATUS[code]
        assert cls.name == name and cls.status == code
    else:
        pytest.fail("no end of the status codes")


def test_sigint_is_still_keyboard_interrupt(client):
    """Loading the library, and libfabric with a client on
    UCACHE_TRANSPORT=ofi (its PSM dependency takes SIGINT and SIGTERM in its
    constructor), leaves the interpreter's handlers in place."""
    import signal
    import time
    assert client.stats() is not None  # the library is loaded
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    old = os.environ.get("UCACHE_TRANSPORT")
    os.environ["UCACHE_TRANSPORT"] = "ofi"
    try:
        c = ucache.Client()  # loads libfabric now
    finally:
        if old is None:
            del os.environ["UCACHE_TRANSPORT"]
        else:
            os.environ["UCACHE_TRANSPORT"] = old
    try:
        assert c.stats() is not None
        with open("/proc/self/maps") as maps:
            assert "libfabric" in maps.read()  # loaded, with its PSM dependency
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    finally:
        c.close()
