"""Whether bf16 autocast and channels_last pay on this CPU: one SGD training step per model in
the four combinations (fp32/bf16 x contiguous/channels_last), and for speednet over batch sizes.
The measurement behind `precision.fast_low_precision` (docs/speed.md, "bf16 by CPU feature").

    PYTHONPATH=src python benchmarks/bf16_by_cpu.py [--threads 2] [--reps 12]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from cnnzoo import create_model
from cnnzoo.precision import cpu_fast_bf16

MODELS = (("lenet5", (1, 32, 32)), ("speednet", (1, 28, 28)), ("resnet20", (3, 32, 32)),
          ("speednet_cifar", (3, 32, 32)), ("alexnet", (3, 64, 64)), ("mobilenet_v2", (3, 64, 64)))


def step_ms(name: str, shape: tuple[int, ...], bf16: bool, cl: bool, batch: int, reps: int) -> float:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=shape[0]).train()
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, *shape).contiguous(memory_format=fmt), torch.randint(0, 10, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        loss = nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t) / reps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU fast-bf16 feature: {cpu_fast_bf16()}; {args.threads} threads; ms per step of 128 "
          "(speed-up over fp32 contiguous)")
    combos = [(bf, cl) for bf in (False, True) for cl in (False, True)]
    heads = [('bf16 ' if bf else 'fp32 ') + ('channels_last' if cl else 'contiguous') for bf, cl in combos]
    print('| model | ' + ' | '.join(heads) + ' |')
    print("|---|" + "---:|" * len(combos))
    for name, shape in MODELS:
        ms = [step_ms(name, shape, bf, cl, 128, args.reps) for bf, cl in combos]
        print(f"| {name} | " + " | ".join(f"{m:.1f} ({ms[0] / m:.2f}x)" for m in ms) + " |", flush=True)
    print("\nspeednet, channels_last, ms per 128 images: batch | fp32 | bf16 | bf16 speed-up")
    for batch in (32, 64, 128, 256):
        f, b = (step_ms("speednet", (1, 28, 28), bf, True, batch, args.reps * 4) * 128 / batch for bf in (False, True))
        print(f"| {batch} | {f:.2f} | {b:.2f} | {f / b:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
