"""Model ensembles, as every ILSVRC winner used them: several trained networks, one prediction.

`ensemble([m1, m2, m3])` returns a module whose output is the members' combined prediction:
`mean` averages their softmax (the papers' way; the output is a log-probability, so argmax and
cross-entropy-style scores work on it), `logits` averages their raw logits, `vote` counts their
top-1 votes (ties broken by the mean softmax). Members must agree on the number of classes and
on the input they take; each may carry its own preprocessing when it is used from files (see
`members_from_files`). The module is a plain nn.Module: `export` handles it.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch
from torch import nn

from .contract import logits_of
from .errors import InvalidArgumentError

COMBINE = ("mean", "logits", "vote")


class Ensemble(nn.Module):
    """The members' combined prediction (see the module docstring)."""

    def __init__(self, members: Sequence[nn.Module], combine: str = "mean") -> None:
        super().__init__()
        if combine not in COMBINE:
            raise InvalidArgumentError(f"combine must be one of {', '.join(COMBINE)}, got {combine!r}")
        if len(members) < 2:
            raise InvalidArgumentError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.num_classes = _agreed(members, "num_classes")
        self.in_chans = _agreed(members, "in_chans")

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(members, N, classes) logits."""
        return torch.stack([logits_of(m(x)).float() for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return combine_logits(self.member_logits(x), self.combine)


def combine_logits(logits: torch.Tensor, combine: str = "mean") -> torch.Tensor:
    """Combine (members, N, classes) logits into (N, classes) scores whose argmax is the
    ensemble's prediction: log of the mean softmax, mean logits, or vote counts."""
    if combine == "mean":
        return logits.softmax(-1).mean(0).clamp_min(1e-12).log()
    if combine == "logits":
        return logits.mean(0)
    if combine == "vote":
        votes = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).float()
        return votes + 1e-3 * logits.softmax(-1).mean(0)  # ties: the mean softmax decides
    raise InvalidArgumentError(f"combine must be one of {', '.join(COMBINE)}, got {combine!r}")


# Ensembles of members x crops (`cnnzoo eval A B C --ten-crop`), one member at a time: each
# member's crops are reduced to an (N, classes) summary, and the mean of the members' summaries
# ranks the classes as combine_logits does over all members x crops.
_VOTE_TIE = 1e-6  # the mean softmax's weight in a vote summary: less than one vote among up to 1e6 members x crops


def member_summary(logits: torch.Tensor, combine: str = "mean") -> torch.Tensor:
    """(crops, N, classes) logits of one member -> (N, classes): the mean softmax (mean), the
    mean logits (logits), or the share of top-1 votes plus a tie-breaking sliver of the mean
    softmax (vote)."""
    if combine == "mean":
        return logits.softmax(-1).mean(0)
    if combine == "logits":
        return logits.mean(0)
    if combine == "vote":
        votes = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float().mean(0)
        return votes + _VOTE_TIE * logits.softmax(-1).mean(0)
    raise InvalidArgumentError(f"combine must be one of {', '.join(COMBINE)}, got {combine!r}")


def combine_summaries(summaries: torch.Tensor, combine: str = "mean") -> torch.Tensor:
    """(members, N, classes) member summaries (same number of crops each) -> (N, classes) scores:
    the log mean softmax, the mean logits, or the vote shares."""
    mean = summaries.mean(0)
    return mean.clamp_min(1e-12).log() if combine == "mean" else mean


def ensemble(members: Sequence[nn.Module | str | os.PathLike], combine: str = "mean") -> Ensemble:
    """An Ensemble of modules, or of model files (loaded with cnnzoo.load_model)."""
    paths = [m for m in members if not isinstance(m, nn.Module)]
    loaded = iter(members_from_files(paths)) if paths else iter(())
    models = [m if isinstance(m, nn.Module) else next(loaded)[0] for m in members]
    return Ensemble(models, combine).eval()


def members_from_files(paths: Sequence[str | os.PathLike]) -> list[tuple[nn.Module, dict[str, Any]]]:
    """(model, record) of each file, checked to agree on their classes (count and names)."""
    from .registry import load_model

    loaded = [load_model(p) for p in paths]
    first_path, (first, first_rec) = paths[0], loaded[0]
    for path, (model, rec) in zip(paths[1:], loaded[1:]):
        n0, n = getattr(first, "num_classes", None), getattr(model, "num_classes", None)
        if n != n0:
            raise InvalidArgumentError(f"ensemble members disagree on the classes: {path} has {n}, "
                                       f"{first_path} has {n0}")
        c0, c = first_rec.get("classes"), rec.get("classes")
        if c0 is not None and c is not None and list(c) != list(c0):
            diff = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(c, c0)) if a != b][:3]
            raise InvalidArgumentError(f"ensemble members disagree on the class names: {path} vs "
                                       f"{first_path} ({'; '.join(diff)})")
    return loaded


def _agreed(members: Sequence[nn.Module], attr: str) -> int | None:
    values = {getattr(m, attr, None) for m in members}
    values.discard(None)
    if len(values) > 1:
        raise InvalidArgumentError(f"ensemble members disagree on {attr}: {sorted(values)}")
    return values.pop() if values else None

