"""Where cnnzoo keeps what it fetches or builds once: one root, one folder per kind.

The root is $CNNZOO_CACHE (a leading ~ expanded), else $XDG_CACHE_HOME/cnnzoo (or
%LOCALAPPDATA%/cnnzoo on Windows), else ~/.cache/cnnzoo. Under it, one folder per kind:

- `weights/`: published weights files under their publishers' names (`cnnzoo.hub`);
- `datasets/`: downloaded data sets, one folder each (`cnnzoo data fetch`, `cnnzoo.data.fetch`);
- `playground/`: the web app's LeNet-5, trained on first use (`cnnzoo.serve`).

The download core that fills it is `cnnzoo.cache.download`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from ..errors import CnnzooError, InvalidArgumentError

CACHE_ENV = "CNNZOO_CACHE"
KINDS = ("weights", "datasets", "playground")


class CacheError(CnnzooError):
    """A cache folder cannot be made, or a file cannot be fetched into it (exit code 2)."""


def cache_root() -> Path:
    """The folder every kind of cached file lives under (see the module's docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "cnnzoo"


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cached file (one of KINDS); not created here."""
    if kind not in KINDS:
        raise InvalidArgumentError(f"no cache kind {kind!r}; the kinds are {', '.join(KINDS)}")
    return cache_root() / kind


def make_dir(folder: Path, what: str) -> Path:
    """Create `folder` (and its parents), or say why not; `what` names it ("the weights cache")."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        root, here = cache_root().absolute(), folder.absolute()
        advice = f"; point {CACHE_ENV} at a writable folder" if root in (here, *here.parents) else ""
        raise CacheError(f"{what} {folder} cannot be created ({err.strerror or err}){advice}") from None
    return folder


def lock_file(f: IO[Any], wait: bool) -> bool:
    """Take an exclusive advisory lock on the open file `f`: True once held, False when another
    process holds it and `wait` is False. The lock dies with its process, so a killed download or
    training never blocks the next run. Where there are no advisory locks (Windows) it is a
    no-op: the checks after a download, and the thread locks inside one process, still guard."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True
