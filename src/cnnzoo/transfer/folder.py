"""Image folders for transfer learning, streamed: `features`, `linear-probe` and `finetune` on
a folder decode its images batch by batch through the folder loader (cnnzoo.data.folder, worker
processes), with the model's preprocessing (a pretrained model's own: resize, crop, mean, std),
instead of holding the whole set in memory as tensors. Only paths and labels are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Iterable, Iterator

import torch

from ..data.datasets import FolderData
from ..data.folder import FolderLoader
from ..data.preprocess import Preprocess


def _workers() -> int:
    # decoding is the cost; leave one core to the model (CNNZOO_WORKERS overrides)
    return int(os.environ.get("CNNZOO_WORKERS", max(0, min(4, (os.cpu_count() or 1) - 1))))


@dataclass
class FolderSet:
    """Labelled image files, decoded and preprocessed only when a batch is asked for.

    `y` holds the (renumbered) labels in file order; every image must be readable (a corrupt
    file stops the run naming it: a silently skipped file would shift features and labels).
    `LabelledImages` (data/datasets.py), streamed; core.ImageSet is its in-memory twin."""

    data: FolderData
    preprocess: Preprocess
    y: torch.Tensor
    classes: list[str]
    in_memory: ClassVar[bool] = False

    def __len__(self) -> int:
        return len(self.y)

    @property
    def labels(self) -> torch.Tensor:
        return self.y

    def select(self, index: torch.Tensor) -> FolderSet:
        return FolderSet(self.data.select(index), self.preprocess, self.y[index], self.classes)

    def limit(self, n: int) -> FolderSet:
        """The first n files (already a per-class selection, in file order)."""
        return self.select(torch.arange(min(n, len(self))))

    def batches(self, index_batches: Iterable[torch.Tensor],
                device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) for each batch of indices, in that order."""
        relabelled = FolderData(self.data.root, self.data.classes,
                                [(p, int(t)) for (p, _), t in zip(self.data.samples, self.y)],
                                self.data.in_chans, dict(self.data.extra))
        loader = FolderLoader(relabelled, self.preprocess.prepare_image, list(index_batches),
                              workers=_workers(), on_error="fail", device=torch.device(device),
                              advice="remove it (features and labels are kept in step, so transfer "
                                     "reads every image)")
        yield from loader.iterate()

    @property
    def x(self) -> torch.Tensor:
        """All images as one tensor, for callers that need it in memory (e.g. the top-9 view)."""
        return torch.cat([x for x, _ in self.batches(torch.arange(len(self)).split(256))])


def folder_set(data: FolderData, idx: torch.Tensor, pp: Preprocess, y: torch.Tensor,
               classes: list[str]) -> FolderSet:
    """The selected files `idx` of `data` with labels `y` (already renumbered)."""
    return FolderSet(data.select(idx), pp, y.long(), classes)
