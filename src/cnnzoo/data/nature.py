"""The mirror rule: a mirror image of a handwritten digit is another digit (or none), so horizontal
flips (in training augmentation or in 10-crop testing) are wrong on data whose kind is not
`mirror_safe` (data/kinds.py), though right on natural photographs. Training warns; 10-crop
testing is refused unless forced. Which kinds are safe and which augmentations flip is read from
their registries; these functions are the only place that combines them."""

from __future__ import annotations

from ..errors import InvalidArgumentError
from .kinds import kind_of
from .transforms import augmentation


class MirrorError(InvalidArgumentError):
    """10-crop testing (mirrored views) asked for on data that must not be mirrored."""


def mirror_problem(spec: str | None) -> str | None:
    """Why mirroring the images of `spec` gives wrong answers (None: it does not)."""
    kind = kind_of(spec)
    if kind.mirror_safe:
        return None
    return f"{kind.images or kind.name} are not mirror-symmetric: a mirrored digit is another digit or none"


def flip_warning(spec: str | None, augment: str) -> str | None:
    """The note a training run prints when its augmentation flips images that must not be flipped."""
    problem = mirror_problem(spec)
    if problem is None or not augmentation(augment).flips:
        return None
    return (f"augmentation {augment!r} flips images horizontally, and {problem}; "
            "--set augment=shift keeps the random shifts without flips (or --set augment=none)")


def check_ten_crop(spec: str | None, allow_mirror: bool = False) -> None:
    """Refuse 10-crop testing (it averages mirrored views) on data that must not be mirrored,
    unless `allow_mirror`: `cnnzoo eval --ten-crop` and `evaluate_file(ten_crop=True)` both ask here."""
    problem = None if allow_mirror else mirror_problem(spec)
    if problem is not None:
        raise MirrorError(f"--ten-crop averages mirrored views, and {problem} (see docs/training.md); "
                          "--allow-mirror (allow_mirror=True) forces it")
