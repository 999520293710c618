"""Which data an experiment runs on when `--data` is not given: Fashion-MNIST, found in this
order (docs/experiments.md, "Data"):

1. the folder named by the environment variable CNNZOO_FASHION_MNIST;
2. the cache's `datasets/fashion-mnist` (CNNZOO_CACHE, default ~/.cache/cnnzoo);
3. `shared/data/fashion-mnist` in the working folder or any folder above it (the project's
   layout: `../shared/data/fashion-mnist` from a checkout beside `shared/`).

Fashion-MNIST separates the networks by whole points where MNIST puts nearly every net at 99%,
and it is what this machine holds (CIFAR-10 is not here; `--data cifar10:PATH` runs on it).
Without any of these the run stops with exit code 2 and says how to get the files."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidArgumentError

ENV = "CNNZOO_FASHION_MNIST"
FIRST_FILE = "train-images-idx3-ubyte"


class DataNotFoundError(InvalidArgumentError):
    """No --data was given and no Fashion-MNIST folder was found (exit code 2)."""


def _holds_idx(folder: Path) -> bool:
    return any((folder / f"{FIRST_FILE}{ext}").is_file() for ext in (".gz", ""))


def candidates() -> list[Path]:
    """The folders searched, in order (the environment variable's first, when set)."""
    from ..cache import cache_dir

    found = [Path(os.environ[ENV]).expanduser()] if os.environ.get(ENV) else []
    found.append(cache_dir("datasets") / "fashion-mnist")
    here = Path.cwd().absolute()
    found += [p / "shared" / "data" / "fashion-mnist" for p in (here, *here.parents)]
    return found


def default_data() -> str:
    """`fashion-mnist:FOLDER` for the first folder found, or DataNotFoundError."""
    if os.environ.get(ENV) and not _holds_idx(Path(os.environ[ENV]).expanduser()):
        raise DataNotFoundError(f"{ENV}={os.environ[ENV]} holds no {FIRST_FILE}(.gz): point it at "
                                "the folder of the four Fashion-MNIST IDX files")
    for folder in candidates():
        if _holds_idx(folder):
            return f"fashion-mnist:{folder}"
    from ..cache import cache_dir

    raise DataNotFoundError(
        "no Fashion-MNIST found for the experiment: pass --data fashion-mnist:PATH (or mnist:PATH, "
        f"cifar10:PATH, embedded), or set {ENV} to the folder of its four IDX files, or put them "
        f"in {cache_dir('datasets') / 'fashion-mnist'} (get them from "
        "https://github.com/zalandoresearch/fashion-mnist, or `apt-get install dataset-fashion-mnist`)")


def resolve(data: str | None) -> str:
    """The spec an experiment runs on: `data` as given, else the default Fashion-MNIST."""
    return data if data else default_data()
