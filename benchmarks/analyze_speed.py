"""How long the analyzer takes, side by side with references that run the real network.

    PYTHONPATH=src python benchmarks/analyze_speed.py [--repeats 5] [--write benchmarks/results/analyzer.md]

For each model (torchvision's, random init; nothing downloads), at 224x224, batch 1, CPU:
  analyze        cnnzoo.analyze(model, (3, 224, 224)): hooks + formulas on the meta device
  flop counter   torch.utils.flop_counter.FlopCounterMode around a real forward (eval, no_grad)
  real forward   the same real forward without counting (the floor for any approach that
                 computes activations, e.g. torchinfo-style summaries)
Times are medians of --repeats runs after one warm-up; ratio = reference / analyze.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.analysis import analyze

MODELS = ("resnet152", "vgg19", "resnet18")


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, repeats: int) -> dict:
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(1, 3, 224, 224)

    def ours():
        return analyze(model, (3, 224, 224))

    def counted():
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x)
        return fc.get_total_flops()

    def real():
        with torch.no_grad():
            model(x)

    report = ours()
    flops = counted()
    conv_fc = 2 * sum(r.macs for r in report.rows if r.kind in ("conv", "linear"))
    assert conv_fc == flops, (name, conv_fc, flops)  # same count, different cost
    t_meta_build = median_time(lambda: analyze(_meta(name), (3, 224, 224)), max(1, repeats // 2))
    import cnnzoo  # the zoo's own model, by name (built on meta inside analyze)

    t_zoo = (median_time(lambda: analyze(name, (3, 224, 224)), max(1, repeats // 2))
             if name in cnnzoo.list_models() else None)
    return {"model": name, "analyze": median_time(ours, repeats),
            "build_meta_and_analyze": t_meta_build, "zoo_by_name": t_zoo,
            "flop_counter": median_time(counted, repeats), "forward": median_time(real, repeats),
            "gmacs": report.total_macs / 1e9, "params": report.total_params,
            "activation_mb": report.total_memory / 2**20}


def _meta(name):
    with torch.device("meta"):
        return getattr(torchvision.models, name)()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--write", help="also write the markdown results to this file")
    args = ap.parse_args()
    results = [bench(m, args.repeats) for m in args.models]
    lines = [
        "| model | GMACs | params | act. memory (MB) | analyze (s) | meta build + analyze (s) "
        "| `analyze(name)`, zoo model (s) "
        "| FlopCounterMode, real forward (s) | real forward alone (s) | ratio vs FlopCounterMode "
        "| ratio vs forward |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['gmacs']:.2f} | {r['params']:,} | {r['activation_mb']:.1f} | "
            f"{r['analyze']:.3f} | {r['build_meta_and_analyze']:.3f} | "
            f"{'-' if r['zoo_by_name'] is None else format(r['zoo_by_name'], '.3f')} | {r['flop_counter']:.3f} | "
            f"{r['forward']:.3f} | {r['flop_counter'] / r['analyze']:.1f}x | "
            f"{r['forward'] / r['analyze']:.1f}x |")
    env = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, Python "
           f"{platform.python_version()}, {platform.machine()}, {torch.get_num_threads()} torch "
           f"threads, CPU: {_cpu()}")
    text = "\n".join(lines)
    print(env)
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write(_doc(env, text, args))


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _doc(env: str, table: str, args) -> str:
    cmd = "PYTHONPATH=src python benchmarks/analyze_speed.py " + " ".join(sys.argv[1:])
    return f"""# Analyzer speed

Machine: {env}; load average {os.getloadavg()[0]:.1f} at the end (the machine is shared with other jobs).
Command: `{cmd}`

Batch 1, 224x224, models with random init (torchvision), median of {args.repeats} runs after a
warm-up, all in one process, one after the other. `analyze` is timed on a model with real
weights (they are swapped for meta stand-ins); "meta build + analyze" also builds the model on
the meta device; `analyze(name)` does the same for the zoo's own model of that name. `analyze`
runs the model on the meta device
(no activation is allocated, nothing is computed) and its conv + linear count equals
FlopCounterMode's (asserted by the script before timing).

{table}

The issue's bar: ResNet-152 at 224 analyzed in under 2 s on this CPU.
"""


if __name__ == "__main__":
    main()
