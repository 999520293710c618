"""`fit`: a whole training run (data, model, engine, checkpoints, logs), and `evaluate_file`.

Used by `cnnzoo train` / `cnnzoo eval` and callable from Python:

    from cnnzoo.train import fit
    result = fit("lenet5", data="mnist:../shared/data/mnist", recipe="lenet", out="runs/lenet5")
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import save_model
from ..data.datasets import (FolderData, TensorData, load_split,
                             parse_spec, shard_indices, tensor_batches)
from ..data.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, fit_input
from ..errors import CheckpointError, InputShapeError, InvalidArgumentError
from ..registry import create_model, get_entry
from . import checkpoint as ckpt
from .distributed import DistInfo, barrier, cleanup, init_distributed, wrap_model
from .engine import (StepContext, TensorBoardLog, build_optimizer, build_scheduler, evaluate,
                     plot_curves, set_deterministic, train_one_epoch, use_channels_last,
                     write_metrics_csv)
from .recipes import Recipe, default_recipe_for, get_recipe, recipe_from_dict

MODEL_FILE = "model.safetensors"


@dataclass
class Reporter:
    """Where a run talks: rank 0's console and an optional rich progress bar."""

    console: Any = None
    progress: bool = True

    def print(self, msg: str) -> None:
        if self.console is not None:
            self.console.print(msg, highlight=False)


