"""What is compared: each family's main model against torchvision's, with the same weights.

For each family's main model the reference is torchvision's model of the same architecture
(LeNet-5: the plain nn.Sequential a user would write). The weights are copied from the
reference into ours before anything is timed, and the cost per image is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..analysis import analyze
from ..errors import CnnzooError, InvalidArgumentError
from ..registry import create_model, get_entry, list_models

# Each family's main model and torchvision's builder of the same architecture (None: a plain
# nn.Sequential, see _plain_lenet5). torchvision kwargs make its optional parts match ours.
MAIN_MODELS: tuple[tuple[str, str | None, dict[str, Any]], ...] = (
    ("lenet5_modern", None, {}),
    ("alexnet", "alexnet", {}),
    ("vgg16", "vgg16", {}),
    ("resnet50", "resnet50", {}),
    ("googlenet_tv", "googlenet", {"aux_logits": True, "init_weights": True}),
    ("mobilenet_v2", "mobilenet_v2", {}),
    ("shufflenet_v2_x1_0", "shufflenet_v2_x1_0", {}),
    ("densenet121", "densenet121", {}),
    ("inception_v3", "inception_v3", {"aux_logits": True, "init_weights": True}),
    ("squeezenet1_0", "squeezenet1_0", {}),
)
# --quick: models that together fit the one-minute budget on a 2-core CPU.
QUICK_MODELS = ("lenet5_modern", "alexnet", "resnet50", "mobilenet_v2", "shufflenet_v2_x1_0")


class BenchError(CnnzooError):
    """A benchmark could not be set up (e.g. the reference's weights do not fit ours)."""


@dataclass
class Case:
    """One architecture: how to build ours and the reference, and its native input."""

    name: str
    reference: str  # what the reference is, for the report
    build_ours: Callable[[], nn.Module]
    build_ref: Callable[[], nn.Module]
    input_size: tuple[int, int, int]
    num_classes: int = 1000
    macs: Callable[[], tuple[int, str]] | None = None  # -> (MACs per image, how counted)


def _plain_lenet5(num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """LeNet-5's layer sizes as the plain nn.Sequential found in tutorials (ReLU, max pool)."""
    return nn.Sequential(
        nn.Conv2d(in_chans, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
    )


def torchvision_builder(tv_name: str, num_classes: int = 1000, **kwargs: Any) -> Callable[[], nn.Module]:
    """A builder of torchvision's `tv_name` with random weights (nothing downloads)."""
    def build() -> nn.Module:
        import torchvision  # ~1 s to import; only building a reference needs it

        return getattr(torchvision.models, tv_name)(weights=None, num_classes=num_classes, **kwargs)

    return build


def zoo_case(name: str, tv_name: str | None, tv_kwargs: dict[str, Any] | None = None) -> Case:
    """The case for registered model `name` against torchvision's `tv_name`."""
    entry = get_entry(name)
    num_classes = getattr(entry, "num_classes", 10 if name.startswith("lenet") else 1000)
    in_chans = entry.input_size[0]

    def build_ours() -> nn.Module:
        return create_model(name, num_classes=num_classes, in_chans=in_chans)

    if tv_name is None:
        build_ref = lambda: _plain_lenet5(num_classes, in_chans)  # noqa: E731
        ref = "plain nn.Sequential (LeNet-5 sizes)"
    else:
        build_ref = torchvision_builder(tv_name, num_classes, **(tv_kwargs or {}))
        ref = f"torchvision.models.{tv_name}"
    return Case(name, ref, build_ours, build_ref, tuple(entry.input_size), num_classes,
                macs=lambda: model_macs(name, build_ours, entry.input_size))


def main_cases(names: Iterable[str] | None = None) -> tuple[list[Case], list[dict[str, str]]]:
    """Cases for the main models that are registered; the rest come back as skipped, with why."""
    table = {n: (tv, kw) for n, tv, kw in MAIN_MODELS}
    wanted = list(names) if names is not None else list(table)
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise InvalidArgumentError(
            f"no benchmark case for {', '.join(unknown)}; cases exist for: {', '.join(table)}")
    registered = set(list_models())
    cases, skipped = [], []
    for n in wanted:
        if n in registered:
            cases.append(zoo_case(n, *table[n]))
        else:
            skipped.append({"model": n, "reason": "not registered in this checkout"})
    return cases, skipped


def model_macs(name: str | None, build: Callable[[], nn.Module],
               input_size: Sequence[int]) -> tuple[int, str]:
    """Multiply-adds per image: the analyzer's total (the lecture's rules) for a zoo model,
    else torch's FlopCounterMode on the meta device / 2 (convolutions and matmuls only)."""
    if name is not None:
        return int(analyze(name, tuple(input_size)).total_macs), "cnnzoo.analysis"
    return flop_counter_macs(build, input_size), "FlopCounterMode/2"


def flop_counter_macs(build: Callable[[], nn.Module], input_size: Sequence[int]) -> int:
    """Multiply-adds per image that FlopCounterMode sees, on the meta device (nothing computed)."""
    with torch.device("meta"):
        model = build().eval()
        x = torch.empty(1, *input_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


def transfer_weights(src: nn.Module, dst: nn.Module) -> str:
    """Copy every parameter and buffer of src into dst; returns how they were matched.

    By name where the names agree; else by position, which needs the two state dicts to hold the
    same shapes in the same order (true for the same architecture written in the same order).
    """
    s, d = src.state_dict(), dst.state_dict()
    if s.keys() == d.keys() and all(s[k].shape == d[k].shape for k in s):
        dst.load_state_dict(s)
        return "by name"
    s_items, d_items = list(s.items()), list(d.items())
    if len(s_items) != len(d_items):
        raise BenchError(
            f"cannot load the reference's weights: {len(s_items)} tensors vs our {len(d_items)}")
    for (sk, sv), (dk, dv) in zip(s_items, d_items):
        if sv.shape != dv.shape:
            raise BenchError(
                f"cannot load the reference's weights by position: {sk} {tuple(sv.shape)} "
                f"vs our {dk} {tuple(dv.shape)}")
    dst.load_state_dict({dk: sv for (dk, _), (_, sv) in zip(d_items, s_items)})
    return "by position"
