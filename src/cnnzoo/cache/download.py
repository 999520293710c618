"""The one download core: a file from a list of URLs (http://, https://, file://; the first that
delivers a verified file wins) to its final path. Weights (`cnnzoo.hub`) and data sets
(`cnnzoo.data.fetch`) both fetch through `download`.

- **Resume.** The bytes go to `<dest>.part`; an interrupted transfer leaves only that `.part`,
  which nothing trusts, and the next attempt asks for the rest (HTTP Range; a server that
  ignores Range, or answers 416, is read again from zero).
- **Verify.** Only a complete file that passes the caller's check (`digest_check` for a
  SHA-256, or any function saying why a file is wrong) is renamed to `<dest>`
  (`files.replace_durably`); a refused file is emptied and the next URL tried; nothing is kept.
- **Lock.** The `.part` is locked while it is written, so a second process asking for the same
  file is told to wait instead of interleaving its bytes.
- **Bounds.** A download reads at most `max_bytes` (the file's known size with a margin, else
  `MAX_BYTES`): a server that claims more (Content-Length) is refused before any byte is read, one
  that streams more is cut off, and in both cases the `.part` is deleted, as is a `.part` already
  over the bound (nothing that large is resumed). A `file://` URL must name a regular file (a
  FIFO, folder or device is refused without being opened for reading). The whole download has a
  deadline, $CNNZOO_DOWNLOAD_DEADLINE seconds (default 3600), so a server that trickles a byte
  now and then (which never trips the per-read `timeout`) is given up on, at most one per-read
  timeout late (the check runs as bytes arrive); what arrived stays in the `.part` for the
  next run to resume.
- **Exit codes.** A URL, mirror or file that is wrong (refused, unreachable, over the bound):
  `DownloadError`, exit 2; a download that ran and failed (past the deadline, the disk full):
  `DownloadFailedError`, exit 1.
- **Progress.** A callback `(url, bytes so far, total or None, finished)`; `stderr_progress`
  is the one the command line uses.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import math
import os
import shutil
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Optional

from ..errors import JobFailedError
from ..files import replace_durably
from . import CacheError, lock_file

Check = Callable[[Path], Optional[str]]  # None when the file is right, else why not
Progress = Callable[[str, int, Optional[int], bool], None]  # url, done, total, finished
SCHEMES = ("http://", "https://", "file://")
_CHUNK = 1 << 20
MAX_BYTES = 2**30  # when the caller knows no size: the largest published weights file is 548 MiB
DEADLINE_ENV = "CNNZOO_DOWNLOAD_DEADLINE"
DEFAULT_DEADLINE_S = 3600.0


class DownloadError(CacheError):
    """A file could not be fetched from any of its URLs, or failed its check (exit code 2)."""


class DownloadFailedError(DownloadError, JobFailedError):
    """The download ran and failed: past its deadline, or the disk is full (exit code 1)."""

    exit_code = 1


class _Failed(Exception):
    """One URL's failure; `network` when the hint about working offline applies, `ran` when
    the URL was right but the download failed (exit code 1)."""

    def __init__(self, message: str, network: bool = False, ran: bool = False) -> None:
        super().__init__(message)
        self.network, self.ran = network, ran


class _Limits:
    """What one download may take: `max_bytes` bytes, until `until` (time.monotonic)."""

    def __init__(self, max_bytes: int, deadline: float) -> None:
        self.max_bytes, self.deadline = max_bytes, deadline
        self.until = time.monotonic() + deadline

    def left(self) -> float:
        return self.until - time.monotonic()

    def past(self, url: str, done: int, part: Path) -> _Failed:
        return _Failed(f"{url}: the download did not finish within its deadline of "
                       f"{self.deadline:g} s ({done:,} bytes arrived); the partial file {part} "
                       f"is kept and the next run resumes it; set {DEADLINE_ENV} (seconds) to "
                       "allow more", ran=True)


def deadline_s() -> float:
    """$CNNZOO_DOWNLOAD_DEADLINE (seconds > 0), else DEFAULT_DEADLINE_S."""
    text = os.environ.get(DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_DEADLINE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DownloadError(f"{DEADLINE_ENV}={text[:40]!r}: give the seconds a download may take, "
                            f"a number > 0 (default {DEFAULT_DEADLINE_S:g})")
    return value


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_check(expected: str) -> Check:
    """A check that the file's SHA-256 starts with `expected` (a full digest, or the 8 hex
    digits torchvision puts in its file names)."""
    expected = expected.lower()

    def check(path: Path) -> str | None:
        digest = sha256_file(path)
        if digest.startswith(expected):
            return None
        return (f"its SHA-256 {digest[:16]}... does not match the published "
                f"{expected[:16]}{'...' if len(expected) > 16 else ''}")

    return check


def download(urls: str | Iterable[str], dest: Path, check: Check | None = None,
             progress: Progress | None = None, timeout: float = 30.0, hint: str = "",
             max_bytes: int | None = None, deadline: float | None = None) -> Path:
    """Fetch `dest` from the first of `urls` that delivers a file passing `check`; `dest`'s
    folder must exist. `hint` (how to work offline) ends the message of a network failure.
    `max_bytes`: the most the file may have (default MAX_BYTES); `deadline`: seconds for the
    whole download (default $CNNZOO_DOWNLOAD_DEADLINE, else 3600)."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    for url in urls:
        if not url.startswith(SCHEMES):
            raise DownloadError(f"{url}: only http://, https:// and file:// URLs are fetched")
    limits = _Limits(max_bytes or MAX_BYTES, deadline_s() if deadline is None else deadline)
    part = dest.with_name(dest.name + ".part")
    failures: list[_Failed] = []
    try:
        out = open(part, "ab", buffering=0)  # unbuffered: its size on disk is what arrived
    except OSError as err:
        raise DownloadError(f"cannot write {part}: {err.strerror or err}; give a writable folder "
                            "(for the cache: point CNNZOO_CACHE at one)") from None
    with out:
        if not lock_file(out, wait=False):
            raise DownloadError(f"another process is downloading {part.name} into "
                                f"{part.parent}; wait for it to finish")
        if dest.is_file() and (check is None or check(dest) is None):
            part.unlink()  # another process finished it while we waited for the lock
            return dest
        if os.fstat(out.fileno()).st_size > limits.max_bytes:
            out.truncate(0)  # over the bound: not a prefix of this file, nothing to resume
        for url in urls:
            try:
                _transfer(url, out, part, progress, timeout, limits)
            except _Failed as err:
                failures.append(err)
                if limits.left() <= 0:
                    break  # the deadline is for the whole download, every URL
                continue
            why = check(part) if check is not None else None
            if why is None:
                if os.name == "nt":  # Windows renames no open file (and has no lock to keep)
                    out.close()
                replace_durably(part, dest)
                return dest
            out.truncate(0)  # refused: nothing of it is kept, not even to resume
            failures.append(_Failed(
                f"{url}: the downloaded file was refused: {why}. The file is corrupt or was "
                "tampered with (or the mirror holds another file under this name); it was "
                "deleted, nothing was kept in the cache"))
        if os.fstat(out.fileno()).st_size == 0:
            part.unlink(missing_ok=True)  # nothing to resume
    error = DownloadFailedError if failures and all(f.ran for f in failures) else DownloadError
    raise error(_message(failures, dest, hint))


