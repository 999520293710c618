"""Fetch, verify and list the data sets of `cnnzoo data` (sources.py says which, and their MD5s).

A data set's folder (the cache's `datasets/<name>`, or `--dir`) is filled under a lock (a second
process is told to wait, exit 2): each publisher file is downloaded through the one download
core (`cnnzoo.cache.download`: resumed, bounded, verified against the publisher's MD5 before
anything else reads it; a file that fails is deleted and named); an archive is then unpacked
safely (data/unpack.py) and deleted. Last, `cnnzoo-dataset.json` is written: the publisher's
MD5s and the size and SHA-256 of every file. Only a folder with that record is *verified*:
`--data cifar10` (no path) reads the cache only then, and otherwise exits 2 naming the fetch
command; nothing is ever downloaded without `cnnzoo data fetch`. `verify` hashes every file
again; `list` reports each data set's state from the record and the files' sizes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..cache import CacheError, cache_dir, lock_file, make_dir
from ..cache.download import SCHEMES, Check, Progress, download, sha256_file
from ..errors import InvalidArgumentError, JobFailedError
from .sources import TARGETS, Remote, Target, remotes, target
from .unpack import UnsafeArchiveError, unpack

MANIFEST = "cnnzoo-dataset.json"
MIRROR_ENV = "CNNZOO_DATA_MIRROR"
# MNIST's SHA-256 of the decompressed IDX bytes (computed from the files with the published MD5s):
# a mirror that re-compressed the same data still verifies.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


class DatasetError(CacheError):
    """A data set that is not fetched, not verified, or busy (exit code 2)."""


class NotFetchedError(DatasetError, InvalidArgumentError):
    """`--data NAME` without a verified cache of NAME (exit code 2)."""


def folder_of(t: Target, folder: str | Path | None = None) -> Path:
    """The data set's folder: `folder`, else the cache's `datasets/<key>`."""
    return Path(folder).expanduser() if folder else cache_dir("datasets") / t.key


def data_path(t: Target, folder: Path) -> Path:
    """Where its data is read from: what `--data NAME:PATH` takes."""
    return folder / t.data_folder if t.data_folder else folder


def urls(remote: Remote, mirror: str | None = None) -> list[str]:
    """The file's URLs: only the mirror's ($CNNZOO_DATA_MIRROR, or `mirror`) when one is set,
    else the publisher's."""
    base = mirror or os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return list(remote.urls)
    if not base.startswith(SCHEMES):
        raise DatasetError(f"{MIRROR_ENV}={base!r}: give an http://, https:// or file:// URL of a "
                           "folder holding the publishers' files under their names")
    return [base.rstrip("/") + "/" + remote.filename]


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_check(t: Target, remote: Remote, content_sha256: dict[str, str] | None = None) -> Check:
    """The publisher's MD5; for MNIST, a matching SHA-256 of the decompressed content passes too."""
    table = content_sha256 if content_sha256 is not None else MNIST_SHA256 if t.name == "mnist" else {}

    def check(path: Path) -> str | None:
        md5 = md5_file(path)
        if md5 == remote.md5.lower():
            return None
        why = f"its MD5 {md5} is not the publisher's {remote.md5}"
        sha = table.get(remote.filename.removesuffix(".gz"))
        if sha:
            got = _sha_of_gz(path)
            if got == sha:
                return None
            why += f", and the SHA-256 of its content is {got}, expected {sha}"
        return why

    return check


def _sha_of_gz(path: Path) -> str:
    try:
        return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    except (OSError, EOFError):
        return "not-gzip"


class FetchFailedError(DatasetError, JobFailedError):
    """Fetching ran and failed: the record of a verified folder could not be written (exit 1)."""

    exit_code = 1


@contextmanager
def _locked(folder: Path, t: Target) -> Iterator[None]:
    try:
        f = open(folder / ".lock", "a")
    except OSError as err:
        raise DatasetError(f"cannot write in {folder}: {err.strerror or err}; give a writable "
                           "folder (--dir, or CNNZOO_CACHE for the cache)") from None
    with f:
        if not lock_file(f, wait=False):
            raise DatasetError(f"another process is fetching {t.key} into {folder}; wait for it "
                               "to finish, then run the command again")
        yield


def fetch(name: str, variant: str | None = None, folder: str | Path | None = None, *,
          mirror: str | None = None, progress: Progress | None = None, timeout: float = 60,
          content_sha256: dict[str, str] | None = None) -> Path:
    """Fetch data set `name` into `folder` (default: the cache), verified; returns the path
    `--data NAME:PATH` takes. A folder already verified is kept as it is."""
    t = target(name, variant)
    root = make_dir(folder_of(t, folder), f"the {t.key} folder")
    with _locked(root, t):
        if state(t, root)[0] == "verified":
            return data_path(t, root)
        (root / MANIFEST).unlink(missing_ok=True)
        sources = remotes(t)
        for r in sources:
            download(urls(r, mirror), root / r.filename, check=file_check(t, r, content_sha256),
                     progress=progress, timeout=timeout, max_bytes=t.max_file_bytes,
                     hint=f"Offline: set {MIRROR_ENV} to a folder (file://) holding {r.filename}.")
        if t.archive:
            _unpack(t, root, root / sources[0].filename)
        _write_manifest(t, root, sources)
    return data_path(t, root)


