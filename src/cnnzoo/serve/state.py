"""What the web app reads from disk, and the one piece of shared memory it keeps.

- `safe_run_path`: a run folder or file under --runs, refusing `..`, absolute paths and
  symlinks that lead out of the folder.
- `BoundedCache`: the app's caches (loaded models, analysed reports): least recently used
  out beyond a fixed number of entries, each value computed once and outside the lock; a
  restart loses nothing, it only recomputes. `ModelCache`: loaded models, keyed by file and
  modification time.
- `playground_file`: the LeNet-5 of the playground, trained by cnnzoo itself on the embedded
  MNIST subset on first use and kept in the cache's `playground/` folder (`cnnzoo.cache`),
  guarded by a thread lock and a file lock so two servers never train it twice at once.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Generic, Hashable, TypeVar

from torch import nn

from ..cache import cache_dir, lock_file, make_dir
from ..errors import CnnzooError, InvalidArgumentError
from ..runfolder import MODEL_FILE, STATE_FILE

PLAYGROUND_DIR = "lenet5-playground"
# Quick recipe: 2 epochs over 4,000 of the embedded digits (~95% on its test split).
PLAYGROUND_TRAINING: dict[str, Any] = {"epochs": 2, "overrides": {"limit_train": 4000}}


class NotFoundError(CnnzooError, LookupError):
    """A run, file or layer that does not exist (HTTP 404)."""


class ForbiddenPathError(CnnzooError, PermissionError):
    """A path that leads out of --runs (HTTP 403)."""


def safe_run_path(runs: Path, rel: str) -> Path:
    """`runs/rel`, only if it stays inside `runs` once symlinks are resolved."""
    if not rel or "\x00" in rel:
        raise InvalidArgumentError("empty path")
    parts = rel.replace("\\", "/").split("/")
    if rel.startswith(("/", "~")) or os.path.isabs(rel) or ".." in parts or ":" in parts[0]:
        raise ForbiddenPathError(f"{rel!r}: only paths inside the runs folder are served")
    root = runs.resolve()
    path = (root / rel).resolve()
    if path != root and root not in path.parents:
        raise ForbiddenPathError(f"{rel!r} leads out of the runs folder (a symlink?)")
    if not path.exists():
        raise NotFoundError(f"no {rel!r} in the runs folder")
    return path


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Pending:
    """One computation in flight: the threads asking for the same key wait on it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class BoundedCache(Generic[K, V]):
    """A least-recently-used cache of at most `size` values, each computed once: the lock
    guards only the bookkeeping, so a slow computation (a big model) never blocks requests for
    other keys, and concurrent requests for the same key wait for the one computation (and
    share its value or its error; errors are not cached)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise InvalidArgumentError(f"a cache holds at least 1 entry, got {size}")
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[K, V] = OrderedDict()
        self._pending: dict[K, _Pending] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            waiting = self._pending.get(key)
            if waiting is None:
                mine = self._pending[key] = _Pending()
        if waiting is not None:  # another thread computes it: share its value or error
            waiting.done.wait()
            if waiting.error is not None:
                raise waiting.error
            return waiting.value
        try:
            mine.value = compute()
        except BaseException as err:
            mine.error = err
            raise
        finally:
            with self._lock:
                del self._pending[key]
                if mine.error is None:
                    self._items[key] = mine.value
                    while len(self._items) > self.size:
                        self._items.popitem(last=False)
            mine.done.set()
        return mine.value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class ModelCache:
    """Loaded models, at most `size`, keyed by (file, mtime): concurrent requests share one
    instance and never see a half-loaded model."""

    def __init__(self, size: int = 4) -> None:
        self._cache: BoundedCache[tuple[str, float], tuple[nn.Module, dict]] = BoundedCache(size)

    def get(self, path: Path, loader: Callable[[Path], tuple[nn.Module, dict]]
            ) -> tuple[nn.Module, dict[str, Any]]:
        def load() -> tuple[nn.Module, dict]:
            model, record = loader(path)
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            return model, record
        return self._cache.get((str(path), path.stat().st_mtime), load)

    def __len__(self) -> int:
        return len(self._cache)


_TRAIN_LOCK = threading.Lock()


def playground_file(cache: Path | None = None) -> Path:
    """The playground LeNet-5's model file; trained now if it is not in the cache yet.
    `cache`: the folder it is kept in (default: the cache's `playground/`)."""
    root = cache or cache_dir("playground")
    final = root / PLAYGROUND_DIR / MODEL_FILE
    if final.is_file():
        return final
    with _TRAIN_LOCK:
        make_dir(root, "the playground cache")
        with open(root / f"{PLAYGROUND_DIR}.lock", "a+") as lock:
            lock_file(lock, wait=True)
            if not final.is_file():  # another thread or process may have finished meanwhile
                _train_playground(root)
    return final


def _train_playground(root: Path) -> None:
    from ..train import fit

    tmp = root / f"{PLAYGROUND_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    fit("lenet5", data="embedded", out=tmp, seed=0, **PLAYGROUND_TRAINING)
    (tmp / STATE_FILE).unlink(missing_ok=True)  # keep the model file only
    dest = root / PLAYGROUND_DIR
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
