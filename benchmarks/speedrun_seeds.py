"""The `speedrun` recipe over seeds, fp32 and bf16 interleaved: training seconds and test
accuracy of `cnnzoo train speednet` per seed, and how many runs reach the target in the budget.

    PYTHONPATH=src python benchmarks/speedrun_seeds.py --mnist ../shared/data/mnist --seeds 0-9 \\
        --out benchmarks/results/speedrun_seeds.json

Each run is the command line a user types, in its own process (CNNZOO_BF16=off for fp32, =on for
bf16), so start-up, data loading and the test pass are outside the figure but everything the
training loop does is inside it. The recipe is fixed before these runs; nothing is selected on
their test scores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def one_run(mnist: str, seed: int, precision: str, threads: int) -> dict:
    env = {**os.environ, "CNNZOO_BF16": "off" if precision == "fp32" else "on"}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "cnnzoo", "train", "speednet", "--data", f"mnist:{mnist}",
               "--threads", str(threads), "--seed", str(seed), "--out", out, "--format", "json"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout)
    return {"seed": seed, "precision": precision, "train_s": res["train_time_s"], "test_acc_pct": res["test_acc_pct"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target", type=float, default=99.0, help="test accuracy, percent")
    ap.add_argument("--budget", type=float, default=7.0, help="seconds of training")
    ap.add_argument("--out", help="write the runs and the summary here as JSON")
    args = ap.parse_args()
    runs = []
    for seed in seeds_of(args.seeds):
        for precision in ("fp32", "bf16"):
            runs.append(one_run(args.mnist, seed, precision, args.threads))
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for precision in ("fp32", "bf16"):
        rs = [r for r in runs if r["precision"] == precision]
        t, a = [r["train_s"] for r in rs], [r["test_acc_pct"] for r in rs]
        summary[precision] = {
            "runs": len(rs), "train_s_median": statistics.median(t), "train_s_min": min(t), "train_s_max": max(t),
            "test_acc_pct_median": statistics.median(a), "test_acc_pct_min": min(a), "test_acc_pct_max": max(a),
            "reached": sum(r["test_acc_pct"] >= args.target and r["train_s"] <= args.budget for r in rs)}
        s = summary[precision]
        print(f"{precision}: {s['reached']}/{s['runs']} reach {args.target:g}% within {args.budget:g} s; "
              f"training {s['train_s_median']:.2f} s median ({s['train_s_min']:.2f}-{s['train_s_max']:.2f}), "
              f"test {s['test_acc_pct_median']:.2f}% median ({s['test_acc_pct_min']:.2f}-{s['test_acc_pct_max']:.2f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"target_acc_pct": args.target, "budget_s": args.budget, "threads": args.threads,
                       "summary": summary, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
