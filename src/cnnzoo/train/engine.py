"""The training engine: one epoch of training (`train_one_epoch`), evaluation (`evaluate`),
and the optimizer and lr schedule a recipe describes. `run.fit` drives them over a whole run.

Speed without surprises:
- in-memory data stays on the training device; a batch is indexed, padded/augmented and
  normalised there (no DataLoader, no host round trip);
- bf16 autocast (fp16 with a gradient scaler where bf16 is slow: T4, V100, Apple GPUs),
  channels_last, fused optimizer kernels on CUDA; optional torch.compile;
- no host synchronisation inside the step: loss, accuracy and a "first non-finite step" marker
  are accumulated in device tensors and read every `log_every` steps and at epoch end.
Safety: a NaN/inf loss raises `NonFiniteLossError` naming the step, before the step's
checkpoint is written, so the last good checkpoint is kept (the CLI exits 1).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from .. import devices
from ..contract import classification_loss, logits_of
from ..errors import JobFailedError
from ..precision import LossScaler, amp_mode, autocast, fast_low_precision
from ..signals import Stopped
from .distributed import DistInfo, all_reduce_sum, broadcast_flag
from .recipes import Recipe


class NonFiniteLossError(JobFailedError):
    """Raised when the loss becomes NaN or infinite (the CLI exits 1, not 2)."""

    KEPT = "so the last good checkpoint is kept"

    def kept(self, what: str) -> NonFiniteLossError:
        """The same error saying `what` is kept instead (a run that has no checkpoint yet)."""
        return NonFiniteLossError(str(self).replace(self.KEPT, what, 1))


class TrainingInterrupted(Stopped):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) taken between two optimizer steps: `step` steps
    are done and the state is consistent."""

    def __init__(self, step: int, signum: int = signal.SIGINT) -> None:
        super().__init__(signum, step)
        self.step = step


# -- pieces built from a recipe -----------------------------------------------------------------
def build_optimizer(model: nn.Module, r: Recipe, device: torch.device) -> torch.optim.Optimizer:
    if r.no_decay_norm_bias:
        decay, no_decay = [], []
        for p in model.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": r.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad],
                   "weight_decay": r.weight_decay}]
    fused = r.fused == "on" or (r.fused == "auto" and devices.fused_optimizer(device))
    kw: dict[str, Any] = {"fused": True} if fused else {}
    if r.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum,
                               nesterov=r.nesterov and r.momentum > 0, **kw)
    return torch.optim.AdamW(groups, lr=r.lr, betas=tuple(r.betas), **kw)


