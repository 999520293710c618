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

import time
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from .build import _check_fits, build_trainer  # noqa: F401  (_check_fits: tests import it from here)
from .distributed import DistInfo, barrier, cleanup, init_distributed
from .engine import set_deterministic
from .evaluation import evaluate_file  # noqa: F401  (public here, as before the split)
from .feed import Feed, load_data, load_run_data  # noqa: F401
from .logs import RunLogs
from .loop import LoopState, TrainingRun, error_pct, train_epochs
from .plan import Plan, resolve_plan
from .recipes import Recipe
from .reporter import Reporter

MODEL_FILE = ckpt.MODEL_FILE


def fit(model_name: str | None = None, *, data: str | None = None, recipe: str | Recipe | None = None,
        overrides: dict[str, Any] | None = None, config: str | None = None, out: str | Path | None = None,
        resume: str | Path | None = None, device: str | None = None, seed: int = 0,
        deterministic: bool = False, reporter: Reporter | None = None,
        epochs: int | None = None) -> dict | None:
    """Train `model_name` on `data` with `recipe`; returns the final metrics and output paths
    (None on ranks other than 0 under torchrun).

    `resume` is a run folder (or its checkpoint.safetensors): the run continues at its step
    with its recipe, data and model; `epochs` may extend it. A torch.save checkpoint
    (.pt/.pth, e.g. from torchvision's reference train.py) is accepted as `resume` too: its
    'model' (and 'optimizer' when compatible) are loaded with weights_only=True.
    `reporter` receives messages and progress (the CLI's draws on the terminal)."""
    info, dev = init_distributed(device)
    rep = (reporter or Reporter()) if info.is_main else Reporter()  # only rank 0 talks
    try:
        plan = resolve_plan(model_name=model_name, data=data, recipe=recipe, overrides=overrides,
                            config=config, out=out, resume=resume, seed=seed,
                            deterministic=deterministic, epochs=epochs)
        return _train(plan, info=info, device=dev, reporter=rep)
    finally:
        cleanup(info)


def _train(plan: Plan, *, info: DistInfo, device: torch.device, reporter: Reporter) -> dict | None:
    set_deterministic(plan.seed, plan.deterministic)
    # data first: every input error surfaces before the model is built or anything is written
    data = load_run_data(plan, world=info.world, device=device)
    trainer = build_trainer(plan=plan, data=data, info=info, device=device, reporter=reporter)
    out_dir = _make_out_dir(plan, info)
    logs = RunLogs(out_dir, enabled=info.is_main, title=f"{plan.model_name} on {data.spec}")
    feed = Feed(data, recipe=plan.recipe, seed=plan.seed, info=info, device=device)
    run = TrainingRun(plan=plan, data=data, trainer=trainer, feed=feed, logs=logs, out_dir=out_dir,
                      info=info, device=device, reporter=reporter)
    state = train_epochs(run)
    return _result(run, state) if info.is_main else None  # under torchrun only rank 0 reports


def _make_out_dir(plan: Plan, info: DistInfo) -> Path:
    out_dir = (Path(plan.out) if plan.out is not None
               else Path("runs") / f"{plan.model_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    barrier(info)
    return out_dir


def _result(run: TrainingRun, state: LoopState) -> dict:
    test, data = state.last_test, run.data
    return {
        "model": run.plan.model_name, "data": str(data.spec), "recipe": run.plan.recipe.name,
        "epochs": data.epochs, "steps": state.step, "test_acc": test.get("acc"),
        "test_top1_err": error_pct(test.get("acc")), "test_top5_err": error_pct(test.get("top5")),
        "test_loss": test.get("loss"), "train_time_s": round(state.seconds, 2), "device": str(run.device),
        "world_size": run.info.world, "out": str(run.out_dir), "model_file": str(run.out_dir / MODEL_FILE),
        "skipped_images": state.skipped_images, "input": data.prep.note or "native size",
    }
