"""Fetching a published weights file into the cache: progress on stderr, resumable, atomic,
verified, mirror-aware.

The bytes go to `<cache>/<file>.part`; an interrupted transfer leaves only that `.part`, which
nothing trusts, and the next run asks the server for the rest (HTTP Range). Only a complete file
whose SHA-256 matches the table (or, without a published digest, that parses as weights) is
renamed to `<cache>/<file>`. A file that fails the check is deleted and reported (exit code 2).
A cached file is checked again before use, so a file placed or altered by hand is verified too.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Callable

from ..errors import CnnzooError
from .table import WeightsEntry

MIRROR_ENV = "CNNZOO_WEIGHTS_MIRROR"
CACHE_ENV = "CNNZOO_CACHE"
_CHUNK = 1 << 20


class WeightsDownloadError(CnnzooError):
    """A weights file could not be fetched or failed its check (exit code 2)."""


def cache_dir() -> Path:
    """$CNNZOO_CACHE, else the user's cache directory (XDG_CACHE_HOME, LOCALAPPDATA) + cnnzoo."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA")
    return (Path(base) if base else Path.home() / ".cache") / "cnnzoo"


def source_url(entry: WeightsEntry) -> str:
    """The publisher's URL, or the same file name under $CNNZOO_WEIGHTS_MIRROR."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return entry.url
    if not mirror.startswith(("http://", "https://", "file://")):
        raise WeightsDownloadError(f"{MIRROR_ENV}={mirror!r}: give an http://, https:// or "
                                   "file:// URL of a folder holding the files")
    return mirror.rstrip("/") + "/" + entry.file_name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: Path, entry: WeightsEntry) -> str | None:
    """None when `path` is the published file, else why not."""
    if entry.sha256:
        digest = sha256_file(path)
        if not digest.startswith(entry.sha256.lower()):
            return (f"its SHA-256 {digest[:16]}... does not match the published "
                    f"{entry.sha256[:16]}{'...' if entry.full_digest else ''}")
        return None
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
    if dest.is_file():
        why = check_file(dest, entry)
        if why is None:
            return dest
        dest.unlink()  # placed or altered by hand, or damaged on disk: fetch it again
        _say(progress, f"{dest}: {why}; deleted, downloading again")
    url = source_url(entry)
    part = dest.with_name(dest.name + ".part")
    _make_cache(dest.parent)
    _transfer(url, part, dest, progress, timeout)
    why = check_file(part, entry)
    if why is not None:
        part.unlink(missing_ok=True)
        raise WeightsDownloadError(
            f"{url}: the downloaded file was refused: {why}. The file is corrupt or was "
            "tampered with (or the mirror holds another file under this name); it was deleted, "
            "nothing was kept in the cache")
    os.replace(part, dest)
    return dest


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
        _make_cache(dest.parent)
        part = dest.with_name(dest.name + ".placing")
        try:
            shutil.copyfile(path, part)
            os.replace(part, dest)
        except OSError as err:
            part.unlink(missing_ok=True)
            raise WeightsDownloadError(f"could not copy {path} into the cache {dest.parent}: "
                                       f"{err.strerror or err}") from None
    return dest


def _make_cache(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsDownloadError(f"the weights cache {folder} cannot be created "
                                   f"({err.strerror or err}); point {CACHE_ENV} at a writable "
                                   "folder") from None


def _offline_hint(entry_url: str, dest: Path) -> str:
    return (f"To work offline, download {entry_url} elsewhere and pass it with --weights PATH "
            f"(or copy it to {dest}; it is verified on first use), or set {MIRROR_ENV} to a "
            "folder or server holding it. "
            "Any weights file also loads directly: create_model(name, weights=PATH) in Python, "
            "`cnnzoo convert PATH OUT.safetensors --model NAME` on the command line")


def _transfer(url: str, part: Path, dest: Path, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.is_file() else 0
    try:
        if url.startswith("file://"):
            src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
            total = src.stat().st_size
            if have > total:
                have = 0
            with open(src, "rb") as resp:
                resp.seek(have)
                _copy(resp, part, have, total, url, progress)
            return
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:  # 416: the .part is not a prefix we can extend
                raise
            part.unlink()
            have, resp = 0, urllib.request.urlopen(url, timeout=timeout)  # noqa: S310
        with resp:
            if have and resp.status != 206:  # the server ignored Range: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            _copy(resp, part, have, total, url, progress)
    except urllib.error.HTTPError as err:
        raise WeightsDownloadError(f"could not download {url}: HTTP {err.code} {err.reason}. "
                                   + _offline_hint(url, dest)) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise WeightsDownloadError(f"could not download {url} ({reason}). "
                                   + _offline_hint(url, dest)) from None


def _copy(resp: IO[bytes], part: Path, have: int, total: int | None, url: str,
          progress: bool) -> None:
    show = _progress_printer(progress, url, total)
    done = have
    with open(part, "ab") as out:
        _lock(out, part)
        if not have:
            out.truncate(0)
        try:
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                show(done)
        except (http.client.HTTPException, OSError) as err:  # a dropped connection
            if total is None:
                raise WeightsDownloadError(f"{url}: the transfer stopped after {done:,} bytes "
                                           f"({err}); the next run resumes it") from None
        out.flush()
        os.fsync(out.fileno())
    show(done, final=True)
    if total is not None and done < total:
        raise WeightsDownloadError(
            f"{url}: the transfer stopped after {done:,} of {total:,} bytes; the partial file "
            f"{part} is kept and the next run resumes it")


def _lock(f: IO[bytes], part: Path) -> None:
    """One download per file at a time: a second process would interleave its bytes. The lock
    dies with its process, so a killed download never blocks the next run."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; the digest check still guards
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise WeightsDownloadError(f"another process is downloading {part.name} into "
                                   f"{part.parent}; wait for it to finish") from None


def _progress_printer(progress: bool, url: str, total: int | None) -> Callable[..., None]:
    tty = sys.stderr.isatty()
    _say(progress, f"downloading {url}")
    last = [-1]

    def show(done: int, final: bool = False) -> None:
        if not progress or not (tty or final):
            return
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        mb = f"{done / 2**20:.1f}" + (f"/{total / 2**20:.1f}" if total else "") + " MiB"
        if final or done * 100 // max(total or 1, 1) != last[0]:
            last[0] = done * 100 // max(total or 1, 1)
            end = "\n" if final else ""
            print(f"\r  {mb}{pct}", end=end, file=sys.stderr, flush=True)

    return show


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)
