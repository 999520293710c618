"""Step 2 of a training run: its data. The train, validation and test splits, how images enter the model,
the run length in steps, and the batches: in-memory data moves to the device once and is
augmented there per batch; image folders stream through worker processes.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from ..data.datasets import (
    SPLIT_SEED,
    DataSpec,
    FolderData,
    LabelledImages,
    load_split,
    parse_spec,
    shard_indices,
    stratified_split,
    tensor_batches,
    val_count,
)
from ..data.imagefolder import folder_layout
from ..data.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, fit_input
from ..errors import InvalidArgumentError
from .distributed import DistInfo
from .plan import Plan
from .recipes import Recipe

if TYPE_CHECKING:
    from ..data.folder import FolderLoader

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def load_data(spec_str: str | None, recipe: Recipe, saved_split: dict | None = None
              ) -> tuple[DataSpec, LabelledImages, LabelledImages | None, LabelledImages, dict]:
    """(spec, train, validation or None, test, split record) of a --data spec: every split
    non-empty, with the same classes. The record says where validation came from; a resumed
    run passes its own (`saved_split`) and gets exactly the same images back."""
    spec = parse_spec(spec_str)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    if len(train) == 0 or len(test) == 0:
        raise InvalidArgumentError(f"--data {spec}: the train or test split is empty")
    if len(train.classes) != len(test.classes):
        raise InvalidArgumentError(
            f"--data {spec}: train has {len(train.classes)} classes but test has {len(test.classes)}")
    train, val, split = _validation(spec, train, test, recipe, saved_split)
    if recipe.limit_train:  # after the split: it never moves the held-out images
        train = train.limit(recipe.limit_train)
    return spec, train, val, test, split


def _validation(spec: DataSpec, train: LabelledImages, test: LabelledImages, recipe: Recipe,
                saved: dict | None) -> tuple[LabelledImages, LabelledImages | None, dict]:
    """The validation split: none (val_split 0), an image folder's val/, or images held out of
    the training set (stratified, fixed seed), recorded so that a resume reuses them."""
    if recipe.val_split == 0:
        return train, None, {"source": "none", "note": "no validation split (--val-split 0): no epoch is "
                             "selected on held-out data, the last one is kept and the test set is scored once"}
    if spec.kind == "folder":
        val_dir, test_dir = folder_layout(spec.path)
        if val_dir is not None:
            note = ("validation: val/; test: test/" if test_dir == "test" else
                    "validation and test are both val/ (no test/ folder, ImageNet's layout, as the papers "
                    "did): the test error is then not independent of the selection")
            return train, (test if test_dir == "val" else load_split(spec, "val")), {"source": "folder", "note": note}
    labels = train.labels
    if saved is not None and saved.get("source") == "held out":
        val_index = saved["val_index"].long()
        if saved.get("train_total") != len(train) or (len(val_index) and int(val_index.max()) >= len(train)):
            raise InvalidArgumentError(
                f"--data {spec}: the training set has {len(train)} images, the run held out validation "
                f"images of a set of {saved.get('train_total')}: the data changed since the run started")
        keep = torch.ones(len(train), dtype=torch.bool)
        keep[val_index] = False
        train_index = keep.nonzero().flatten()
    else:
        train_index, val_index = stratified_split(labels, val_count(recipe.val_split, len(train)))
    note = (f"validation: {len(val_index)} images held out of the {len(train)} training images "
            f"(val_split {recipe.val_split:g}, stratified by class, fixed seed {SPLIT_SEED}); test: "
            f"{len(test)} images, scored once at the end")
    record = {"source": "held out", "val_index": val_index, "train_total": len(train), "seed": SPLIT_SEED,
              "note": note}
    return train.select(train_index), train.select(val_index), record


@dataclass
class RunData:
    spec: DataSpec
    train: LabelledImages
    test: LabelledImages
    prep: Preprocess
    steps_per_epoch: int
    epochs: int
    total_steps: int
    val: LabelledImages | None = None  # None: no validation (--val-split 0)
    split: dict = field(default_factory=dict)  # where validation came from (saved in the checkpoint)

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def load_run_data(plan: Plan, *, world: int, device: torch.device) -> RunData:
    """The plan's data and run length; raises on data or a batch size that cannot work."""
    recipe = plan.recipe
    saved_split = (plan.saved_state or {}).get("split")
    spec, train, val, test, split = load_data(plan.data, recipe, saved_split)
    if recipe.schedule == "plateau" and val is None:
        raise InvalidArgumentError(
            f"recipe {recipe.name}: the plateau schedule lowers the learning rate when the validation "
            "accuracy stops improving, and --val-split 0 leaves no validation set (reading the test set "
            "would tune on it); give --val-split F or choose another schedule (--set schedule=multistep)")
    if train.in_memory:
        mean, std = train.stats()
        flat = [c for c, s in enumerate(std) if not s > 1e-6]  # NaN-proof
        if flat:
            raise InvalidArgumentError(
                f"--data {spec}: the training images are constant (zero variance in channel(s) "
                f"{', '.join(map(str, flat))}): nothing to learn from, and normalising them would divide by zero")
        if plan.pretrained_stats:
            mean, std = _published_stats(plan.model_name, plan.pretrained_stats, train.shape[0])
        prep = fit_input(plan.model_name, plan.input_size, train.shape, mean, std)
    else:
        mean, std = ((IMAGENET_MEAN, IMAGENET_STD) if not plan.pretrained_stats else
                     _published_stats(plan.model_name, plan.pretrained_stats, 3))
        prep = fit_input(plan.model_name, plan.input_size, None, mean, std)
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
                   epochs=epochs, total_steps=total_steps, val=val, split=split)