def lr_factor(r: Recipe, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the base lr at a given optimizer step (all schedules but plateau)."""
    warm = int(r.warmup_epochs * steps_per_epoch)
    if r.iterations is not None:  # milestones are in steps of the paper's run length
        scale = total_steps / r.iterations
        milestones = [round(m * scale) for m in r.milestones]
    else:  # milestones are in epochs (may be fractional)
        milestones = [round(m * steps_per_epoch) for m in r.milestones]

    def factor(step: int) -> float:
        if r.schedule == "onecycle":
            up = max(1, int(r.pct_start * total_steps))
            if step < up:
                return 0.04 + 0.96 * step / up  # from lr/25, as in Smith's one-cycle
            t = min(1.0, (step - up) / max(1, total_steps - up))
            return r.final_lr_frac + (1 - r.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * t))
        f = 1.0
        if r.schedule == "cosine":
            t = min(1.0, max(0, step - warm) / max(1, total_steps - warm))
            f = r.final_lr_frac + (1 - r.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * t))
        elif r.schedule == "multistep":
            f = r.gamma ** sum(step >= m for m in milestones)
        elif r.schedule == "exp":
            f = r.gamma ** math.floor(step / steps_per_epoch / r.decay_every)
        if warm and step < warm:
            f *= (step + 1) / warm
        return f

    return factor


def build_scheduler(opt: torch.optim.Optimizer, r: Recipe, steps_per_epoch: int,
                    total_steps: int) -> LRScheduler | ReduceLROnPlateau:
    if r.schedule == "plateau":  # stepped once per epoch with the validation accuracy (loop.py)
        return ReduceLROnPlateau(opt, mode="max", factor=r.gamma, patience=r.patience)
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(r, steps_per_epoch, total_steps))


def loss_fn(out: Any, y: torch.Tensor, r: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits). Models with auxiliary classifiers add w * CE(aux) per head."""
    return classification_loss(out, y, label_smoothing=r.label_smoothing, aux_weight=r.aux_weight)


def step_batch(r: Recipe) -> int:
    """Images per forward pass (a micro-batch with gradient accumulation): what the precision
    rule weighs."""
    return max(1, r.batch_size // max(1, r.accum_steps))


def precision_of(r: Recipe, device: torch.device) -> str:
    """What the recipe's amp setting means on `device`: "bf16", "fp16" or "off"."""
    return amp_mode(r.amp, device, step_batch(r))


def uses_bf16(r: Recipe, device: torch.device) -> bool:
    """Whether the recipe's amp setting means bf16 autocast on `device`."""
    return precision_of(r, device) == "bf16"


def precision_name(r: Recipe, device: torch.device) -> str:
    """bf16, fp16 or fp32: what results report."""
    mode = precision_of(r, device)
    return "fp32" if mode == "off" else mode


def autocast_ctx(r: Recipe, device: torch.device) -> contextlib.AbstractContextManager:
    return autocast(device, precision_of(r, device))


def loss_scaler(r: Recipe, device: torch.device) -> LossScaler:
    """fp16's gradient scaler (a plain backward and step otherwise)."""
    return LossScaler(device, precision_of(r, device) == "fp16")


def use_channels_last(r: Recipe, device: torch.device) -> bool:
    return r.channels_last == "on" or (r.channels_last == "auto" and fast_low_precision(device, step_batch(r)))


def set_deterministic(seed: int, deterministic: bool, device: torch.device | None = None) -> None:
    import random

    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        if device is None or devices.is_cuda(device):
            torch.backends.cudnn.benchmark = False
    else:  # a deterministic run earlier in this process must not leak into this one
        if torch.are_deterministic_algorithms_enabled():  # the call costs 1.7 s even as a no-op
            torch.use_deterministic_algorithms(False)
        if device is not None:
            devices.set_cudnn_benchmark(device, True)
        elif torch.cuda.is_available():
            torch.backends.cudnn.benchmark = True


# -- one epoch ------------------------------------------------------------------------------------
@dataclass
class StepContext:
    """What train_one_epoch needs besides the model: built once per run."""

    recipe: Recipe
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    info: DistInfo = field(default_factory=DistInfo)
    prep: Callable[[torch.Tensor, int], torch.Tensor] | None = None  # (x, step) -> input batch
    channels_last: bool = False
    on_progress: Callable[[int, dict], None] | None = None  # (steps done this epoch, metrics)
    on_step_checkpoint: Callable[[int], None] | None = None  # (global step) -> save state
    total_steps: int | None = None
    steps_per_epoch: int | None = None
    # checked after each step but an epoch's last: the stop signal asked (0: none), the same on every rank
    stop_requested: Callable[[], int] | None = None
    scaler: LossScaler | None = None  # fp16's gradient scaler (None: a plain backward and step)


PROGRESS_SECONDS = 10.0


def _sync_metrics(acc: torch.Tensor, info: DistInfo) -> dict:
    v = all_reduce_sum(acc.clone(), info).tolist() if info.enabled else acc.tolist()
    loss_sum, correct, n = v[0], v[1], v[2]
    return {"loss": loss_sum / max(n, 1), "acc": correct / max(n, 1), "n": int(n)}


def train_one_epoch(model: nn.Module, batches: Iterable, ctx: StepContext, epoch: int,
                    start_step: int) -> dict:
    """Train over `batches` ((x, y) on the device, one global-batch shard each); `start_step`
    is the global step of the first batch. Returns loss/acc/img/s of the epoch (all ranks)."""
    r, dev = ctx.recipe, ctx.device
    model.train()
    acc = torch.zeros(3, device=dev, dtype=torch.float64)  # loss sum, correct, count
    first_bad = torch.full((), -1, device=dev, dtype=torch.int64)
    bad_input = torch.zeros((), device=dev, dtype=torch.bool)  # a NaN/inf in an input batch
    step = start_step
    t0 = t_line = time.perf_counter()
    # a line every PROGRESS_SECONDS even when log_every steps take longer; one process only, as
    # a progress report all-reduces and ranks' clocks would not agree on when
    timed = ctx.on_progress is not None and not ctx.info.enabled
    seen = 0
    is_ddp = hasattr(model, "no_sync")
    params = [p for p in model.parameters() if p.requires_grad]
    amp = autocast_ctx(r, dev)
    if ctx.scaler is None:  # callers without a checkpoint (bench): one for the run, kept in ctx
        ctx.scaler = loss_scaler(r, dev)
    scaler = ctx.scaler
    for i, (x, y) in enumerate(batches):
        if ctx.total_steps is not None and step >= ctx.total_steps:
            break
        if ctx.prep is not None:
            x = ctx.prep(x, step)
        if ctx.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            bad_input |= ~torch.isfinite(x).all()
        xs, ys = x.chunk(r.accum_steps), y.chunk(r.accum_steps)
        step_loss = torch.zeros((), device=dev, dtype=torch.float32)
        for j, (xm, ym) in enumerate(zip(xs, ys)):
            last = j == len(xs) - 1
            sync = contextlib.nullcontext() if (last or not is_ddp) else model.no_sync()
            with sync:
                with amp:
                    out = model(xm)
                loss, logits = loss_fn(out, ym, r)
                # each micro-batch's mean, weighted by its share of the (local) batch
                scaler.backward(loss * (len(ym) / len(y)))
            with torch.no_grad():
                step_loss += loss.detach() * len(ym)
                acc[1] += (logits.detach().argmax(1) == ym).sum()
        with torch.no_grad():
            acc[0] += step_loss
            acc[2] += len(y)
            bad = ~torch.isfinite(step_loss)
            first_bad.copy_(torch.where(bad & (first_bad < 0), torch.full_like(first_bad, step), first_bad))
        if r.grad_clip:
            scaler.unscale(ctx.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(params, r.grad_clip)
        scaler.step(ctx.optimizer)
        ctx.optimizer.zero_grad(set_to_none=True)
        if ctx.scheduler is not None and not isinstance(ctx.scheduler, ReduceLROnPlateau):
            _schedule_step(ctx.scheduler, scaler.enabled)
        step += 1
        seen += len(y)
        log_now = (i + 1) % max(1, r.log_every) == 0 or (timed and time.perf_counter() - t_line >= PROGRESS_SECONDS)
        ckpt_now = r.ckpt_every and step % r.ckpt_every == 0
        if log_now or ckpt_now:  # the only host syncs of the loop
            check_finite(first_bad, ctx.info, dev, bad_input)
            if ctx.on_progress is not None and log_now:
                m = _sync_metrics(acc, ctx.info)
                m["img_s"] = seen * ctx.info.world / max(time.perf_counter() - t0, 1e-9)
                ctx.on_progress(i + 1, m)
                t_line = time.perf_counter()
            if ckpt_now and ctx.on_step_checkpoint is not None:
                ctx.on_step_checkpoint(step)
        if ctx.stop_requested is not None and not _ends_epoch(step, ctx):
            signum = ctx.stop_requested()
            if signum:
                check_finite(first_bad, ctx.info, dev, bad_input)  # never save a NaN state
                raise TrainingInterrupted(step, signum)
    check_finite(first_bad, ctx.info, dev, bad_input)
    m = _sync_metrics(acc, ctx.info)
    m["time"] = time.perf_counter() - t0
    m["img_s"] = seen * ctx.info.world / max(m["time"], 1e-9)
    m["step"] = step
    return m


def _schedule_step(scheduler: Any, scaled: bool) -> None:
    """The lr schedule follows the global step, an optimizer step the fp16 scaler skipped
    included (PyTorch warns then that the schedule stepped first: that is meant)."""
    import warnings

    if not scaled:
        scheduler.step()
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                category=UserWarning)
        scheduler.step()


def _ends_epoch(step: int, ctx: StepContext) -> bool:
    """An epoch's (or the run's) last step: its end (validation, checkpoint, metrics row) comes
    first, so a stop there is taken after it."""
    return (ctx.total_steps is not None and step >= ctx.total_steps) or \
        (ctx.steps_per_epoch is not None and step % ctx.steps_per_epoch == 0)


def check_finite(first_bad: torch.Tensor, info: DistInfo, dev: torch.device,
                 bad_input: torch.Tensor | None = None) -> None:
    """Raise NonFiniteLossError if a step's loss was NaN/inf, blaming what caused it: the input
    data (NaN/inf values, or a loss already non-finite before any update) or the step size."""
    bad_step = int(first_bad.item())
    if not broadcast_flag(bad_step >= 0, info, dev):
        return
    where = f"at step {bad_step + 1}" if bad_step >= 0 else "on another rank"
    head = (f"the training loss became NaN or infinite {where} (optimizer step {bad_step + 1} of the "
            f"run); stopped without saving, {NonFiniteLossError.KEPT}. ")
    if bad_input is not None and bool(bad_input.item()):
        raise NonFiniteLossError(head + "The input batches themselves hold NaN or infinite values: "
                                 "the data is broken, not the learning rate; check --data")
    if bad_step == 0:
        raise NonFiniteLossError(head + "That is the first step, before any weight update, so the "
                                 "learning rate is not the cause: check the data (constant images, "
                                 "extreme values) and the model's output on it")
    raise NonFiniteLossError(head + "Lower the learning rate (--lr), or set grad_clip "
                             "(--set grad_clip=1.0)")


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, *, device: torch.device, num_classes: int,
             prep: Callable[[torch.Tensor], torch.Tensor] | None = None, recipe: Recipe | None = None,
             channels_last: bool = False, info: DistInfo = DistInfo(), confusion: bool = False) -> dict:
    """Loss, top-1/top-5 accuracy (and the confusion matrix) over `batches`. A batch shaped
    (crops, N, C, H, W) is scored by the mean of the crops' softmax (10-crop testing)."""
    model.eval()
    r = recipe or Recipe()
    amp = autocast_ctx(r, device)
    sums = torch.zeros(4, device=device, dtype=torch.float64)  # loss, top1, top5, n
    cm = torch.zeros(num_classes * num_classes, device=device, dtype=torch.int64) if confusion else None
    k = min(5, num_classes)
    for x, y in batches:
        if prep is not None:
            x = prep(x)
        crops = x.shape[0] if x.dim() == 5 else None
        if crops:
            x = x.flatten(0, 1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with amp:
            out = model(x)
        logits = logits_of(out).float()
        if crops:
            prob = logits.softmax(1).view(crops, -1, logits.shape[1]).mean(0)
            sums[0] += F.nll_loss(prob.clamp_min(1e-12).log(), y, reduction="sum")
            score = prob
        else:
            sums[0] += F.cross_entropy(logits, y, reduction="sum")
            score = logits
        topk = score.topk(k, 1).indices
        sums[1] += (topk[:, 0] == y).sum()
        sums[2] += (topk == y[:, None]).any(1).sum()
        sums[3] += len(y)
        if cm is not None:
            cm += torch.bincount(y * num_classes + topk[:, 0], minlength=num_classes * num_classes)
    all_reduce_sum(sums, info)
    if cm is not None:
        all_reduce_sum(cm, info)
    loss, top1, top5, n = sums.tolist()
    res = {"loss": loss / max(n, 1), "acc": top1 / max(n, 1), "top5": top5 / max(n, 1), "n": int(n)}
    if cm is not None:
        res["confusion"] = cm.view(num_classes, num_classes).cpu()
    return res
