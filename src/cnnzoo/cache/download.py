"""The one download core: a file from a list of URLs (http://, https://, file://; the first that
delivers a verified file wins) to its final path. Weights (`cnnzoo.hub`) and data sets
(`cnnzoo.data.download`) both fetch through `download`.

- **Resume.** The bytes go to `<dest>.part`; an interrupted transfer leaves only that `.part`,
  which nothing trusts, and the next attempt asks for the rest (HTTP Range; a server that
  ignores Range, or answers 416, is read again from zero).
- **Verify.** Only a complete file that passes the caller's check (`digest_check` for a
  SHA-256, or any function saying why a file is wrong) is renamed to `<dest>`
  (`files.replace_durably`); a refused file is emptied and the next URL tried; nothing is kept.
- **Lock.** The `.part` is locked while it is written, so a second process asking for the same
  file is told to wait instead of interleaving its bytes.
- **Progress.** A callback `(url, bytes so far, total or None, finished)`; `stderr_progress`
  is the one the command line uses.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Callable, Iterable, Optional

from ..files import replace_durably
from . import CacheError, lock_file

Check = Callable[[Path], Optional[str]]  # None when the file is right, else why not
Progress = Callable[[str, int, Optional[int], bool], None]  # url, done, total, finished
SCHEMES = ("http://", "https://", "file://")
_CHUNK = 1 << 20


class DownloadError(CacheError):
    """A file could not be fetched from any of its URLs, or failed its check (exit code 2)."""


class _Failed(Exception):
    """One URL's failure; `network` when the hint about working offline applies."""

    def __init__(self, message: str, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


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
             progress: Progress | None = None, timeout: float = 30.0, hint: str = "") -> Path:
    """Fetch `dest` from the first of `urls` that delivers a file passing `check`; `dest`'s
    folder must exist. `hint` (how to work offline) ends the message of a network failure."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    for url in urls:
        if not url.startswith(SCHEMES):
            raise DownloadError(f"{url}: only http://, https:// and file:// URLs are fetched")
    part = dest.with_name(dest.name + ".part")
    failures: list[_Failed] = []
    with open(part, "ab") as out:
        if not lock_file(out, wait=False):
            raise DownloadError(f"another process is downloading {part.name} into "
                                f"{part.parent}; wait for it to finish")
        if dest.is_file() and (check is None or check(dest) is None):
            part.unlink()  # another process finished it while we waited for the lock
            return dest
        for url in urls:
            try:
                _transfer(url, out, part, progress, timeout)
            except _Failed as err:
                failures.append(err)
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
    raise DownloadError(_message(failures, dest, hint))


def _message(failures: list[_Failed], dest: Path, hint: str) -> str:
    text = str(failures[0]) if len(failures) == 1 else (
        f"could not fetch a verified {dest.name}: " + "; ".join(str(f) for f in failures))
    return f"{text} {hint}" if hint and any(f.network for f in failures) else text


def _transfer(url: str, out: IO[bytes], part: Path, progress: Progress | None,
              timeout: float) -> None:
    have = os.fstat(out.fileno()).st_size
    try:
        if url.startswith("file://"):
            src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
            total = src.stat().st_size
            if have > total:
                have = 0
            with open(src, "rb") as resp:
                resp.seek(have)
                _copy(resp, out, part, have, total, url, progress)
            return
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:  # 416: the .part is not a prefix we can extend
                raise
            have, resp = 0, urllib.request.urlopen(url, timeout=timeout)
        with resp:
            if have and resp.status != 206:  # the server ignored Range: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            _copy(resp, out, part, have, total, url, progress)
    except urllib.error.HTTPError as err:
        raise _Failed(f"could not download {url}: HTTP {err.code} {err.reason}.", True) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise _Failed(f"could not download {url} ({reason}).", True) from None


def _copy(resp: IO[bytes], out: IO[bytes], part: Path, have: int, total: int | None, url: str,
          progress: Progress | None) -> None:
    if not have:
        out.truncate(0)
    done = have
    if progress:
        progress(url, done, total, False)
    try:
        for chunk in iter(lambda: resp.read(_CHUNK), b""):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(url, done, total, False)
    except (http.client.HTTPException, OSError) as err:  # a dropped connection
        if total is None:
            raise _Failed(f"{url}: the transfer stopped after {done:,} bytes ({err}); the "
                          "next run resumes it") from None
    out.flush()
    os.fsync(out.fileno())
    if progress:
        progress(url, done, total, True)
    if total is not None and done < total:
        raise _Failed(f"{url}: the transfer stopped after {done:,} of {total:,} bytes; the "
                      f"partial file {part} is kept and the next run resumes it")


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
