"""Transfer digits 0-4 -> 5-9 on full MNIST, over several seeds: the numbers behind the table
in docs/transfer-and-deploy.md ("averaged over seeds").

For each seed: LeNet-5 (modern) is pre-trained on 6,000 images of digits 0-4 (3 epochs), then
digits 5-9 are learned from K labelled images per class (drawn with that seed) four ways:
scratch (all layers, random init), fine-tune all (pre-trained, lr x1), new classifier on the
frozen pre-trained network, new classifier on a frozen random network. Test: all 4,861 test
images of digits 5-9. Prints one JSON line per run and a summary (mean, min-max).

    PYTHONPATH=src python benchmarks/transfer_seeds.py --mnist ../shared/data/mnist --seeds 0-4
Set CNNZOO_BF16=on to run the bf16 path.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics

import torch

import cnnzoo
from cnnzoo.transfer.core import fit_image_set, load_image_set, param_groups, prepare_transfer

PP = {"input_size": [1, 32, 32], "resize": 28, "mean": [0.1307], "std": [0.3081],
      "grayscale": True, "pad": 2}
WAYS = ("scratch", "finetune_all", "frozen_pretrained", "frozen_random")


def run_seed(spec: str, seed: int, per_class: list[int]) -> list[dict]:
    src = load_image_set(spec, "train", PP, classes=[0, 1, 2, 3, 4], per_class=1200, seed=seed)
    test = load_image_set(spec, "test", PP, classes=[5, 6, 7, 8, 9])
    torch.manual_seed(seed)
    pre = cnnzoo.create_model("lenet5_modern", num_classes=5)
    fit_image_set(pre, param_groups(pre, 0.05, 1.0), src, epochs=3, batch_size=64, augment=False,
                  seed=seed)
    rows = []
    for k in per_class:
        small = load_image_set(spec, "train", PP, classes=[5, 6, 7, 8, 9], per_class=k, seed=seed)
        for way in WAYS:
            torch.manual_seed(1000 + seed)
            if way in ("scratch", "frozen_random"):
                model = cnnzoo.create_model("lenet5_modern", num_classes=5)
            else:
                model = copy.deepcopy(pre)
            if way == "scratch":
                groups = param_groups(model, 0.05, 1.0)
            else:
                groups = prepare_transfer(model, 5, "all" if way.startswith("frozen") else None,
                                          lr=0.05, backbone_lr_mult=1.0)
            acc = fit_image_set(model, groups, small, test, epochs=30, batch_size=32,
                                seed=seed).val_acc
            rows.append({"seed": seed, "per_class": k, "way": way, "test_acc": acc})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--per-class", default="5,10")
    args = ap.parse_args()
    a, _, b = args.seeds.partition("-")
    seeds = list(range(int(a), int(b or a) + 1))
    ks = [int(k) for k in args.per_class.split(",")]
    torch.set_num_threads(1)
    rows = [r for s in seeds for r in run_seed(f"mnist:{args.mnist}", s, ks)]
    for k in ks:
        for way in WAYS:
            accs = [r["test_acc"] for r in rows if r["per_class"] == k and r["way"] == way]
            print(f"K={k:3d} {way:18s} mean {statistics.mean(accs):.4f}  "
                  f"min {min(accs):.4f}  max {max(accs):.4f}  (n={len(accs)})")
        gaps = [next(r["test_acc"] for r in rows if r["seed"] == s and r["per_class"] == k and
                     r["way"] == w1) - next(r["test_acc"] for r in rows if r["seed"] == s and
                                            r["per_class"] == k and r["way"] == w2)
                for s in seeds for w1, w2 in [("finetune_all", "scratch")]]
        print(f"K={k:3d} finetune_all - scratch: mean {statistics.mean(gaps):+.4f} "
              f"min {min(gaps):+.4f} max {max(gaps):+.4f}")


if __name__ == "__main__":
    main()