def _aug_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    h = hashlib.blake2b(f"{seed}/{epoch}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 62) - 1)


def _check_fits(model_name: str, model, prep: Preprocess) -> None:
    """A meta-device forward at the input size: a clear error before any training."""
    import copy

    probe = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(2, prep.in_chans, *prep.size, device="meta")
    try:
        with torch.no_grad():
            probe(x)
    except InputShapeError as err:
        raise InputShapeError(f"the data does not fit {model_name}: {err}") from None


def load_data(spec_str: str | None, recipe: Recipe):
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


def fit(model_name: str | None = None, *, data: str | None = None, recipe: str | Recipe | None = None,
        overrides: dict[str, Any] | None = None, config: str | None = None, out: str | Path | None = None,
        resume: str | Path | None = None, device: str | None = None, seed: int = 0,
        deterministic: bool = False, reporter: Reporter | None = None,
        epochs: int | None = None) -> dict:
    """Train `model_name` on `data` with `recipe`; returns the final metrics and output paths
    (None on ranks other than 0 under torchrun).

    `resume` is a run folder (or its checkpoint.safetensors): the run continues at its step
    with its recipe, data and model; `epochs` may extend it. A torch.save checkpoint
    (.pt/.pth, e.g. from torchvision's reference train.py) is accepted as `resume` too: its
    'model' (and 'optimizer' when compatible) are loaded with weights_only=True."""
    rep = reporter or Reporter()
    info, dev = init_distributed(device)
    if not info.is_main:
        rep = Reporter(None, False)
    try:
        return _fit(model_name, data, recipe, overrides, config, out, resume, dev, info, seed,
                    deterministic, rep, epochs)
    finally:
        cleanup(info)


def _fit(model_name, data, recipe, overrides, config, out, resume, dev, info: DistInfo, seed,
         deterministic, rep: Reporter, epochs):
    resumed_state = None
    model_sd = None
    torch_ckpt = None
    if resume is not None:
        rpath = Path(resume)
        if rpath.suffix in (".pt", ".pth", ".tar"):
            torch_ckpt = ckpt.load_torch_file(rpath)
            if not isinstance(torch_ckpt, dict) or "model" not in torch_ckpt:
                raise CheckpointError(f"{rpath}: expected a dict with a 'model' state_dict (torchvision "
                                      "reference checkpoint layout)")
        else:
            model_sd, resumed_state = ckpt.load_state(rpath)
            saved = resumed_state["run"]
            if model_name is not None and model_name != saved["model"]:
                raise InvalidArgumentError(
                    f"--resume {resume} is a run of {saved['model']}, not {model_name}")
            model_name, data = saved["model"], saved["data"]
            seed, deterministic = saved["seed"], saved["deterministic"]
            recipe = recipe_from_dict(saved["recipe"])
            out = out or (rpath if rpath.is_dir() else rpath.parent)
    if model_name is None:
        raise InvalidArgumentError("name a model to train (see `cnnzoo list`)")
    entry = get_entry(model_name)
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(recipe or default_recipe_for(model_name, entry.input_size),
                            overrides, config)
    elif overrides and resumed_state is None:
        from .recipes import apply_overrides

        recipe = apply_overrides(recipe, overrides)
    if epochs is not None:
        if recipe.iterations is not None:  # paper milestones in iterations -> same fractions, in epochs
            frac = [m / recipe.iterations for m in recipe.milestones]
            recipe = dataclasses.replace(recipe, iterations=None, milestones=[f * epochs for f in frac])
        recipe = dataclasses.replace(recipe, epochs=epochs)
    set_deterministic(seed, deterministic)

    # data first: every input error surfaces before the model is built or anything is written
    spec, train, test = load_data(data, recipe)
    classes = train.classes
    if isinstance(train, TensorData):
        mean, std = train.stats()
        prep = fit_input(model_name, entry.input_size, train.shape, mean, std)
    else:
        prep = fit_input(model_name, entry.input_size, None, IMAGENET_MEAN, IMAGENET_STD)
    world = info.world
    if recipe.batch_size % (world * recipe.accum_steps):
        raise InvalidArgumentError(
            f"batch_size {recipe.batch_size} (the global batch) must be divisible by "
            f"world size x accum_steps = {world} x {recipe.accum_steps}")
    if recipe.sync_bn and world > 1 and dev.type == "cpu":
        raise InvalidArgumentError("SyncBatchNorm needs CUDA (PyTorch has no CPU kernel for it); "
                                   "drop --sync-bn for CPU processes")
    steps_per_epoch = len(train) // recipe.batch_size
    if steps_per_epoch == 0:
        raise InvalidArgumentError(
            f"batch_size {recipe.batch_size} is larger than the training set ({len(train)} images)")
    if recipe.iterations is not None:
        total_steps = recipe.iterations
        n_epochs = math.ceil(total_steps / steps_per_epoch)
    else:
        n_epochs = recipe.epochs
        total_steps = n_epochs * steps_per_epoch

    torch.manual_seed(seed)  # same initial weights on every rank and every run
    model = create_model(model_name, num_classes=len(classes), in_chans=prep.in_chans)
    _check_fits(model_name, model, prep)
    if prep.note:
        rep.print(f"[dim]input:[/] {prep.note}")
    if model_sd is not None:
        model.load_state_dict(model_sd)
    elif torch_ckpt is not None:
        try:
            model.load_state_dict(torch_ckpt["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{resume}: its 'model' weights do not fit {model_name} ({str(err)[:300]})") from None
    model.to(dev)
    cl = use_channels_last(recipe, dev)
    if cl:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, recipe, dev)
    scheduler = build_scheduler(optimizer, recipe, steps_per_epoch, total_steps)
    train_model = wrap_model(model, info, dev, recipe.sync_bn)
    if recipe.compile:
        train_model = torch.compile(train_model)

    start_step, history = 0, []
    if resumed_state is not None:
        optimizer.load_state_dict(resumed_state["optimizer"])
        if resumed_state["scheduler"] is not None:
            scheduler.load_state_dict(resumed_state["scheduler"])
        ckpt.set_rng_state(resumed_state["rng"])
        start_step = resumed_state["step"]
        history = resumed_state.get("history", [])
        rep.print(f"resumed {model_name} at step {start_step} (epoch {start_step // steps_per_epoch + 1})")
    elif torch_ckpt is not None:
        if "optimizer" in torch_ckpt:
            try:
                optimizer.load_state_dict(torch_ckpt["optimizer"])
            except (ValueError, KeyError) as err:
                rep.print(f"[yellow]note:[/] optimizer state not reused ({err})")
        if isinstance(torch_ckpt.get("epoch"), int):
            import warnings

            start_step = (torch_ckpt["epoch"] + 1) * steps_per_epoch
            with warnings.catch_warnings():  # fast-forwarding the schedule before any optimizer step
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(start_step):
                    if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        scheduler.step()

    out_dir = Path(out) if out is not None else Path("runs") / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    barrier(info)
    tb = TensorBoardLog(out_dir, info.is_main)

    # -- data on the device -----------------------------------------------------------------
    in_memory = isinstance(train, TensorData)
    if in_memory:
        train_dev, test_dev = train.to(dev), test.to(dev)
        pca = None
        if recipe.augment == "alexnet" and train.shape[0] == 3:
            from ..data.transforms import pixel_pca

            pca = pixel_pca(train.images)

        def prep_train(x, step):
            g = torch.Generator(device=dev)
            g.manual_seed(_aug_seed(seed, step // steps_per_epoch, step, info.rank))
            return prep.train_batch(x, recipe.augment, g, pca)

        def eval_batches():
            idx = shard_indices(len(test_dev), 1000 * world, 0, seed, False, info.rank, world, False)
            return tensor_batches(test_dev, idx)

        eval_prep = prep.eval_batch
    else:
        from ..data.folder import FolderLoader
        from ..data.transforms import folder_transform

        tf_train = folder_transform(recipe.augment, prep.size, prep.resize, prep.mean, prep.std, True)
        tf_eval = folder_transform("none", prep.size, prep.resize, prep.mean, prep.std, False)
        prep_train = None
        eval_prep = None

        def eval_batches():
            idx = shard_indices(len(test), 256 * world, 0, seed, False, info.rank, world, False)
            return FolderLoader(test, tf_eval, idx, recipe.workers, recipe.on_corrupt, dev).iterate()

    def save_all(step: int, final_metrics: dict | None = None) -> None:
        if not info.is_main:
            return
        run = {"model": model_name, "data": str(spec), "seed": seed, "deterministic": deterministic,
               "recipe": recipe.to_dict()}
        ckpt.save_state(out_dir, model=model, optimizer=optimizer, scheduler=scheduler,
                        epoch=step // steps_per_epoch, step=step, extra={"run": run, "history": history})
        if final_metrics is not None:
            save_model(out_dir / MODEL_FILE, model, recipe=recipe.to_dict(), data=str(spec),
                       metrics=final_metrics, classes=list(classes), preprocess=prep.record(),
                       step=step)

    progress = None
    if rep.progress and rep.console is not None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                            console=rep.console, transient=True)
        progress.start()

    ctx = StepContext(recipe=recipe, optimizer=optimizer, scheduler=scheduler, device=dev, info=info,
                      prep=prep_train, channels_last=cl, total_steps=total_steps,
                      on_step_checkpoint=lambda s: save_all(s))
    rep.print(f"training [bold]{model_name}[/] on {spec} ({len(train)} train / {len(test)} test images, "
              f"{len(classes)} classes) with recipe [bold]{recipe.name}[/]: {n_epochs} epochs x "
              f"{steps_per_epoch} steps of {recipe.batch_size} on {dev}"
              + (f" x {world} processes" if world > 1 else "") + f"; output in {out_dir}")
    t_run = time.perf_counter()
    last_test: dict = {}
    skipped_total = 0
    try:
        step = start_step
        for epoch in range(start_step // steps_per_epoch, n_epochs):
            if step >= total_steps:
                break
            offset = step - epoch * steps_per_epoch
            idx = shard_indices(len(train), recipe.batch_size, epoch, seed, True, info.rank, world, True)
            if in_memory:
                batches = tensor_batches(train_dev, idx, offset)
                folder_loader = None
            else:
                folder_loader = FolderLoader(train, tf_train, idx, recipe.workers, recipe.on_corrupt, dev)
                batches = folder_loader.iterate(offset)
            task = None
            if progress is not None:
                task = progress.add_task(f"epoch {epoch + 1}/{n_epochs}", total=steps_per_epoch,
                                         completed=offset, stats="")

                def on_progress(done, m, task=task, offset=offset):
                    progress.update(task, completed=offset + done,
                                    stats=f"loss {m['loss']:.4f} acc {100 * m['acc']:.2f}% "
                                          f"{m['img_s']:,.0f} img/s")

                ctx.on_progress = on_progress
            tm = train_one_epoch(train_model, batches, ctx, epoch, step)
            step = tm["step"]
            if task is not None:
                progress.remove_task(task)
            if folder_loader is not None and folder_loader.skipped:
                skipped_total += len(folder_loader.skipped)
                for p in folder_loader.skipped[:5]:
                    rep.print(f"[yellow]skipped unreadable image[/] {p}")
            row = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
                   "train_loss": tm["loss"], "train_acc": tm["acc"], "img_per_s": tm["img_s"],
                   "epoch_time_s": tm["time"]}
            is_last = step >= total_steps or epoch + 1 == n_epochs
            if (epoch + 1) % recipe.eval_every == 0 or is_last:
                last_test = evaluate(train_model, eval_batches(), device=dev, num_classes=len(classes),
                                     prep=eval_prep, recipe=recipe, channels_last=cl, info=info)
                row.update(test_loss=last_test["loss"], test_acc=last_test["acc"], test_top5=last_test["top5"])
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(last_test["acc"])
            history.append(row)
            metrics = {"train_loss": tm["loss"], "train_acc": tm["acc"], "test_loss": last_test.get("loss"),
                       "test_acc": last_test.get("acc"), "test_top1_err": _err(last_test.get("acc")),
                       "test_top5_err": _err(last_test.get("top5")), "epochs": epoch + 1, "steps": step}
            save_all(step, metrics)
            if info.is_main:
                write_metrics_csv(out_dir / "metrics.csv", history)
                plot_curves(out_dir / "training_curves.png", history, f"{model_name} on {spec}")
                tb.log(row)
            eta = (time.perf_counter() - t_run) / max(1, step - start_step) * (total_steps - step)
            rep.print(f"epoch {epoch + 1:>3}/{n_epochs}  loss {tm['loss']:.4f}  train acc {100 * tm['acc']:6.2f}%"
                      + (f"  test acc {100 * last_test['acc']:6.2f}%" if "test_loss" in row else "")
                      + f"  {tm['img_s']:,.0f} img/s  {tm['time']:.1f}s"
                      + (f"  ETA {eta:.0f}s" if not is_last else ""))
    finally:
        if progress is not None:
            progress.stop()
        tb.close()
    elapsed = time.perf_counter() - t_run
    result = {
        "model": model_name, "data": str(spec), "recipe": recipe.name, "epochs": n_epochs, "steps": step,
        "test_acc": last_test.get("acc"), "test_top1_err": _err(last_test.get("acc")),
        "test_top5_err": _err(last_test.get("top5")), "test_loss": last_test.get("loss"),
        "train_time_s": round(elapsed, 2), "device": str(dev), "world_size": world,
        "out": str(out_dir), "model_file": str(out_dir / MODEL_FILE),
        "skipped_images": skipped_total, "input": prep.note or "native size",
    }
    return result if info.is_main else None  # under torchrun only rank 0 reports


def _err(acc: float | None) -> float | None:
    return None if acc is None else round(100 * (1 - acc), 4)


# -- evaluation of a saved model ------------------------------------------------------------
def evaluate_file(path: str | Path, data: str | None = None, *, ten_crop: bool = False,
                  device: str | None = None, batch_size: int = 500, workers: int = 4) -> dict:
    """Top-1/top-5 error (centre view or 10-crop), per-class accuracy and the confusion matrix
    of a model file written by `cnnzoo train` on the test split of `data`."""
    from ..registry import load_model

    path = Path(path)
    if path.suffix in (".pt", ".pth", ".tar"):
        ckpt.load_torch_file(path)  # refuses unsafe pickles with a clear message
        raise CheckpointError(f"{path}: evaluation needs a cnnzoo model file (.safetensors with a "
                              "record); convert torch checkpoints with create_model(name, weights=...)")
    if path.is_dir():
        path = path / MODEL_FILE
    model, record = load_model(path)
    pre = record.get("preprocess")
    if not pre:
        raise CheckpointError(f"{path} has no preprocess record; was it written by `cnnzoo train`?")
    spec = parse_spec(data if data is not None else record.get("data"))
    test = load_split(spec, "test")
    classes = record.get("classes") or test.classes
    if len(test.classes) != len(classes):
        raise InvalidArgumentError(
            f"{path} was trained on {len(classes)} classes; --data {spec} has {len(test.classes)}")
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(dev)
    c, h, w = pre["input_size"]
    prep = Preprocess(c, (h, w), None, pre.get("pad", 0), pre.get("resize"), pre["mean"], pre["std"])
    if isinstance(test, TensorData):
        if test.shape[0] != c:
            raise InputShapeError(f"{path} takes {c}-channel images; {spec} has {test.shape[0]}")
        idx = shard_indices(len(test), batch_size, 0, 0, False, 0, 1, False)
        batches = tensor_batches(test.to(dev), idx)
        res = evaluate(model, batches, device=dev, num_classes=len(classes),
                       prep=lambda x: prep.eval_batch(x, ten_crop), confusion=True)
    else:
        from ..data.folder import FolderLoader
        from ..data.transforms import folder_transform

        tf = folder_transform("none", (h, w), pre.get("resize") or h, pre["mean"], pre["std"], False)
        if ten_crop:
            tf = _TenCropTransform(pre.get("resize") or h, (h, w), pre["mean"], pre["std"])
        idx = shard_indices(len(test), batch_size, 0, 0, False, 0, 1, False)
        loader = FolderLoader(test, tf, idx, workers, "skip", dev)
        batches = ((x.transpose(0, 1) if x.dim() == 5 else x, y) for x, y in loader.iterate())
        res = evaluate(model, batches, device=dev, num_classes=len(classes), confusion=True)
    cm = res.pop("confusion")
    per_class = (cm.diag().double() / cm.sum(1).clamp_min(1).double()).tolist()
    return {"model_file": str(path), "model": record["model"], "data": str(spec),
            "view": "10-crop" if ten_crop else "center", "images": res["n"],
            "top1_err": round(100 * (1 - res["acc"]), 4), "top5_err": round(100 * (1 - res["top5"]), 4),
            "loss": res["loss"], "classes": list(classes),
            "per_class_acc": {c: round(a, 6) for c, a in zip(classes, per_class)},
            "confusion": cm.tolist()}


class _TenCropTransform:
    """Folder images -> (10, C, H, W): resize, four corners + centre, and their mirrors."""

    def __init__(self, resize: int, size, mean, std):
        from torchvision.transforms import v2 as T

        self.base = T.Compose([T.ToImage(), T.Resize(resize, antialias=True),
                               T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])
        self.size = size

    def __call__(self, img):
        from ..data.transforms import ten_crop

        return ten_crop(self.base(img)[None], self.size)[:, 0]


def plot_confusion(path: str | Path, confusion: list[list[int]], classes: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..files import atomic_path

    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    size = min(4 + 0.35 * n, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    fig.colorbar(im, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
