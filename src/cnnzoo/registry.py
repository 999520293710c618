"""The model registry: one entry per named architecture, built by one builder per family;
`create_model` builds one, `load_model` rebuilds one from a model file."""

from __future__ import annotations

import fnmatch
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .checkpoint import load_state, read_record
from .errors import CheckpointError, InvalidArgumentError, UnknownModelError, closest
from .weights import load_weights


@dataclass(frozen=True)
class Paper:
    title: str
    authors: str
    year: int
    url: str


@dataclass(frozen=True)
class Published:
    """Figures a paper (or another named source) reports for this exact model."""

    source: str
    params: float | None = None  # count, e.g. 60e3
    macs: float | None = None  # multiply-adds at the native input size
    top1_err: float | None = None  # percent
    top5_err: float | None = None  # percent
    dataset: str = "ImageNet"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any]
    input_size: tuple[int, int, int]  # native (C, H, W)
    paper: Paper
    published: tuple[Published, ...] = ()
    description: str = ""
    # "script" where torch.jit.script works, else "compile" (torch.compile, fullgraph); shown by
    # `cnnzoo info` and docs/models.md, and checked by the tests
    compiles_with: str = "compile"
    num_classes: int = 1000  # default class count (LeNet-5: 10); in_chans defaults to input_size[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "input_size": list(self.input_size),
            "arch_kwargs": dict(self.kwargs),
            "paper": vars(self.paper).copy(),
            "published": [vars(p).copy() for p in self.published],
            "compiles_with": self.compiles_with,
        }


_REGISTRY: dict[str, ModelEntry] = {}


def register(
    name: str,
    builder: Callable[..., nn.Module],
    *,
    family: str,
    paper: Paper,
    input_size: tuple[int, int, int],
    kwargs: dict[str, Any] | None = None,
    published: tuple[Published, ...] | Published = (),
    description: str = "",
    compiles_with: str = "compile",
    num_classes: int = 1000,
) -> ModelEntry:
    """Add a model. Builders take (num_classes, in_chans, **arch_kwargs)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    if isinstance(published, Published):
        published = (published,)
    entry = ModelEntry(
        name=name,
        family=family,
        builder=builder,
        kwargs=dict(kwargs or {}),
        input_size=tuple(input_size),
        paper=paper,
        published=tuple(published),
        description=description,
        compiles_with=compiles_with,
        num_classes=num_classes,
    )
    _REGISTRY[name] = entry
    return entry


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing registers every family)


def get_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        near = closest(name, _REGISTRY)
        hint = f"; did you mean: {', '.join(near)}?" if near else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (`cnnzoo list` shows all {len(_REGISTRY)})"
        ) from None


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered names matching a shell-style pattern (e.g. 'resnet*'), sorted."""
    _ensure_loaded()
    names = [n for n, e in _REGISTRY.items() if fnmatch.fnmatch(n, pattern)]
    if family is not None:
        names = [n for n in names if _REGISTRY[n].family == family]
    return sorted(names)


def model_info(name: str) -> dict[str, Any]:
    """Metadata of a model: paper, native input size, published figures with their source."""
    return get_entry(name).as_dict()


def _accepted_kwargs(builder: Callable[..., nn.Module]) -> set[str]:
    sig = inspect.signature(builder)
    return {
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in ("num_classes", "in_chans")
    }


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    **arch_kwargs: Any,
) -> nn.Module:
    """Build a registered model. `arch_kwargs` override the registered architecture arguments.

    num_classes and in_chans default to the model's own (1000 and 3 for ImageNet models; 10 and 1
    for LeNet-5).

    `weights` is a path to a weights file (ours, torchvision's or timm's); see cnnzoo.weights.
    """
    entry = get_entry(name)
    num_classes = entry.num_classes if num_classes is None else num_classes
    in_chans = entry.input_size[0] if in_chans is None else in_chans
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgumentError(f"{arg} must be a positive integer, got {value!r}")
    accepted = _accepted_kwargs(entry.builder)
    unknown = sorted(set(arch_kwargs) - accepted)
    if unknown:
        raise InvalidArgumentError(
            f"{name} does not take argument(s) {', '.join(unknown)}; "
            f"it accepts: num_classes, in_chans"
            + (", " + ", ".join(sorted(accepted)) if accepted else "")
        )
    kwargs = {**entry.kwargs, **arch_kwargs}
    model = entry.builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    # Recorded so a checkpoint can rebuild exactly this model.
    model.model_name = name
    model.arch_kwargs = dict(arch_kwargs)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_model(path: str | os.PathLike,
               map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model recorded in `path` and load its weights. Returns (model, record)."""
    record = read_record(path)
    model = create_model(
        record["model"],
        num_classes=record["num_classes"],
        in_chans=record["in_chans"],
        **record.get("arch_kwargs", {}),
    )
    state = load_state(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match {record['model']}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    return model.to(map_location), record
