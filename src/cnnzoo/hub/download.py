"""Fetching a published weights file into the cache's `weights/` folder, through the download
core (`cnnzoo.cache.download`: progress on stderr, resumable, atomic, verified, locked), from the
publisher or from the mirror $CNNZOO_WEIGHTS_MIRROR names.

A file that fails its check (the table's SHA-256, or without a published digest, that it parses
as weights) is deleted and reported (exit code 2). A cached file is checked again before use,
so a file placed or altered by hand is verified too. A download reads at most the size the table
knows (`max_bytes`: the publisher's MiB, plus 1% for their rounding), else the core's MAX_BYTES.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

from ..cache import CacheError, cache_root, make_dir
from ..cache import cache_dir as _cache_dir
from ..cache.download import SCHEMES, DownloadError, digest_check, download, stderr_progress
from ..errors import CnnzooError
from ..files import atomic_path
from .table import WeightsEntry

MIRROR_ENV = "CNNZOO_WEIGHTS_MIRROR"
# The download core's error, under the name the hub has always raised.
WeightsDownloadError = DownloadError


def cache_dir() -> Path:
    """The weights folder of the cache: `<cache root>/weights` (`cnnzoo.cache`)."""
    return _cache_dir("weights")


def source_url(entry: WeightsEntry) -> str:
    """The publisher's URL, or the same file name under $CNNZOO_WEIGHTS_MIRROR."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return entry.url
    if not mirror.startswith(SCHEMES):
        raise WeightsDownloadError(f"{MIRROR_ENV}={mirror!r}: give an http://, https:// or "
                                   "file:// URL of a folder holding the files")
    return mirror.rstrip("/") + "/" + entry.file_name


def max_bytes(entry: WeightsEntry) -> int | None:
    """The most bytes `entry`'s file may have: its listed size (MiB, rounded by the publisher)
    with 1% and 64 KiB to spare; None (the core's MAX_BYTES) where no size is listed."""
    if entry.size_mb is None or not math.isfinite(entry.size_mb) or entry.size_mb <= 0:
        return None
    return math.ceil(entry.size_mb * 2**20 * 1.01) + 2**16


def check_file(path: Path, entry: WeightsEntry) -> str | None:
    """None when `path` is the published file, else why not."""
    if entry.sha256:
        return digest_check(entry.sha256)(path)
    from ..weights import read_state_dict  # no digest published: it must at least parse

    try:
        read_state_dict(path)
    except CnnzooError as err:
        return f"it is not a readable weights file ({err})"
    return None


def fetch(entry: WeightsEntry, cache: Path | None = None, progress: bool = True,
          timeout: float = 30.0) -> Path:
    """The verified local file of `entry`, downloading it first if the cache lacks it."""
    dest = (cache or cache_dir()) / entry.file_name
    if cache is None:
        _adopt_from_root(dest)
    if dest.is_file():
        why = check_file(dest, entry)
        if why is None:
            return dest
        dest.unlink()  # placed or altered by hand, or damaged on disk: fetch it again
        _say(progress, f"{dest}: {why}; deleted, downloading again")
    url = source_url(entry)
    make_dir(dest.parent, "the weights cache")
    return download(url, dest, check=lambda path: check_file(path, entry),
                    progress=stderr_progress() if progress else None, timeout=timeout,
                    hint=_offline_hint(url, dest), max_bytes=max_bytes(entry))


def place(entry: WeightsEntry, path: Path, cache: Path | None = None) -> Path:
    """Put a published file fetched by hand into the cache, verified as a download would be;
    a file that fails the check is refused and nothing is copied."""
    if not path.is_file():
        raise WeightsDownloadError(f"--weights {path}: no such file")
    why = check_file(path, entry)
    if why is not None:
        raise WeightsDownloadError(
            f"--weights {path} is not {entry.model}'s published {entry.tag} weights "
            f"({entry.file_name}): {why}; nothing was copied into the cache")
    dest = (cache or cache_dir()) / entry.file_name
    if dest.resolve() != path.resolve():
        make_dir(dest.parent, "the weights cache")
        try:
            with atomic_path(dest) as tmp:
                shutil.copyfile(path, tmp)
        except OSError as err:
            raise WeightsDownloadError(f"could not copy {path} into the cache {dest.parent}: "
                                       f"{err.strerror or err}") from None
    return dest


def _adopt_from_root(dest: Path) -> None:
    """Earlier versions kept weights at the cache's root: move such a file into `weights/`
    instead of downloading it again (it is verified on use like any cached file)."""
    old = cache_root() / dest.name
    if dest.exists() or not old.is_file():
        return
    try:
        make_dir(dest.parent, "the weights cache")
        os.replace(old, dest)
    except (CacheError, OSError):
        pass  # the download that follows says what is wrong with the cache


def _offline_hint(entry_url: str, dest: Path) -> str:
    return (f"To work offline, download {entry_url} elsewhere and pass it with --weights PATH "
            f"(or copy it to {dest}; it is verified on first use), or set {MIRROR_ENV} to a "
            "folder or server holding it. "
            "Any weights file also loads directly: create_model(name, weights=PATH) in Python, "
            "`cnnzoo convert PATH OUT.safetensors --model NAME` on the command line")


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)
