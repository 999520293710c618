"""The Fashion-MNIST speedrun's net and length, chosen on validation (not the test set): each
candidate (a `SpeedNet` variant, epochs, learning rate) trained with the `speedrun` recipe on
54,000 Fashion-MNIST training images and scored on the 6,000 held out (val_split 0.1, keep=last),
at fixed epochs, so the machine's load changes the seconds but not the choice. The runs print a
test score at the end; this script ignores it.

    CNNZOO_BF16=off PYTHONPATH=src python benchmarks/speedrun_fashion_val.py \\
        --data ../shared/data/fashion-mnist --seeds 0 --out benchmarks/results/speedrun_fashion_val.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

from cnnzoo.models.speednet import SpeedNet
from cnnzoo.registry import get_entry, register
from cnnzoo.train import fit

# (widths, kernel, epochs, lr); epochs sized from each net's cost per step (a CPU-time micro
# benchmark: 16/32 5x5 12 ms, 32/64 5x5 25 ms, 24/48/96 3x3 34 ms, 32/64/128 3x3 46 ms, 48/96 5x5
# 47 ms per step of 128 on one thread) so that each fits about 45 s of training on 2 cores
CANDIDATES = (((32, 64), 5, 4, 0.3), ((32, 64), 5, 6, 0.3), ((24, 48, 96), 3, 5, 0.3),
              ((32, 64, 128), 3, 3, 0.3), ((48, 96), 5, 3, 0.3), ((32, 64), 5, 8, 0.3),
              ((24, 48, 96), 3, 4, 0.3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the Fashion-MNIST folder")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--only", help="indices of CANDIDATES, comma-separated")
    ap.add_argument("--threads", type=int, help="torch threads (1 on a busy machine: the accuracy at fixed "
                    "epochs does not depend on it, and 2 spinning threads crawl there)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = get_entry("speednet")
    picked = [CANDIDATES[int(i)] for i in args.only.split(",")] if args.only else CANDIDATES
    rows = []
    for widths, kernel, epochs, lr in picked:
        name = "speednet_" + "_".join(map(str, widths)) + f"_k{kernel}"
        try:
            get_entry(name)
        except Exception:
            register(name, SpeedNet, family="experiment", paper=base.paper, input_size=base.input_size,
                     kwargs={"widths": widths, "kernel": kernel}, num_classes=10)
        vals, times = [], []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as out:
                res = fit(name, data=f"fashion-mnist:{args.data}", recipe="speedrun", seed=seed, out=out,
                          epochs=epochs, overrides={"val_split": 0.1, "lr": lr}, overwrite=True)
            vals.append(res["val_acc_pct"])
            times.append(res["train_time_s"])
        rows.append({"widths": list(widths), "kernel": kernel, "epochs": epochs, "lr": lr, "val_acc_pct": vals,
                     "val_mean_pct": round(statistics.mean(vals), 3),
                     "train_s_median": round(statistics.median(times), 2)})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
