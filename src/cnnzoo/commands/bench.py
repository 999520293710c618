"""`cnnzoo bench models|to-accuracy|loader|mobile`: side-by-side speed, ours against the reference."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from ..data.kinds import spec_list
from ..errors import InvalidArgumentError
from ..files import atomic_write_text
from ..results import to_json
from ._common import Format, print_json
from ._lazy import VerbGroup, group
from ._options import FormatOpt, JsonOpt, OverwriteOpt, bounded, check_out

Device = Annotated[str, typer.Option(help="cpu or cuda[:N]")]
Batch = Annotated[Optional[int], typer.Option(help="images per step", callback=bounded("batch_size"))]
Reps = Annotated[Optional[int], typer.Option(help="timed repetitions per side (ABBA order)",
                                            callback=bounded("repeats"))]
Threads = Annotated[int, typer.Option(help="torch CPU threads", callback=bounded("threads"))]
Out = Annotated[Optional[Path], typer.Option(help="also write the JSON result to this file")]

# The options of the one-verb `cnnzoo bench` before it became a group, by the sub-verb that has them.
MOVED = {"--to-accuracy": "to-accuracy", "--data": "to-accuracy", "--model": "to-accuracy",
         "--recipe": "to-accuracy", "--epochs": "to-accuracy", "--seed": "to-accuracy",
         "--max-images": "to-accuracy", "--repeats": "to-accuracy", "--loader": "loader",
         "--make-folder": "loader", "--workers": "loader", "--images": "loader"}


class BenchGroup(VerbGroup):
    """`cnnzoo bench` with options and no sub-verb was the one-verb bench: exit 2 naming the new."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in ctx.help_option_names):
            sub = next((MOVED[a.split("=")[0]] for a in args if a.split("=")[0] in MOVED), "models")
            raise InvalidArgumentError(
                f"`cnnzoo bench` is a group now: use `cnnzoo bench {sub} ...` (the benchmarks: "
                "bench models, bench to-accuracy A --data SPEC, bench loader folder:PATH)")
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    group(app, "bench", "Time ours against the reference, interleaved: the models, training to an "
          "accuracy, the image-folder loader, the mobile runtimes at batch 1.",
          {"models": models_cmd, "to-accuracy": to_accuracy_cmd, "loader": loader_cmd,
           "mobile": mobile_cmd}, cls=BenchGroup)


def _modes_help() -> str:
    from ..bench.names import MODES

    return "which steps to time: " + " and/or ".join(MODES) + ", comma-separated"


def _precision_help() -> str:
    from ..bench.names import PRECISIONS

    return f"{' or '.join(PRECISIONS)} (autocast); default: bf16 on CUDA, else fp32"


