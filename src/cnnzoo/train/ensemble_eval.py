"""`evaluate_ensemble`: several model files scored on one test split, alone and together
(`cnnzoo eval A B C ...`). Each member sees the images through its own recorded preprocessing
(input size, normalisation, channels); with 10-crop testing the ensemble combines members x
crops. The members must agree on the classes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from ..contract import logits_of
from ..data.datasets import load_split, parse_spec
from ..data.nature import check_ten_crop
from ..devices import resolve_device
from ..ensemble import COMBINE, combine_summaries, member_summary, members_from_files
from ..errors import InvalidArgumentError
from ..results import err_pct
from .engine import autocast_ctx, precision_name
from .evaluation import check_eval_args, model_file, scoring_batches, scoring_recipe
from .recipes import Recipe


def evaluate_ensemble(paths: Sequence[str | os.PathLike], data: str | None = None, *, combine: str = "mean",
                      ten_crop: bool = False, allow_mirror: bool = False, device: str | None = None,
                      batch_size: int = 500, workers: int = 4, amp: str = "auto") -> dict:
    """Each member's top-1/top-5 error and the ensemble's (`combine`: mean softmax, mean
    logits or vote) on the test split of `data` (default: the data the members were trained on);
    10-crop testing as in `evaluate_file` (refused on digits unless `allow_mirror`)."""
    if combine not in COMBINE:
        raise InvalidArgumentError(f"--combine takes {', '.join(COMBINE)}, got {combine!r}")
    if len(paths) < 2:
        raise InvalidArgumentError(f"an ensemble needs at least 2 model files, got {len(paths)}")
    check_eval_args(batch_size, workers)
    dev = resolve_device(device)
    files = [model_file(p) for p in paths]
    members = members_from_files(files)
    spec = parse_spec(data if data is not None else _agreed_data(files, [r for _, r in members]))
    if ten_crop:
        check_ten_crop(str(spec), allow_mirror)
    test = load_split(spec, "test")
    classes = members[0][1].get("classes") or test.classes
    if len(test.classes) != len(classes):
        raise InvalidArgumentError(f"the members were trained on {len(classes)} classes; --data {spec} has "
                                   f"{len(test.classes)}")
    recipe = scoring_recipe(amp, members[0][1], batch_size)  # one precision for the whole ensemble
    rows, summaries, labels = [], [], None
    for path, (model, record) in zip(files, members):
        summary, own, labels = _member_scores(model.to(dev).eval(), record, path, test, spec, recipe, dev,
                                              ten_crop, combine, batch_size, workers)
        summaries.append(summary)
        rows.append({"model_file": str(path), "model": record.get("model"), **_errors(own, labels)})
        model.to("cpu")
    together = _errors(combine_summaries(torch.stack(summaries), combine), labels)
    mean_top1 = sum(r["top1_err_pct"] for r in rows) / len(rows)
    return {"data": str(spec), "images": int(len(labels)), "view": "10-crop" if ten_crop else "center",
            "combine": combine, "precision": precision_name(recipe, dev),
            "classes": list(classes), "members": rows, "ensemble": together,
            "members_mean_top1_err_pct": round(mean_top1, 4),
            "best_member_top1_err_pct": min(r["top1_err_pct"] for r in rows)}


def _agreed_data(files: list[Path], records: list[dict]) -> str | None:
    specs = {str(r.get("data")) for r in records}
    if len(specs) > 1:
        named = "; ".join(f"{f}: {r.get('data')}" for f, r in zip(files, records))
        raise InvalidArgumentError(f"the members were trained on different data ({named}); name the test "
                                   "data with --data")
    return records[0].get("data")


@torch.no_grad()
def _member_scores(model: torch.nn.Module, record: dict, path: Path, test: object, spec: object,
                   recipe: Recipe, dev: torch.device, ten_crop: bool, combine: str, batch_size: int,
                   workers: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One member on the whole split: its (N, classes) summary for `combine` (its crops
    reduced, see ensemble.member_summary), its own scores (mean softmax over the crops), labels."""
    outs, own, ys = [], [], []
    for x, y in scoring_batches(test, record, path, spec, ten_crop=ten_crop, device=dev, batch_size=batch_size,
                                workers=workers):
        crops = x.shape[0] if x.dim() == 5 else 1
        with autocast_ctx(recipe, dev):
            out = model(x.flatten(0, 1) if x.dim() == 5 else x)
        logits = logits_of(out).float().view(crops, len(y), -1).cpu()
        outs.append(member_summary(logits, combine))
        own.append(member_summary(logits, "mean"))
        ys.append(y.cpu())
    return torch.cat(outs), torch.cat(own), torch.cat(ys)


def _errors(scores: torch.Tensor, labels: torch.Tensor) -> dict:
    """Top-1 and top-5 error (%) of (N, classes) scores whose argmax is the prediction."""
    top = scores.topk(min(5, scores.shape[-1]), -1).indices
    top1 = (top[:, 0] == labels).double().mean().item()
    top5 = (top == labels[:, None]).any(1).double().mean().item()
    return {"top1_err_pct": err_pct(top1), "top5_err_pct": err_pct(top5)}
