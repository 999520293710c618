"""The catalogue: each lecture claim as an experiment anyone can rerun, with its source, what is
run at each size, the paper's figure, and (after a run) the measured figure and a verdict."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidArgumentError, closest
from ..files import atomic_write_text
from ..outputs import check_output_folder
from ..results import to_json
from . import analytic, efficiency, leaderboard, training
from .common import Context
from .datafind import resolve


@dataclass(frozen=True)
class Experiment:
    name: str
    claim: str
    source: str  # paper, table or figure, seed file
    runs: str  # what is run (quick size; full size)
    paper: str  # the paper's figure
    kind: str  # "analyzer" (seconds) or "training"
    run: Callable[[Context], dict[str, Any]]

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "claim": self.claim, "source": self.source, "runs": self.runs,
                "paper_figure": self.paper, "kind": self.kind}


E = Experiment
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    E("inception-reduction", "1x1 'bottleneck' convolutions make the inception module affordable",
      "Szegedy et al. 2015, Fig. 2 and Table 1; seeds 001 (table) and 002/003 (naive vs reduced)",
      "the analyzer counts the naive module (1x1, 3x3, 5x5, pool on the input) and the 1x1-reduced "
      "one at GoogLeNet's inception (3a) shape: 28x28x192 in, 64 / 96->128 / 16->32 / pool->32",
      "inception (3a): 159K params, 128M ops", "analyzer", analytic.inception_reduction),
    E("stacked-3x3", "two stacked 3x3 convs see what one 5x5 sees, with fewer parameters and MACs",
      "Simonyan & Zisserman 2015, sec. 2.3 and 4.1; seed 003 ('Why 2 Double layers?')",
      "the analyzer counts Conv(5x5, C->C) vs 2 x Conv(3x3, C->C) (C=64, 56x56); then two small "
      "28x28 nets differing only in that block train (quick: 12,000 images x 4 epochs; full: all, 8)",
      "25C^2 vs 18C^2 params, 25C^2HW vs 18C^2HW MACs, receptive field 5; the 5x5 net had 7% "
      "higher top-1 error (ImageNet)", "training", analytic.stacked_3x3),
    E("degradation", "deeper plain nets train worse; residual nets do not (degradation problem)",
      "He et al. 2016, Fig. 1 and Fig. 6 (left and middle); seeds 001 and 003",
      "plain20, plain56, resnet20, resnet56 (cifar_resnet recipe; quick: 4,000 images padded "
      "to 32x32 x 6 epochs, lr 0.1 (1-epoch warm-up) cosine to 0; full: --data cifar10:PATH, the "
      "paper's 64k iterations)",
      "plain-56 has higher training and test error than plain-20; ResNet-56 lower than ResNet-20 "
      "(CIFAR-10 test: ResNet-20 8.75%, ResNet-56 6.97%)", "training", training.degradation),
    E("ensemble", "averaging several trained networks beats its members",
      "Krizhevsky et al. 2012 sec. 6; Szegedy et al. 2015 Table 3; seed 003 (ensembles)",
      "lenet5 trained with 3 seeds (quick: all images x 3 epochs; full: 5 members, 6 epochs); "
      "each member's and the mean-softmax ensemble's test error",
      "GoogLeNet: 1 model 10.07% -> 7 models 8.09% top-5", "training", training.ensemble),
    E("lrn", "local response normalization adds nothing",
      "Simonyan & Zisserman 2015, Table 3 (A vs A-LRN); seeds 003 and 004",
      "a small 3x3-conv net with and without LRN after each block (quick: 12,000 images x "
      "4 epochs); full: vgg11 vs vgg11_lrn with the vgg recipe on --data",
      "A 29.6% / 10.4%, A-LRN 29.7% / 10.5% top-1 / top-5", "training", training.lrn),
    E("aux-heads", "GoogLeNet's auxiliary classifiers help only a little",
      "Szegedy et al. 2015 sec. 5 (auxiliary classifiers); Szegedy et al. 2016 sec. 4; seeds 003, 004",
      "a small GoogLeNet-style net (3 inception modules) with its auxiliary classifier (weight "
      "0.3) on and off (quick: 12,000 images x 4 epochs); full: googlenet aux_logits on/off",
      "'relatively minor (around 0.5%)'", "training", training.aux_heads),
    E("nin-1x1", "NiN's 1x1 layers (mlpconv) make the network more accurate",
      "Lin, Chen, Yan 2013 (Network In Network), sec. 3.1 and Table 1; seeds 002 and 004",
      "nin_cifar's layout with and without its 1x1 layers, equal epochs (quick: x0.5 widths, 15,000 "
      "images x 5 epochs, 3 seeds; full: nin_cifar's widths, all images, 30 epochs)",
      "NIN + dropout 10.41% CIFAR-10 test error (no augmentation)", "training", efficiency.nin_1x1),
    E("separable", "depthwise separable convs cost about 1 point of accuracy for 8-9x fewer "
      "multiply-adds", "Howard et al. 2017 (MobileNets), Table 4; seed 004",
      "a small MobileNet at 32x32 with separable vs full 3x3 convs, the analyzer's mult-adds "
      "(quick: alpha 0.5, 10,000 images x 3 epochs, 3 seeds; full: alpha 1, all images, 30 epochs)",
      "Conv MobileNet 71.7% / 4866M mult-adds vs MobileNet 70.6% / 569M (ImageNet)", "training",
      efficiency.separable),
    E("width-multiplier", "a thinner MobileNet trades accuracy smoothly for multiply-adds (~alpha^2)",
      "Howard et al. 2017 (MobileNets), Table 6; seed 004",
      "the small separable MobileNet at alpha 1, 0.75, 0.5, 0.25 (quick: 10,000 images x 3 epochs, "
      "3 seeds; full: all images, 30 epochs)",
      "alpha 1 / 0.75 / 0.5 / 0.25: 70.6 / 68.4 / 63.7 / 50.6% at 569 / 325 / 149 / 41M mult-adds",
      "training", efficiency.width_multiplier),
    E("batchnorm", "batch normalisation makes the same net train faster at the same learning rate",
      "Ioffe & Szegedy 2015, Fig. 2 and sec. 4.2; seeds 003 and 004",
      "six 3x3 convs with and without batch norm, SGD lr 0.05 constant (quick: all images x 3 "
      "epochs, 3 seeds; full: all images, 20 epochs)",
      "BN-Baseline reaches Inception's accuracy in less than half the steps", "training",
      efficiency.batchnorm),
    E("leaderboard", "the families rank on real data as the published Fashion-MNIST table ranks them",
      "Zalando's Fashion-MNIST README (submitted results); the families of seeds 001-004",
      "one net per family (LeNet-5 ... SqueezeNet), each with its adapted recipe, epoch chosen on "
      "validation, test once (quick: 10,000 images x 3 epochs each, about 20 minutes on 2 cores; "
      "full: all images x 15 epochs, flips and shifts, a GPU)",
      "2 conv <100K 92.5%, VGG16 93.5%, GoogLeNet 93.7%, ResNet-18 94.9%, MobileNet 95.0%, "
      "DenseNet-BC 95.4%, WRN-28-10 95.9%, WRN-40-4 96.7%", "training", leaderboard.leaderboard),
]}


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        near = closest(name, EXPERIMENTS)
        hint = f"; did you mean: {', '.join(near)}?" if near else ""
        raise InvalidArgumentError(f"unknown experiment {name!r}{hint} (`cnnzoo experiment --list` "
                                   f"shows all {len(EXPERIMENTS)})") from None


def run_experiment(name: str, *, size: str = "quick", out: str | Path = "experiments",
                   data: str | None = None, device: str | None = None, seed: int = 0,
                   seeds: int | None = None, say: Callable[[str], None] | None = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Run one experiment; writes OUT/NAME.json and OUT/NAME.png and returns the result. An OUT
    holding this experiment's results already is refused before any work unless `overwrite`
    (the output guard, cnnzoo.outputs), which also replaces its runs. `data` None: Fashion-MNIST,
    found as datafind.py says (exit 2 when there is none); `seeds` None: 3 (1 at the smoke size),
    the seeds seed, seed + 1, ..."""
    exp = get_experiment(name)
    check_output_folder(out, [f"{name}.json"], overwrite=overwrite)
    if exp.kind == "training":
        data = resolve(data)
    ctx = Context(size=size, out=Path(out), data=data, device=device, seed=seed, seeds=seeds,
                  say=say or (lambda text: None), overwrite=overwrite)
    ctx.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    found = exp.run(ctx)
    if size == "smoke":  # the tests' size checks the code path; its numbers measure nothing
        found["verdict"]["text"] = "smoke size, too small to measure: " + found["verdict"]["text"]
    command = " ".join(["cnnzoo experiment", name, "--quick" if size == "quick" else f"--size {size}"]
                       + ([f"--data {data}"] if data else []) + ([f"--device {device}"] if device else [])
                       + ([f"--seed {seed}"] if seed else []) + ([f"--seeds {seeds}"] if seeds else []))
    result = {**exp.as_dict(), **found, "command": command, "size": size, "data": data or "none",
              "device": device or "auto",
              "seed": seed, "seeds": ctx.seed_list if exp.kind == "training" else [],
              "seconds": round(time.time() - start, 1), "machine": _machine(),
              "date": time.strftime("%Y-%m-%d"), "out": str(ctx.out)}
    atomic_write_text(ctx.out / f"{name}.json", to_json(result) + "\n")
    return result


def _machine() -> str:
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() often says only x86_64
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"
