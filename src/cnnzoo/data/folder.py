"""Image folders through a multi-worker DataLoader, with corrupt-image handling.

Every image is decoded by data/images.load_image, so the pixel cap (MAX_PIXELS,
CNNZOO_MAX_PIXELS) is checked against the header before decoding. A file that cannot be decoded,
or is over the cap, is either fatal (on_error="fail": the error names the path) or
skipped (on_error="skip": the batch is one image shorter and the path is reported and counted).
Skipping happens in the workers; the collate function carries the skipped paths back to the
main process, so the count is exact with any number of workers. A pass over a split that reads
no image at all is refused (NoReadableImageError), rather than training or testing on nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from .. import devices
from ..errors import CnnzooError, InvalidArgumentError
from ..signals import leave_to_parent
from .datasets import FolderData
from .images import ImageError, load_image


class CorruptImageError(CnnzooError):
    pass


class NoReadableImageError(CorruptImageError):
    pass


class _Images(Dataset):
    def __init__(self, data: FolderData, transform, on_error: str):
        if on_error not in ("skip", "fail"):
            raise InvalidArgumentError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
        self.samples, self.transform, self.on_error = data.samples, transform, on_error

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        img = read_or_mark(path, lambda p: load_image(p).convert("RGB"), self.on_error)
        return img if isinstance(img, tuple) else (self.transform(img), label)


def read_or_mark(path: str, read: Callable[[str], Any], on_error: str) -> Any:
    """read(path), or, for an unreadable file (an ImageError: corrupt, not an image, over the
    pixel cap), a ("__corrupt__", path) marker (on_error "skip") or a CorruptImageError ("fail")."""
    try:
        return read(path)  # L -> RGB; over the pixel cap: refused
    except ImageError as err:
        if on_error == "fail":
            # what to do about it depends on the caller: FolderLoader.iterate appends its advice
            raise CorruptImageError(f"cannot read image {path} ({err})") from None
        return ("__corrupt__", path)


def _collate(items):
    bad = [it[1] for it in items if it[0] == "__corrupt__" if isinstance(it[0], str)]
    good = [it for it in items if not (isinstance(it[0], str) and it[0] == "__corrupt__")]
    if not good:
        return None, None, bad
    return torch.stack([g[0] for g in good]), torch.tensor([g[1] for g in good]), bad


class _ListSampler(torch.utils.data.Sampler):
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter([b.tolist() if isinstance(b, torch.Tensor) else b for b in self.batches])

    def __len__(self):
        return len(self.batches)


class FolderLoader:
    """Iterates (images, labels) batches; `skipped` lists the corrupt files met so far."""

    def __init__(self, data: FolderData, transform: Callable[[Any], torch.Tensor],
                 index_batches: Iterable[torch.Tensor], workers: int, on_error: str,
                 device: torch.device, advice: str = "remove it or train with --set on_corrupt=skip"):
        self.ds = _Images(data, transform, on_error)
        self.advice = advice  # ends the message of an unreadable image (on_error "fail")
        self.root = data.root
        self.index_batches = list(index_batches)
        self.workers, self.device = workers, device
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.index_batches)

    def iterate(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = DataLoader(self.ds, batch_sampler=_ListSampler(self._sampler_batches(start)),
                            num_workers=self.workers, collate_fn=self.collate,
                            pin_memory=devices.pin_memory(self.device),
                            persistent_workers=False, worker_init_fn=leave_to_parent)
        tried = read = 0
        try:
            for k, (x, y, bad) in enumerate(loader, start):
                self.skipped.extend(bad)
                tried += len(bad) + (0 if x is None else len(x))
                if x is None:
                    continue
                x, y = self._finish(x, y, k)  # the fast loader may drop files only the GPU found unreadable
                read += len(x)
                if len(x):
                    yield x, y
        except CorruptImageError as err:  # from a worker, its traceback is in the message
            raise CorruptImageError(f"{_worker_message(err)}; {self.advice}") from None
        except RuntimeError as err:  # or re-wrapped, by older PyTorch versions
            if "CorruptImageError" in str(err) or "cannot read image" in str(err):
                raise CorruptImageError(f"{_worker_message(err)}; {self.advice}") from None
            raise
        if tried and not read:
            raise NoReadableImageError(
                f"image folder {self.root}: none of the {tried} image files tried could be read "
                "(all corrupt, not images, or over the pixel limit); nothing to train or test on")

    # the hooks of the fast loader (data/fast_loader.py): what the sampler hands the workers,
    # how a batch is put together in a worker, and what the main process does to it
    collate = staticmethod(_collate)

    def _sampler_batches(self, start: int) -> list:
        return self.index_batches[start:]

    def _finish(self, x, y, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _worker_message(err: Exception) -> str:
    """A worker's exception arrives with the worker's traceback in its message: the last line."""
    lines = str(err).strip().splitlines() or [""]
    return lines[-1].split("CorruptImageError: ")[-1]
