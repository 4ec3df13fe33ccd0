"""Fork safety: a forked child reads through its own new context, never the
parent's; a fork while the parent's threads read neither hangs nor breaks
them (the fork waits for calls in flight, then both sides start afresh)."""
import multiprocessing
import os
import threading
import time

import ucache

DEADLINE_S = 60


def _wait(pid):
    """The child's exit status, within DEADLINE_S (a hung child is a failure)."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def _child_reads(client, files, prefix):
    try:
        for name, data in files.items():
            if client.read(prefix + name) != data:
                os._exit(3)
        os._exit(0 if client.stats()["chunk_reads"] > 0 else 4)
    except BaseException:
        os._exit(2)


def test_child_of_a_reading_parent(client, files, prefix):
    for name, data in files.items():
        assert client.read(prefix + name) == data
    pid = os.fork()
    if pid == 0:
        _child_reads(client, files, prefix)
    assert _wait(pid) == 0
    # the parent reads on, through a new context of its own
    for name, data in files.items():
        assert client.read(prefix + name) == data


def test_fork_while_threads_read(files, prefix):
    c = ucache.Client()
    names = sorted(files)
    stop = threading.Event()
    counts, bad = [0, 0], []

    def reader(k):
        r = 0
        while not stop.is_set():
            n = names[(k + r) % len(names)]
            off = (r * 65537) % len(files[n]) if files[n] else 0
            if c.read(prefix + n, off, 1 << 20) != files[n][off:off + (1 << 20)]:
                bad.append(n)
            counts[k] += 1
            r += 1

    ts = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    rcs = []
    for _ in range(12):
        time.sleep(0.03)
        pid = os.fork()
        if pid == 0:
            _child_reads(c, files, prefix)
        rcs.append(_wait(pid))
    stop.set()
    for t in ts:
        t.join(DEADLINE_S)
    assert rcs == [0] * 12
    assert bad == [] and min(counts) > 0 and not any(t.is_alive() for t in ts)
    c.close()


def _pool_read(args):
    prefix, name = args
    return ucache.Client().read(prefix + name)


def test_multiprocessing_pool(client, files, prefix):
    client.read(prefix + next(iter(files)))   # the parent's context is live
    names = sorted(files)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        got = pool.map(_pool_read, [(prefix, n) for n in names])
    assert got == [files[n] for n in names]