def _message(failures: list[_Failed], dest: Path, hint: str) -> str:
    text = str(failures[0]) if len(failures) == 1 else (
        f"could not fetch a verified {dest.name}: " + "; ".join(str(f) for f in failures))
    return f"{text} {hint}" if hint and any(f.network for f in failures) else text


def _transfer(url: str, out: IO[bytes], part: Path, progress: Progress | None,
              timeout: float, limits: _Limits) -> None:
    have = os.fstat(out.fileno()).st_size
    try:
        if url.startswith("file://"):
            with _open_file(url, limits) as (src, total):
                if have > total:
                    have = 0
                src.seek(have)
                _copy(src, out, part, have, total, url, progress, limits)
            return
        resp, have = _open_http(url, have, min(timeout, max(limits.left(), 0.01)))
        with resp:
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None and length.isdigit() else None
            if total is not None and total > limits.max_bytes:
                out.truncate(0)
                raise _Failed(f"{url}: the server announces {total:,} bytes, more than the "
                              f"{limits.max_bytes:,} this file may have; refused before reading")
            _copy(resp, out, part, have, total, url, progress, limits)
    except urllib.error.HTTPError as err:
        raise _Failed(f"could not download {url}: HTTP {err.code} {err.reason}.", True) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        if limits.left() <= 0:
            raise limits.past(url, os.fstat(out.fileno()).st_size, part) from None
        reason = getattr(err, "reason", err)
        raise _Failed(f"could not download {url} ({reason}).", True) from None


