"""The model registry: one entry per named architecture, built by one builder per family;
`create_model` builds one, `load_model` rebuilds one from a model file.

An entry's figures from papers are written beside its family (models/*.py); torchvision's are
not: they live once, in the published weight's row (hub.table), and `register` derives them."""

from __future__ import annotations

import fnmatch
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .bounds import check
from .display import Record
from .errors import CnnzooError, InvalidArgumentError, ModelFileError, UnknownModelError, closest
from .hub.table import TABLE as WEIGHTS_TABLE
from .hub.table import WeightsEntry
from .modelfile import check_shapes, load_state, model_path, read_record, tensor_shapes
from .results import published
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
    num_classes: int = 1000  # default class count (LeNet-5: 10); in_chans defaults to input_size[0]
    recipe: str = "fast"  # the training recipe `cnnzoo train` uses without --recipe (train/recipes.py)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "input_size": list(self.input_size),
            "arch_kwargs": dict(self.kwargs),
            "paper": vars(self.paper).copy(),
            "published": [published(p) for p in self.published],
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
    num_classes: int = 1000,
    recipe: str = "fast",
) -> ModelEntry:
    """Add a model. Builders take (num_classes, in_chans, **arch_kwargs). `published`: the
    papers' figures; torchvision's are appended from its weights' row (hub.table). `recipe`
    names its paper's training recipe (a name in train/recipes.RECIPES); without one it trains
    with the modern `fast` recipe."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    if isinstance(published, Published):
        published = (published,)
    published = (*published, *torchvision_published(name))
    entry = ModelEntry(
        name=name,
        family=family,
        builder=builder,
        kwargs=dict(kwargs or {}),
        input_size=tuple(input_size),
        paper=paper,
        published=tuple(published),
        description=description,
        num_classes=num_classes,
        recipe=recipe,
    )
    _REGISTRY[name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a registration (a temporary network, e.g. an experiment's); absent: nothing."""
    _REGISTRY.pop(name, None)


# torchvision's first release of a model's weights: the figures papers and the docs compare
# with; its later recipes (IMAGENET1K_V2) are rows of their own, listed by `cnnzoo weights`.
_TV_QUOTED = "imagenet1k_v1"


def torchvision_published(name: str) -> tuple[Published, ...]:
    """torchvision's figures for `name` as a `Published` entry, derived from its weights' row
    (hub.table, tested equal to torchvision's metadata): errors = 100 - accuracy; () if none."""
    row = next((e for e in WEIGHTS_TABLE.get(name, ())
                if e.source == "torchvision" and e.tag == _TV_QUOTED), None)
    return () if row is None else (_from_row(row),)


def _from_row(row: WeightsEntry) -> Published:
    def err(acc: float | None) -> float | None:
        return None if acc is None else round(100 - acc, 3)

    return Published(
        source=f"torchvision {row.publisher_name} {row.tag.upper()} (ImageNet-1k val, "
               f"{row.crop}x{row.crop} single crop)",
        params=row.params, macs=None if row.gmacs is None else float(round(row.gmacs * 1e9)),
        top1_err=err(row.top1), top5_err=err(row.top5))


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


