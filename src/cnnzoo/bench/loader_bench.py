"""`cnnzoo bench loader folder:PATH`: images/s of ready training batches from an image folder,
our fast loader against the reference pipeline of torchvision's references/classification/train.py
(ImageFolder + DataLoader, PIL decoding and v2 transforms per image in the workers:
RandomResizedCrop(224), RandomHorizontalFlip, PILToTensor, ToDtype(float32, scale), Normalize).

Both sides read the same images with the same number of workers and batch size, do the same
augmentation and hand over float32 batches on the device; a repetition is one pass over the same
random subset (workers started per pass, as an epoch of train.py does), passes interleaved
A B / B A. `make_folder` writes photo-like JPEGs (smooth colour fields, noise and shapes, so
their file sizes are those of photos) for a machine that has no image folder at hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from .. import devices
from ..data.preprocess import IMAGENET_MEAN as MEAN
from ..data.preprocess import IMAGENET_STD as STD
from .machine import machine_info
from .timing import summarize, time_interleaved


def make_folder(root: str | Path, n: int, classes: int = 10, size: tuple[int, int] = (500, 375),
                seed: int = 0, quality: int = 90) -> Path:
    """Write `n` photo-like JPEGs of `size` (w, h) into root/train/cK/ (K < classes), and one per
    class into root/test/; returns root. Files already there are kept (the folder is reused)."""
    import numpy as np
    from PIL import Image, ImageDraw

    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    jobs = [(root / "train" / f"c{i % classes}" / f"{i:06d}.jpg") for i in range(n)]
    jobs += [root / "test" / f"c{k}" / "0.jpg" for k in range(classes)]
    for path in jobs:
        if path.exists():
            continue
        a, b, p = rng.uniform(-1, 1, (3, 3))
        base = 128 + 80 * np.sin(a[:, None, None] * xx / 60 + b[:, None, None] * yy / 50 + p[:, None, None] * 6)
        pix = np.clip(base.transpose(1, 2, 0) + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        im = Image.fromarray(pix)
        draw = ImageDraw.Draw(im)
        for _ in range(8):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            draw.ellipse([x0, y0, x0 + int(rng.integers(20, 150)), y0 + int(rng.integers(20, 150))],
                         fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, quality=quality)
    return root


def _reference_pass(root: Path, subset: list[int], batch: int, workers: int,
                    device: torch.device) -> Callable[[], int]:
    """One epoch of train.py's data pipeline over `subset`: returns the images delivered."""
    from torch.utils.data import DataLoader, Subset, SubsetRandomSampler
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2 as T

    tf = T.Compose([T.RandomResizedCrop(224, antialias=True), T.RandomHorizontalFlip(), T.PILToTensor(),
                    T.ToDtype(torch.float, scale=True), T.Normalize(MEAN, STD)])
    ds = ImageFolder(str(root / "train"), transform=tf)

    def run() -> int:
        dl = DataLoader(Subset(ds, subset), batch_size=batch, sampler=SubsetRandomSampler(range(len(subset))),
                        num_workers=workers, pin_memory=devices.pin_memory(device), drop_last=True)
        seen = 0
        for x, y in dl:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            seen += len(x)
        return seen
    return run