def _open_http(url: str, have: int, timeout: float) -> tuple[http.client.HTTPResponse, int]:
    """The response for the bytes from `have` on, and where it starts (0 when the server
    ignores Range, or the `.part` is not a prefix it can extend: 416)."""
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:
            raise
        have, resp = 0, urllib.request.urlopen(url, timeout=timeout)
    if have and resp.status != 206:  # the server ignored Range: start over
        have = 0
    return resp, have


@contextmanager
def _open_file(url: str, limits: _Limits) -> Iterator[tuple[IO[bytes], int]]:
    """A file:// URL's file and its size; only a regular file within the bound is opened."""
    src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    st = os.stat(src)  # OSError (not there, no permission): reported like a network failure
    if not stat.S_ISREG(st.st_mode):
        raise _Failed(f"{url}: {src} is {_kind(st.st_mode)}, not a regular file; give the URL of "
                      "the file (or of the folder holding it, as the mirror)")
    if st.st_size > limits.max_bytes:
        raise _Failed(f"{url}: {src} has {st.st_size:,} bytes, more than the "
                      f"{limits.max_bytes:,} this file may have; refused")
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks on a FIFO
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the stat
            raise _Failed(f"{url}: {src} is not a regular file; refused")
        yield f, st.st_size


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(mode)), "not a file")


def _copy(resp: IO[bytes], out: IO[bytes], part: Path, have: int, total: int | None, url: str,
          progress: Progress | None, limits: _Limits) -> None:
    if not have:
        out.truncate(0)
    done = have
    if progress:
        progress(url, done, total, False)
    read = getattr(resp, "read1", resp.read)  # what has arrived: a trickle cannot block a chunk
    while True:
        try:
            chunk = read(_CHUNK)
        except (http.client.HTTPException, OSError) as err:  # a dropped connection
            if limits.left() <= 0:
                raise limits.past(url, done, part) from None
            if total is None:
                raise _Failed(f"{url}: the transfer stopped after {done:,} bytes ({err}); the "
                              "next run resumes it") from None
            break
        if not chunk:
            break
        done += len(chunk)
        if done > limits.max_bytes:
            out.truncate(0)
            raise _Failed(f"{url}: the server sent more than the {limits.max_bytes:,} bytes this "
                          "file may have; cut off, and the partial file was deleted")
        _write(out, chunk, part)
        if progress:
            progress(url, done, total, False)
        if limits.left() <= 0:
            raise limits.past(url, done, part)
    _write(out, None, part)
    if progress:
        progress(url, done, total, True)
    if total is not None and done < total:
        raise _Failed(f"{url}: the transfer stopped after {done:,} of {total:,} bytes; the "
                      f"partial file {part} is kept and the next run resumes it")


def _write(out: IO[bytes], chunk: bytes | None, part: Path) -> None:
    """Append `chunk` to the (unbuffered) `.part`, or with None sync it to disk; a write that
    fails (a full disk, a file-size limit) empties the `.part` and says so."""
    try:
        if chunk is None:
            os.fsync(out.fileno())
        view = memoryview(chunk or b"")
        while view:  # a raw write may take part of it (a nearly full disk)
            n = out.write(view)
            if not n:
                raise OSError(errno.ENOSPC, "nothing more could be written")
            view = view[n:]
    except OSError as err:
        try:
            out.truncate(0)  # give its space back (the next run starts again)
        except OSError:
            pass
        free = shutil.disk_usage(part.parent).free
        raise _Failed(f"could not write {part}: {err.strerror or err} ({free / 2**20:,.1f} MiB "
                      "free there); the partial file was deleted: free some space and run it "
                      "again", ran=True) from None


def stderr_progress() -> Progress:
    """'downloading URL' on stderr, then the MiB (and percent) so far on a terminal."""
    tty = sys.stderr.isatty()
    seen: dict[str, int] = {}  # url -> the last percent shown

    def show(url: str, done: int, total: int | None, final: bool) -> None:
        if url not in seen:
            seen[url] = -1
            print(f"downloading {url}", file=sys.stderr, flush=True)
        if not (tty or final):
            return
        step = done * 100 // max(total or 1, 1)
        if final or step != seen[url]:
            seen[url] = step
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            mb = f"{done / 2**20:.1f}" + (f"/{total / 2**20:.1f}" if total else "") + " MiB"
            print(f"\r  {mb}{pct}", end="\n" if final else "", file=sys.stderr, flush=True)

    return show
