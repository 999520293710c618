"""Seconds of training to a test accuracy: our training engine against a plain PyTorch loop.

Both arms train the same model from the same initial weights with the same hyper-parameters
(recipe: optimizer and its parameter groups, lr schedule, batch, label smoothing, epochs).
They differ only in how the steps run:
  ours   cnnzoo.train.engine with the recipe's settings: uint8 images resident on the device,
         each batch converted and normalised there in one go; the recipe's memory format
         (channels_last) and precision (bf16 autocast where the device has fast bf16: CUDA, CPUs
         with AMX, or avx512_bf16 at batch >= 64; CNNZOO_BF16=off makes it fp32); no host sync inside an epoch
  plain  the loop a tutorial writes: a DataLoader over the in-memory tensors (per-sample
         conversion and normalisation, default collate), float32, contiguous tensors,
         `loss.item()` every step for the running loss
So the ratio is what the engine's choices buy together; run with CNNZOO_BF16=off to see the
share of everything but precision.
The arms alternate epoch by epoch (ours, plain, ours, plain, ...), so a change in the machine's
load hits both. Only the training steps are timed; after each epoch the test split is scored
(untimed) and an arm stops at the first epoch end at or above the target. Nothing is selected
on that score but the stopping point, as in the time-to-accuracy benchmarks (DAWNBench).
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .. import devices
from ..contract import AuxModel
from ..data.datasets import TensorData, load_split, parse_spec, shard_indices, tensor_batches
from ..data.kinds import spec_list
from ..data.preprocess import Preprocess, fit_input
from ..errors import InvalidArgumentError
from ..models.speednet import speedrun_model
from ..registry import create_model, get_entry
from ..train.engine import (
    StepContext,
    build_optimizer,
    build_scheduler,
    evaluate,
    precision_name,
    train_one_epoch,
    use_channels_last,
)
from ..train.recipes import Recipe, get_recipe
from .loop import _PerSampleDataset
from .machine import machine_info


@dataclass
class _Arm:
    """One side: its model, optimizer, schedule, step counter and per-epoch record."""

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    run_epoch: Callable[[int], None] = lambda epoch: None
    step: int = 0
    seconds: float = 0.0  # training time so far
    reached_s: float | None = None
    reached_epoch: int | None = None
    acc: float = 0.0  # the latest test accuracy, percent
    epochs: list[dict] = field(default_factory=list)


def _ours(arm: _Arm, train: TensorData, prep: Preprocess, r: Recipe, device: torch.device,
          seed: int, steps: int) -> None:
    train_dev = train.to(device)
    gen = torch.Generator(device=device)

    def prep_train(x: torch.Tensor, step: int) -> torch.Tensor:
        gen.manual_seed(seed * 1_000_003 + step)
        return prep.train_batch(x, r.augment, gen)

    ctx = StepContext(recipe=r, optimizer=arm.optimizer, scheduler=arm.scheduler, device=device,
                      prep=prep_train, channels_last=use_channels_last(r, device))
    if ctx.channels_last:
        arm.model.to(memory_format=torch.channels_last)

    def run_epoch(epoch: int) -> None:
        idx = shard_indices(steps * r.batch_size, r.batch_size, epoch, seed, True, 0, 1, True)
        arm.step = train_one_epoch(arm.model, tensor_batches(train_dev, idx), ctx, epoch, arm.step)["step"]

    arm.run_epoch = run_epoch


def _plain(arm: _Arm, train: TensorData, prep: Preprocess, r: Recipe, device: torch.device, seed: int) -> None:
    loader = torch.utils.data.DataLoader(
        _PerSampleDataset(train.images, train.labels, prep), batch_size=r.batch_size, shuffle=True,
        drop_last=True, num_workers=0, generator=torch.Generator().manual_seed(seed))
    criterion = nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)

    def run_epoch(epoch: int) -> None:
        model, opt = arm.model, arm.optimizer
        model.train()
        running = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            arm.scheduler.step()
            running += loss.item()  # the running loss a tutorial prints
            arm.step += 1

    arm.run_epoch = run_epoch


def _check(target: float, epochs: int | None, max_images: int | None, repeats: int = 1) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidArgumentError(f"--repeats must be an integer >= 1, got {repeats!r}")
    if not 0 < target <= 100:
        raise InvalidArgumentError(f"bench to-accuracy takes a test accuracy in percent, 0 < A <= 100, got {target:g}")
    if epochs is not None and epochs < 1:
        raise InvalidArgumentError(f"--epochs must be >= 1, got {epochs}")
    if max_images is not None and max_images < 1:
        raise InvalidArgumentError(f"--max-images must be >= 1, got {max_images}")


def to_accuracy(*, data: str, target: float, model_name: str | None = None, recipe_name: str | None = None,
                epochs: int | None = None, seed: int = 0, max_images: int | None = None, device: str = "cpu",
                repeats: int = 1, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train ours and the plain loop, interleaved epoch by epoch, until each reaches `target`
    percent test accuracy or runs out of epochs; seconds of training to the target for each
    (None where not reached) and the ratio plain / ours (> 1: ours is faster). With `repeats`
    > 1 the race is run that many times from the same start and the seconds and the ratio are
    medians (one epoch on a shared machine moves by +-10%); `races` lists every race."""
    _check(target, epochs, max_images, repeats)
    model_name = model_name or speedrun_model(parse_spec(data).kind)  # speednet; speednet_fashion on Fashion-MNIST
    entry = get_entry(model_name)
    r = get_recipe(recipe_name or entry.recipe,
                   {"epochs": epochs} if epochs else None)
    if r.augment != "none" or r.accum_steps != 1:
        raise InvalidArgumentError(f"recipe {r.name}: the plain loop has no augmentation and no gradient "
                                   "accumulation, so the arms would differ; choose a recipe without them "
                                   "(--set augment=none accum_steps=1 is not offered here)")
    spec = parse_spec(data)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    if not train.in_memory or not test.in_memory:
        raise InvalidArgumentError(f"--data {spec}: the to-accuracy bench needs in-memory data "
                                   f"({spec_list(lambda k: k.in_memory)}), not image files")
    if max_images:
        train = train.limit(max_images)
    steps = len(train) // r.batch_size
    if steps == 0:
        raise InvalidArgumentError(f"batch_size {r.batch_size} is larger than the training set ({len(train)} images)")
    dev = torch.device(device)
    mean, std = train.stats()
    prep = fit_input(model_name, entry.input_size, train.shape, mean, std)
    torch.manual_seed(seed)
    base = create_model(model_name, num_classes=len(train.classes), in_chans=prep.in_chans).to(dev)
    if isinstance(base, AuxModel):  # ours would train the aux heads too: not the same job
        raise InvalidArgumentError(f"{model_name} has auxiliary classifiers, which a plain loop does "
                                   "not train; time a model without them")
    test_dev = test.to(dev)
    races = []
    for i in range(repeats):
        if progress and repeats > 1:
            progress(f"race {i + 1} of {repeats}")
        races.append(_race(base, train, test_dev, prep, r, dev, seed, steps, target, progress))
    ours, plain = races[0]
    return {
        "model": model_name, "recipe": r.name, "data": str(spec), "target_acc_pct": target,
        "train_images": steps * r.batch_size, "batch": r.batch_size, "max_epochs": r.epochs, "seed": seed,
        "ours_precision": precision_name(r, dev), "plain_precision": "fp32",
        "threads": torch.get_num_threads(),
        **_medians(races), "repeats": repeats,
        "races": [{"ours_s": o.reached_s, "plain_s": p.reached_s, "ratio": _ratio(o, p)} for o, p in races],
        "ours_acc_pct": ours.acc, "plain_acc_pct": plain.acc,
        "ours_epochs": ours.reached_epoch, "plain_epochs": plain.reached_epoch,
        "per_epoch": {a.name: a.epochs for a in (ours, plain)},
        "plain_loop": "DataLoader over the in-memory tensors (per-sample conversion, num_workers=0), "
                      "float32, contiguous tensors, loss.item() every step",
        "machine": machine_info(device),
    }


