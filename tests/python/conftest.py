"""Fixtures of the Python suite (tests/python/test_python.sh starts the
fabric: three ucached daemons, a file:// dataset and the test HTTP origin,
and says where in UCACHE_TEST_DATA and UCACHE_TEST_HTTP)."""
import os

import pytest

import ucache


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


@pytest.fixture(scope="session")
def data_dir():
    d = os.environ.get("UCACHE_TEST_DATA")
    if not d:
        pytest.fail("UCACHE_TEST_DATA is not set: run tests/python/test_python.sh")
    return d


@pytest.fixture(scope="session")
def files(data_dir):
    """name (relative to the dataset) -> the origin's bytes"""
    return _files(data_dir)


@pytest.fixture(scope="session")
def prefix(data_dir):
    return "file://" + data_dir + "/"


@pytest.fixture(scope="session")
def http_url():
    return os.environ.get("UCACHE_TEST_HTTP")


@pytest.fixture(scope="session")
def client():
    c = ucache.Client()
    yield c
    c.close()
