"""Time per epoch of the CIFAR-10 speedrun (speednet_cifar, recipe speedrun_cifar) on
CIFAR-shaped synthetic data: 50,000 random uint8 32x32 RGB images, the recipe's augmentation
(pad-crop + flip) and precision, our training engine. It measures speed only (random labels
teach nothing); accuracy needs the real CIFAR-10.

    python benchmarks/speedrun_cifar_epoch.py                  # CPU: times --steps steps, extrapolates
    python benchmarks/speedrun_cifar_epoch.py --device cuda    # a GPU: a whole epoch, after one warm-up epoch

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnzoo.data.datasets import TensorData, shard_indices, tensor_batches
from cnnzoo.data.preprocess import fit_input
from cnnzoo.registry import create_model
from cnnzoo.train.engine import (
    StepContext,
    build_optimizer,
    build_scheduler,
    train_one_epoch,
    use_channels_last,
    uses_bf16,
)
from cnnzoo.train.recipes import get_recipe

N = 50_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=0, help="time this many steps (0: a whole epoch)")
    ap.add_argument("--batch", type=int, default=0, help="batch (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cpu":
        torch.set_num_threads(a.threads)
    r = get_recipe("speedrun_cifar", {"batch_size": a.batch} if a.batch else None)
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, generator=g),
                      torch.randint(0, 10, (N,), generator=g), [str(i) for i in range(10)]).to(dev)
    prep = fit_input("speednet_cifar", (3, 32, 32), (3, 32, 32), [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])
    torch.manual_seed(0)
    model = create_model("speednet_cifar").to(dev)
    cl = use_channels_last(r, dev)
    if cl:
        model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, r, dev)
    steps = N // r.batch_size
    aug = torch.Generator(device=dev)
    ctx = StepContext(recipe=r, optimizer=opt, scheduler=build_scheduler(opt, r, steps, steps * r.epochs),
                      device=dev, prep=lambda x, s: prep.train_batch(x, r.augment, aug), channels_last=cl)
    timed = min(a.steps or steps, steps)

    def epoch(e: int, n: int) -> float:
        idx = shard_indices(N, r.batch_size, e, 0, True, 0, 1, True)[:n]
        t0 = time.perf_counter()
        train_one_epoch(model, tensor_batches(data, idx), ctx, e, e * steps)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    epoch(0, steps if dev.type == "cuda" else min(2, steps))  # warm-up (cuDNN autotune, allocator)
    secs = epoch(1, timed)
    per_epoch = secs * steps / timed
    print(json.dumps({"model": "speednet_cifar", "recipe": r.name, "device": str(dev), "batch": r.batch_size,
                      "precision": "bf16" if uses_bf16(r, dev) else "fp32", "channels_last": cl,
                      "timed_steps": timed, "steps_per_epoch": steps, "seconds_timed": round(secs, 2),
                      "seconds_per_epoch": round(per_epoch, 1), "epochs": r.epochs,
                      "extrapolated": timed < steps, "data": "synthetic, CIFAR-shaped (50,000 x 3x32x32 uint8)"}))


if __name__ == "__main__":
    main()
