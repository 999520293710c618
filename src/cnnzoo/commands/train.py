"""`cnnzoo train` and `cnnzoo eval`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from ..data.kinds import spec_help, spec_list
from ..errors import InvalidArgumentError
from ._common import Format, make_console, print_json
from ._lazy import verb
from ._model_args import Pretrained, PretrainedTag, Weights, as_model_file, pretrained_choice
from ._options import FormatOpt, JsonOpt, bounded, check_out, choices, combine_option, overwrite_option


def register(app: typer.Typer) -> None:
    verb(app, "train", train_cmd)
    verb(app, "eval", eval_cmd)


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
    acc, val = res["test_acc_pct"], res.get("val_acc_pct")
    if val is not None:
        con.print(f"validation accuracy {val:.2f}% (top-1 error {res['val_top1_err_pct']:.2f}%) at epoch "
                  f"{res['kept_epoch']}, the epoch kept (keep={res['keep']})", highlight=False)
    con.print(f"[bold]test accuracy {acc:.2f}%[/] (top-1 error {res['test_top1_err_pct']:.2f}%, "
              f"top-5 error {res['test_top5_err_pct']:.2f}%; scored once, on epoch {res['kept_epoch']}'s weights) "
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


def _recipe_help() -> str:
    from ..train.recipes import RECIPES

    return f"{choices(RECIPES)} (default: the model's paper recipe)"


def _opt(help: str, *flags: str) -> typer.models.OptionInfo:
    return typer.Option(*flags, help=help)


# train's options, one line each in its signature
OptStr, OptInt, OptFloat, OptPath = Optional[str], Optional[int], Optional[float], Optional[Path]
Model = Annotated[OptStr, typer.Argument(help="model name (see `cnnzoo list`); optional with --resume")]
Data = Annotated[OptStr, _opt(spec_help())]
RecipeName = Annotated[OptStr, _opt(_recipe_help())]
Epochs = Annotated[OptInt, _opt("number of epochs (replaces a recipe's iterations)")]
ValSplit = Annotated[OptStr, _opt("validation held out of the training set: a fraction F or N images, "
                                  "stratified, fixed seed; 0: none (default: the recipe's val_split, 0.1; "
                                  "folders use val/)")]
Sets = Annotated[Optional[List[str]], _opt("override any recipe field: key=value (repeatable; "
                                           "--list-fields lists them)", "--set")]
Resume = Annotated[OptPath, _opt("continue a run: its folder or its training state "
                                 "(checkpoint.safetensors), or a torch .pt/.pth checkpoint, read with "
                                 "weights_only=True")]
Overwrite = Annotated[bool, _opt("replace the run already in --out (refused without it), once this run "
                                  "has written its first checkpoint", "--overwrite")]
Device = Annotated[OptStr, _opt("cpu, cuda, cuda:1, mps (default: auto, cuda > mps > cpu)")]
Compile = Annotated[bool, _opt("torch.compile the model", "--compile")]
Accum = Annotated[OptInt, typer.Option("--accum-steps", help="gradient accumulation steps",
                                       callback=bounded("batch_size"))]
SyncBN = Annotated[bool, _opt("SyncBatchNorm across processes (torchrun)", "--sync-bn")]
Deterministic = Annotated[bool, _opt("deterministic algorithms: same seed, same weights", "--deterministic")]
Threads = Annotated[OptInt, typer.Option(help="CPU threads for PyTorch (default: its own choice)",
                                         callback=bounded("threads"))]
ListFields = Annotated[bool, _opt("list every --set field (type, default, meaning) and exit", "--list-fields")]


def train_cmd(
    model: Model = None, data: Data = None, recipe: RecipeName = None, epochs: Epochs = None,
    batch_size: Annotated[OptInt, typer.Option(help="global batch size", callback=bounded("batch_size"))] = None,
    lr: Annotated[OptFloat, _opt("base learning rate")] = None, val_split: ValSplit = None,
    sets: Sets = None, config: Annotated[OptPath, _opt("YAML file of recipe fields")] = None,
    out: Annotated[OptPath, _opt("output folder (default runs/MODEL-TIME)")] = None,
    resume: Resume = None, overwrite: Overwrite = False, device: Device = None, compile: Compile = False,
    accum: Accum = None, sync_bn: SyncBN = False, deterministic: Deterministic = False,
    seed: Annotated[int, typer.Option(callback=bounded("seed"))] = 0, threads: Threads = None,
    progress: Annotated[bool, _opt("progress bar")] = True, fmt: FormatOpt = Format.table,
    json_flag: JsonOpt = False, pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None,
    weights: Weights = None, list_fields: ListFields = False,
) -> None:
    """Train a model on real data with its paper's recipe; checkpoints every epoch (resumable).

    Writes checkpoint.safetensors (full state, for --resume), model.safetensors (weights and
    record, for eval/predict/export), metrics.csv and training_curves.png into --out, which
    must not hold another run (--overwrite replaces it once the new run has a checkpoint) and
    is locked while training. Ctrl-C, SIGTERM or SIGHUP save the state at the current step
    (exit 130, 143, 129): continue with --resume. Under torchrun it trains with
    DistributedDataParallel (only rank 0 writes; every rank stops at the same step)."""
    if list_fields:
        return _print_fields(fmt)
    from ..train.recipes import parse_sets
    from ..train.run import fit
    from ._progress import ConsoleReporter

    _set_threads(threads)
    flags = {"batch_size": batch_size, "lr": lr, "accum_steps": accum, "val_split": _val_split(val_split),
             "compile": compile or None, "sync_bn": sync_bn or None}
    overrides = {**parse_sets(sets), **{k: v for k, v in flags.items() if v is not None}}
    con = make_console(stderr=True) if fmt is Format.json else make_console()
    res = fit(model, data=data, recipe=recipe, overrides=overrides, config=str(config) if config else None,
              out=out, resume=resume, device=device, seed=seed, deterministic=deterministic,
              reporter=ConsoleReporter(con, progress=progress and con.is_terminal), epochs=epochs,
              overwrite=overwrite, pretrained=pretrained_choice(pretrained, pretrained_tag, weights, model))
    if res is not None:  # a NaN loss raises NonFiniteLossError: exit 1
        print_json(res) if fmt is Format.json else _print_result(con, res)


def _print_fields(fmt: Format) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..train.recipes import fields_table

    rows = fields_table()
    if fmt is Format.json:
        return print_json(rows)
    t = Table(title="recipe fields: --set FIELD=VALUE (repeatable), or --config FILE.yaml")
    for col in ("field", "type", "default", "meaning"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(escape(r[k]) for k in ("field", "type", "default", "meaning")))  # [float, float] is not markup
    make_console().print(t)


def _amp_help() -> str:
    from ..train.recipes import spec

    return (f"{choices(spec('amp')['choices'])}; auto: bf16 on CUDA from compute capability 8.0, AMX "
            "CPUs, and avx512_bf16 CPUs at batch >= 64; fp16 on older CUDA GPUs and mps")


def eval_cmd(
    model_files: Annotated[List[Path], typer.Argument(help="model file(s) written by `cnnzoo train` (or run "
                                                      "folders); several: an ensemble")],
    data: Annotated[Optional[str], typer.Option(help=f"{spec_list()} (default: the one it "
                                                                  "was trained on)")] = None,
    ten_crop: Annotated[bool, typer.Option("--ten-crop", help="the papers' 10-crop testing (corners, centre, "
                                           "mirrors); refused on digits, where a mirror image is another "
                                           "digit")] = False,
    allow_mirror: Annotated[bool, typer.Option("--allow-mirror", help="--ten-crop even on data that is not "
                                               f"mirror-symmetric ({spec_list(lambda k: not k.mirror_safe)})")] = False,
    combine: Annotated[str, combine_option()] = "mean",
    plot_confusion: Annotated[Optional[Path], typer.Option(help="write the confusion matrix PNG here")] = None,
    overwrite: Annotated[bool, overwrite_option("replace --plot-confusion's file if it exists")] = False,
    device: Annotated[Optional[str], typer.Option()] = None,
    batch_size: Annotated[int, typer.Option()] = 500,
    amp: Annotated[str, typer.Option(help=_amp_help())] = "auto",
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
    pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None, weights: Weights = None,
) -> None:
    """Top-1/top-5 error (centre crop or 10-crop), per-class accuracy and a confusion matrix;
    with several models, each member's errors and their ensemble's."""
    from ..train.recipes import spec

    if amp not in spec("amp")["choices"]:
        raise InvalidArgumentError(f"--amp takes {choices(spec('amp')['choices'])}, got {amp!r}")
    if len(model_files) > 1:
        if plot_confusion is not None:
            raise InvalidArgumentError("--plot-confusion takes one model file, not an ensemble")
        from ..train.ensemble_eval import evaluate_ensemble

        res = evaluate_ensemble(model_files, data, combine=combine, ten_crop=ten_crop,
                                allow_mirror=allow_mirror, device=device, batch_size=batch_size, amp=amp)
        print_json(res) if fmt is Format.json else _print_ensemble(res)
        return
    if plot_confusion is not None:  # the output guard, before the work
        check_out(plot_confusion, inputs=model_files, overwrite=overwrite, label="--plot-confusion")
    with as_model_file(model_files[0], pretrained_choice(pretrained, pretrained_tag, weights,
                                                         model_files[0])) as path:
        _eval_one(path, data, ten_crop=ten_crop, allow_mirror=allow_mirror, plot_confusion=plot_confusion,
                  device=device, batch_size=batch_size, amp=amp, fmt=fmt)


def _print_ensemble(res: dict) -> None:
    from rich.table import Table

    t = Table(title=f"ensemble on {res['data']} ({res['images']} images, {res['view']}, {res['precision']}, "
                    f"combine={res['combine']})")
    for col in ("model file", "model", "top-1 error", "top-5 error"):
        t.add_column(col, justify="left" if col.startswith("model") else "right")
    for m in res["members"]:
        t.add_row(m["model_file"], m["model"] or "", f"{m['top1_err_pct']:.2f}%", f"{m['top5_err_pct']:.2f}%")
    e = res["ensemble"]
    t.add_row("[bold]ensemble[/]", f"{len(res['members'])} members", f"[bold]{e['top1_err_pct']:.2f}%[/]",
              f"{e['top5_err_pct']:.2f}%")
    con = make_console()
    con.print(t)
    con.print(f"members' mean top-1 error {res['members_mean_top1_err_pct']:.2f}%, best member "
              f"{res['best_member_top1_err_pct']:.2f}%, ensemble {e['top1_err_pct']:.2f}%", highlight=False)


def _eval_one(model_file: Path, data: str | None, *, ten_crop: bool, allow_mirror: bool,
              plot_confusion: Path | None, device: str | None, batch_size: int, amp: str, fmt: Format) -> None:
    from ..train.evaluation import evaluate_file
    from ..train.logs import plot_confusion as plot

    res = evaluate_file(model_file, data, ten_crop=ten_crop, allow_mirror=allow_mirror, device=device,
                        batch_size=batch_size, amp=amp)
    if plot_confusion is not None:
        plot(plot_confusion, res["confusion"], res["classes"], f"{res['model']} on {res['data']} ({res['view']})")
        res["confusion_png"] = str(plot_confusion)
    if fmt is Format.json:
        print_json(res)
        return
    from rich.table import Table

    con = make_console()
    con.print(f"[bold]{res['model']}[/] on {res['data']} ({res['images']} images, {res['view']}, {res['precision']}): "
              f"top-1 error {res['top1_err_pct']:.2f}%, top-5 error {res['top5_err_pct']:.2f}%", highlight=False)
    t = Table(title="per-class accuracy")
    t.add_column("class")
    t.add_column("accuracy", justify="right")
    for c, a in res["per_class_acc_pct"].items():
        t.add_row(c, f"{a:.2f}%")
    con.print(t)
    if plot_confusion is not None:
        con.print(f"confusion matrix: {plot_confusion}")
