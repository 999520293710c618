"""`fit`: a whole training run, in named steps.

    plan    (plan.py)   model, data spec, recipe with overrides, or a resumed run's own
    data    (feed.py)   the splits, how images enter the model, the run length
    build   (build.py)  model, optimizer, schedule, DDP/compile, resumed state
    loop    (loop.py)   epochs: train, evaluate, checkpoint + model file, logs (logs.py)
    result              the final metrics and output paths

Used by `cnnzoo train` and callable from Python:

    from cnnzoo.train import fit
    result = fit("lenet5", data="mnist:../shared/data/mnist", recipe="lenet", out="runs/lenet5")

Every input error (model, recipe, data, batch size) is raised before anything is written.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch

from ..display import Record
from ..errors import CnnzooError, InvalidArgumentError
from ..results import scores
from ..runfolder import MODEL_FILE, RunFolderError, open_run_folder, restore_replaced, unlock
from ..signals import Stopped, name
from .build import build_trainer
from .distributed import DistInfo, barrier, broadcast_flag, cleanup, init_distributed
from .engine import NonFiniteLossError, TrainingInterrupted, precision_name, set_deterministic
from .feed import Feed, RunData, load_run_data
from .logs import RunLogs
from .loop import LoopState, TrainingRun, train_epochs
from .plan import Plan, resolve_plan
from .recipes import Recipe
from .reporter import Reporter


def fit(model_name: str | None = None, *, data: str | None = None, recipe: str | Recipe | None = None,
        overrides: dict[str, Any] | None = None, config: str | None = None, out: str | Path | None = None,
        resume: str | Path | None = None, device: str | None = None, seed: int = 0,
        deterministic: bool = False, reporter: Reporter | None = None,
        epochs: int | None = None, overwrite: bool = False,
        pretrained: bool | str = False) -> dict | None:
    """Train `model_name` on `data` with `recipe`; returns the final metrics and output paths
    (None on ranks other than 0 under torchrun).

    `resume` is a run folder (or its checkpoint.safetensors): the run continues at its step
    with its recipe, data and model; `epochs` may extend it. A torch.save checkpoint
    (.pt/.pth, e.g. from torchvision's reference train.py) is accepted as `resume` too: its
    'model' (and 'optimizer' when compatible) are loaded with weights_only=True.
    `reporter` receives messages and progress (the CLI's draws on the terminal).

    `out` must not hold another run unless `overwrite` (its files are then replaced, once this
    run has written its first checkpoint); it is locked while the run trains. A stop signal
    (Ctrl-C, SIGTERM, SIGHUP) saves the state at the current step (resumable) and raises
    TrainingInterrupted, a KeyboardInterrupt whose `signum` names the signal. `pretrained`
    starts from published ImageNet weights (a new classifier for the data's classes), as
    create_model(pretrained=...) gives them."""
    info, dev = init_distributed(device)
    rep = (reporter or Reporter()) if info.is_main else Reporter()  # only rank 0 talks
    try:
        plan = resolve_plan(model_name=model_name, data=data, recipe=recipe, overrides=overrides,
                            config=config, out=out, resume=resume, seed=seed,
                            deterministic=deterministic, epochs=epochs, overwrite=overwrite)
        plan.pretrained = pretrained if resume is None else False
        if resume is None:
            plan.pretrained_stats = pretrained
        return _train(plan, info=info, device=dev, reporter=rep)
    finally:
        cleanup(info)


def _train(plan: Plan, *, info: DistInfo, device: torch.device, reporter: Reporter) -> dict | None:
    set_deterministic(plan.seed, plan.deterministic, device)
    # data first: every input error surfaces before the model is built or anything is written
    data = load_run_data(plan, world=info.world, device=device)
    _check_not_complete(plan, data)
    out_dir = (Path(plan.out) if plan.out is not None
               else Path("runs") / f"{plan.model_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    lock = _open_run_folder(plan, out_dir, info, device, reporter)
    run: TrainingRun | None = None
    try:
        trainer = build_trainer(plan=plan, data=data, info=info, device=device, reporter=reporter)
        logs = RunLogs(out_dir, enabled=info.is_main, title=f"{plan.model_name} on {data.spec}",
                       label_smoothing=plan.recipe.label_smoothing)
        feed = Feed(data, recipe=plan.recipe, seed=plan.seed, info=info, device=device)
        run = TrainingRun(plan=plan, data=data, trainer=trainer, feed=feed, logs=logs, out_dir=out_dir,
                          info=info, device=device, reporter=reporter)
        state = train_epochs(run)
    except BaseException as err:
        _ended_early(err, run, out_dir, info, reporter)
        raise
    finally:
        if lock is not None:
            unlock(lock)
    # under torchrun only rank 0 reports; a Record shows as a table in a notebook
    return Record(_result(run, state), f"{plan.model_name} trained") if info.is_main else None


def _ended_early(err: BaseException, run: TrainingRun | None, out_dir: Path, info: DistInfo,
                 reporter: Reporter) -> None:
    """A run that ends before its first checkpoint puts back the run `--overwrite` was replacing
    and says truthfully what is kept (a NaN error is raised again with that said)."""
    if (run is not None and run.saved_step is not None) or not info.is_main:
        return
    back = restore_replaced(out_dir)
    kept = (f"and the run --overwrite was replacing is back in {out_dir} as it was" if back
            else "so nothing of it is kept")
    if isinstance(err, NonFiniteLossError):
        raise err.kept(f"before this run's first checkpoint, {kept}") from None
    if isinstance(err, Stopped) and not isinstance(err, TrainingInterrupted):
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            reporter.message(f"stopped by {name(err.signum)} before this run's first checkpoint, {kept}")
    elif back:
        reporter.message(f"[yellow]note:[/] this run wrote no checkpoint: the run --overwrite was "
                         f"replacing is back in {out_dir} as it was")


def _check_not_complete(plan: Plan, data: RunData) -> None:
    """A resumed run that has already reached the requested length would do nothing."""
    if plan.saved_state is not None:
        step = plan.saved_state["step"]
    elif plan.torch_checkpoint is not None and isinstance(plan.torch_checkpoint.get("epoch"), int):
        step = (plan.torch_checkpoint["epoch"] + 1) * data.steps_per_epoch
    else:
        return
    if step >= data.total_steps:
        done = step // data.steps_per_epoch
        raise InvalidArgumentError(
            f"--resume {plan.resume}: the run is already complete at epoch {done} (step {step} of "
            f"{data.total_steps}); nothing to train. To extend it, resume with --epochs M, M > {done}")


def _open_run_folder(plan: Plan, out_dir: Path, info: DistInfo, device: torch.device,
                     reporter: Reporter) -> Path | None:
    """Rank 0 checks, probes and locks the folder; every rank learns whether that worked."""
    lock, err = None, None
    if info.is_main:
        try:
            lock = open_run_folder(out_dir, resumed=Path(plan.resume) if plan.saved_state is not None else None,
                                   overwrite=plan.overwrite, note=reporter.message)
        except CnnzooError as e:
            err = e
    if broadcast_flag(err is not None, info, device):
        raise err if err is not None else RunFolderError(f"rank 0 could not use --out {out_dir} (see its message)")
    barrier(info)
    return lock


def _result(run: TrainingRun, state: LoopState) -> dict:
    """Validation (of the kept epoch) and test (scored once, on the kept weights) side by side."""
    test, data = state.last_test, run.data
    kept = next((r for r in run.trainer.history if r["epoch"] == state.kept_epoch), {})
    return {
        "model": run.plan.model_name, "data": str(data.spec), "recipe": run.plan.recipe.name,
        "epochs": data.epochs, "steps": state.step, "keep": run.plan.recipe.keep, "kept_epoch": state.kept_epoch,
        "val_split": data.split.get("source"), "val_images": len(data.val) if data.val is not None else 0,
        **scores("val", kept.get("val_acc"), kept.get("val_top5")), "test_images": test.get("n"),
        **scores("test", test.get("acc"), test.get("top5")),
        "test_loss": test.get("loss"), "train_time_s": round(state.seconds, 2), "device": str(run.device),
        "world_size": run.info.world, "out": str(run.out_dir), "model_file": str(run.out_dir / MODEL_FILE),
        "skipped_images": state.skipped_images, "input": data.prep.note or "native size",
        "precision": precision_name(run.plan.recipe, run.device),
        "amp_skipped_steps": run.trainer.scaler.skipped_steps(),
    }
