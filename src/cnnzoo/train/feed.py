"""Step 2 of a training run: its data. The train and test splits, how images enter the model,
the run length in steps, and the batches: in-memory data moves to the device once and is
augmented there per batch; image folders stream through worker processes.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from ..data.datasets import (DataSpec, FolderData, TensorData, load_split, parse_spec, shard_indices,
                             tensor_batches)
from ..data.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, fit_input
from ..errors import InvalidArgumentError
from .distributed import DistInfo
from .plan import Plan
from .recipes import Recipe

if TYPE_CHECKING:
    from ..data.folder import FolderLoader

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def load_data(spec_str: str | None, recipe: Recipe) -> tuple[DataSpec, TensorData | FolderData,
                                                            TensorData | FolderData]:
    """(spec, train, test) of a --data spec; both splits non-empty with the same classes."""
    spec = parse_spec(spec_str)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    if len(train) == 0 or len(test) == 0:
        raise InvalidArgumentError(f"--data {spec}: the train or test split is empty")
    if len(train.classes) != len(test.classes):
        raise InvalidArgumentError(
            f"--data {spec}: train has {len(train.classes)} classes but test has {len(test.classes)}")
    if isinstance(train, TensorData) and recipe.limit_train:
        train = train.subset(recipe.limit_train)
    return spec, train, test


@dataclass
class RunData:
    spec: DataSpec
    train: TensorData | FolderData
    test: TensorData | FolderData
    prep: Preprocess
    steps_per_epoch: int
    epochs: int
    total_steps: int

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def load_run_data(plan: Plan, *, world: int, device: torch.device) -> RunData:
    """The plan's data and run length; raises on data or a batch size that cannot work."""
    recipe = plan.recipe
    spec, train, test = load_data(plan.data, recipe)
    if isinstance(train, TensorData):
        mean, std = train.stats()
        flat = [c for c, s in enumerate(std) if not s > 1e-6]  # NaN-proof
        if flat:
            raise InvalidArgumentError(
                f"--data {spec}: the training images are constant (zero variance in channel(s) "
                f"{', '.join(map(str, flat))}): nothing to learn from, and normalising them would divide by zero")
        prep = fit_input(plan.model_name, plan.input_size, train.shape, mean, std)
    else:
        prep = fit_input(plan.model_name, plan.input_size, None, IMAGENET_MEAN, IMAGENET_STD)
    if recipe.batch_size % (world * recipe.accum_steps):
        raise InvalidArgumentError(
            f"batch_size {recipe.batch_size} (the global batch) must be divisible by "
            f"world size x accum_steps = {world} x {recipe.accum_steps}")
    if recipe.sync_bn and world > 1 and device.type == "cpu":
        raise InvalidArgumentError("SyncBatchNorm needs CUDA (PyTorch has no CPU kernel for it); "
                                   "drop --sync-bn for CPU processes")
    steps_per_epoch = len(train) // recipe.batch_size
    if steps_per_epoch == 0:
        raise InvalidArgumentError(
            f"batch_size {recipe.batch_size} is larger than the training set ({len(train)} images)")
    if recipe.iterations is not None:
        total_steps = recipe.iterations
        epochs = math.ceil(total_steps / steps_per_epoch)
    else:
        epochs = recipe.epochs
        total_steps = epochs * steps_per_epoch
    return RunData(spec=spec, train=train, test=test, prep=prep, steps_per_epoch=steps_per_epoch,
                   epochs=epochs, total_steps=total_steps)


def _aug_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """A batch's augmentation seed from where it is in the run, so a resumed run repeats it."""
    h = hashlib.blake2b(f"{seed}/{epoch}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 62) - 1)


class Feed:
    """This rank's batches: each epoch's shard of the training set, and the test set."""

    def __init__(self, data: RunData, *, recipe: Recipe, seed: int, info: DistInfo,
                 device: torch.device) -> None:
        self.data, self.recipe, self.seed, self.info, self.device = data, recipe, seed, info, device
        # (x, step) -> training input and x -> test input, for in-memory data (folders: in workers)
        self.train_prep: Callable[[torch.Tensor, int], torch.Tensor] | None = None
        self.eval_prep: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.in_memory = isinstance(data.train, TensorData)
        if self.in_memory:
            self._train_dev, self._test_dev = data.train.to(device), data.test.to(device)
            self._pca = None
            if recipe.augment == "alexnet" and data.train.shape[0] == 3:
                from ..data.transforms import pixel_pca

                self._pca = pixel_pca(data.train.images)
            self.train_prep, self.eval_prep = self._augment, data.prep.eval_batch
        else:
            from ..data.transforms import folder_transform

            p = data.prep
            self._tf_train = folder_transform(recipe.augment, p.size, p.resize, p.mean, p.std, True)
            self._tf_eval = folder_transform("none", p.size, p.resize, p.mean, p.std, False)

    def _augment(self, x: torch.Tensor, step: int) -> torch.Tensor:
        g = torch.Generator(device=self.device)
        g.manual_seed(_aug_seed(self.seed, step // self.data.steps_per_epoch, step, self.info.rank))
        return self.data.prep.train_batch(x, self.recipe.augment, g, self._pca)

    def train_batches(self, epoch: int, offset: int) -> tuple[Batches, FolderLoader | None]:
        """Epoch `epoch`'s batches from its `offset`-th on, and the folder loader (it counts the
        images it skipped) or None for in-memory data."""
        info = self.info
        idx = shard_indices(len(self.data.train), self.recipe.batch_size, epoch, self.seed, True,
                            info.rank, info.world, True)
        if self.in_memory:
            return tensor_batches(self._train_dev, idx, offset), None
        from ..data.folder import FolderLoader

        loader = FolderLoader(self.data.train, self._tf_train, idx, worker_count(self.recipe.workers),
                              self.recipe.on_corrupt, self.device)
        return _plain_corrupt_errors(loader.iterate(offset)), loader

    def eval_batches(self) -> Batches:
        info, world = self.info, self.info.world
        if self.in_memory:
            idx = shard_indices(len(self._test_dev), 1000 * world, 0, self.seed, False, info.rank, world, False)
            return tensor_batches(self._test_dev, idx)
        from ..data.folder import FolderLoader

        idx = shard_indices(len(self.data.test), 256 * world, 0, self.seed, False, info.rank, world, False)
        return _plain_corrupt_errors(FolderLoader(self.data.test, self._tf_eval, idx, worker_count(self.recipe.workers),
                                                  self.recipe.on_corrupt, self.device).iterate())


def worker_count(wanted: int) -> int:
    """DataLoader worker processes: `wanted` (the recipe's), at most the cores this process may use."""
    return max(0, min(wanted, len(os.sched_getaffinity(0))))


def _plain_corrupt_errors(batches: Batches) -> Batches:
    """A worker's CorruptImageError arrives with the worker's traceback in its message: keep
    only its own last line (the file and the reason)."""
    from ..data.folder import CorruptImageError

    try:
        yield from batches
    except CorruptImageError as err:
        lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        raise CorruptImageError(last.split("CorruptImageError: ")[-1]) from None
