"""`evaluate_file`: a saved model file scored on a test split (`cnnzoo eval`), centre view or
the papers' 10-crop testing, with per-class accuracy and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from ..bounds import check
from ..data.datasets import LabelledImages, load_split, parse_spec, shard_indices, tensor_batches
from ..data.nature import check_ten_crop
from ..data.preprocess import Preprocess
from ..devices import resolve_device
from ..errors import InputShapeError, InvalidArgumentError, ModelFileError
from ..modelfile import read_record
from ..registry import load_model
from ..results import err_pct, pct
from ..runfolder import MODEL_FILE
from . import state as ckpt
from .engine import evaluate, precision_name, step_batch
from .feed import worker_count
from .recipes import Recipe


def evaluate_file(path: str | Path, data: str | None = None, *, ten_crop: bool = False,
                  allow_mirror: bool = False, device: str | None = None, batch_size: int = 500,
                  workers: int = 4, amp: str = "auto") -> dict:
    """Top-1/top-5 error (centre view or 10-crop), per-class accuracy (in percent, keys as in
    docs/results.md) and the confusion matrix of a model file written by `cnnzoo train` on the
    test split of `data`. `amp` as in the recipes (auto: bf16 on CUDA, on AMX CPUs and on
    avx512_bf16 CPUs for batches of 64 or more, fp32 elsewhere; weighed at the batch the model
    was trained with, so `auto` scores it in the precision it trained in on this machine); the
    result says which ran. 10-crop testing mirrors images: on data that must not be mirrored
    (digits) it is refused unless `allow_mirror`."""
    check_eval_args(batch_size, workers)
    dev = resolve_device(device)
    path = model_file(path)
    if ten_crop:  # before loading anything: the data named, else the data the model was trained on
        check_ten_crop(data if data is not None else read_record(path).get("data"), allow_mirror)
    model, record = load_model(path)
    spec = parse_spec(data if data is not None else record.get("data"))
    test = load_split(spec, "test")
    classes = record.get("classes") or test.classes
    if len(test.classes) != len(classes):
        raise InvalidArgumentError(
            f"{path} was trained on {len(classes)} classes; --data {spec} has {len(test.classes)}")
    model.to(dev)
    recipe = scoring_recipe(amp, record, batch_size)
    batches = scoring_batches(test, record, path, spec, ten_crop=ten_crop, device=dev, batch_size=batch_size,
                           workers=workers)
    res = evaluate(model, batches, device=dev, num_classes=len(classes), confusion=True, recipe=recipe)
    cm = res.pop("confusion")
    per_class = (cm.diag().double() / cm.sum(1).clamp_min(1).double()).tolist()
    return {"model_file": str(path), "model": record["model"], "data": str(spec),
            "view": "10-crop" if ten_crop else "center", "images": res["n"],
            "precision": precision_name(recipe, dev),
            "top1_err_pct": err_pct(res["acc"]), "top5_err_pct": err_pct(res["top5"]),
            "loss": res["loss"], "classes": list(classes),
            "per_class_acc_pct": {c: pct(a) for c, a in zip(classes, per_class)},
            "confusion": cm.tolist()}


def scoring_recipe(amp: str, record: dict, batch_size: int) -> Recipe:
    """The `amp` rule for scoring a model file: weighed at the micro-batch of the recipe it was
    trained with (the LeNet-5 demo, trained fp32 at batch 32 on an avx512_bf16 CPU, is scored in
    fp32 there too), or at the scoring batch for files without one (converted, pretrained)."""
    trained = record.get("recipe") or {}
    b = trained.get("batch_size")
    if isinstance(b, int) and b > 0:
        accum = int(trained.get("accum_steps") or 1)
        return Recipe(amp=amp, batch_size=step_batch(Recipe(batch_size=b, accum_steps=accum)))
    return Recipe(amp=amp, batch_size=batch_size)


def check_eval_args(batch_size: int, workers: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InvalidArgumentError(f"workers must be an integer >= 0, got {workers!r}")
    check("batch_size", batch_size)  # and their largest values (bounds.py)
    check("workers", workers)


def model_file(path: str | Path) -> Path:
    """The cnnzoo model file at `path` (a run folder means its model file)."""
    path = Path(path)
    if path.suffix in ckpt.TORCH_SUFFIXES:
        ckpt.load_torch_file(path)  # refuses unsafe pickles with a clear message
        raise ModelFileError(f"{path}: evaluation needs a cnnzoo model file (.safetensors with a "
                             "record); convert torch checkpoints with create_model(name, weights=...)")
    return path / MODEL_FILE if path.is_dir() else path


def scoring_batches(test: LabelledImages, record: dict, path: Path, spec: object, *, ten_crop: bool,
                 device: torch.device, batch_size: int, workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`test` as model-ready batches through the model's own recorded preprocessing: (N, C, H, W),
    or (10, N, C, H, W) for 10-crop testing."""
    pre = record.get("preprocess")
    if not pre:
        raise ModelFileError(f"{path} has no preprocess record; was it written by `cnnzoo train`?")
    prep = Preprocess.from_record(pre)
    idx = shard_indices(len(test), batch_size, 0, 0, False, 0, 1, False)
    if test.in_memory:
        if test.shape[0] != prep.in_chans:
            raise InputShapeError(f"{path} takes {prep.in_chans}-channel images; {spec} has {test.shape[0]}")
        return ((prep.eval_batch(x, ten_crop), y) for x, y in tensor_batches(test.to(device), idx))
    from ..data.folder import FolderLoader
    from ..data.transforms import folder_transform

    h, w = prep.size
    tf = folder_transform("none", (h, w), pre.get("resize") or h, pre["mean"], pre["std"], False)
    if ten_crop:
        tf = _TenCropTransform(pre.get("resize") or h, (h, w), pre["mean"], pre["std"])
    loader = FolderLoader(test, tf, idx, worker_count(workers), "skip", device)
    return ((x.transpose(0, 1) if x.dim() == 5 else x, y) for x, y in loader.iterate())


class _TenCropTransform:
    """Folder images -> (10, C, H, W): resize, four corners + centre, and their mirrors."""

    def __init__(self, resize: int, size: tuple[int, int], mean: list[float], std: list[float]) -> None:
        from torchvision.transforms import v2 as T

        self.base = T.Compose([T.ToImage(), T.Resize(resize, antialias=True),
                               T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])
        self.size = size

    def __call__(self, img: object) -> torch.Tensor:
        from ..data.transforms import ten_crop

        return ten_crop(self.base(img)[None], self.size)[:, 0]
