"""The cache (where: one root, one folder per kind) and the download core (resume, verify,
lock, mirrors, progress), offline: a local HTTP server on 127.0.0.1 and file:// mirrors."""

from __future__ import annotations

import gzip
import hashlib
import socket
import subprocess
import sys

import pytest

from _weights_server import WeightsServer
from cnnzoo.cache import CacheError, cache_dir, cache_root, make_dir
from cnnzoo.cache.download import DownloadError, digest_check, download, stderr_progress
from cnnzoo.errors import InvalidArgumentError

DATA = bytes(range(256)) * 4096  # 1 MiB: a few chunks
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A made-up home and no cache variables set."""
    for var in ("CNNZOO_CACHE", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def published(tmp_path):
    root = tmp_path / "publisher"
    root.mkdir()
    (root / "blob.bin").write_bytes(DATA)
    return root


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/blob.bin"


def test_the_root_follows_cnnzoo_cache_then_xdg_then_home(home, monkeypatch, tmp_path):
    assert cache_root() == home / ".cache" / "cnnzoo"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "cnnzoo"
    monkeypatch.setenv("CNNZOO_CACHE", "~/my cache")  # ~ is the user's home, as in a shell
    assert cache_root() == home / "my cache"
    monkeypatch.setenv("CNNZOO_CACHE", "")  # set but empty: as if unset
    assert cache_root() == tmp_path / "xdg" / "cnnzoo"
    assert cache_dir("weights") == cache_root() / "weights"
    with pytest.raises(InvalidArgumentError, match="weights, datasets, playground"):
        cache_dir("models")


def test_weights_datasets_and_the_playground_share_one_root(home, monkeypatch, tmp_path):
    from cnnzoo.data import download as data_download
    from cnnzoo.hub import cache_dir as weights_dir
    from cnnzoo.serve import create_app, state

    monkeypatch.setenv("CNNZOO_CACHE", "~/c")
    root = home / "c"
    assert weights_dir() == root / "weights"
    assert create_app(tmp_path / "runs", models=[]).state.cache_dir == root / "playground"
    monkeypatch.setattr(state, "_train_playground", lambda r: (r / state.PLAYGROUND_DIR).mkdir())
    assert state.playground_file().is_relative_to(root / "playground")
    # a four-file 'MNIST' on a file:// mirror, its digests swapped in for the real ones
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    digests = {}
    for name in data_download.MNIST_SHA256:
        content = name.encode() * 100
        (mirror / f"{name}.gz").write_bytes(gzip.compress(content))
        digests[name] = hashlib.sha256(content).hexdigest()
    monkeypatch.setattr(data_download, "MNIST_SHA256", digests)
    out = data_download.download_mnist(mirror=mirror.as_uri())
    assert out == root / "datasets" / "mnist" and len(list(out.glob("*.gz"))) == 4


def test_weights_from_an_older_cache_root_are_moved_not_downloaded_again(home, monkeypatch,
                                                                         published):
    from cnnzoo.hub import WeightsEntry, fetch

    monkeypatch.setenv("CNNZOO_CACHE", str(home / "c"))
    (home / "c").mkdir(parents=True)
    (home / "c" / "blob.bin").write_bytes(DATA)  # where earlier versions kept it
    entry = WeightsEntry("lenet5", "t", "torchvision", _dead_url(), SHA)
    assert fetch(entry, progress=False) == home / "c" / "weights" / "blob.bin"
    assert not (home / "c" / "blob.bin").exists()


def test_a_cache_folder_that_cannot_be_made_names_the_variable(home, monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CNNZOO_CACHE", str(blocker))
    with pytest.raises(CacheError, match="the weights cache .* cannot be created.*CNNZOO_CACHE"):
        make_dir(cache_dir("weights"), "the weights cache")
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CacheError) as err:  # a folder outside the cache: no cache advice
        make_dir(blocker / "mnist", "the MNIST folder")
    assert "CNNZOO_CACHE" not in str(err.value)


def test_a_truncated_transfer_resumes_where_it_stopped_with_progress(published, tmp_path):
    dest = tmp_path / "blob.bin"
    seen = []
    with WeightsServer(published) as srv:
        srv.mode = "truncate"
        with pytest.raises(DownloadError, match="stopped after .* the next run resumes it"):
            download(srv.url + "blob.bin", dest, check=digest_check(SHA))
        half = (tmp_path / "blob.bin.part").stat().st_size
        assert 0 < half < len(DATA) and not dest.exists()
        srv.mode = "ok"
        got = download(srv.url + "blob.bin", dest, check=digest_check(SHA),
                       progress=lambda *a: seen.append(a))
        assert srv.requests[-1][1] == f"bytes={half}-"  # only the rest was asked for
    assert got == dest and dest.read_bytes() == DATA and not (tmp_path / "blob.bin.part").exists()
    assert seen[0] == (srv.url + "blob.bin", half, len(DATA), False)
    assert seen[-1] == (srv.url + "blob.bin", len(DATA), len(DATA), True)


def test_a_part_longer_than_the_file_is_read_again_from_zero(published, tmp_path):
    (tmp_path / "blob.bin.part").write_bytes(DATA + b"extra")  # the server answers 416
    with WeightsServer(published) as srv:
        download(srv.url + "blob.bin", tmp_path / "blob.bin", check=digest_check(SHA))
    assert (tmp_path / "blob.bin").read_bytes() == DATA


def test_a_corrupt_download_is_refused_and_nothing_is_kept(published, tmp_path):
    (published / "blob.bin").write_bytes(DATA[:-1] + b"!")
    with pytest.raises(DownloadError, match="refused: its SHA-256 .* does not match"):
        download((published / "blob.bin").as_uri(), tmp_path / "blob.bin", check=digest_check(SHA))
    assert list(tmp_path.glob("blob.bin*")) == []


def test_the_next_mirror_is_tried_and_every_failure_is_named(published, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "blob.bin").write_bytes(b"another file under this name")
    dead = _dead_url()
    with WeightsServer(published) as srv:
        urls = [dead, (bad / "blob.bin").as_uri(), srv.url + "blob.bin"]
        assert download(urls, tmp_path / "blob.bin", check=digest_check(SHA)).read_bytes() == DATA
        assert len(srv.requests) == 1 and srv.requests[0][1] is None  # the refused file: not resumed
        srv.mode = "404"
        with pytest.raises(DownloadError) as err:
            download(urls, tmp_path / "again.bin", check=digest_check(SHA), hint="Work offline.")
    text = str(err.value)
    assert text.startswith("could not fetch a verified again.bin: ") and text.endswith("Work offline.")
    assert f"could not download {dead}" in text and "refused" in text and "HTTP 404" in text
    assert list(tmp_path.glob("again.bin*")) == []
    with pytest.raises(DownloadError, match="only http://, https:// and file://"):
        download("ftp://example.org/blob.bin", tmp_path / "x.bin")


_HOLD = """
import fcntl, sys
f = open(sys.argv[1], "ab")
fcntl.flock(f.fileno(), fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_process_does_not_download_the_same_file_at_once(published, tmp_path):
    pytest.importorskip("fcntl")
    dest, part = tmp_path / "blob.bin", tmp_path / "blob.bin.part"
    other = subprocess.Popen([sys.executable, "-c", _HOLD, str(part)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(DownloadError, match="another process is downloading blob.bin.part"):
            download((published / "blob.bin").as_uri(), dest, check=digest_check(SHA))
    finally:
        other.communicate("")  # it ends: its lock goes with it
    assert download((published / "blob.bin").as_uri(), dest, check=digest_check(SHA)) == dest
    # the one that waited finds the file done: it is kept, nothing is fetched again
    assert download(_dead_url(), dest, check=digest_check(SHA)).read_bytes() == DATA
    assert not part.exists()


def test_stderr_progress_names_the_url_then_the_total(capsys):
    show = stderr_progress()
    for done in (0, 2**20, 2**21):
        show("http://x/f", done, 2**21, done == 2**21)
    err = capsys.readouterr().err  # not a terminal: the last line only
    assert err == "downloading http://x/f\n\r  2.0/2.0 MiB (100%)\n"
