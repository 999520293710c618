"""`--data` specs and the labelled image sets the trainer and transfer see.

The kinds a spec may name are described in data/kinds.py, one descriptor each.
Small sets (MNIST, CIFAR) become `TensorData`: uint8 images held in memory, moved once to the
training device, batched and augmented there. Image folders become `FolderData`: paths and
labels, read by a multi-worker DataLoader. Both are `LabelledImages`, the protocol every set of
labelled images follows (transfer's prepared sets too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterator, Protocol, Sequence, TypeVar, runtime_checkable

import numpy as np
import torch

from ..errors import InvalidArgumentError
from .kinds import KINDS, Files, kind_of, spec_path

S = TypeVar("S", bound="LabelledImages")


@runtime_checkable
class LabelledImages(Protocol):
    """A set of labelled images, whatever holds them: what training and transfer ask of data.

    `in_memory` says how its images travel: as tensors (batched, and augmented, where the model
    runs) or as files read by loader workers; `limit(n)` keeps n images with every class kept in
    proportion where the order is by class (image folders)."""

    classes: list[str]
    in_memory: ClassVar[bool]

    def __len__(self) -> int: ...

    @property
    def labels(self) -> torch.Tensor: ...  # int64 (N,)

    def select(self: S, index: torch.Tensor) -> S: ...

    def limit(self: S, n: int) -> S: ...


@dataclass(frozen=True)
class DataSpec:
    kind: str
    path: Path | None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_spec(spec: str | None) -> DataSpec:
    """A `--data` string checked against the registered kinds (data/kinds.py) and its PATH."""
    kind = kind_of(spec)
    if not kind.takes_path:
        return DataSpec(kind.name, None)
    return DataSpec(kind.name, spec_path(spec, kind))


@dataclass
class TensorData:
    """A whole split in memory: uint8 images (N, C, H, W) and int64 labels (N)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    in_memory: ClassVar[bool] = True

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def to(self, device: torch.device | str) -> TensorData:
        return TensorData(self.images.to(device), self.labels.to(device), self.classes)

    def stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the pixels in [0, 1] (the normalisation constants)."""
        x = self.images.permute(1, 0, 2, 3).reshape(self.images.shape[1], -1).double() / 255
        return x.mean(1).tolist(), x.std(1).tolist()

    def select(self, index: torch.Tensor) -> TensorData:
        return TensorData(self.images[index], self.labels[index], self.classes)

    def limit(self, n: int) -> TensorData:
        """The first n images: MNIST's and CIFAR's files store the classes mixed."""
        return TensorData(self.images[:n], self.labels[:n], self.classes)


@dataclass
class FolderData:
    root: Path
    classes: list[str]
    samples: list[tuple[str, int]]
    in_chans: int = 3
    extra: dict = field(default_factory=dict)
    in_memory: ClassVar[bool] = False

    def __len__(self) -> int:
        return len(self.samples)

    def select(self, index: torch.Tensor) -> FolderData:
        return FolderData(self.root, self.classes, [self.samples[i] for i in index.tolist()],
                          self.in_chans, dict(self.extra))

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([y for _, y in self.samples], dtype=torch.int64)

    def limit(self, n: int) -> FolderData:
        """n images drawn with a fixed seed, each class in proportion to its size: the files are
        sorted by class, so the first n would be the first classes only."""
        if n >= len(self):
            return self
        return self.select(stratified_sample(self.labels, n))


def tensor_data(images: np.ndarray, labels: np.ndarray, classes: list[str]) -> TensorData:
    if images.ndim == 3:
        images = images[:, None]
    # np.array copies: the IDX reader's arrays are read-only views of the file's bytes
    return TensorData(torch.from_numpy(np.array(images, dtype=np.uint8)),
                      torch.from_numpy(np.array(labels, dtype=np.int64)), classes)


def load_split(spec: DataSpec, split: str) -> LabelledImages:
    """The 'train' or 'test' split of a spec, read by its kind's reader (an image folder's
    'val' split too: see imagefolder.folder_layout)."""
    raw = KINDS[spec.kind].reader(spec.path, split)
    if isinstance(raw, Files):
        return FolderData(raw.root, raw.classes, raw.samples)
    return tensor_data(raw.images, raw.labels, raw.classes)


# -- validation split --------------------------------------------------------------------------
SPLIT_SEED = 20250  # fixed: every run (any --seed, any rank, a resumed one) holds out the same images


def val_count(val_split: float, n: int) -> int:
    """How many of `n` training images a `val_split` holds out: a fraction (0 < F < 1) or a
    count (an integer >= 1); 0 holds out none."""
    if val_split <= 0:
        return 0
    k = round(val_split * n) if val_split < 1 else int(val_split)
    if not 1 <= k < n:
        raise InvalidArgumentError(
            f"--val-split {val_split:g} holds out {k} of the {n} training images; it must leave at least "
            "one image on each side (a fraction 0 < F < 1 or a count 1 <= N < the training set)")
    return k


def stratified_split(labels: torch.Tensor, count: int, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) index tensors, sorted: `count` images held out, each class in proportion to
    its size (largest remainders), chosen at random with `seed`; every class keeps a training
    image. The same labels, count and seed always give the same split."""
    val = _draw(labels.cpu(), count, seed, keep_one=True)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[val] = False
    return mask.nonzero().flatten(), val


