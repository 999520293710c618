"""`cnnzoo train` and `cnnzoo eval`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from ..errors import InvalidArgumentError
from ._model_args import as_model_file, pretrained_choice, pretrained_option, pretrained_tag_option, weights_option
from ._common import Format, make_console, print_json, with_units


def register(app: typer.Typer) -> None:
    _register_train(app)
    _register_eval(app)


def _set_threads(threads: int | None) -> None:
    import torch

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    elif torch.get_num_threads() > 1 and os.getloadavg()[0] >= len(os.sched_getaffinity(0)):
        # On a busy machine several OpenMP threads per process spin against each other
        # (measured here: 7x slower element-wise ops at load 10 on 2 cores); one is faster.
        torch.set_num_threads(1)
        make_console(stderr=True).print(f"[dim]note: busy CPU (load {os.getloadavg()[0]:.1f} on "
                                   f"{len(os.sched_getaffinity(0))} cores): 1 thread; --threads N to override[/]")


def _print_result(con: Console, res: dict) -> None:
    acc, val = res["test_acc"], res.get("val_acc")
    if val is not None:
        con.print(f"validation accuracy {100 * val:.2f}% (top-1 error {res['val_top1_err']:.2f}%) at epoch "
                  f"{res['kept_epoch']}, the epoch kept (keep={res['keep']})", highlight=False)
    con.print(f"[bold]test accuracy {100 * acc:.2f}%[/] (top-1 error {res['test_top1_err']:.2f}%, "
              f"top-5 error {res['test_top5_err']:.2f}%; scored once, on epoch {res['kept_epoch']}'s weights) "
              f"after {res['epochs']} epochs, {res['train_time_s']:.1f}s; model saved to {res['model_file']}"
              if acc is not None else f"no evaluation ran; model saved to {res['model_file']}", highlight=False)


def _val_split(text: str | None) -> float | None:
    """--val-split F (a fraction) or N (a number of images)."""
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v >= 0 or (v >= 1 and not v.is_integer()):
        raise InvalidArgumentError(f"--val-split takes a fraction 0 < F < 1, a number of images N >= 1, or 0 "
                                   f"(no validation split), got {text!r}")
    return v


def _register_train(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        model: Optional[str] = typer.Argument(None, help="model name (see `cnnzoo list`); optional with --resume"),
        data: Optional[str] = typer.Option(None, "--data", help="mnist:PATH, cifar10:PATH, cifar100:PATH, "
                                           "folder:PATH, or embedded (default: the built-in MNIST subset)"),
        recipe: Optional[str] = typer.Option(None, "--recipe", help="lenet, alexnet, vgg, googlenet, "
                                             "cifar_resnet, resnet, fast (default: the model's paper recipe)"),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="number of epochs (replaces a recipe's iterations)"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="global batch size"),
        lr: Optional[float] = typer.Option(None, "--lr", help="base learning rate"),
        val_split: Optional[str] = typer.Option(None, "--val-split", help="validation held out of the training "
                                                "set: a fraction F or N images, stratified, fixed seed; 0: none "
                                                "(default: the recipe's val_split, 0.1; folders use val/)"),
        sets: Optional[List[str]] = typer.Option(None, "--set", help="override any recipe field: key=value (repeatable)"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML file of recipe fields"),
        out: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/MODEL-TIME)"),
        resume: Optional[Path] = typer.Option(None, "--resume", help="continue a run: its folder (or a torch "
                                              ".pt/.pth checkpoint, read with weights_only=True)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace the run already in --out "
                                       "(refused without it)"),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: cuda if available)"),
        compile: bool = typer.Option(False, "--compile", help="torch.compile the model"),
        accum: Optional[int] = typer.Option(None, "--accum-steps", help="gradient accumulation steps"),
        sync_bn: bool = typer.Option(False, "--sync-bn", help="SyncBatchNorm across processes (torchrun)"),
        deterministic: bool = typer.Option(False, "--deterministic", help="deterministic algorithms: same seed, same weights"),
        seed: int = typer.Option(0, "--seed"),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for PyTorch (default: its own choice)"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json (the result, on stdout)"),
        pretrained: bool = pretrained_option(), pretrained_tag: Optional[str] = pretrained_tag_option(),
        weights: Optional[Path] = weights_option(),
        list_fields: bool = typer.Option(False, "--list-fields", help="list every --set field (type, default, "
                                         "meaning) and exit"),
    ) -> None:
        """Train a model on real data with its paper's recipe; checkpoints every epoch (resumable).

        Writes checkpoint.safetensors (full state, for --resume), model.safetensors (weights and
        record, for eval/predict/export), metrics.csv and training_curves.png into --out, which
        must not hold another run (--overwrite replaces it) and is locked while training.
        Ctrl-C saves the state at the current step: continue with --resume. Under torchrun it
        trains with DistributedDataParallel (only rank 0 writes)."""
        if list_fields:
            return _print_fields(fmt)
        from ..train.recipes import parse_sets
        from ..train.run import fit
        from ._progress import ConsoleReporter

        overrides = parse_sets(sets)
        _set_threads(threads)
        for key, val in (("batch_size", batch_size), ("lr", lr), ("accum_steps", accum),
                         ("val_split", _val_split(val_split))):
            if val is not None:
                overrides[key] = val
        if compile:
            overrides["compile"] = True
        if sync_bn:
            overrides["sync_bn"] = True
        con = make_console(stderr=True) if fmt is Format.json else make_console()
        rep = ConsoleReporter(con, progress=progress and con.is_terminal)
        res = fit(model, data=data, recipe=recipe, overrides=overrides, config=str(config) if config else None,
                  out=out, resume=resume, device=device, seed=seed, deterministic=deterministic,
                  reporter=rep, epochs=epochs, overwrite=overwrite,
                  pretrained=pretrained_choice(pretrained, pretrained_tag, weights, model))  # a NaN loss raises NonFiniteLossError: exit 1
        if res is None:
            return
        if fmt is Format.json:
            print_json(with_units(res))
            return
        _print_result(con, res)


def _print_fields(fmt: Format) -> None:
    from rich.table import Table

    from ..train.recipes import fields_table

    rows = fields_table()
    if fmt is Format.json:
        return print_json(rows)
    t = Table(title="recipe fields: --set FIELD=VALUE (repeatable), or --config FILE.yaml")
    for col in ("field", "type", "default", "meaning"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["field"], r["type"], r["default"], r["meaning"])
    make_console().print(t)


def _register_eval(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        checkpoints: List[Path] = typer.Argument(..., help="model file(s) written by `cnnzoo train` (or run "
                                                 "folders); several: an ensemble"),
        data: Optional[str] = typer.Option(None, "--data", help="data spec (default: the one it was trained on)"),
        ten_crop: bool = typer.Option(False, "--ten-crop", help="the papers' 10-crop testing (corners, centre, mirrors); "
                                      "refused on digits, where a mirror image is another digit"),
        allow_mirror: bool = typer.Option(False, "--allow-mirror", help="--ten-crop even on data that is not "
                                          "mirror-symmetric (MNIST)"),
        combine: str = typer.Option("mean", "--combine", help="ensembles: mean (of the softmax, the papers' way), "
                                    "logits (their mean) or vote"),
        plot_confusion: Optional[Path] = typer.Option(None, "--plot-confusion", help="write the confusion matrix PNG here"),
        device: Optional[str] = typer.Option(None, "--device"),
        batch_size: int = typer.Option(500, "--batch-size"),
        amp: str = typer.Option("auto", "--amp", help="auto (bf16 on CUDA, AMX CPUs, and avx512_bf16 CPUs at batch >= 64), bf16 or off"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
        pretrained: bool = pretrained_option(), pretrained_tag: Optional[str] = pretrained_tag_option(),
        weights: Optional[Path] = weights_option(),
    ) -> None:
        """Top-1/top-5 error (centre crop or 10-crop), per-class accuracy and a confusion matrix;
        with several models, each member's errors and their ensemble's."""
        if amp not in ("auto", "bf16", "off"):
            raise InvalidArgumentError(f"--amp takes auto, bf16 or off, got {amp!r}")
        if ten_crop and not allow_mirror:
            _refuse_mirrors(data, checkpoints)
        if len(checkpoints) > 1:
            if plot_confusion is not None:
                raise InvalidArgumentError("--plot-confusion takes one model file, not an ensemble")
            from ..train.ensemble_eval import evaluate_ensemble

            res = evaluate_ensemble(checkpoints, data, combine=combine, ten_crop=ten_crop, device=device,
                                    batch_size=batch_size, amp=amp)
            print_json(with_units(res)) if fmt is Format.json else _print_ensemble(res)
            return
        with as_model_file(checkpoints[0], pretrained_choice(pretrained, pretrained_tag, weights,
                                                                          checkpoints[0])) as path:
            _eval_one(path, data, ten_crop=ten_crop, plot_confusion=plot_confusion, device=device,
                      batch_size=batch_size, amp=amp, fmt=fmt)


def _refuse_mirrors(data: str | None, checkpoints: List[Path]) -> None:
    from ..modelfile import read_record
    from ..data.nature import mirror_problem

    spec = data if data is not None else read_record(checkpoints[0]).get("data")
    problem = mirror_problem(spec)
    if problem is not None:
        raise InvalidArgumentError(f"--ten-crop averages mirrored views, and {problem} (see "
                                   "docs/training.md); --allow-mirror forces it")


def _print_ensemble(res: dict) -> None:
    from rich.table import Table

    t = Table(title=f"ensemble on {res['data']} ({res['images']} images, {res['view']}, {res['precision']}, "
                    f"combine={res['combine']})")
    for col in ("model file", "model", "top-1 error", "top-5 error"):
        t.add_column(col, justify="left" if col.startswith("model") else "right")
    for m in res["members"]:
        t.add_row(m["model_file"], m["model"] or "", f"{m['top1_err']:.2f}%", f"{m['top5_err']:.2f}%")
    e = res["ensemble"]
    t.add_row("[bold]ensemble[/]", f"{len(res['members'])} members", f"[bold]{e['top1_err']:.2f}%[/]",
              f"{e['top5_err']:.2f}%")
    con = make_console()
    con.print(t)
    con.print(f"members' mean top-1 error {res['members_mean_top1_err']:.2f}%, best member "
              f"{res['best_member_top1_err']:.2f}%, ensemble {e['top1_err']:.2f}%", highlight=False)


def _eval_one(checkpoint: Path, data: str | None, *, ten_crop: bool, plot_confusion: Path | None,
              device: str | None, batch_size: int, amp: str, fmt: Format) -> None:
    from ..train.evaluation import evaluate_file
    from ..train.logs import plot_confusion as plot

    res = evaluate_file(checkpoint, data, ten_crop=ten_crop, device=device, batch_size=batch_size, amp=amp)
    if plot_confusion is not None:
        plot(plot_confusion, res["confusion"], res["classes"], f"{res['model']} on {res['data']} ({res['view']})")
        res["confusion_png"] = str(plot_confusion)
    if fmt is Format.json:
        print_json(with_units(res))
        return
    from rich.table import Table

    con = make_console()
    con.print(f"[bold]{res['model']}[/] on {res['data']} ({res['images']} images, {res['view']}, {res['precision']}): "
              f"top-1 error {res['top1_err']:.2f}%, top-5 error {res['top5_err']:.2f}%", highlight=False)
    t = Table(title="per-class accuracy")
    t.add_column("class")
    t.add_column("accuracy", justify="right")
    for c, a in res["per_class_acc"].items():
        t.add_row(c, f"{100 * a:.2f}%")
    con.print(t)
    if plot_confusion is not None:
        con.print(f"confusion matrix: {plot_confusion}")
