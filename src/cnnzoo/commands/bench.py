"""`cnnzoo bench`: side-by-side speed of our models against torchvision's, in one run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from ..data.kinds import spec_list
from ..errors import InvalidArgumentError
from ..files import atomic_write_text
from ._common import Format, print_json


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        quick: bool = typer.Option(False, "--quick", help="a short run (under a minute on a 2-core CPU)"),
        models: Optional[str] = typer.Option(
            None, help="comma-separated main models (default: all registered; --quick: a subset)"),
        device: str = typer.Option("cpu", help="cpu or cuda[:N]"),
        precision: Optional[str] = typer.Option(None, help="fp32 or bf16 (autocast); default: bf16 on CUDA, else fp32"),
        channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last",
                                                     help="default: on for CUDA"),
        compile: Optional[bool] = typer.Option(None, "--compile/--no-compile",
                                               help="torch.compile both sides; default: on for CUDA"),
        compile_backend: str = typer.Option(
            "inductor", help="torch.compile backend; 'eager' checks dynamo's capture without code generation"),
        batch: Optional[int] = typer.Option(None, help="batch for inference and training steps"),
        reps: Optional[int] = typer.Option(None, help="timed repetitions per side (ABBA order)"),
        threads: int = typer.Option(2, help="torch CPU threads"),
        modes: str = typer.Option("infer,train", help="which steps to time: infer, train"),
        fastpath: bool = typer.Option(True, "--fastpath/--no-fastpath",
                                      help="also time the inference fast paths against torchvision eager"),
        loop: bool = typer.Option(True, "--loop/--no-loop",
                                  help="also time our training loop against a plain PyTorch loop"),
        loader: Optional[str] = typer.Option(
            None, "--loader", help="time only the image-folder loader: "
            f"{spec_list(lambda k: not k.in_memory)}, ours against torchvision's "
            "reference pipeline (images/s of ready training batches)"),
        make_folder: int = typer.Option(0, "--make-folder", help="with --loader: first write N photo-like "
                                        "500x375 JPEGs into PATH (kept; existing files are reused)"),
        workers: int = typer.Option(2, "--workers", help="with --loader: DataLoader workers of both sides"),
        images: int = typer.Option(1024, "--images", help="with --loader: images per timed pass"),
        out: Optional[Path] = typer.Option(None, help="also write the JSON result to this file"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
        to_accuracy: Optional[float] = typer.Option(
            None, "--to-accuracy", help="instead: seconds of training to this test accuracy (percent), "
            "our loop against a plain PyTorch loop (needs --data)"),
        data: Optional[str] = typer.Option(None, help="with --to-accuracy: "
                                           f"{spec_list(lambda k: k.in_memory)}"),
        model: str = typer.Option("speednet", help="with --to-accuracy: the model"),
        recipe: Optional[str] = typer.Option(None, help="with --to-accuracy: the recipe (default: the model's)"),
        epochs: Optional[int] = typer.Option(None, help="with --to-accuracy: at most this many epochs"),
        seed: int = typer.Option(0, help="with --to-accuracy: the seed"),
        max_images: Optional[int] = typer.Option(None, help="with --to-accuracy: the first N training images"),
        repeats: int = typer.Option(1, "--repeats", help="with --to-accuracy: race N times from the same start "
                                    "and report medians"),
    ) -> None:
        """Time ours against the reference (same architecture, same weights), interleaved;
        print images/s, the ratio, the multiply-add rate and (on CUDA) the MFU. With
        --to-accuracy: seconds of training to a test accuracy, ours against a plain loop."""
        if to_accuracy is None:  # the to-accuracy bench times training as `cnnzoo train` runs it
            _passive_openmp()
        if loader is not None:
            from ..bench.loader_bench import run_loader_cli

            res, text = run_loader_cli(loader, make=make_folder, device=device, batch=batch,
                                       workers=workers, images=images, reps=reps)
            if out is not None:
                atomic_write_text(out, json.dumps(res, indent=2, default=str))
            print_json(res) if fmt is Format.json else print(text)
            return
        if to_accuracy is not None or data is not None:
            _to_accuracy(to_accuracy, data, model=model, recipe=recipe, epochs=epochs, seed=seed,
                         max_images=max_images, device=device, threads=threads, out=out, fmt=fmt,
                         repeats=repeats)
            return
        # here, not at the top: every CLI start loads commands/, only `bench` needs the harness
        from ..bench import format_report, run, settings_from

        mode_list = tuple(m.strip() for m in modes.split(",") if m.strip())
        bad = [m for m in mode_list if m not in ("infer", "train")]
        if bad or not mode_list:
            raise InvalidArgumentError(f"--modes takes infer and/or train, got {modes!r}")
        s = settings_from(quick=quick, device=device, precision=precision,
                          channels_last=channels_last, compile=compile, batch=batch, reps=reps,
                          threads=threads, compile_backend=compile_backend)
        names = [m.strip() for m in models.split(",") if m.strip()] if models else None
        res = run(settings=s, models=names, quick=quick, modes=mode_list, fastpath=fastpath,
                  loop=loop, progress=lambda m: print(m, file=sys.stderr, flush=True))
        _emit(res, out, fmt, format_report)


def _to_accuracy(target: float | None, data: str | None, *, model: str, recipe: str | None,
                 epochs: int | None, seed: int, max_images: int | None, device: str, threads: int,
                 out: Path | None, fmt: Format, repeats: int = 1) -> None:
    if target is None or data is None:
        raise InvalidArgumentError("--to-accuracy A and --data SPEC go together "
                                   "(e.g. cnnzoo bench --to-accuracy 99 --data mnist:PATH)")
    if threads < 1:
        raise InvalidArgumentError(f"--threads must be >= 1, got {threads}")
    import torch

    from ..bench.to_accuracy import format_to_accuracy, to_accuracy

    if device == "cpu":
        torch.set_num_threads(threads)
    res = to_accuracy(data=data, target=target, model_name=model, recipe_name=recipe, epochs=epochs, seed=seed,
                      max_images=max_images, device=device, repeats=repeats,
                      progress=lambda m: print(m, file=sys.stderr, flush=True))
    _emit(res, out, fmt, format_to_accuracy)


def _emit(res: dict, out: Path | None, fmt: Format, table: Callable[[dict], str]) -> None:
    """The result: to --out as JSON, and on stdout as JSON or the table."""
    if out is not None:
        atomic_write_text(out, json.dumps(res, indent=2, default=str))
    if fmt is Format.json:
        print_json(res)
    else:
        print(table(res))


def _passive_openmp() -> None:
    """Restart this command with OMP_WAIT_POLICY=PASSIVE unless it is set already.

    OpenMP reads it once, when torch loads, so setting it now would be too late. Passive waiting
    threads sleep instead of spinning: on a CPU shared with other work a spinning thread holds a
    core its partner needs and 2-thread steps get up to 20x slower (benchmarks/results/speed.md).
    Only done when this process is the `cnnzoo bench` command line itself.
    """
    if "OMP_WAIT_POLICY" in os.environ or sys.argv[1:2] != ["bench"]:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    sys.stdout.flush(), sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "cnnzoo", *sys.argv[1:]])
