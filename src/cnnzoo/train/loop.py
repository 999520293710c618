"""Step 4 of a training run: the epochs. Each one trains (train_one_epoch), evaluates every
`eval_every` epochs and at the end, then saves the full training state and the model file and
rewrites the logs, so a run stopped at any moment leaves a usable model and resumes exactly.
Checkpoints every `ckpt_every` steps in between hold the state only. Ctrl-C (SIGINT) is
taken between two optimizer steps: the state at that step is saved, then KeyboardInterrupt
goes on up (the CLI exits 130), and `--resume` continues exactly.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator
from pathlib import Path

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..checkpoint import save_model
from . import checkpoint as ckpt
from .build import Trainer
from .distributed import DistInfo, broadcast_flag
from .engine import StepContext, TrainingInterrupted, evaluate, train_one_epoch
from .feed import Feed, RunData
from .logs import RunLogs
from .plan import Plan
from .reporter import Reporter
from .runfolder import writing


@dataclass
class TrainingRun:
    """Everything the loop works with, built by the steps before it."""

    plan: Plan
    data: RunData
    trainer: Trainer
    feed: Feed
    logs: RunLogs
    out_dir: Path
    info: DistInfo
    device: torch.device
    reporter: Reporter
    saved_step: int | None = None  # the step of the last checkpoint written (None: none yet)


@dataclass
class LoopState:
    """Where the loop is: the global step, the latest test metrics, images skipped as corrupt."""

    step: int
    last_test: dict = field(default_factory=dict)
    skipped_images: int = 0
    skipped_named: int = 0  # how many skipped paths were printed (the first 5 of the run)
    progress: bool = False  # the same on every rank: progress costs a collective
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0


def error_pct(acc: float | None) -> float | None:
    return None if acc is None else round(100 * (1 - acc), 4)


def save_checkpoint(run: TrainingRun, *, step: int, final_metrics: dict | None = None) -> None:
    """Rank 0 writes the training state; with `final_metrics` (an epoch's end) the model file too.
    Every rank calls it: their random states are gathered first."""
    rng = ckpt.rank_rng_states(run.info, run.device)
    if not run.info.is_main:
        return
    plan, data, t = run.plan, run.data, run.trainer
    record = {"model": plan.model_name, "data": str(data.spec), "seed": plan.seed,
              "deterministic": plan.deterministic, "recipe": plan.recipe.to_dict()}
    with writing("training checkpoint", run.out_dir, run.saved_step):
        ckpt.save_state(run.out_dir, model=t.model, optimizer=t.optimizer, scheduler=t.scheduler,
                        epoch=step // data.steps_per_epoch, step=step,
                        extra={"run": record, "history": t.history}, rng=rng)
    run.saved_step = step
    if final_metrics is not None:
        with writing("model file", run.out_dir, run.saved_step):
            save_model(run.out_dir / ckpt.MODEL_FILE, t.model, recipe=plan.recipe.to_dict(),
                       data=str(data.spec), metrics=final_metrics, classes=list(data.classes),
                       preprocess=data.prep.to_record(), step=step)


@contextmanager
def _sigint_between_steps(enabled: bool) -> Iterator[Callable[[], bool]]:
    """While training, the first Ctrl-C only asks the loop to stop after the current optimizer
    step (a second one interrupts at once). Yields the "was it asked" check. Left as it is off
    the main thread, under torchrun (every rank would have to stop at the same step) and where
    someone else handles SIGINT."""
    asked = [False]
    if not enabled or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return

    def handler(signum: int, frame: object) -> None:
        if asked[0]:
            raise KeyboardInterrupt
        asked[0] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: asked[0]
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def train_epochs(run: TrainingRun) -> LoopState:
    """Train from the trainer's start step to the end of the run."""
    plan, data, t = run.plan, run.data, run.trainer
    ctx = StepContext(recipe=plan.recipe, optimizer=t.optimizer, scheduler=t.scheduler, device=run.device,
                      info=run.info, prep=run.feed.train_prep, channels_last=t.channels_last,
                      total_steps=data.total_steps, on_step_checkpoint=lambda s: save_checkpoint(run, step=s))
    world = run.info.world
    run.reporter.message(
        f"training [bold]{plan.model_name}[/] on {data.spec} ({len(data.train)} train / {len(data.test)} "
        f"test images, {len(data.classes)} classes) with recipe [bold]{plan.recipe.name}[/]: "
        f"{data.epochs} epochs x {data.steps_per_epoch} steps of {plan.recipe.batch_size} on {run.device}"
        + (f" x {world} processes" if world > 1 else "") + f"; output in {run.out_dir}")
    # Progress reads metrics summed over all ranks: an all-reduce that every rank must join, so
    # every rank follows rank 0's choice (only rank 0 has a terminal to draw on).
    state = LoopState(step=t.start_step,
                      progress=broadcast_flag(run.reporter.wants_progress, run.info, run.device))
    run.saved_step = t.start_step if plan.saved_state is not None else None
    try:
        with _sigint_between_steps(not run.info.enabled) as ctx.stop_requested:
            for epoch in range(t.start_step // data.steps_per_epoch, data.epochs):
                if state.step >= data.total_steps:
                    break
                _train_epoch(run, ctx=ctx, epoch=epoch, state=state)
    except TrainingInterrupted as stop:
        run.reporter.run_ends()
        save_checkpoint(run, step=stop.step)
        run.reporter.message(f"interrupted at step {stop.step}; the state is saved: resume with "
                             f"--resume {run.out_dir}")
        raise KeyboardInterrupt from None
    finally:
        run.reporter.run_ends()
        run.logs.close()
    state.seconds = time.perf_counter() - state.started
    return state


def _train_epoch(run: TrainingRun, *, ctx: StepContext, epoch: int, state: LoopState) -> None:
    data, rep = run.data, run.reporter
    offset = state.step - epoch * data.steps_per_epoch  # > 0 when resumed mid-epoch
    batches, loader = run.feed.train_batches(epoch, offset)
    rep.epoch_begins(epoch=epoch + 1, epochs=data.epochs, steps=data.steps_per_epoch, done=offset)
    if state.progress:
        ctx.on_progress = lambda done, m: rep.epoch_progress(done=offset + done, metrics=m)
    tm = train_one_epoch(run.trainer.train_model, batches, ctx, epoch, state.step)
    state.step = tm["step"]
    rep.epoch_ends()
    if loader is not None and loader.skipped:
        _report_skipped(rep, loader.skipped, state)
    tm["partial_from"] = offset
    _end_epoch(run, epoch=epoch, tm=tm, state=state)


def _report_skipped(rep: Reporter, skipped: list[str], state: LoopState) -> None:
    """Name the run's first 5 unreadable images, and count them all."""
    state.skipped_images += len(skipped)
    for p in skipped[: max(0, 5 - state.skipped_named)]:
        rep.message(f"[yellow]skipped unreadable image[/] {p}")
        state.skipped_named += 1
    rep.message(f"[yellow]skipped {len(skipped)} unreadable image(s) this epoch, "
                f"{state.skipped_images} in all[/]" + (" (the first 5 are named above)"
                                                       if state.skipped_images > 5 else ""))


def _end_epoch(run: TrainingRun, *, epoch: int, tm: dict, state: LoopState) -> None:
    """Evaluate when due, then record the epoch: history, checkpoint, model file, logs, a line."""
    recipe, data, t = run.plan.recipe, run.data, run.trainer
    step = state.step
    row = {"epoch": epoch + 1, "step": step, "lr": t.optimizer.param_groups[0]["lr"],
           "train_loss": tm["loss"], "train_acc": tm["acc"], "img_per_s": tm["img_s"],
           "epoch_time_s": tm["time"]}
    is_last = step >= data.total_steps or epoch + 1 == data.epochs
    if (epoch + 1) % recipe.eval_every == 0 or is_last:
        test = evaluate(t.train_model, run.feed.eval_batches(), device=run.device,
                        num_classes=len(data.classes), prep=run.feed.eval_prep, recipe=recipe,
                        channels_last=t.channels_last, info=run.info)
        state.last_test = test
        row.update(test_loss=test["loss"], test_acc=test["acc"], test_top5=test["top5"])
        if isinstance(t.scheduler, ReduceLROnPlateau):
            t.scheduler.step(test["acc"])
    t.history.append(row)
    test = state.last_test
    metrics = {"train_loss": tm["loss"], "train_acc": tm["acc"], "test_loss": test.get("loss"),
               "test_acc": test.get("acc"), "test_top1_err": error_pct(test.get("acc")),
               "test_top5_err": error_pct(test.get("top5")), "epochs": epoch + 1, "steps": step}
    save_checkpoint(run, step=step, final_metrics=metrics)
    with writing("logs (metrics.csv, training_curves.png)", run.out_dir, run.saved_step):
        run.logs.epoch_done(t.history)
    done = max(1, step - t.start_step)
    eta = (time.perf_counter() - state.started) / done * (data.total_steps - step)
    run.reporter.message(
        f"epoch {epoch + 1:>3}/{data.epochs}  loss {tm['loss']:.4f}  train acc {100 * tm['acc']:6.2f}%"
        + (f"  test acc {100 * test['acc']:6.2f}%" if "test_loss" in row else "")
        + f"  {tm['img_s']:,.0f} img/s  {tm['time']:.1f}s" + (f"  ETA {eta:.0f}s" if not is_last else "")
        + (f"  (train loss/acc over steps {tm['partial_from'] + 1}-{data.steps_per_epoch} only: resumed "
           "mid-epoch)" if tm.get("partial_from") else ""))