def _published_stats(model: str, pretrained: bool | str, chans: int) -> tuple[list[float], list[float]]:
    """The mean/std published weights were trained with: fine-tuning feeds them what they know,
    not the new data's own statistics."""
    from ..hub import pretrained_cfg, resolve

    pp = pretrained_cfg(resolve(model, pretrained), chans, 0)["preprocess"]
    return pp["mean"], pp["std"]


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
        self.in_memory = data.train.in_memory
        if self.in_memory:
            self._train_dev, self._test_dev = data.train.to(device), data.test.to(device)
            self._val_dev = data.val.to(device) if data.val is not None else None
            self._pca = None
            if recipe.augment == "alexnet" and data.train.shape[0] == 3:
                from ..data.transforms import pixel_pca

                self._pca = pixel_pca(data.train.images)
            self.train_prep, self.eval_prep = self._augment, data.prep.eval_batch
        else:
            from ..data.fast_loader import choose_decoder
            from ..data.transforms import folder_transform

            p = data.prep
            self._tf_train = folder_transform(recipe.augment, p.size, p.resize, p.mean, p.std, True)
            self._tf_eval = folder_transform("none", p.size, p.resize, p.mean, p.std, False)
            # the loader of image folders: None = PIL in workers, else the fast path's decoder
            self._decode = choose_decoder(recipe.loader, recipe.augment, device)
            self._eval_decode = choose_decoder(recipe.loader, "none", device)

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
        if self._decode is not None:
            spe = self.data.steps_per_epoch
            seeds = [_aug_seed(self.seed, epoch, epoch * spe + k, info.rank) for k in range(len(idx))]
            loader = self._fast(self.data.train, self.recipe.augment, idx, seeds, self._decode)
            return loader.iterate(offset), loader
        from ..data.folder import FolderLoader

        loader = FolderLoader(self.data.train, self._tf_train, idx, worker_count(self.recipe.workers),
                              self.recipe.on_corrupt, self.device)
        return loader.iterate(offset), loader

    def _fast(self, data: FolderData, kind: str, idx: list[torch.Tensor], seeds: list[int],
              decode: str) -> FolderLoader:
        from ..data.fast_loader import FastFolderLoader, FastSpec

        p = self.data.prep
        spec = FastSpec(kind, tuple(p.size), p.resize, tuple(p.mean), tuple(p.std))
        return FastFolderLoader(data, spec, idx, seeds, worker_count(self.recipe.workers),
                                self.recipe.on_corrupt, self.device, decode)

    def eval_batches(self, split: str = "val") -> Batches:
        """The batches of the validation ('val') or the test ('test') split."""
        info, world = self.info, self.info.world
        if split not in ("val", "test") or (split == "val" and self.data.val is None):
            raise ValueError(f"no {split!r} split in this run")
        if self.in_memory:
            dev = self._val_dev if split == "val" else self._test_dev
            idx = shard_indices(len(dev), 1000 * world, 0, self.seed, False, info.rank, world, False)
            return tensor_batches(dev, idx)
        from ..data.folder import FolderLoader

        held = self.data.val if split == "val" else self.data.test
        idx = shard_indices(len(held), 256 * world, 0, self.seed, False, info.rank, world, False)
        if self._eval_decode is not None:
            return self._fast(held, "none", idx, [0] * len(idx), self._eval_decode).iterate()
        return FolderLoader(held, self._tf_eval, idx, worker_count(self.recipe.workers),
                            self.recipe.on_corrupt, self.device).iterate()


def worker_count(wanted: int) -> int:
    """DataLoader worker processes: `wanted` (the recipe's), at most the cores this process may use."""
    return max(0, min(wanted, len(os.sched_getaffinity(0))))
