"""Unpack a verified tar archive safely into `<folder>/<data folder>`.

The archive's checksum was verified before this runs, but the checks here do not lean on it
(a mirror, a publisher's mistake, a test): every member is checked before it is written.

- Only regular files and folders: a symbolic link, hard link, device, FIFO or any other member
  is refused (the publishers' archives hold none), so nothing written can point out of the target.
- Names: no absolute name, no `..`, no drive letter or backslash trick; each member's path,
  resolved, stays inside the temporary folder.
- Bounds: at most `max_bytes` in all (the members' declared sizes, which tarfile enforces) and
  `max_members` members, so a hostile archive cannot fill the disk.
- Atomic: members go to a temporary folder beside the target (`.unpacking-*`); only a complete
  unpack has its data folder renamed into place. A refused archive or a failed write (a full
  disk) removes the temporary folder: no half folder is left.
tarfile's own `filter="data"` runs on every member too, as a second guard.
"""

from __future__ import annotations

import errno
import gzip
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from ..cache import CacheError
from ..errors import JobFailedError


class UnsafeArchiveError(CacheError):
    """An archive with a member that must not be unpacked (exit code 2)."""


class UnpackFailedError(CacheError, JobFailedError):
    """Unpacking ran and failed: a write failed, e.g. the disk is full (exit code 1)."""

    exit_code = 1


def unpack(archive: Path, folder: Path, data_folder: str, max_bytes: int, max_members: int,
           progress: bool = False) -> Path:
    """Unpack `archive` and move its `data_folder` to `folder/data_folder` (replacing what was
    there); returns that path. Raises UnsafeArchiveError (nothing written stays) or
    UnpackFailedError (a failed write; nothing written stays)."""
    tmp = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder))
    try:
        _extract(archive, tmp, max_bytes, max_members)
        src = tmp / data_folder
        if not src.is_dir():
            raise UnsafeArchiveError(f"{archive.name} holds no {data_folder}/ folder: it is not the "
                                     "published archive")
        dest = folder / data_folder
        if dest.exists():  # an older, unverified copy: replaced whole
            old = tmp / ".old"
            os.rename(dest, old)
        os.rename(src, dest)
        return dest
    except OSError as err:
        free = shutil.disk_usage(folder).free
        full = " (the disk is full)" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise UnpackFailedError(
            f"could not unpack {archive.name} into {folder}: {err.strerror or err}{full}, "
            f"{free / 2**20:,.1f} MiB free; nothing unpacked was kept (the verified archive "
            f"{archive} stays): free some space and fetch again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract(archive: Path, tmp: Path, max_bytes: int, max_members: int) -> None:
    total = count = 0
    root = tmp.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # streamed: each member is checked, then written
                count += 1
                if count > max_members:
                    raise UnsafeArchiveError(f"{archive.name} has more than {max_members:,} "
                                             "members, more than this data set has; refused")
                _check_member(archive, member, root)
                total += member.size if member.isreg() else 0
                if total > max_bytes:
                    raise UnsafeArchiveError(
                        f"{archive.name} unpacks to more than {max_bytes:,} bytes, more than this "
                        "data set has; refused, nothing unpacked was kept")
                tar.extract(member, tmp, set_attrs=False, filter="data")
    except (tarfile.TarError, EOFError, UnicodeError, gzip.BadGzipFile, zlib.error, lzma.LZMAError) as err:
        msg = str(err)
        raise UnsafeArchiveError(f"{archive.name} is not a readable tar archive ({msg}); "
                                 "nothing unpacked was kept") from None


def _check_member(archive: Path, member: tarfile.TarInfo, root: Path) -> None:
    name = member.name
    why = None
    if not (member.isreg() or member.isdir()):
        kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                else "a device" if member.isdev() else "a FIFO" if member.isfifo()
                else "not a file or folder")
        why = f"is {kind}" + (f" (to {member.linkname!r})" if member.linkname else "")
    elif not name or "\\" in name or "\0" in name or name.startswith("/") or PurePosixPath(name).is_absolute() \
            or ":" in PurePosixPath(name).parts[0]:
        why = "has an absolute name"
    elif ".." in PurePosixPath(name).parts:
        why = "climbs out of the folder (..)"
    elif not (root / name).resolve().is_relative_to(root):
        why = "resolves outside the folder"
    if why:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} {why}; the archive is refused "
                                 "and nothing unpacked was kept")
