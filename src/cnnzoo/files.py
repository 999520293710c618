"""The one writer: atomic file writes that fail clearly. A crash leaves either the old file or
the new one, never half of one; a full disk, a quota, a read-only file system or a folder you may
not write to is an OutputWriteError (exit 1) that names the file and the free space left, with
nothing half-written left behind.

The ground floor: every other module that writes a file goes through here (`atomic_path`,
`atomic_write_bytes`, `atomic_write_text`, `save_figure`). Writers that serialise in C++ and
abort the process on a failed write (torch.jit.save) serialise to memory first and write the
bytes here.

A temporary is named `.NAME.HOST-PID.RANDOM.tmp` beside its target: a process killed during a
save (kill -9) leaves one, which the next write into the same folder removes once its process
is gone.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import InvalidArgumentError, OutputWriteError

_HOST = re.sub(r"[^A-Za-z0-9_-]", "", socket.gethostname())[:20] or "host"
_TEMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")
STALE_AFTER_S = 60  # a dead process's temporary older than this is removed
FORGOTTEN_AFTER_S = 24 * 3600  # ... and anyone's (another host's, a reused pid's) older than this
# a path that can never be written, whatever the disk: bad input (exit 2), not a failed job
_BAD_PATH = {errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.EEXIST}


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success fsyncs it and renames it over `path`.

    Any write error (OSError, safetensors' SafetensorError) inside the block or in the rename is
    raised as an OutputWriteError naming `path` and the free space; the temporary is removed and
    `path` keeps its old content. The final file gets the mode a plain open() would give it: an
    existing file's mode is kept, a new one gets 0666 & ~umask (mkstemp's temporary is 0600)."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        tmp_path = _new_temporary(path)
        yield tmp_path
        os.chmod(tmp_path, _final_mode(path))
        replace_durably(tmp_path, path)
    except Exception as err:
        failure = write_failure(path, err)
        if failure is None:
            raise
        raise failure from None
    finally:
        if tmp_path is not None:
            try:
                tmp_path.unlink(missing_ok=True)
            except OSError:
                pass


def temporary_path(path: str | os.PathLike) -> Path:
    """A new empty file beside `path` named as this writer's temporaries (removed by a later
    write once this process is gone), for a caller that renames it over `path` itself."""
    try:
        return _new_temporary(Path(path))
    except OSError as err:
        raise write_failure(path, err) from None


def _new_temporary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:120]}.{_HOST}-{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_failure(path: str | os.PathLike, err: BaseException) -> OutputWriteError | InvalidArgumentError | None:
    """The clear error for `err` raised while writing `path`, or None when `err` is no I/O error."""
    code = _errno_of(err)
    if code is None:
        return None
    path = Path(path)
    reason = describe_errno(code)
    if code in _BAD_PATH:
        if code in (errno.EEXIST, errno.ENOTDIR):  # from mkdir -p
            reason += ": a file stands where a folder belongs"
        bad = InvalidArgumentError(f"cannot write {path}: {reason}; choose another path")
        bad.path, bad.reason, bad.errno = path, reason, code
        return bad
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        todo = "free some space there or write elsewhere"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        todo = "write elsewhere, or make the folder writable"
    else:
        todo = "check the file system, or write elsewhere"
    error = OutputWriteError(f"could not write {path}: {reason}, {free_space(path)} free on its "
                             f"file system; nothing was written ({todo})")
    error.path, error.reason, error.errno = path, reason, code
    return error


def _errno_of(err: BaseException) -> int | None:
    if isinstance(err, OSError):
        return err.errno if err.errno is not None else errno.EIO
    if type(err).__name__ == "SafetensorError":  # its Rust I/O error, as text: "... (os error 28)"
        found = re.search(r"os error (\d+)", str(err))
        return int(found.group(1)) if found else (errno.EIO if "I/O error" in str(err) else None)
    return None


def describe_errno(code: int) -> str:
    """'No space left on device (ENOSPC)'."""
    name = errno.errorcode.get(code, "")
    return os.strerror(code) + (f" ({name})" if name else "")


def free_space(path: str | os.PathLike) -> str:
    """How much the file system that holds `path` (or its nearest existing folder) has left."""
    here = Path(path)
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        return human_bytes(shutil.disk_usage(here).free)
    except OSError:
        return "an unknown amount"


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove this writer's temporaries in `folder` left by processes that died while saving
    (kill -9): this host's whose process is gone, and anyone's a day old. Returns them."""
    removed, now = [], time.time()
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and e.name.endswith(".tmp")]
    except OSError:
        return removed
    for entry in entries:
        found = _TEMP.match(entry.name)
        if found is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        mine = found["host"] == _HOST
        dead = mine and int(found["pid"]) != os.getpid() and not _alive(int(found["pid"]))
        if (dead and age > STALE_AFTER_S) or age > FORGOTTEN_AFTER_S:
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def replace_durably(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Rename a complete file written beside `dest` (a temporary, a download's `.part`) over
    `dest`, with its bytes and the rename on disk first: after a crash `dest` is old or new."""
    with open(src, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())
    os.replace(src, dest)
    try:  # make the rename itself durable
        dfd = os.open(Path(dest).parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _final_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux >= 4.7 reports it without changing it (os.umask would, briefly, for all threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_figure(fig: Any, path: str | os.PathLike, **savefig: Any) -> Path:
    """A matplotlib figure written through the one writer (the format follows `path`'s suffix
    unless `savefig` names one)."""
    path = Path(path)
    savefig.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig)
    return path


def check_readable(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be opened for reading ('Permission denied (EACCES)'), or None if it can.
    Some readers (safetensors) report any failed open as 'No such file or directory'."""
    try:
        with open(path, "rb"):
            return None
    except OSError as err:
        return describe_errno(err.errno) if err.errno else str(err)
