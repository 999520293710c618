"""The Fashion-MNIST speedrun over seeds: training seconds and test accuracy of
`cnnzoo train speednet_fashion` (recipe `speedrun_fashion`) per seed, and how many runs beat the
Fashion-MNIST README's "2 conv, <100K parameters" row (92.5% test) within 60 s of training.

    PYTHONPATH=src python benchmarks/speedrun_fashion_seeds.py --data ../shared/data/fashion-mnist \\
        --seeds 0-9 --out benchmarks/results/speedrun_fashion_seeds.json

Each run is the command line a user types, in its own process, one at a time, at the engine's
default precision on this CPU (CNNZOO_BF16 unset); start-up, data loading and the test pass are
outside the figure, everything the training loop does is inside it. The net and the recipe were
fixed on a validation split before these runs (benchmarks/speedrun_fashion_val.py); nothing is
selected on their test scores. The load average before each run is recorded with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def one_run(data: str, seed: int, threads: int, model: str) -> dict:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "cnnzoo", "train", model, "--data", f"fashion-mnist:{data}",
               "--threads", str(threads), "--seed", str(seed), "--out", out, "--format", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {"seed": seed, "train_s": res["train_time_s"], "test_acc_pct": res["test_acc_pct"],
            "epochs": res["epochs"], "load_avg_1min": round(load, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the Fashion-MNIST folder")
    ap.add_argument("--model", default="speednet_fashion")
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", type=float, default=92.5, help="test accuracy, percent")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of training")
    ap.add_argument("--out", help="write the runs and the summary here as JSON")
    args = ap.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        runs.append(one_run(args.data, seed, args.threads, args.model))
        print(json.dumps(runs[-1]), flush=True)
    t, a = [r["train_s"] for r in runs], [r["test_acc_pct"] for r in runs]
    summary = {"runs": len(runs), "train_s_median": statistics.median(t), "train_s_min": min(t),
               "train_s_max": max(t), "test_acc_pct_median": statistics.median(a), "test_acc_pct_min": min(a),
               "test_acc_pct_max": max(a),
               "reached": sum(r["test_acc_pct"] > args.target and r["train_s"] <= args.budget for r in runs)}
    print(f"{summary['reached']}/{len(runs)} beat {args.target:g}% within {args.budget:g} s; training "
          f"{summary['train_s_median']:.1f} s median ({min(t):.1f}-{max(t):.1f}), test "
          f"{summary['test_acc_pct_median']:.2f}% median ({min(a):.2f}-{max(a):.2f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "target_acc_pct": args.target, "budget_s": args.budget,
                       "threads": args.threads, "summary": summary, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
