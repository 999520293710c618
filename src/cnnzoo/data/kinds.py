"""Data kinds: what `--data KIND:PATH` may name, one descriptor each in `KINDS`.

A descriptor holds everything the rest of cnnzoo asks about a kind: how to read a split, its
channels and class names where fixed, whether its images may be mirrored, whether cnnzoo can
fetch it, whether it is held in memory, and its help text. Every help and error string that
lists kinds is generated here (`spec_list`, `spec_help`), so adding a kind is one entry below.
A reader returns what the files hold (`InMemory` arrays or image `Files`), which
datasets.load_split turns into the trainer's sets. Readers import their modules when called:
listing kinds (the CLI's help) imports neither numpy nor torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
DIGITS = tuple(str(i) for i in range(10))
# Zalando's label order (the dataset's README): index i is class i.
CLOTHES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


class InMemory(NamedTuple):
    """A split small enough to hold: uint8 images (N, H, W) or (N, C, H, W), labels (N), names."""
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]


class Files(NamedTuple):
    """A split of image files: its folder, class names and (path, class index) samples."""
    root: Path
    classes: list[str]
    samples: list[tuple[str, int]]


Reader = Callable[[Path | None, str], "InMemory | Files"]


@dataclass(frozen=True)
class DataKind:
    name: str
    reader: Reader                  # (PATH or None, split) -> that split's images and labels
    help: str                       # what PATH holds (or what the kind is, without a PATH)
    channels: int | None = None     # None: decided by the files
    class_names: tuple[str, ...] | None = None  # None: read from the data
    mirror_safe: bool = True        # False: a mirror image is another class (digits)
    images: str = ""                # what the images are, for the mirror rule's message
    fetchable: bool = False         # `cnnzoo data fetch NAME` fetches it; NAME alone reads the cache
    takes_path: bool = True         # False: the kind is the whole spec (`embedded`)
    in_memory: bool = True          # held as tensors (False: image files, streamed)
    aliases: tuple[str, ...] = ()   # other spellings of a spec without a PATH

    @property
    def syntax(self) -> str:
        """How a spec of this kind is written: 'mnist:PATH', or the bare name."""
        return f"{self.name}:PATH" if self.takes_path else self.name


def _mnist(path: Path | None, split: str) -> InMemory:
    from .mnist import load_mnist

    x, y = load_mnist(path or EMBEDDED_DIR, split)
    return InMemory(x, y, list(DIGITS))


def _fashion(path: Path | None, split: str) -> InMemory:
    from .mnist import load_mnist

    x, y = load_mnist(path, split, name="Fashion-MNIST")
    return InMemory(x, y, list(CLOTHES))


def _cifar(classes: int) -> Reader:
    def read(path: Path | None, split: str) -> InMemory:
        from .cifar import load_cifar

        return InMemory(*load_cifar(path, classes, split))
    return read


def _folder(path: Path | None, split: str) -> Files:
    from .imagefolder import read_split

    return Files(*read_split(path, split))


def _imagenette(path: Path | None, split: str) -> Files:
    """An image folder whose WordNet-id class folders are named as torchvision names them."""
    from .imagefolder import read_split
    from .sources import imagenette_class_names

    if path is not None and not (path / "train").is_dir():  # the folder `data fetch --dir` filled
        inner = sorted(path.glob("imagenette2*/train"))
        path = inner[0].parent if len(inner) == 1 else path
    root, classes, samples = read_split(path, split)
    names = imagenette_class_names()
    return Files(root, [names.get(c, c) for c in classes], samples)


DEFAULT_KIND = "embedded"
KINDS: dict[str, DataKind] = {k.name: k for k in (
    DataKind("mnist", _mnist, "the four MNIST IDX files (gz or not) in PATH", channels=1,
             class_names=DIGITS, mirror_safe=False, images="MNIST digits", fetchable=True),
    # Clothes keep their class in a mirror (a left shoe is still a sandal): flips are allowed.
    DataKind("fashion-mnist", _fashion, "the four Fashion-MNIST IDX files (gz or not) in PATH, "
             "same names as MNIST's", channels=1, class_names=CLOTHES, images="Fashion-MNIST clothes",
             fetchable=True),
    DataKind("cifar10", _cifar(10), "CIFAR-10 python batches (PATH or PATH/cifar-10-batches-py)",
             channels=3, fetchable=True),
    DataKind("cifar100", _cifar(100), "CIFAR-100 python batches (PATH or PATH/cifar-100-python)",
             channels=3, fetchable=True),
    DataKind("folder", _folder, "PATH/train/<class>/*.jpg, PATH/val/<class>/* (validation) and/or "
             "PATH/test/<class>/*", channels=3, in_memory=False),
    DataKind("imagenette", _imagenette, "Imagenette (10 ImageNet classes): an image folder, "
             "PATH/train/<wnid>/*.JPEG and PATH/val/<wnid>/*", channels=3, in_memory=False,
             fetchable=True),
    DataKind("embedded", _mnist, "the small real MNIST subset shipped in the package, 10k digits",
             channels=1, class_names=DIGITS, mirror_safe=False,
             images="MNIST digits (the embedded subset)", takes_path=False, aliases=("embedded:mnist",)),
)}


def register_kind(kind: DataKind) -> None:
    """Add (or replace) a data kind: `--data NAME:PATH` reads it, every help lists it."""
    KINDS[kind.name] = kind


def spec_list(where: Callable[[DataKind], bool] | None = None, last: str = "or") -> str:
    """'mnist:PATH, cifar10:PATH, ... or embedded': the specs of the kinds `where` keeps."""
    names = [k.syntax for k in KINDS.values() if where is None or where(k)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def spec_help(where: Callable[[DataKind], bool] | None = None, default_note: str | None = None) -> str:
    """A `--data` option's help: the specs it takes, and which one is the default (`default_note`
    for a command whose default is not the package's, e.g. experiments' Fashion-MNIST)."""
    default = KINDS.get(DEFAULT_KIND)
    if default_note is not None:
        note = f" (default: {default_note})"
    else:
        note = f" (default {default.syntax}: {default.help})" if default and (where is None or where(default)) else ""
    fetchable = [k.name for k in KINDS.values() if k.fetchable and (where is None or where(k))]
    cached = (f"; {', '.join(fetchable)} alone: the verified cache (`cnnzoo data fetch NAME` "
              "fills it)") if fetchable else ""
    return spec_list(where) + note + cached


def spec_table() -> str:
    """One line per kind, its syntax and help (for docs and long help)."""
    width = max(len(k.syntax) for k in KINDS.values())
    return "\n".join(f"  {k.syntax:<{width}}  {k.help}" for k in KINDS.values())


def kind_of(spec: str | None) -> DataKind:
    """The kind a spec string names, without touching the file system ('mnist:PATH' -> mnist;
    None or '' -> the default). An unknown kind is an error listing the registered ones."""
    if not spec:
        return KINDS[DEFAULT_KIND]
    for kind in KINDS.values():
        if not kind.takes_path and spec in (kind.name, *kind.aliases):
            return kind
    name, sep, path = spec.partition(":")
    if not sep:  # a fetchable data set's name alone (or name-variant): its cache
        from .sources import TARGETS

        name = TARGETS[name].name if name in TARGETS else name
    kind = KINDS.get(name)
    if kind is None or not kind.takes_path or (sep and not path) or not (sep or kind.fetchable):
        raise InvalidArgumentError(bad_spec(spec))
    return kind


def spec_path(spec: str, kind: DataKind) -> Path:
    """The folder a spec of a kind that takes a path reads: its PATH (which must exist), or for
    a fetchable name alone the verified cache (else an error naming `cnnzoo data fetch`)."""
    name, sep, path = spec.partition(":")
    if not sep:
        from .fetch import cached_data
        from .sources import TARGETS

        t = TARGETS.get(name)
        return cached_data(t.name if t else name, t.variant if t else None)
    p = Path(path).expanduser()
    if not p.exists():
        raise InvalidArgumentError(missing_path(spec, kind, p))
    return p


def bad_spec(spec: str) -> str:
    """The error for a spec that names no registered kind."""
    with_path = [k for k in KINDS.values() if k.takes_path]
    bare = [k for k in KINDS.values() if not k.takes_path]
    text = (f"bad --data {spec!r}: write KIND:PATH with KIND one of {', '.join(k.name for k in with_path)}"
            + (f" (e.g. {with_path[0].name}:../shared/data/{with_path[0].name})" if with_path else ""))
    fetchable = [k.name for k in with_path if k.fetchable]
    cached = (f", or {', '.join(fetchable)} alone for the verified cache (`cnnzoo data fetch NAME`)"
              if fetchable else "")
    return text + cached + "".join(f", or {k.name!r} for {k.help}" for k in bare)


def missing_path(spec: str, kind: DataKind, path: Path) -> str:
    """The error for a spec whose PATH does not exist (with how to fetch the kinds cnnzoo can)."""
    fetch = (f" (`cnnzoo data fetch {kind.name} --dir {path}` fetches it)" if kind.fetchable else "")
    return f"--data {spec}: {path} does not exist{fetch}"
