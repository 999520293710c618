"""Step 4 of a training run: the epochs. Each one trains (train_one_epoch), evaluates on the
validation split every `eval_every` epochs and at the end, then saves the full training state
and (when it is the one to keep) the model file and rewrites the logs, so a run stopped at any
moment leaves a usable model and resumes exactly.

Honest evaluation: the plateau schedule and the choice of the kept weights (`keep`: the best
epoch by validation accuracy, or the last) read the validation split only. The test split is
scored once, after the last epoch, on the kept weights; its numbers go into the model record,
the kept epoch's row of metrics.csv and the result.
Checkpoints every `ckpt_every` steps in between hold the state only. A stop signal (Ctrl-C,
SIGTERM, SIGHUP; cnnzoo.signals) is taken between two optimizer steps, at the same step on
every rank (distributed.StopVote), or right after an epoch's end when it came during one: the
state at that step is saved, then TrainingInterrupted goes on up (the CLI exits 128 + the
signal's number) and `--resume` continues exactly. One that comes after the last training
step lets the run finish.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..modelfile import load_state, save_model
from ..precision import LossScaler
from ..results import err_pct, pct, scores
from ..runfolder import CURVES_FILE, METRICS_FILE, MODEL_FILE, drop_replaced, writing
from ..signals import deferred, name
from . import state as ckpt
from .build import Trainer
from .distributed import DistInfo, StopVote, barrier, broadcast_flag
from .engine import StepContext, TrainingInterrupted, evaluate, precision_of, train_one_epoch
from .feed import Feed, RunData
from .logs import RunLogs
from .plan import Plan
from .reporter import Reporter


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
    best: dict = field(default_factory=dict)  # the best epoch by validation: epoch, step, acc, top5, loss


@dataclass
class LoopState:
    """Where the loop is: the global step, the latest validation metrics, the best epoch by
    validation so far, the final test metrics, images skipped as corrupt."""

    step: int
    last_val: dict = field(default_factory=dict)
    last_test: dict = field(default_factory=dict)  # the test split, scored once at the end
    kept_epoch: int | None = None
    skipped_images: int = 0
    skipped_named: int = 0  # how many skipped paths were printed (the first 5 of the run)
    progress: bool = False  # the same on every rank: progress costs a collective
    started: float = field(default_factory=time.perf_counter)
    plotted: float = field(default_factory=time.perf_counter)  # when training_curves.png was last drawn
    plotted_rows: int = 0  # ... and how many epochs it showed
    seconds: float = 0.0


def save_checkpoint(run: TrainingRun, *, step: int, final_metrics: dict | None = None) -> None:
    """Rank 0 writes the training state (with the validation split and the best epoch so far);
    with `final_metrics` the model file too. Every rank calls it: their random states are
    gathered first."""
    rng = ckpt.rank_rng_states(run.info, run.device)
    if not run.info.is_main:
        run.saved_step = step  # every rank knows the run's last checkpoint
        return
    plan, data, t = run.plan, run.data, run.trainer
    record = {"model": plan.model_name, "data": str(data.spec), "seed": plan.seed,
              "deterministic": plan.deterministic, "recipe": plan.recipe.to_dict(),
              "pretrained": plan.pretrained_stats,
              # what amp/channels_last "auto" resolved to, kept on resume (the rule may change)
              "precision": {"amp": precision_of(plan.recipe, run.device),
                            "channels_last": "on" if t.channels_last else "off"}}
    with writing("training checkpoint", run.out_dir, run.saved_step):
        ckpt.save_state(run.out_dir, model=t.model, optimizer=t.optimizer, scheduler=t.scheduler,
                        epoch=step // data.steps_per_epoch, step=step, rng=rng,
                        extra={"run": record, "history": t.history, "split": data.split, "best": run.best,
                               "amp_scaler": t.scaler.state_dict()})
    first, run.saved_step = run.saved_step is None, step
    if first:  # the run --overwrite replaces was kept until this run had a checkpoint of its own
        drop_replaced(run.out_dir)
    if final_metrics is not None:
        with writing("model file", run.out_dir, run.saved_step):
            save_model(run.out_dir / MODEL_FILE, t.model, recipe=plan.recipe.to_dict(),
                       data=str(data.spec), metrics=final_metrics, classes=list(data.classes),
                       preprocess=data.prep.to_record(), step=step, split=_split_summary(data.split))


def train_epochs(run: TrainingRun) -> LoopState:
    """Train from the trainer's start step to the end of the run."""
    plan, data, t = run.plan, run.data, run.trainer
    ctx = StepContext(recipe=plan.recipe, optimizer=t.optimizer, scheduler=t.scheduler, device=run.device,
                      info=run.info, prep=run.feed.train_prep, channels_last=t.channels_last,
                      total_steps=data.total_steps, steps_per_epoch=data.steps_per_epoch,
                      on_step_checkpoint=lambda s: save_checkpoint(run, step=s), scaler=t.scaler)
    world = run.info.world
    run.reporter.message(
        f"training [bold]{plan.model_name}[/] on {data.spec} ({len(data.train)} train / "
        f"{len(data.val) if data.val is not None else 0} validation / {len(data.test)} test images, "
        f"{len(data.classes)} classes) with recipe [bold]{plan.recipe.name}[/]: "
        f"{data.epochs} epochs x {data.steps_per_epoch} steps of {plan.recipe.batch_size} on {run.device}"
        + (f" x {world} processes" if world > 1 else "") + f"; output in {run.out_dir}")
    # Progress reads metrics summed over all ranks: an all-reduce that every rank must join, so
    # every rank follows rank 0's choice (only rank 0 has a terminal to draw on).
    state = LoopState(step=t.start_step,
                      progress=broadcast_flag(run.reporter.wants_progress, run.info, run.device))
    run.saved_step = t.start_step if plan.saved_state is not None else None
    run.best = dict((plan.saved_state or {}).get("best") or {})
    run.reporter.message(f"[dim]{data.split['note']}[/]")
    # stop signals are taken between two steps from here to the end, the save included
    with deferred(escalate=not run.info.enabled) as asked:
        try:
            ctx.stop_requested = vote = StopVote(run.info, asked)
            _epochs(run, ctx, state, vote)
        except TrainingInterrupted as stop:
            _save_interrupted(run, stop)
            raise
        except KeyboardInterrupt:  # a second Ctrl-C: at once, maybe in the middle of a save
            _say(run, f"stopped at once; {_kept(run)}")
            raise
        finally:
            run.reporter.run_ends()
            if run.info.is_main and len(run.trainer.history) > state.plotted_rows:
                with contextlib.suppress(Exception):  # stopped early: best-effort curves, never masking why
                    _write_logs(run, state)
            run.logs.close()
        if asked():
            _say(run, f"{name(asked())} came after the last training step: the run finished first")
    return state


