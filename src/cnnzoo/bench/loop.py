"""Our training loop against a plain PyTorch loop, on the same model, data and optimiser.

Three arms, timed interleaved one epoch per repetition:
  ours       cnnzoo.train.engine on device-resident data, preprocessing batched on the device,
             no host sync per step
  reference  torchvision's references/classification/train.py reduced to its loop: a
             DataLoader over a per-sample dataset, `.item()` of loss and accuracy every step
  synthetic  our loop on one random batch that never leaves the device: real/synthetic shows
             what the data costs
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .. import devices
from ..data.datasets import TensorData, load_split, parse_spec, shard_indices, tensor_batches
from ..data.preprocess import Preprocess, fit_input
from ..registry import create_model, get_entry, list_models
from ..train.engine import (
    StepContext,
    autocast_ctx,
    build_optimizer,
    build_scheduler,
    precision_name,
    train_one_epoch,
    use_channels_last,
)
from ..train.recipes import Recipe, get_recipe
from .settings import Settings
from .timing import summarize, time_interleaved

ARMS = ("ours", "reference", "synthetic")


class _PerSampleDataset(torch.utils.data.Dataset):
    """The reference loop's data: a map-style dataset transforming one image at a time on the
    host (uint8 -> float, pad/resize, normalise), as torchvision's datasets and transforms do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, prep: Any) -> None:
        self.images, self.labels, self.prep = images, labels, prep

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.prep.eval_batch(self.images[i: i + 1])[0], int(self.labels[i])


@dataclass
class _Loop:
    """What the arms share: the data, the recipe, and one model and optimiser per arm."""

    device: torch.device
    recipe: Recipe
    train: TensorData  # the first n training images
    prep: Preprocess
    n: int
    steps: int  # per epoch
    total: int  # scheduler length: every epoch the timing can run
    models: dict[str, nn.Module]
    opts: dict[str, torch.optim.Optimizer]
    state: dict[str, Any]  # epoch/step counters and last-epoch accuracies, updated by the arms


def _setup(s: Settings, quick: bool, model_name: str, data: str, recipe_name: str,
           max_images: int | None) -> _Loop:
    device = torch.device(s.device)
    recipe = get_recipe(recipe_name)
    bs = recipe.batch_size
    train = load_split(parse_spec(data), "train")
    n = min(len(train), max_images or (1600 if quick else 6400))
    n -= n % bs
    train = train.limit(n)
    mean, std = train.stats()
    prep = fit_input(model_name, get_entry(model_name).input_size, train.shape, mean, std)
    steps = n // bs
    torch.manual_seed(0)
    base = create_model(model_name, num_classes=len(train.classes), in_chans=prep.in_chans)
    models = {k: copy.deepcopy(base).to(device) for k in ARMS}
    opts = {k: build_optimizer(m, recipe, device) for k, m in models.items()}
    state = {"epoch": 0, "step": 0, "synth_step": 0, "ref_acc": 0.0, "ours_acc": 0.0}
    total = steps * (2 * s.reps + 2 * max(s.warmup, 1))
    return _Loop(device, recipe, train, prep, n, steps, total, models, opts, state)


def _ours_arm(lp: _Loop) -> Callable[[], None]:
    """The engine on device-resident data, preprocessing batched on the device."""
    recipe, device, state, bs = lp.recipe, lp.device, lp.state, lp.recipe.batch_size
    train_dev = lp.train.to(device)
    sched = build_scheduler(lp.opts["ours"], recipe, lp.steps, lp.total)

    def prep_train(x: torch.Tensor, step: int) -> torch.Tensor:
        g = torch.Generator(device=device)
        g.manual_seed(step)
        return lp.prep.train_batch(x, recipe.augment, g)

    ctx = StepContext(recipe=recipe, optimizer=lp.opts["ours"], scheduler=sched, device=device,
                      prep=prep_train)

    def ours_epoch() -> None:
        idx = shard_indices(lp.n, bs, state["epoch"], 0, True, 0, 1, True)
        m = train_one_epoch(lp.models["ours"], tensor_batches(train_dev, idx), ctx,
                            state["epoch"], state["step"])
        state["epoch"] += 1
        state["step"] = m["step"]
        state["ours_acc"] = m["acc"]

    return ours_epoch


