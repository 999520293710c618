"""What the images of a dataset are, where it changes which defaults are safe: a mirror image of a
handwritten digit is another digit (or none), so horizontal flips (in training augmentation or
in 10-crop testing) are wrong on MNIST, though right on natural photographs."""

from __future__ import annotations

# --data kinds whose images are not mirror-symmetric classes
NOT_MIRROR_SAFE = {"mnist": "MNIST digits", "embedded": "MNIST digits (the embedded subset)"}
# augmentations (recipes' `augment`) that flip images horizontally
FLIPPING = ("cifar", "alexnet", "vgg", "imagenet")


def data_kind(spec: str | None) -> str:
    """'mnist:PATH' -> 'mnist'; None or 'embedded' -> 'embedded' (no file access)."""
    return "embedded" if not spec or spec.startswith("embedded") else spec.partition(":")[0]


def mirror_problem(spec: str | None) -> str | None:
    """Why mirroring the images of `spec` gives wrong answers (None: it does not)."""
    what = NOT_MIRROR_SAFE.get(data_kind(spec))
    return None if what is None else f"{what} are not mirror-symmetric: a mirrored digit is another digit or none"


def flip_warning(spec: str | None, augment: str) -> str | None:
    """The note a training run prints when its augmentation flips images that must not be flipped."""
    problem = mirror_problem(spec)
    if problem is None or augment not in FLIPPING:
        return None
    return (f"augmentation {augment!r} flips images horizontally, and {problem}; "
            "--set augment=shift keeps the random shifts without flips (or --set augment=none)")