def stratified_sample(labels: torch.Tensor, count: int, seed: int = SPLIT_SEED) -> torch.Tensor:
    """Sorted indices of `count` images, each class in proportion to its size (largest
    remainders), chosen at random with `seed`: the same labels, count and seed, the same images."""
    return _draw(labels.cpu(), count, seed, keep_one=False)


def _draw(labels: torch.Tensor, count: int, seed: int, keep_one: bool) -> torch.Tensor:
    n, classes = len(labels), int(labels.max()) + 1 if len(labels) else 0
    sizes = torch.bincount(labels, minlength=classes).double()
    exact = sizes * count / max(n, 1)
    take = exact.floor().long()
    extra = count - int(take.sum())
    if extra > 0:  # largest remainders first, ties to the lower class
        order = sorted(range(classes), key=lambda c: (-(exact[c] - take[c]).item(), c))
        for c in order[:extra]:
            take[c] += 1
    take = torch.minimum(take, (sizes.long() - int(keep_one)).clamp_min(0))
    g = torch.Generator().manual_seed(seed)
    held = []
    for c in range(classes):
        members = (labels == c).nonzero().flatten()
        held.append(members[torch.randperm(len(members), generator=g)[: int(take[c])]])
    return torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.int64)


# -- batching -------------------------------------------------------------------------------
def shard_indices(n: int, global_batch: int, epoch: int, seed: int, shuffle: bool, rank: int,
                  world: int, drop_last: bool) -> torch.Tensor | list[torch.Tensor]:
    """This rank's sample indices for one epoch: for training (drop_last) a tensor
    (steps, global_batch // world), for evaluation a list of index tensors, the last shorter.

    Every rank draws the same permutation (same seed and epoch) and takes its own contiguous
    slice of each global batch, so the union over ranks of step k is exactly the global batch
    a single process would see at step k."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1000003 + epoch)
        perm = torch.randperm(n, generator=g)
    else:
        perm = torch.arange(n)
    per_rank = global_batch // world
    steps = n // global_batch if drop_last else math.ceil(n / global_batch)
    if drop_last:
        return perm[: steps * global_batch].view(steps, world, per_rank)[:, rank]
    # evaluation: every sample exactly once over all ranks (strided), last batch shorter
    mine = perm[rank::world]
    return [mine[i: i + per_rank] for i in range(0, len(mine), per_rank)]


def tensor_batches(data: TensorData, index_batches: torch.Tensor | Sequence[torch.Tensor],
                   start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    dev = data.images.device
    if isinstance(index_batches, torch.Tensor):
        # one copy per epoch: a per-step copy from pageable host memory would wait for the GPU
        index_batches = index_batches[start:].to(dev)
        start = 0
    for idx in list(index_batches)[start:]:
        idx = idx.to(dev, non_blocking=True)
        yield data.images[idx], data.labels[idx]