def _synthetic_arm(lp: _Loop) -> Callable[[], None]:
    """The same engine on one normalised random batch that never leaves the device."""
    recipe, device, state, bs = lp.recipe, lp.device, lp.state, lp.recipe.batch_size
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(bs, lp.prep.in_chans, *lp.prep.size, generator=gen).to(device)
    ys = torch.randint(0, len(lp.train.classes), (bs,), generator=gen).to(device)
    ctx = StepContext(recipe=recipe, optimizer=lp.opts["synthetic"],
                      scheduler=build_scheduler(lp.opts["synthetic"], recipe, lp.steps, lp.total),
                      device=device)

    def synthetic_epoch() -> None:
        m = train_one_epoch(lp.models["synthetic"], ((xs, ys) for _ in range(lp.steps)), ctx, 0,
                            state["synth_step"])
        state["synth_step"] = m["step"]

    return synthetic_epoch


def _reference_arm(lp: _Loop) -> Callable[[], None]:
    """torchvision's references/classification/train.py, reduced to its loop."""
    device, state = lp.device, lp.state
    loader = torch.utils.data.DataLoader(
        _PerSampleDataset(lp.train.images, lp.train.labels, lp.prep),
        batch_size=lp.recipe.batch_size, shuffle=True, drop_last=True, num_workers=0,
        pin_memory=devices.pin_memory(device))
    criterion = nn.CrossEntropyLoss(label_smoothing=lp.recipe.label_smoothing)
    ref_sched = torch.optim.lr_scheduler.StepLR(lp.opts["reference"], step_size=30, gamma=0.1)

    amp = autocast_ctx(lp.recipe, device)
    if use_channels_last(lp.recipe, device):
        lp.models["reference"].to(memory_format=torch.channels_last)

    def reference_epoch() -> None:
        model, optimizer = lp.models["reference"], lp.opts["reference"]
        model.train()
        correct = seen = 0.0
        for image, target in loader:
            image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
            if use_channels_last(lp.recipe, device):
                image = image.contiguous(memory_format=torch.channels_last)
            with amp:  # the precision our arm runs at (train.py's --amp), or the ratio would mix two
                output = model(image)
                loss = criterion(output.float(), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            top5 = output.topk(5, 1).indices  # train.py logs acc1 and acc5 each step
            acc1 = (top5[:, 0] == target).float().sum()
            acc5 = (top5 == target[:, None]).any(1).float().sum()
            _ = loss.item(), acc5.item()  # MetricLogger.update(...) reads them on the host
            correct += acc1.item()
            seen += len(target)
        ref_sched.step()
        state["ref_acc"] = correct / max(seen, 1)

    return reference_epoch


def bench_loop(s: Settings, quick: bool = False, model_name: str = "lenet5_modern",
               data: str = "embedded", recipe_name: str = "lenet", max_images: int | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Our training loop against a plain loop shaped like torchvision's reference train.py, on
    the same model, initial weights, data, batch size and optimiser, plus our loop on synthetic
    on-device batches (see the module docstring)."""
    if model_name not in list_models():
        return {"skipped": f"{model_name} is not registered in this checkout"}
    lp = _setup(s, quick, model_name, data, recipe_name, max_images)
    epochs = {"ours": _ours_arm(lp), "synthetic": _synthetic_arm(lp),
              "reference": _reference_arm(lp)}
    say = (lambda m: progress(f"training loop {m}")) if progress else None
    t = time_interleaved({k: epochs[k] for k in ARMS}, reps=s.reps, iters=1,
                         warmup=max(s.warmup, 1), device=s.device, progress=say)
    o, r, y = (summarize(t[k], lp.n) for k in ARMS)
    return {"model": model_name, "data": f"{data} (first {lp.n} training images)",
            "recipe": recipe_name, "batch": lp.recipe.batch_size, "steps_per_epoch": lp.steps,
            "precision": precision_name(lp.recipe, lp.device),
            "reference_loop": "torchvision references/classification/train.py shape: DataLoader "
                              "(per-sample transforms, num_workers=0), .item() per step",
            "ours": o, "reference": r, "synthetic": y,
            "ratio": o["images_per_s"] / r["images_per_s"],
            "real_vs_synthetic": o["images_per_s"] / y["images_per_s"],
            "train_acc_last_epoch": {"ours": lp.state["ours_acc"], "reference": lp.state["ref_acc"]}}
