"""Our residual models against torchvision's, side by side, same weights, one process.

    PYTHONPATH=src python benchmarks/residual_speed.py [--repeats 5] [--batch 8] [--write FILE]

For each torchvision-compatible model: torchvision's random-init weights loaded into ours
(strict), eval forward (no_grad) and a train step (forward + backward), batch --batch at
224x224 on CPU (channels_first, float32). Runs alternate ours/theirs; times are medians
after one warm-up; ratio = ours / torchvision (1.00 = same speed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torchvision

import cnnzoo

MODELS = ("resnet50", "resnext50_32x4d", "densenet121")


def step_fns(model, x, train):
    if not train:
        model.eval()

        def fn():
            with torch.no_grad():
                model(x)
    else:
        model.train()

        def fn():
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()
    return fn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--write")
    args = ap.parse_args()
    x = torch.randn(args.batch, 3, 224, 224)
    rows = []
    for name in args.models:
        ref = getattr(torchvision.models, name)()
        ours = cnnzoo.create_model(name)
        ours.load_state_dict(ref.state_dict(), strict=True)
        for mode in ("eval forward", "train step"):
            fa, fb = step_fns(ours, x, mode != "eval forward"), step_fns(ref, x, mode != "eval forward")
            fa(), fb()  # warm-up
            ta, tb = [], []
            for _ in range(args.repeats):  # alternate, so load changes hit both alike
                for f, times in ((fa, ta), (fb, tb)):
                    t = time.perf_counter()
                    f()
                    times.append(time.perf_counter() - t)
            a, b = statistics.median(ta), statistics.median(tb)
            rows.append((name, mode, a, b, a / b))
            print(f"{name:18s} {mode:13s} ours {a * 1000:8.1f} ms  torchvision {b * 1000:8.1f} ms  ratio {a / b:.2f}")
    if args.write:
        lines = [
            "# Residual family: cnnzoo vs torchvision (same weights, same process)", "",
            f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, CPU only; "
            f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}",
            f"- command: `PYTHONPATH=src python benchmarks/residual_speed.py --repeats {args.repeats} "
            f"--batch {args.batch} --write {args.write}`",
            f"- batch {args.batch}, 224x224, float32, medians of {args.repeats} alternating runs after a warm-up",
            f"- load average at the end (the machine is shared): {os.getloadavg()[0]:.1f}",
            "", "| model | mode | cnnzoo (ms) | torchvision (ms) | ratio |", "| --- | --- | ---: | ---: | ---: |",
        ]
        lines += [f"| {n} | {m} | {a * 1000:.1f} | {b * 1000:.1f} | {r:.2f} |" for n, m, a, b, r in rows]
        with open(args.write, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