def models_cmd(
    quick: Annotated[bool, typer.Option("--quick", help="a short run (under a minute on a 2-core CPU)")] = False,
    models: Annotated[Optional[str], typer.Option(
        help="comma-separated main models (default: all registered; --quick: a subset)")] = None,
    device: Device = "cpu",
    precision: Annotated[Optional[str], typer.Option(help=_precision_help())] = None,
    channels_last: Annotated[Optional[bool], typer.Option(help="default: on for CUDA")] = None,
    compile: Annotated[Optional[bool], typer.Option(help="torch.compile both sides; default: on for CUDA")] = None,
    compile_backend: Annotated[str, typer.Option(
        help="torch.compile backend; 'eager' checks dynamo's capture without code generation")] = "inductor",
    batch: Batch = None, reps: Reps = None, threads: Threads = 2,
    modes: Annotated[str, typer.Option(help=_modes_help())] = "infer,train",
    fastpath: Annotated[bool, typer.Option(help="also time the inference fast paths against "
                                                "torchvision eager")] = True,
    loop: Annotated[bool, typer.Option(help="also time our training loop against a plain PyTorch loop")] = True,
    out: Out = None, overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Time our models against the reference (same architecture, same weights), interleaved;
    print images/s, the ratio, the multiply-add rate and (on CUDA) the MFU."""
    _check_out(out, overwrite)
    _passive_openmp()
    from ..bench import format_report, run, settings_from

    s = settings_from(quick=quick, device=device, precision=precision, channels_last=channels_last,
                      compile=compile, batch=batch, reps=reps, threads=threads,
                      compile_backend=compile_backend)
    res = run(settings=s, models=_split(models), quick=quick, modes=_split(modes) or (), fastpath=fastpath,
              loop=loop, progress=_say)
    _emit(res, out, fmt, format_report)


def to_accuracy_cmd(
    target: Annotated[float, typer.Argument(metavar="ACCURACY", help="test accuracy to reach, percent")],
    data: Annotated[str, typer.Option(help=spec_list(lambda k: k.in_memory))],
    model: Annotated[Optional[str], typer.Option(help="the model (default: speednet; speednet_fashion "
                                                 "on fashion-mnist)")] = None,
    recipe: Annotated[Optional[str], typer.Option(help="the recipe (default: the model's)")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="at most this many epochs", callback=bounded("epochs"))] = None,
    seed: Annotated[int, typer.Option(help="the seed", callback=bounded("seed"))] = 0,
    max_images: Annotated[Optional[int], typer.Option(help="the first N training images",
                                                      callback=bounded("limit"))] = None,
    repeats: Annotated[int, typer.Option(help="race N times from the same start, report medians",
                                         callback=bounded("repeats"))] = 1,
    device: Device = "cpu", threads: Threads = 2,
    out: Out = None, overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Seconds of training to a test accuracy, our loop against a plain PyTorch loop, interleaved
    epoch by epoch (times training as `cnnzoo train` runs it)."""
    from ..bench.to_accuracy import format_to_accuracy, to_accuracy

    _check_out(out, overwrite)
    _cpu_threads(device, threads)
    res = to_accuracy(data=data, target=target, model_name=model, recipe_name=recipe, epochs=epochs, seed=seed,
                      max_images=max_images, device=device, repeats=repeats, progress=_say)
    _emit(res, out, fmt, format_to_accuracy)


def loader_cmd(
    spec: Annotated[str, typer.Argument(metavar="folder:PATH", help="an image folder (train/CLASS/*.jpg): "
                                                                    f"{spec_list(lambda k: not k.in_memory)}")],
    make_folder: Annotated[int, typer.Option(help="first write N photo-like 500x375 JPEGs into PATH "
                                                  "(kept; existing files are reused)",
                                             callback=bounded("images"))] = 0,
    workers: Annotated[int, typer.Option(help="DataLoader workers of both sides", callback=bounded("workers"))] = 2,
    images: Annotated[int, typer.Option(help="images per timed pass", callback=bounded("limit"))] = 1024,
    device: Device = "cpu", batch: Batch = None, reps: Reps = None,
    out: Out = None, overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Images/s of ready training batches from an image folder: our loader against torchvision's
    reference pipeline."""
    _check_out(out, overwrite)
    _passive_openmp()
    from ..bench.loader_bench import format_loader_report, run_loader_cli

    res, _ = run_loader_cli(spec, make=make_folder, device=device, batch=batch, workers=workers,
                            images=images, reps=reps)
    _emit(res, out, fmt, format_loader_report)


def mobile_cmd(
    models: Annotated[Optional[str], typer.Option(
        help="comma-separated models (default: mobilenet_v1, mobilenet_v2, shufflenet_v2_x1_0, "
             "squeezenet1_1)")] = None,
    reps: Annotated[int, typer.Option(help="timed calls per runtime (ABBA order)")] = 20,
    threads: Annotated[int, typer.Option(help="CPU threads for torch, ONNX Runtime and XNNPACK")] = 2,
    out: Out = None, overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Time one image (batch 1) through eager PyTorch, ONNX Runtime and ExecuTorch with XNNPACK
    (cnnzoo's mobile extra), interleaved; each runtime's logits are checked against eager
    first. Without ExecuTorch its column says so and the other two are timed."""
    _check_out(out, overwrite)
    _passive_openmp()
    from ..bench.mobile_bench import MOBILE_MODELS, bench_mobile, format_mobile

    if reps < 1 or threads < 1:
        raise InvalidArgumentError("--reps and --threads must be >= 1")
    res = bench_mobile(_split(models) or MOBILE_MODELS, reps, threads, progress=_say)
    _emit(res, out, fmt, format_mobile)


def _split(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cpu_threads(device: str, threads: int) -> None:
    if threads < 1:
        raise InvalidArgumentError(f"--threads must be >= 1, got {threads}")
    if device == "cpu":
        import torch

        torch.set_num_threads(threads)


def _check_out(out: Path | None, overwrite: bool) -> None:
    """--out may be written (cnnzoo.outputs), checked before the benchmark runs; _emit writes it
    (an existing file only with --overwrite, which the check let through)."""
    if out is not None:
        check_out(out, overwrite=overwrite)


def _emit(res: dict, out: Path | None, fmt: Format, table: Callable[[dict], str]) -> None:
    """The result: to --out as JSON, and on stdout as JSON or the table."""
    if out is not None:
        atomic_write_text(out, to_json(res))
    if fmt is Format.json:
        print_json(res)
    else:
        print(table(res))


def _passive_openmp() -> None:
    """Restart this command with OMP_WAIT_POLICY=PASSIVE unless it is set already.

    OpenMP reads it once, when torch loads, so setting it now would be too late. Passive waiting
    threads sleep instead of spinning: on a CPU shared with other work a spinning thread holds a
    core its partner needs and 2-thread steps get up to 20x slower (benchmarks/results/speed.md).
    Only done when this process is the `cnnzoo bench` command line itself. (The to-accuracy
    bench times training as `cnnzoo train` runs it, so it keeps the default.)
    """
    if "OMP_WAIT_POLICY" in os.environ or sys.argv[1:2] != ["bench"]:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    sys.stdout.flush(), sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "cnnzoo", *sys.argv[1:]])
