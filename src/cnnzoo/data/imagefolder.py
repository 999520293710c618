"""An image folder's layout, read without decoding anything: its splits (train/, val/, test/),
one folder per class in each, and the image files in them, in torchvision ImageFolder's order."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidArgumentError


def read_split(root: Path, split: str) -> tuple[Path, list[str], list[tuple[str, int]]]:
    """(its folder, class names, (path, class index) samples) of one split of an image folder.
    The val/test split must have the train split's class names (not only as many), or every
    label would mean another class."""
    sub = _split_dir(root, split)
    classes, samples = _scan(sub)
    if split != "train" and (root / "train").is_dir():
        train_classes = _class_names(root / "train")
        if train_classes != classes:
            only_train = sorted(set(train_classes) - set(classes))
            only_here = sorted(set(classes) - set(train_classes))
            raise InvalidArgumentError(
                f"image folder {root}: {sub.name}/ and train/ have different classes "
                f"(only in train/: {_few(only_train)}; only in {sub.name}/: {_few(only_here)}); "
                "both must hold one folder per class, with the same names")
    return sub, classes, samples


def folder_layout(root: Path) -> tuple[str | None, str]:
    """(validation folder, test folder) of an image folder: val/ validates and test/, when
    present, is the test set; with only val/ (ImageNet's layout) val/ is both; with only test/
    there is no validation folder (it is held out of train/)."""
    has_val, has_test = (root / "val").is_dir(), (root / "test").is_dir()
    return ("val" if has_val else None), ("test" if has_test or not has_val else "val")


def _split_dir(root: Path, split: str) -> Path:
    names = {"train": ("train",), "val": ("val",)}.get(split, ("test", "val"))
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise InvalidArgumentError(
        f"image folder {root} has no {' or '.join(n + '/' for n in names)} folder; expected "
        f"{root}/train/<class>/<image> and {root}/val/<class>/<image>")


def _few(names: list[str], limit: int = 5) -> str:
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _class_names(sub: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(sub) if e.is_dir())
    except OSError as err:
        raise InvalidArgumentError(f"{sub}: {err}") from None


def _scan(sub: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(class names, (path, class index) samples), in torchvision ImageFolder's order.

    Symbolic links are followed, but no real directory is entered twice: a link back to an
    ancestor (a loop) or to a folder already scanned adds nothing. A class without any image
    file is an error."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    classes = _class_names(sub)
    if not classes:
        raise InvalidArgumentError(f"{sub} holds no class folders; expected {sub}/<class>/<image>")
    seen: set[tuple[int, int]] = set()
    samples: list[tuple[str, int]] = []
    empty = []
    for index, name in enumerate(classes):
        found = []
        for top, dirs, files in os.walk(sub / name, followlinks=True):
            st = os.stat(top)
            if (st.st_dev, st.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            found += [(os.path.join(top, f), index) for f in files
                      if f.lower().endswith(IMG_EXTENSIONS)]
        if not found:
            empty.append(name)
        # torchvision sorts the walk's directories, then the files in each
        samples += sorted(found, key=lambda s: (os.path.dirname(s[0]), os.path.basename(s[0])))
    if empty:
        raise InvalidArgumentError(
            f"{sub}: no image files ({', '.join(IMG_EXTENSIONS)}) for class(es) {_few(empty)}")
    return classes, samples
