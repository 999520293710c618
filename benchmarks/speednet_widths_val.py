"""The speednet width, chosen on validation (not the test set): each width trained with the
`speedrun` recipe on 54,000 MNIST training images, scored on the 6,000 held out (val_split 0.1,
keep=last so nothing else is selected), over several seeds. The test set is never read for the
choice: the runs still print a test score at the end, and this script ignores it.

    PYTHONPATH=src python benchmarks/speednet_widths_val.py --mnist ../shared/data/mnist --seeds 0,1,2
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    base = get_entry("speednet")
    rows = []
    for a, b in WIDTHS:
        name = f"speednet_{a}_{b}"
        register(name, SpeedNet, family="experiment", paper=base.paper, input_size=base.input_size,
                 kwargs={"widths": (a, b)}, num_classes=10)
        vals, times = [], []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as out:
                res = fit(name, data=f"mnist:{args.mnist}", recipe="speedrun", seed=seed, out=out,
                          overrides={"val_split": 0.1}, overwrite=True)
            vals.append(100 * res["val_acc"])
            times.append(res["train_time_s"])
        rows.append({"widths": [a, b], "val_acc_pct": vals, "val_mean_pct": statistics.mean(vals),
                     "train_s_median": statistics.median(times)})
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