def _epochs(run: TrainingRun, ctx: StepContext, state: LoopState, vote: StopVote) -> None:
    """The epochs and the final test; a stop asked during an epoch's end (validation, its save)
    is taken right after it, once every rank agrees."""
    data = run.data
    for epoch in range(run.trainer.start_step // data.steps_per_epoch, data.epochs):
        if state.step >= data.total_steps:
            break
        _train_epoch(run, ctx=ctx, epoch=epoch, state=state)
        if state.step < data.total_steps:
            signum = vote()
            if signum:
                raise TrainingInterrupted(state.step, signum)
    vote.close()
    state.seconds = time.perf_counter() - state.started
    _final_test(run, state)


def _save_interrupted(run: TrainingRun, stop: TrainingInterrupted) -> None:
    """The state at the step a stop signal was taken (unless the epoch's end just saved it)."""
    run.reporter.run_ends()
    if run.saved_step != stop.step:
        save_checkpoint(run, step=stop.step)
    said = "interrupted" if stop.signum == signal.SIGINT else f"stopped by {name(stop.signum)}"
    _say(run, f"{said} at step {stop.step}; the state is saved: resume with --resume {run.out_dir}")


def _kept(run: TrainingRun) -> str:
    if run.saved_step is None:
        return "no checkpoint of this run was written yet"
    return f"the last checkpoint (step {run.saved_step}) is kept: resume with --resume {run.out_dir}"


def _say(run: TrainingRun, text: str) -> None:
    """A last message, never masking why the run ends (SIGHUP: the terminal may be gone)."""
    with contextlib.suppress(OSError):
        run.reporter.message(text)


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
    """Validate when due, then record the epoch: history, checkpoint, model file (if kept), logs."""
    recipe, data, t = run.plan.recipe, run.data, run.trainer
    step = state.step
    row = {"epoch": epoch + 1, "step": step, "lr": t.optimizer.param_groups[0]["lr"],
           "train_loss": tm["loss"], "train_acc": tm["acc"], "img_per_s": tm["img_s"],
           "epoch_time_s": tm["time"]}
    is_last = step >= data.total_steps or epoch + 1 == data.epochs
    improved = False
    if data.val is not None and ((epoch + 1) % recipe.eval_every == 0 or is_last):
        val = _score(run, "val")
        state.last_val = val
        row.update(val_loss=val["loss"], val_acc=val["acc"], val_top5=val["top5"])
        if isinstance(t.scheduler, ReduceLROnPlateau):
            t.scheduler.step(val["acc"])
        improved = not run.best or val["acc"] > run.best["acc"]
        if improved:
            run.best = {"epoch": epoch + 1, "step": step, "acc": val["acc"], "top5": val["top5"], "loss": val["loss"]}
    t.history.append(row)
    keep_this = recipe.keep == "last" or data.val is None or improved or not run.best
    save_checkpoint(run, step=step, final_metrics=_kept_metrics(row, epoch + 1) if keep_this else None)
    # the curves (0.4 s a PNG) at most every 30 s: short epochs would spend a fifth of the run
    # drawing; the last epoch's are drawn by _final_test, with the test score
    _write_logs(run, state, plot=not is_last and time.perf_counter() - state.plotted >= 30)
    done = max(1, step - t.start_step)
    eta = (time.perf_counter() - state.started) / done * (data.total_steps - step)
    run.reporter.message(
        f"epoch {epoch + 1:>3}/{data.epochs}  loss {tm['loss']:.4f}  train acc {100 * tm['acc']:6.2f}%"
        + (f"  val acc {100 * row['val_acc']:6.2f}%" if "val_acc" in row else "")
        + ("  (best, kept)" if improved and recipe.keep == "best" else "")
        + f"  {tm['img_s']:,.0f} img/s  {tm['time']:.1f}s" + (f"  ETA {eta:.0f}s" if not is_last else "")
        + _skipped_note(t.scaler)
        + (f"  (train loss/acc over steps {tm['partial_from'] + 1}-{data.steps_per_epoch} only: resumed "
           "mid-epoch)" if tm.get("partial_from") else ""))


def _skipped_note(scaler: LossScaler) -> str:
    """fp16: the optimizer steps the gradient scaler skipped so far (inf/NaN gradients)."""
    n = scaler.skipped_steps() if scaler.enabled else 0
    return f"  fp16: {n} step(s) skipped by the gradient scaler so far" if n else ""


def _write_logs(run: TrainingRun, state: LoopState, plot: bool = True) -> None:
    with writing(f"logs ({METRICS_FILE}, {CURVES_FILE})", run.out_dir, run.saved_step):
        run.logs.epoch_done(run.trainer.history, plot=plot)
    if plot:
        state.plotted, state.plotted_rows = time.perf_counter(), len(run.trainer.history)


def _score(run: TrainingRun, split: str) -> dict:
    t = run.trainer
    return evaluate(t.train_model, run.feed.eval_batches(split), device=run.device,
                    num_classes=len(run.data.classes), prep=run.feed.eval_prep, recipe=run.plan.recipe,
                    channels_last=t.channels_last, info=run.info)


def _kept_metrics(row: dict, epochs: int, test: dict | None = None) -> dict:
    """The model record's metrics: the kept epoch's train and validation numbers (and test, once scored)."""
    test = test or {}
    return {"train_loss": row["train_loss"], "train_acc_pct": pct(row["train_acc"]), "val_loss": row.get("val_loss"),
            **scores("val", row.get("val_acc"), row.get("val_top5")), "test_loss": test.get("loss"),
            **scores("test", test.get("acc"), test.get("top5")), "kept_epoch": row["epoch"], "epochs": epochs,
            "steps": row["step"]}


def _final_test(run: TrainingRun, state: LoopState) -> None:
    """After the last epoch: put the kept weights back (best by validation, from the model file
    rank 0 wrote), score the test split once, and record it in the model file and metrics.csv."""
    plan, data, t = run.plan, run.data, run.trainer
    kept = run.best.get("epoch") if plan.recipe.keep == "best" and data.val is not None else None
    last = t.history[-1]["epoch"] if t.history else None
    barrier(run.info)
    if kept is not None and kept != last:
        t.model.load_state_dict(load_state(run.out_dir / MODEL_FILE))
    state.kept_epoch = kept if kept is not None else last
    state.last_test = _score(run, "test")
    row = next((r for r in t.history if r["epoch"] == state.kept_epoch), None)
    if row is None:  # no epoch trained in this call
        return
    for r in t.history:  # an extended run's earlier test numbers were of other weights
        for k in ("test_loss", "test_acc", "test_top5"):
            r.pop(k, None)
    test = state.last_test
    row.update(test_loss=test["loss"], test_acc=test["acc"], test_top5=test["top5"])
    if run.info.is_main:
        with writing("model file", run.out_dir, run.saved_step):
            save_model(run.out_dir / MODEL_FILE, t.model, recipe=plan.recipe.to_dict(),
                       data=str(data.spec), metrics=_kept_metrics(row, last, test), classes=list(data.classes),
                       preprocess=data.prep.to_record(), step=row["step"], split=_split_summary(data.split))
        _write_logs(run, state)
    which = ("the last epoch" if kept is None or kept == last else f"epoch {kept}, the best by validation")
    run.reporter.message(
        f"test (scored once, on the weights of {which}): acc {100 * test['acc']:.2f}%, top-1 error "
        f"{err_pct(test['acc']):.2f}%, top-5 error {err_pct(test['top5']):.2f}% ({test['n']} images)"
        + _skipped_note(t.scaler).replace("so far", "in all"))


def _split_summary(split: dict) -> dict:
    """Where validation came from, for the model record (the indices stay in the checkpoint)."""
    return {k: (len(v) if k == "val_index" else v) for k, v in split.items() if k != "note"}
