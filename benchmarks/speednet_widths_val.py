"""The speednet width, layout and learning rate, chosen on validation (not the test set): each
candidate trained with the `speedrun` recipe on 54,000 MNIST training images, scored on the 6,000
held out (val_split 0.1, keep=last so nothing else is selected), over several seeds. The test set
is never read for the choice: the runs still print a test score at the end, and this script
ignores it. Layouts: pool-first (conv - max pool - BN - ReLU, the shipped one) and BN-first
(conv - BN - ReLU - max pool); learning rates other than the recipe's only for the shipped width.

    CNNZOO_BF16=off PYTHONPATH=src python benchmarks/speednet_widths_val.py --mnist ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

from cnnzoo.models.speednet import SpeedNet
from cnnzoo.registry import get_entry, register
from cnnzoo.train import fit

WIDTHS = ((8, 16), (12, 24), (16, 32), (32, 64))
LRS = (0.2, 0.3, 0.5)  # 0.3 is the recipe's
BATCH_256_LRS = (0.4, 0.6, 0.8)  # batch 256 (half the steps) at larger rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", choices=("lr", "batch"), help="only the learning-rate or the batch-256 candidates")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    base = get_entry("speednet")
    candidates = [(w, pf, 0.3, 128) for pf in (True, False) for w in WIDTHS]
    candidates += [((16, 32), True, lr, 128) for lr in LRS if lr != 0.3]
    candidates += [((16, 32), True, lr, 256) for lr in BATCH_256_LRS]
    if args.only:
        candidates = [c for c in candidates[len(WIDTHS) * 2:] if (c[3] == 256) == (args.only == "batch")]
    registered: set[str] = set()
    for (a, b), pool_first, lr, batch in candidates:
        name = f"speednet_{a}_{b}_{'pool' if pool_first else 'bn'}_first"
        if name not in registered:
            registered.add(name)
            register(name, SpeedNet, family="experiment", paper=base.paper, input_size=base.input_size,
                     kwargs={"widths": (a, b), "pool_first": pool_first}, num_classes=10)
        vals, times = [], []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as out:
                res = fit(name, data=f"mnist:{args.mnist}", recipe="speedrun", seed=seed, out=out,
                          overrides={"val_split": 0.1, "lr": lr, "batch_size": batch}, overwrite=True)
            vals.append(res["val_acc_pct"])
            times.append(res["train_time_s"])
        row = {"widths": [a, b], "layout": "pool-first" if pool_first else "BN-first", "lr": lr, "batch": batch,
               "val_acc_pct": vals, "val_mean_pct": round(statistics.mean(vals), 3),
               "train_s_median": round(statistics.median(times), 2)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