def _our_pass(root: Path, subset: list[int], batch: int, workers: int, device: torch.device,
              decode: str) -> Callable[[], int]:
    from ..data.datasets import load_split, parse_spec
    from ..data.fast_loader import FastFolderLoader, FastSpec

    data = load_split(parse_spec(f"folder:{root}"), "train")
    spec = FastSpec("imagenet", (224, 224), 256, MEAN, STD)
    epoch = [0]

    def run() -> int:
        g = torch.Generator().manual_seed(epoch[0])
        order = torch.tensor(subset)[torch.randperm(len(subset), generator=g)]
        idx = list(order[: len(order) // batch * batch].view(-1, batch))
        seeds = [epoch[0] * 100_000 + k for k in range(len(idx))]
        epoch[0] += 1
        loader = FastFolderLoader(data, spec, idx, seeds, workers, "skip", device, decode)
        return sum(len(x) for x, _ in loader.iterate())
    return run


def bench_loader(root: str | Path, *, device: str = "cpu", batch: int = 64, workers: int = 2,
                 images: int = 1024, reps: int = 4, decode: str | None = None,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Images/s of ours and the reference over the same `images` files of root/train, interleaved."""
    from ..data.datasets import load_split, parse_spec
    from ..data.fast_loader import choose_decoder

    root, dev = Path(root), torch.device(device)
    n = len(load_split(parse_spec(f"folder:{root}"), "train"))
    count = min(images, n) // batch * batch
    if count == 0:
        raise ValueError(f"{root}/train has {n} images, fewer than one batch of {batch}")
    subset = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:count].tolist()
    decode = decode or choose_decoder("auto", "imagenet", dev)
    steps = {"ours": _our_pass(root, subset, batch, workers, dev, decode),
             "reference": _reference_pass(root, subset, batch, workers, dev)}
    times = time_interleaved(steps, reps=reps, warmup=1, device=device, progress=progress)
    cores = len(os.sched_getaffinity(0))
    sides = {k: summarize(v, count) for k, v in times.items()}
    for s in sides.values():
        s["images_per_s_per_core"] = s["images_per_s"] / cores
    return {"machine": machine_info(device), "folder": str(root), "images": count, "batch": batch,
            "workers": workers, "decode": decode, "cores": cores, "reps": reps, **sides,
            "ratio": sides["ours"]["images_per_s"] / sides["reference"]["images_per_s"],
            # the fastest pass of each side: on a shared machine the least disturbed one
            "ratio_best": sides["reference"]["min_ms"] / sides["ours"]["min_ms"]}


def format_loader_report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"loader benchmark: {res['images']} images of {res['folder']}, batch {res['batch']}, "
             f"{res['workers']} workers, {res['cores']} cores, {res['reps']} passes per side (ABBA)",
             f"machine: {m.get('gpu') or m.get('cpu', '?')}, load {m.get('loadavg', '?')}",
             f"{'side':<12} {'images/s':>9} {'per core':>9} {'pass s (median)':>16}"]
    for side, label in (("ours", f"ours ({res['decode']})"), ("reference", "reference")):
        s = res[side]
        lines.append(f"{label:<12} {s['images_per_s']:>9.0f} {s['images_per_s_per_core']:>9.0f} "
                     f"{s['median_ms'] / 1e3:>16.2f}")
    lines.append(f"ratio ours/reference: {res['ratio']:.2f}x (medians), {res['ratio_best']:.2f}x (fastest passes)")
    return "\n".join(lines)


def run_loader_cli(spec: str, *, make: int, device: str, batch: int | None, workers: int,
                   images: int, reps: int | None) -> tuple[dict[str, Any], str]:
    """`cnnzoo bench loader folder:PATH [--make-folder N]`: (result, its text report)."""
    import sys

    from ..data.kinds import KINDS, spec_list
    from ..errors import InvalidArgumentError

    name, _, path = spec.partition(":")
    if name not in KINDS or KINDS[name].in_memory or not path:
        raise InvalidArgumentError(f"bench loader takes {spec_list(lambda k: not k.in_memory)}, got {spec!r}")
    root = Path(path).expanduser()
    if make < 0 or workers < 0 or images < 1 or (batch is not None and batch < 1):
        raise InvalidArgumentError("--make-folder and --workers must be >= 0, --images and --batch >= 1")
    if make:
        print(f"writing {make} photo-like JPEGs into {root} ...", file=sys.stderr, flush=True)
        make_folder(root, make)
    if not (root / "train").is_dir():
        raise InvalidArgumentError(f"bench loader {spec}: no {root / 'train'} folder "
                                   "(add --make-folder N to write one)")
    res = bench_loader(root, device=device, batch=batch or 64, workers=workers, images=images, reps=reps or 4,
                       progress=lambda m: print(m, file=sys.stderr, flush=True))
    return res, format_loader_report(res)
