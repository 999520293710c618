"""Step 3 of a training run: the model and what trains it (optimizer, lr schedule, DDP and
torch.compile wrappers), put back where a resumed run left off.

The order of the steps below is part of resuming exactly: the seed is set right before the
model is created (same initial weights on every rank and every run), and the saved RNG state
is restored last, after everything that draws random numbers while being built.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..data.nature import flip_warning
from ..data.preprocess import Preprocess
from ..errors import InputShapeError, TrainingStateError
from ..precision import LossScaler, set_tf32
from ..registry import create_model
from . import state as ckpt
from .distributed import DistInfo, wrap_model
from .engine import build_optimizer, build_scheduler, loss_scaler, use_channels_last
from .feed import RunData
from .plan import Plan
from .reporter import Reporter


@dataclass
class Trainer:
    model: nn.Module  # the plain model: what is saved and restored
    train_model: nn.Module  # what runs the steps: `model` inside DDP and/or torch.compile
    optimizer: torch.optim.Optimizer
    scheduler: Any
    channels_last: bool
    start_step: int = 0
    history: list[dict] = field(default_factory=list)  # one row per finished epoch
    scaler: LossScaler = field(default_factory=lambda: LossScaler(torch.device("cpu"), False))  # fp16's


def _check_fits(model_name: str, model: nn.Module, prep: Preprocess) -> None:
    """A meta-device forward at the input size: a clear error before any training."""
    probe = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(2, prep.in_chans, *prep.size, device="meta")
    try:
        with torch.no_grad():
            probe(x)
    except InputShapeError as err:
        raise InputShapeError(f"the data does not fit {model_name}: {err}") from None


def build_trainer(*, plan: Plan, data: RunData, info: DistInfo, device: torch.device,
                  reporter: Reporter) -> Trainer:
    recipe = plan.recipe
    model = _build_model(plan=plan, data=data, device=device, reporter=reporter)
    channels_last = use_channels_last(recipe, device)
    set_tf32(device, recipe.amp != "off")
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if info.enabled:  # the same initial weights on every rank, then each its own dropout stream
        torch.manual_seed(plan.seed + info.rank)
    optimizer = build_optimizer(model, recipe, device)
    scheduler = build_scheduler(optimizer, recipe, data.steps_per_epoch, data.total_steps)
    train_model = wrap_model(model, info, device, recipe.sync_bn)
    if recipe.compile:
        train_model = torch.compile(train_model)
    trainer = Trainer(model=model, train_model=train_model, optimizer=optimizer, scheduler=scheduler,
                      channels_last=channels_last, scaler=loss_scaler(recipe, device))
    if plan.saved_state is not None:
        _restore_run(trainer, state=plan.saved_state, plan=plan, data=data, info=info, device=device,
                     reporter=reporter)
    elif plan.torch_checkpoint is not None:
        _restore_torch(trainer, found=plan.torch_checkpoint, data=data, reporter=reporter)
    return trainer


def _build_model(*, plan: Plan, data: RunData, device: torch.device, reporter: Reporter) -> nn.Module:
    torch.manual_seed(plan.seed)  # same initial weights on every rank and every run
    model = create_model(plan.model_name, num_classes=len(data.classes), in_chans=data.prep.in_chans,
                         pretrained=plan.pretrained)
    _check_fits(plan.model_name, model, data.prep)
    if data.prep.note:
        reporter.message(f"[dim]input:[/] {data.prep.note}")
    flips = flip_warning(plan.data, plan.recipe.augment)
    if flips is not None and plan.saved_state is None:
        reporter.message(f"[yellow]warning:[/] {flips}")
    if plan.saved_weights is not None:
        try:
            model.load_state_dict(plan.saved_weights)
        except RuntimeError as err:  # the record names one model, the tensors are another's
            raise ckpt.damaged(ckpt.state_file(plan.resume), f"its weights are not a {plan.model_name}'s: "
                               f"{str(err).splitlines()[-1].strip()[:200]}") from None
    elif plan.torch_checkpoint is not None:
        try:
            model.load_state_dict(plan.torch_checkpoint["model"])
        except RuntimeError as err:
            raise TrainingStateError(f"{plan.resume}: its 'model' weights do not fit {plan.model_name} "
                                     f"({str(err)[:300]})") from None
    return model.to(device)


def _restore_run(trainer: Trainer, *, state: dict[str, Any], plan: Plan, data: RunData,
                 info: DistInfo, device: torch.device, reporter: Reporter) -> None:
    """A cnnzoo checkpoint: optimizer, schedule, RNG, step and history exactly as saved."""
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        if state["scheduler"] is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
        raise ckpt.damaged(ckpt.state_file(plan.resume), f"its optimizer or schedule state does not fit "
                           f"this run: {str(err)[:200]}") from None
    ckpt.match_param_layout(trainer.optimizer)
    if state.get("checksum") is None:
        reporter.message(f"[yellow]warning:[/] {ckpt.state_file(plan.resume)} has no checksum (written by an "
                         "older cnnzoo): its tensors cannot be verified; the next checkpoint will have one")
    saved_lr = state["run"]["recipe"]["lr"]
    if plan.recipe.lr != saved_lr:  # a new base lr: the schedule continues from it
        _scale_lr(trainer, plan.recipe.lr / saved_lr)
    trainer.scaler.load_state_dict(state.get("amp_scaler"))  # fp16's scale: the resume stays exact
    ckpt.restore_rank_rng(state["rng"], info, device, plan.seed, state["step"])
    trainer.start_step = state["step"]
    trainer.history = state.get("history", [])
    applied = f"; applied {', '.join(plan.resume_changes)}" if plan.resume_changes else ""
    reporter.message(f"resumed {plan.model_name} at step {trainer.start_step} "
                     f"(epoch {trainer.start_step // data.steps_per_epoch + 1}){applied}")


def _scale_lr(trainer: Trainer, ratio: float) -> None:
    """Multiply the base and current learning rates (optimizer groups and schedule) by `ratio`."""
    for group in trainer.optimizer.param_groups:
        group["lr"] *= ratio
        if "initial_lr" in group:
            group["initial_lr"] *= ratio
    sched = trainer.scheduler
    for attr in ("base_lrs", "_last_lr"):
        if isinstance(getattr(sched, attr, None), list):
            setattr(sched, attr, [v * ratio for v in getattr(sched, attr)])


def _restore_torch(trainer: Trainer, *, found: dict[str, Any], data: RunData, reporter: Reporter) -> None:
    """A torch.save checkpoint: its optimizer state if it fits, and the epoch after its 'epoch'."""
    if "optimizer" in found:
        try:
            trainer.optimizer.load_state_dict(found["optimizer"])
            ckpt.match_param_layout(trainer.optimizer)
        except (ValueError, KeyError) as err:
            reporter.message(f"[yellow]note:[/] optimizer state not reused ({err})")
    if isinstance(found.get("epoch"), int):
        trainer.start_step = (found["epoch"] + 1) * data.steps_per_epoch
        with warnings.catch_warnings():  # fast-forwarding the schedule before any optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(trainer.start_step):
                if not isinstance(trainer.scheduler, ReduceLROnPlateau):
                    trainer.scheduler.step()
