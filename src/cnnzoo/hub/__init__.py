"""Published weights by name: the table (hub.table), the download (hub.download), and putting
them into a zoo model with their preprocessing and class names (`model.pretrained_cfg`).

`create_model(name, pretrained=True | "tv" | "timm" | TAG)` comes here through the registry.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from ..data.classnames import imagenet_classes
from ..display import Table
from ..errors import CnnzooError, InvalidArgumentError, UnknownModelError
from ..weights import LoadReport, load_weights
from .download import WeightsDownloadError, cache_dir, check_file, fetch, place, source_url
from .table import TABLE, WeightsEntry

__all__ = ["TABLE", "WeightsEntry", "WeightsDownloadError", "cache_dir", "check_file", "fetch", "place",
           "source_url", "entries_for", "entries_named", "resolve", "load_pretrained",
           "pretrained_cfg", "SOURCES"]

# what `pretrained=` / `--tag` may name instead of a tag: a publisher, meaning its rows
SOURCES = {"tv": "torchvision", "torchvision": "torchvision", "timm": "timm"}


def entries_for(model: str) -> list[WeightsEntry]:
    """The published weights of a zoo model, its default first ([] when none)."""
    return list(TABLE.get(model, ()))


def _named(model: str, pretrained: bool | str) -> list[WeightsEntry]:
    """Every row `pretrained` names, default first: True (or "default") = all of the model's,
    "tv"/"timm" = that source's, else the row with that tag (tags are unique per model)."""
    entries = entries_for(model)
    if not entries:
        raise UnknownModelError(
            f"no published weights for {model!r}; `cnnzoo weights` lists the {len(TABLE)} "
            "models that have some; create_model(name, weights=PATH) or `cnnzoo convert` loads any "
            "weights file")
    if pretrained is True or str(pretrained).lower() in ("true", "default", "1", "yes"):
        return entries
    key = str(pretrained).lower()
    if key in SOURCES:
        found = [e for e in entries if e.source == SOURCES[key]]
    else:
        found = [e for e in entries if e.tag == key]
    if not found:
        tags = ", ".join(f"{e.tag} ({e.source})" for e in entries)
        raise InvalidArgumentError(f"{model} has no {pretrained!r} weights; it has: {tags} "
                                   "(or pretrained=True for the first)")
    return found


def resolve(model: str, pretrained: bool | str) -> WeightsEntry:
    """The entry `pretrained` names: True (or "default") = the model's default, "tv"/"timm" =
    that source's default, else a tag (e.g. "imagenet1k_v1", "tf_in1k")."""
    return _named(model, pretrained)[0]


def entries_named(model: str, tag: str | None = None) -> list[WeightsEntry]:
    """Every row `tag` names: None = all of the model's (default first), a source ("tv",
    "timm") = all of that source's, a tag = its row. Errors as `resolve`'s."""
    return _named(model, tag or True)


def listing() -> list[dict[str, Any]]:
    """Every published weight, one row each (`cnnzoo weights`), the default of each model first."""
    return Table([e.as_dict() for name in sorted(TABLE) for e in TABLE[name]], "published weights")


def details(model: str, tag: str | None = None, download: bool = False) -> list[dict[str, Any]]:
    """`model`'s weights (those `tag` names) with where they come from and where they are cached;
    `download` fetches the one file the tag picks (verified) instead of listing every row."""
    entries = [resolve(model, tag or True)] if download else entries_named(model, tag)
    out = []
    for e in entries:
        path = fetch(e) if download else cache_dir() / e.file_name
        out.append({**e.as_dict(), "fetch_from": source_url(e), "cache_path": str(path),
                    "cached": download or path.is_file()})
    return Table(out, f"{model}'s weights")


def pretrained_cfg(entry: WeightsEntry, in_chans: int, num_classes: int) -> dict[str, Any]:
    """What a model made with these weights carries: the preprocessing (a Preprocess record),
    ImageNet's class names (when the classifier is still ImageNet's) and where it came from."""
    mean, std = list(entry.mean), list(entry.std)
    if in_chans != 3:  # first conv summed/repeated by load_weights: a gray image is R=G=B
        mean, std = [sum(mean) / 3] * in_chans, [sum(std) / 3] * in_chans
    preprocess = {"input_size": [in_chans, entry.crop, entry.crop], "resize": entry.resize,
                  "mean": mean, "std": std, "grayscale": in_chans == 1}
    return {"preprocess": preprocess,
            "classes": imagenet_classes() if num_classes == entry.num_classes == 1000 else None,
            "weights": {"source": entry.source, "tag": entry.tag, "url": entry.url,
                        "file": entry.file_name, "sha256": entry.sha256, "top1_acc_pct": entry.top1,
                        "top5_acc_pct": entry.top5, "interpolation": entry.interpolation}}


def load_pretrained(model: nn.Module, entry: WeightsEntry, num_classes: int | None = None,
                    progress: bool = True, path: str | os.PathLike | None = None) -> LoadReport:
    """Fetch `entry` (or take the file at `path`, e.g. placed by hand) and load it into `model`
    (built with entry.num_classes classes), then give it a new `num_classes`-way classifier if
    asked, and attach `pretrained_cfg`."""
    if path is not None:
        return _finish(model, entry, num_classes, load_weights(model, path))
    path = fetch(entry, progress=progress)
    try:
        report = load_weights(model, path)
    except CnnzooError:
        if entry.sha256 is None:  # only parsed, never digest-checked: do not keep it
            path.unlink(missing_ok=True)
        raise
    return _finish(model, entry, num_classes, report)


def _finish(model: nn.Module, entry: WeightsEntry, num_classes: int | None,
            report: LoadReport) -> LoadReport:
    if num_classes is not None and num_classes != entry.num_classes:
        model.reset_classifier(num_classes)
        model.num_classes = num_classes
    model.pretrained_cfg = pretrained_cfg(entry, int(getattr(model, "in_chans", 3)),
                                          int(getattr(model, "num_classes", entry.num_classes)))
    return report