def list_models(pattern: str = "*", family: str | None = None,
                pretrained: bool = False) -> list[str]:
    """Registered names matching a shell-style pattern (e.g. 'resnet*'), sorted; with
    pretrained=True only those with published weights (`cnnzoo weights`)."""
    _ensure_loaded()
    names = [n for n, e in _REGISTRY.items() if fnmatch.fnmatch(n, pattern)]
    if family is not None:
        families = sorted({e.family for e in _REGISTRY.values()})
        if family not in families:
            near = closest(family, families)
            raise InvalidArgumentError(f"unknown family {family!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                                       + f"; the families are: {', '.join(families)}")
        names = [n for n in names if _REGISTRY[n].family == family]
    if pretrained:
        from .hub import TABLE

        names = [n for n in names if TABLE.get(n)]
    return sorted(names)


def model_info(name: str) -> dict[str, Any]:
    """Metadata of a model: paper, native input size, published figures with their source."""
    return Record(get_entry(name).as_dict(), name)


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
    pretrained: bool | str = False,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    **arch_kwargs: Any,
) -> nn.Module:
    """Build a registered model. `arch_kwargs` override the registered architecture arguments.

    num_classes and in_chans default to the model's own (1000 and 3 for ImageNet models; 10 and 1
    for LeNet-5).

    `weights` is a path to a weights file (ours, torchvision's or timm's); see cnnzoo.weights.
    `pretrained` (True, "tv", "timm" or a tag) fetches published ImageNet weights (cnnzoo.hub),
    cached under $CNNZOO_CACHE, and attaches their preprocessing and class names to the model
    (`model.pretrained_cfg`); another num_classes gets a new classifier.

    `features_only=True` gives the multi-scale backbone instead (timm's API): a module returning
    the feature maps of the stages `out_indices` picks; see cnnzoo.features.
    """
    entry = get_entry(name)
    if out_indices is not None and not features_only:
        raise InvalidArgumentError("out_indices picks the stages of a backbone: pass "
                                   "features_only=True with it")
    num_classes = entry.num_classes if num_classes is None else num_classes
    in_chans = entry.input_size[0] if in_chans is None else in_chans
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgumentError(f"{arg} must be a positive integer, got {value!r}")
    check("classes", num_classes, "num_classes")  # bounded before a layer is sized from them
    check("channels", in_chans, "in_chans")
    accepted = _accepted_kwargs(entry.builder)
    unknown = sorted(set(arch_kwargs) - accepted)
    if unknown:
        raise InvalidArgumentError(
            f"{name} does not take argument(s) {', '.join(unknown)}; "
            f"it accepts: num_classes, in_chans"
            + (", " + ", ".join(sorted(accepted)) if accepted else "")
        )
    published = None
    if pretrained is not False and pretrained is not None:
        from .hub import resolve

        published = resolve(name, pretrained)
        if in_chans == 3:  # e.g. transform_input for TF-trained weights
            arch_kwargs = {**published.arch_kwargs, **arch_kwargs}
    kwargs = {**entry.kwargs, **arch_kwargs}
    model = entry.builder(num_classes=published.num_classes if published else num_classes,
                          in_chans=in_chans, **kwargs)
    # Recorded so a model file can rebuild exactly this model.
    model.model_name = name
    model.arch_kwargs = dict(arch_kwargs)
    if published is not None:  # a `weights` file stands in for the download
        from .hub import load_pretrained

        load_pretrained(model, published, num_classes, path=weights)
    elif weights is not None:
        load_weights(model, weights)
    if features_only:
        from .features import features_only as backbone

        return backbone(model, out_indices, tuple(entry.input_size[1:]))
    return model


def load_model(path: str | os.PathLike,
               map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model recorded in `path` and load its weights. Returns (model, record).

    Nothing is allocated from what the record declares until the file's own tensors agree:
    the record is bounded (modelfile.check_record), its class count is checked against the
    classifier tensor in the file, and every tensor shape against the architecture built on
    the meta device (no memory). A run folder means its model.safetensors."""
    path = model_path(path)
    record = read_record(path)
    name, kwargs = record["model"], record.get("arch_kwargs", {})
    probe = _skeleton(path, record, num_classes=1)  # one class first: cheap whatever it claims
    shapes = tensor_shapes(path)
    head = getattr(probe, "classifier_name", None)
    cls_keys = [k for k in probe.state_dict() if head and k.startswith(head + ".")]
    n_file = shapes[cls_keys[0]][0] if cls_keys and len(shapes.get(cls_keys[0], ())) else None
    n_rec = record.get("num_classes") or get_entry(name).num_classes
    if n_file is not None and n_file != n_rec:
        raise ModelFileError(
            f"{path}: its record says num_classes={n_rec} but its classifier tensor "
            f"{cls_keys[0]} has {n_file} rows; the file is damaged or was edited")
    skeleton = _skeleton(path, record, num_classes=record.get("num_classes"))
    check_shapes(path, record, {k: tuple(v.shape) for k, v in skeleton.state_dict().items()})
    model = create_model(name, num_classes=record.get("num_classes"), in_chans=record.get("in_chans"),
                         **kwargs)
    model.load_state_dict(load_state(path), strict=True)
    return model.to(map_location), record


def _skeleton(path: str | os.PathLike, record: dict[str, Any], num_classes: int | None) -> nn.Module:
    """The recorded architecture on the meta device: shapes without memory."""
    try:
        with torch.device("meta"):
            return create_model(record["model"], num_classes=num_classes,
                                in_chans=record.get("in_chans"), **record.get("arch_kwargs", {}))
    except CnnzooError as err:
        raise ModelFileError(f"{path}: its record does not describe a model we can build ({err})") \
            from None
    except Exception as err:  # a builder's own check on its arguments (ValueError, TypeError...)
        raise ModelFileError(f"{path}: its record's architecture arguments do not build "
                             f"{record['model']} ({type(err).__name__}: {err})") from None
