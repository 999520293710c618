"""`cnnzoo data fetch|list|verify` and `--data NAME` without a path, offline: small fake archives
on a file:// mirror or a server on 127.0.0.1, their MD5s swapped in at the one seam
(`sources.publisher_table`); the real table's reading from torchvision is tested on its own."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from _datasets import write_cifar_batch
from _weights_server import WeightsServer
from cnnzoo.data import fetch as data_fetch
from cnnzoo.data import sources
from cnnzoo.data.datasets import load_split, parse_spec
from cnnzoo.data.kinds import EMBEDDED_DIR, KINDS
from cnnzoo.data.sources import Remote
from cnnzoo.data.unpack import UnpackFailedError, UnsafeArchiveError, unpack
from cnnzoo.errors import InvalidArgumentError

SRC = Path(__file__).resolve().parents[1] / "src"
PUBLISHED = {  # the publishers' MD5s, as torchvision 0.29 lists them
    "mnist": ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"],
    "fashion-mnist": ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"],
    "cifar10": ["c58f30108f718f92721af3b95e74349a"],
    "cifar100": ["eb9058c3a382ffc7106e4002c42a8d85"],
    "imagenette-full": ["fe2fc210e6bb7c5664d602c3cd71e612"],
    "imagenette-320px": ["3df6f0d01a2c9592104656642f5e78a3"],
    "imagenette-160px": ["e793b78cc4c9e9a4ccc0c1155377a412"],
}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _cifar_archive(path: Path) -> Path:
    tmp = path.parent / "cifar-src"
    tmp.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    members = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(tmp / name, rng.integers(0, 255, (4, 3, 32, 32)), [0, 1, 2, 3])
        members.append(_file(f"cifar-10-batches-py/{name}", (tmp / name).read_bytes()))
    return _tar(path, members)


@pytest.fixture
def publisher(tmp_path, monkeypatch):
    """A 'publisher' folder (also the file:// mirror) with small CIFAR-10, Imagenette and MNIST
    files, the table of their MD5s in place of torchvision's, and a fresh cache."""
    root = tmp_path / "publisher"
    root.mkdir()
    _cifar_archive(root / "cifar-10-python.tar.gz")
    _tar(root / "imagenette2-160.tgz", [
        _file(f"imagenette2-160/{split}/{wnid}/{i}.JPEG", b"not decoded here")
        for split in ("train", "val") for wnid in ("n01440764", "n02102040") for i in range(2)])
    for f in EMBEDDED_DIR.glob("*.gz"):
        (root / f.name).write_bytes(f.read_bytes())

    def table() -> dict[str, tuple[Remote, ...]]:
        def one(name: str) -> Remote:
            return Remote(name, _md5(root / name), ((root / name).as_uri(),))
        return {"mnist": tuple(one(f.name) for f in sorted(EMBEDDED_DIR.glob("*.gz"))),
                "cifar10": (one("cifar-10-python.tar.gz"),),
                "imagenette-160px": (one("imagenette2-160.tgz"),)}

    monkeypatch.setattr(sources, "publisher_table", table)
    for var in (data_fetch.MIRROR_ENV, "CNNZOO_DOWNLOAD_DEADLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    return root


def _cached(tmp_path: Path, key: str) -> Path:
    return tmp_path / "cache" / "datasets" / key


def _no_leftovers(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.name.startswith(".unpacking-")] if folder.is_dir() else []
    assert left == []


# -- the real checksums ---------------------------------------------------------------------------
def test_the_checksums_are_torchvisions_read_without_importing_torch():
    sources.publisher_table.cache_clear()
    table = sources.publisher_table()
    assert {k: [r.md5 for r in v] for k, v in table.items()} == PUBLISHED
    assert table["cifar10"][0].urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    assert table["imagenette-160px"][0].filename == "imagenette2-160.tgz"
    assert sources.imagenette_class_names()["n01440764"] == "tench"
    code = ("import sys; from cnnzoo.data.sources import publisher_table; publisher_table(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.stdout.strip() == "False", out.stderr


# -- fetch, list, verify, --data NAME ----------------------------------------------------------------
def test_fetch_from_a_file_mirror_then_data_cifar10_reads_the_cache(publisher, tmp_path, cli,
                                                                    monkeypatch):
    monkeypatch.setenv(data_fetch.MIRROR_ENV, publisher.as_uri())
    r = cli("data", "fetch", "cifar10")
    assert r.code == 0, r.err
    folder = _cached(tmp_path, "cifar10")
    assert "cifar10: verified" in r.out and "--data cifar10" in r.out and "unpacking" in r.err
    assert f"downloading {publisher.as_uri()}/cifar-10-python.tar.gz" in r.err  # progress, on stderr
    assert not (folder / "cifar-10-python.tar.gz").exists()  # unpacked, then deleted
    _no_leftovers(folder)
    rows = {row["dataset"]: row for row in cli("data", "list", "--format", "json").json()}
    assert rows["cifar10"]["state"] == "verified" and rows["mnist"]["state"] == "absent"
    spec = parse_spec("cifar10")
    assert spec.path == folder / "cifar-10-batches-py"
    assert len(load_split(spec, "train")) == 20
    assert cli("data", "verify", "cifar10").code == 0
    again = cli("data", "fetch", "cifar10")  # already verified: kept, nothing fetched
    assert again.code == 0 and "downloading" not in again.err


def test_data_name_without_a_cache_exits_2_naming_the_fetch_command(publisher, cli):
    r = cli("train", "lenet5", "--data", "cifar10", "--epochs", "1")
    assert r.code == 2 and "`cnnzoo data fetch cifar10`" in r.err and "not in the cache" in r.err
    with pytest.raises(InvalidArgumentError, match="`cnnzoo data fetch imagenette`"):
        parse_spec("imagenette")
    with pytest.raises(InvalidArgumentError, match="`cnnzoo data fetch imagenette --variant 320px`"):
        parse_spec("imagenette-320px")  # another variant: its name in the cache


def test_mnist_and_imagenette_through_the_cache(publisher, cli, monkeypatch):
    assert cli("data", "fetch", "mnist").code == 0  # the publisher table's file:// URLs
    assert len(load_split(parse_spec("mnist"), "test")) > 0
    r = cli("data", "fetch", "imagenette")
    assert r.code == 0, r.err
    assert parse_spec("imagenette").path.name == "imagenette2-160"
    train = KINDS["imagenette"].reader(parse_spec("imagenette").path, "train")
    assert train.classes == ["tench", "English springer"] and len(train.samples) == 4


def test_verify_finds_a_changed_file_and_unmarks_the_data(publisher, tmp_path, cli):
    assert cli("data", "fetch", "cifar10").code == 0
    batch = _cached(tmp_path, "cifar10") / "cifar-10-batches-py" / "test_batch"
    data = bytearray(batch.read_bytes())
    data[-1] ^= 1  # same size: only the hash sees it
    batch.write_bytes(bytes(data))
    r = cli("data", "verify")
    assert r.code == 2 and "cifar-10-batches-py/test_batch" in r.err and "damaged" in r.err
    assert cli("train", "lenet5", "--data", "cifar10").code == 2  # no longer verified


def test_an_unknown_name_or_variant_lists_the_known_ones(cli, publisher):
    r = cli("data", "fetch", "cifar-10")
    assert r.code == 2 and "did you mean 'cifar10'" in r.err and "imagenette" in r.err
    r = cli("data", "fetch", "imagenette", "--variant", "80px")
    assert r.code == 2 and "160px, 320px, full" in r.err
    r = cli("train", "lenet5", "--data", "cifar11")
    assert r.code == 2 and "alone for the verified cache" in r.err


def test_the_first_downloader_still_works_on_real_mnist(mnist_dir, tmp_path):
    """The real files (re-compressed: their content's SHA-256 verifies them) through the old
    entry point, then the new one; both leave a verified folder."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "CNNZOO_CACHE": str(tmp_path / "cache")}
    env.pop(data_fetch.MIRROR_ENV, None)
    out = subprocess.run([sys.executable, "-m", "cnnzoo.data.download", "mnist", str(tmp_path / "m"),
                          "--mirror", mnist_dir.as_uri()], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "cnnzoo data fetch mnist --dir" in out.stderr, out.stderr
    assert (tmp_path / "m" / data_fetch.MANIFEST).is_file()
    assert len(load_split(parse_spec(f"mnist:{tmp_path / 'm'}"), "test")) == 10000
    out = subprocess.run([sys.executable, "-m", "cnnzoo", "data", "fetch", "mnist"], capture_output=True,
                         env={**env, data_fetch.MIRROR_ENV: mnist_dir.as_uri()}, text=True, timeout=300)
    assert out.returncode == 0 and "mnist: verified" in out.stdout, out.stderr


# -- downloads: resume, tampering, mirror, lock ---------------------------------------------------------
def test_a_truncated_download_is_resumed(publisher, tmp_path, cli, monkeypatch):
    with WeightsServer(publisher) as server:
        monkeypatch.setenv(data_fetch.MIRROR_ENV, server.url)
        server.mode = "truncate"
        r = cli("data", "fetch", "cifar10")
        assert r.code == 2 and "resumes it" in r.err
        folder = _cached(tmp_path, "cifar10")
        assert (folder / "cifar-10-python.tar.gz.part").stat().st_size > 0
        assert {row["dataset"]: row["state"] for row in cli("data", "list", "--json").json()}[
            "cifar10"] == "partial"
        server.mode = "ok"
        assert cli("data", "fetch", "cifar10").code == 0
        assert server.requests[-1][1] is not None and server.requests[-1][1].startswith("bytes=")
    assert parse_spec("cifar10").path.is_dir()


def test_a_tampered_download_is_deleted_and_named(publisher, tmp_path, cli, monkeypatch):
    archive = publisher / "cifar-10-python.tar.gz"
    table = sources.publisher_table()
    monkeypatch.setattr(sources, "publisher_table", lambda: table)  # the MD5 of the good file
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    r = cli("data", "fetch", "cifar10")
    assert r.code == 2 and "refused" in r.err and "MD5" in r.err and "deleted" in r.err
    assert archive.as_uri() in r.err
    folder = _cached(tmp_path, "cifar10")
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


def test_a_mirror_must_be_a_url(publisher, cli, monkeypatch):
    monkeypatch.setenv(data_fetch.MIRROR_ENV, "/srv/mirror")
    r = cli("data", "fetch", "cifar10")
    assert r.code == 2 and "CNNZOO_DATA_MIRROR" in r.err and "file://" in r.err


def test_a_second_process_is_told_to_wait(publisher, tmp_path, cli):
    folder = _cached(tmp_path, "cifar10")
    folder.mkdir(parents=True)
    code = ("import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = cli("data", "fetch", "cifar10")
        assert r.code == 2 and "another process is fetching cifar10" in r.err
    finally:
        holder.kill()
        holder.wait()
    assert cli("data", "fetch", "cifar10").code == 0  # the lock died with its process


def test_two_fetches_at_once_leave_one_verified_copy(publisher, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "CNNZOO_CACHE": str(tmp_path / "cache"),
           data_fetch.MIRROR_ENV: publisher.as_uri()}
    # the child processes read the real torchvision table: point them at the same fake one
    boot = ("import sys, cnnzoo.data.sources as s; from cnnzoo.data.sources import Remote; "
            "from pathlib import Path; import hashlib; root = Path(sys.argv[1]); "
            "f = root / 'cifar-10-python.tar.gz'; "
            "s.publisher_table = lambda: {'cifar10': (Remote(f.name, hashlib.md5(f.read_bytes())"
            ".hexdigest(), (f.as_uri(),)),)}; from cnnzoo.cli import main; main(sys.argv[2:])")
    argv = [sys.executable, "-c", boot, str(publisher), "data", "fetch", "cifar10"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results)[0] == 0, results
    for code, err in results:
        assert code == 0 or "another process" in err, err
    assert parse_spec("cifar10").path.is_dir()
    _no_leftovers(_cached(tmp_path, "cifar10"))


# -- hostile archives -----------------------------------------------------------------------------------
def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


HOSTILE = {
    "traversal": ([_file("cifar-10-batches-py/../../evil", b"x")], "climbs out"),
    "absolute": ([_file("/tmp/cnnzoo-evil", b"x")], "absolute name"),
    "symlink out": ([_link("cifar-10-batches-py/data_batch_1", "/etc/passwd", tarfile.SYMTYPE)],
                    "symbolic link"),
    "hardlink out": ([_link("cifar-10-batches-py/data_batch_1", "../../etc/passwd", tarfile.LNKTYPE)],
                     "hard link"),
    "device": ([_device("cifar-10-batches-py/null")], "a device"),
    "oversize": ([_file("cifar-10-batches-py/data_batch_1", b"\0" * 5000)], "more than 4,096 bytes"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_archive_is_refused_and_nothing_is_left(case, tmp_path):
    members, why = HOSTILE[case]
    archive = _tar(tmp_path / "a.tar.gz", [_file("cifar-10-batches-py/ok", b"fine"), *members])
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(UnsafeArchiveError, match=why):
        unpack(archive, target, "cifar-10-batches-py", 4096, 100)
    assert sorted(p.name for p in target.iterdir()) == []  # no half folder, no temporary
    assert not (tmp_path / "evil").exists() and not Path("/tmp/cnnzoo-evil").exists()


def test_too_many_members_are_refused(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [_file(f"d/{i}", b"") for i in range(5)])
    with pytest.raises(UnsafeArchiveError, match="more than 3 members"):
        unpack(archive, tmp_path, "d", 4096, 3)


def test_a_hostile_archive_through_the_cli_is_deleted_and_named(publisher, tmp_path, cli):
    _tar(publisher / "cifar-10-python.tar.gz",
         [_link("cifar-10-batches-py/data_batch_1", "/etc/passwd", tarfile.SYMTYPE)])
    r = cli("data", "fetch", "cifar10")
    assert r.code == 2 and "symbolic link" in r.err and "was deleted" in r.err
    folder = _cached(tmp_path, "cifar10")
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


def test_a_full_disk_mid_unpack_leaves_no_half_folder(publisher, tmp_path, cli, monkeypatch):
    real = tarfile.copyfileobj
    calls = []

    def fill_up(src, dst, length=None, *args, **kwargs):
        calls.append(length)
        if len(calls) == 3:  # two files written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, length, *args, **kwargs)

    monkeypatch.setattr(tarfile, "copyfileobj", fill_up)
    r = cli("data", "fetch", "cifar10")
    assert r.code == 1 and "the disk is full" in r.err and "nothing unpacked was kept" in r.err
    folder = _cached(tmp_path, "cifar10")
    assert not (folder / "cifar-10-batches-py").exists()
    _no_leftovers(folder)
    assert (folder / "cifar-10-python.tar.gz").is_file()  # verified: the next run unpacks it
    monkeypatch.setattr(tarfile, "copyfileobj", real)
    table = sources.publisher_table()
    monkeypatch.setattr(sources, "publisher_table", lambda: table)
    (publisher / "cifar-10-python.tar.gz").rename(publisher / "gone")  # no second download
    assert cli("data", "fetch", "cifar10").code == 0
    assert parse_spec("cifar10").path.is_dir()


def test_unpack_failed_error_is_a_job_that_ran(tmp_path):
    assert UnpackFailedError.exit_code == 1 and UnsafeArchiveError.exit_code == 2


def test_target_bounds_are_in_force(publisher, tmp_path, cli, monkeypatch):
    """The declared bound per data set is what unpack gets: a tiny one refuses the fake CIFAR."""
    small = dataclasses.replace(sources.TARGETS["cifar10"], max_unpacked_bytes=1000)
    monkeypatch.setitem(sources.TARGETS, "cifar10", small)
    r = cli("data", "fetch", "cifar10")
    assert r.code == 2 and "more than 1,000 bytes" in r.err


@pytest.mark.parametrize("data", [b"not an archive at all", b"\x1f\x8b\x08\x00garbage"])
def test_an_archive_that_is_not_a_tar_is_refused_without_leftovers(data, tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(data)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(UnsafeArchiveError, match="not a readable tar archive"):
        unpack(archive, target, "d", 4096, 10)
    assert list(target.iterdir()) == []


def test_a_record_naming_files_outside_its_folder_is_not_verified(publisher, tmp_path, cli):
    assert cli("data", "fetch", "cifar10").code == 0
    record_file = _cached(tmp_path, "cifar10") / data_fetch.MANIFEST
    record = json.loads(record_file.read_text())
    record["files"]["../../outside"] = {"bytes": 1, "sha256": "0"}
    record_file.write_text(json.dumps(record))
    with pytest.raises(InvalidArgumentError, match="outside the folder"):
        parse_spec("cifar10")