def _unpack(t: Target, root: Path, archive: Path) -> None:
    print(f"unpacking {archive.name} into {root / t.data_folder}", file=sys.stderr, flush=True)
    try:
        unpack(archive, root, t.data_folder, t.max_unpacked_bytes, t.max_members)
    except UnsafeArchiveError as err:
        archive.unlink(missing_ok=True)
        raise UnsafeArchiveError(f"{err} (the archive {archive} was deleted)") from None
    archive.unlink()


def _files(t: Target, root: Path) -> list[Path]:
    if not t.archive:
        return [root / r.filename for r in remotes(t)]
    return sorted(p for p in data_path(t, root).rglob("*") if p.is_file())


def _write_manifest(t: Target, root: Path, sources: tuple[Remote, ...]) -> None:
    from ..files import atomic_path
    from ..version import __version__

    record = {"dataset": t.name, "variant": t.variant, "data": t.data_folder, "cnnzoo": __version__,
              "sources": [{"file": r.filename, "md5": r.md5} for r in sources],
              "files": {p.relative_to(root).as_posix(): {"bytes": p.stat().st_size,
                                                         "sha256": sha256_file(p)}
                        for p in _files(t, root)}}
    try:
        with atomic_path(root / MANIFEST) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=1) + "\n")
    except OSError as err:
        raise FetchFailedError(f"could not write {root / MANIFEST}: {err.strerror or err}; the "
                               f"files are there but not marked verified: free some space and "
                               f"run `{t.fetch_command}` again") from None


def _manifest(root: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("files"), dict) else None


def state(t: Target, root: Path) -> tuple[str, str]:
    """(state, why) from the record and the files' sizes (no hashing): 'verified', 'absent',
    'partial' (a download to resume) or 'unverified'."""
    if not root.is_dir() or not any(p.name not in (".lock",) for p in root.iterdir()):
        return "absent", "not fetched"
    record = _manifest(root)
    if record is None:
        parts = any(p.suffix == ".part" for p in root.iterdir())
        return ("partial", "a download to resume") if parts else ("unverified", f"no {MANIFEST}")
    published = {r.filename: r.md5 for r in remotes(t)}
    recorded = {s.get("file"): s.get("md5") for s in record.get("sources", [])}
    if recorded != published:
        return "unverified", "fetched for other checksums than the installed torchvision's"
    for rel, info in record["files"].items():
        p = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not isinstance(info, dict):
            return "unverified", f"{MANIFEST} names {rel!r}, outside the folder"
        if not p.is_file() or p.stat().st_size != info.get("bytes"):
            return "unverified", f"{p} is missing or changed size"
    return "verified", ""


def verify(t: Target, folder: str | Path | None = None) -> dict[str, Any]:
    """Hash every file again; a mismatch unmarks the folder (its record is deleted) and raises."""
    root = folder_of(t, folder)
    st, why = state(t, root)
    if st != "verified":
        raise DatasetError(f"{t.key} at {root} is {st} ({why}); `{t.fetch_command}"
                           f"{' --dir ' + str(root) if folder else ''}` fetches and verifies it")
    record = _manifest(root) or {}
    bad = [rel for rel, info in record["files"].items() if sha256_file(root / rel) != info["sha256"]]
    if not t.archive:
        bad += [r.filename for r in remotes(t) if file_check(t, r)(root / r.filename) is not None]
    if bad:
        (root / MANIFEST).unlink(missing_ok=True)
        raise DatasetError(f"{t.key} at {root} is damaged: {', '.join(sorted(set(bad))[:5])} "
                           f"changed since it was verified; it is no longer marked verified: "
                           f"run `{t.fetch_command}` again")
    return row(t, root)


def row(t: Target, root: Path) -> dict[str, Any]:
    """What `cnnzoo data list` shows of one data set."""
    st, why = state(t, root)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    return {"dataset": t.key, "name": t.name, "variant": t.variant or None, "state": st,
            "note": why, "path": str(data_path(t, root)), "bytes": size, "about": t.about,
            "fetch": t.fetch_command}


def listing() -> list[dict[str, Any]]:
    """One row per data set and variant, for the cache."""
    return [row(t, folder_of(t)) for t in TARGETS.values()]


def cached_data(name: str, variant: str | None = None) -> Path:
    """The verified cached data of `name` (what `--data NAME` reads), else an error naming the
    fetch command. Never downloads."""
    t = target(name, variant)
    root = folder_of(t)
    st, why = state(t, root)
    if st != "verified":
        raise NotFetchedError(f"--data {name}: {t.about} is not in the cache ({root}: {why}); "
                           f"`{t.fetch_command}` fetches and verifies it (or give "
                           f"--data {name}:PATH); nothing is downloaded on its own")
    return data_path(t, root)


def verify_all(name: str | None = None, variant: str | None = None,
               folder: str | Path | None = None) -> list[dict[str, Any]]:
    """`verify` of one data set, or (no name) of every one that is in the cache."""
    if name is not None:
        return [verify(target(name, variant), folder)]
    if folder is not None or variant is not None:
        raise InvalidArgumentError("--dir and --variant need a data set NAME")
    return [verify(t) for t in TARGETS.values() if state(t, folder_of(t))[0] != "absent"]
