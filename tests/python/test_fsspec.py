"""The "ucache" fsspec protocol, chained over file:// and unchained."""
import fsspec
import fsspec.core
import pytest

import ucache
import ucache.fsspec


def test_chained_open(files, data_dir):
    for name, data in sorted(files.items())[:5]:
        with fsspec.open("ucache::file://%s/%s" % (data_dir, name), "rb") as f:
            assert f.read() == data
    name = max(files, key=lambda n: len(files[n]))
    with fsspec.open("ucache::file://%s/%s" % (data_dir, name), "rb") as f:
        f.seek(1000)
        assert f.read(5000) == files[name][1000:6000]
        f.seek(-100, 2)
        assert f.read() == files[name][-100:]


def test_rooted_filesystem(files, data_dir):
    fs, root = fsspec.core.url_to_fs("ucache::file://%s/" % data_dir)
    assert isinstance(fs, ucache.fsspec.UcacheFileSystem)
    top = {e["name"]: e for e in fs.ls("")}
    assert "sub" in top and top["sub"]["type"] == "directory"
    assert {n for n in top if top[n]["type"] == "file"} == {n for n in files if "/" not in n}
    assert sorted(fs.find("")) == sorted(files)
    assert sorted(fs.glob("sub/*")) == sorted(n for n in files if n.startswith("sub/"))
    name = sorted(files)[0]
    assert fs.info(name)["size"] == len(files[name])
    assert fs.cat_file(name, 3, 40) == files[name][3:40]
    assert fs.isdir("sub") and not fs.exists("nothing-here")
    big = max(files, key=lambda n: len(files[n]))
    buf = bytearray(3 << 20)
    with fs.open(big, "rb") as f:
        f.seek(10)
        assert f.readinto(buf) == len(buf) and bytes(buf) == files[big][10:10 + len(buf)]


def test_unchained(files, prefix):
    fs = fsspec.filesystem("ucache")
    name = sorted(files)[1]
    assert fs.cat_file(prefix + name) == files[name]
    assert fs.size(prefix + name) == len(files[name])


def test_read_only(data_dir, files):
    fs, _ = fsspec.core.url_to_fs("ucache::file://%s/" % data_dir)
    with pytest.raises(ucache.UnsupportedError):
        fs.open("new-file", "wb")
    with pytest.raises(ucache.UnsupportedError):
        fs.rm_file(sorted(files)[0])


def test_azure_chain_parses():
    # az:// has no fsspec implementation here (no adlfs): the chain still
    # parses and names the origin URI the fabric reads
    fs, _ = fsspec.core.url_to_fs("ucache::az://acct/container/prefix/")
    assert fs.uri("x/y.bin") == "az://acct/container/prefix/x/y.bin"