def _race(base: nn.Module, train: TensorData, test: TensorData, prep: Preprocess, r: Recipe,
          dev: torch.device, seed: int, steps: int, target: float,
          progress: Callable[[str], None] | None) -> tuple[_Arm, _Arm]:
    """One race from `base`'s weights: both arms, alternating epoch by epoch."""
    arms = []
    for name in ("ours", "plain"):
        model = copy.deepcopy(base)
        opt = build_optimizer(model, r, dev)
        arms.append(_Arm(name, model, opt, build_scheduler(opt, r, steps, r.epochs * steps)))
    _ours(arms[0], train.limit(steps * r.batch_size), prep, r, dev, seed, steps)
    _plain(arms[1], train, prep, r, dev, seed)
    for epoch in range(r.epochs):
        for arm in arms:
            if arm.reached_s is None:
                _epoch(arm, epoch, test, prep, r, dev, target, progress)
        if all(a.reached_s is not None for a in arms):
            break
    return arms[0], arms[1]


def _ratio(ours: _Arm, plain: _Arm) -> float | None:
    return plain.reached_s / ours.reached_s if ours.reached_s and plain.reached_s else None


def _medians(races: list[tuple[_Arm, _Arm]]) -> dict[str, float | None]:
    """Seconds of each arm and the ratio: medians over the races (None unless every race has one)."""
    def med(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else statistics.median(values)

    return {"ours_s": med([o.reached_s for o, _ in races]), "plain_s": med([p.reached_s for _, p in races]),
            "ratio": med([_ratio(o, p) for o, p in races])}


def _epoch(arm: _Arm, epoch: int, test: TensorData, prep: Preprocess, r: Recipe, dev: torch.device,
           target: float, progress: Callable[[str], None] | None) -> None:
    """Train `arm` one epoch (timed), then score the test split (untimed)."""
    t0 = time.perf_counter()
    arm.run_epoch(epoch)
    devices.synchronize(dev)
    arm.seconds += time.perf_counter() - t0
    batches = tensor_batches(test, shard_indices(len(test), 1000, 0, 0, False, 0, 1, False))
    ours = arm.name == "ours"  # the plain arm is scored as it trains: float32, contiguous
    res = evaluate(arm.model, batches, device=dev, num_classes=len(test.classes), prep=prep.eval_batch,
                   recipe=r if ours else dataclasses.replace(r, amp="off"),
                   channels_last=use_channels_last(r, dev) and ours)
    arm.acc = round(100 * res["acc"], 2)
    arm.epochs.append({"epoch": epoch + 1, "train_s": round(arm.seconds, 3), "test_acc_pct": arm.acc})
    if arm.acc >= target:
        arm.reached_s, arm.reached_epoch = arm.seconds, epoch + 1
    if progress:
        progress(f"{arm.name}: epoch {epoch + 1}, {arm.seconds:.1f}s of training, test acc {arm.acc:.2f}%")


def format_to_accuracy(res: dict[str, Any]) -> str:
    """The table `cnnzoo bench to-accuracy` prints."""
    def secs(s: float | None) -> str:
        return f"{s:.1f}s" if s is not None else "not reached"

    lines = [f"time to {res['target_acc_pct']:g}% test accuracy: {res['model']} with recipe {res['recipe']} on "
             f"{res['data']} ({res['train_images']} training images, batch {res['batch']}, "
             f"ours {res['ours_precision']} and plain {res['plain_precision']}, "
             f"{res['threads']} threads, seed {res['seed']})",
             f"{'loop':<6} {'training':>12} {'epochs':>7} {'test acc':>9}"]
    for name in ("ours", "plain"):
        ep = res[f"{name}_epochs"]
        lines.append(f"{name:<6} {secs(res[f'{name}_s']):>12} {ep if ep else res['max_epochs']:>7} "
                     f"{res[f'{name}_acc_pct']:>8.2f}%")
    ratio = res["ratio"]
    lines.append(f"ratio plain / ours: {ratio:.2f}x" if ratio else
                 "ratio: not defined (an arm did not reach the target in the recipe's epochs)")
    if res.get("repeats", 1) > 1:
        each = ", ".join(f"{x['ratio']:.2f}x" if x["ratio"] else "-" for x in res["races"])
        lines.append(f"medians of {res['repeats']} races from the same start (ratios: {each}); "
                     "the accuracies are the first race's")
    lines.append(f"plain loop: {res['plain_loop']}")
    return "\n".join(lines)
