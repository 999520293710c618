"""The data sets `cnnzoo data fetch` knows, and where their checksums come from.

The checksums are the publishers' MD5s as the installed torchvision carries them
(`torchvision.datasets.MNIST.resources`, `FashionMNIST.resources`, `CIFAR10.url/filename/
tgz_md5`, `CIFAR100`'s, `Imagenette._ARCHIVES`): `publisher_table` reads them at run time from
torchvision's dataset modules, never from a copy typed in here. It parses the modules' source
(class-level literals) instead of importing them, so `cnnzoo data list` does not pay for
`import torch`; where the source no longer has that shape it imports the classes instead.

What is typed in here is what torchvision does not say: the folder each archive unpacks to and
the bounds (bytes per download, bytes and members unpacked), a little above the real sizes, so
that a hostile server or archive is cut off instead of filling the disk.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import CnnzooError, InvalidArgumentError

MiB = 2**20


class Remote(NamedTuple):
    """One file a publisher serves: its name, the publisher's MD5, its URLs (first = preferred)."""
    filename: str
    md5: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """One data set (and variant) as cnnzoo fetches it."""
    name: str
    variant: str             # "" where the data set has one form
    about: str
    data_folder: str         # where the data is inside its cache folder ("" = the folder itself)
    max_file_bytes: int      # the most one download may have
    max_unpacked_bytes: int = 0   # 0: the files are used as downloaded (no archive)
    max_members: int = 0

    @property
    def key(self) -> str:
        """Its folder name in the cache, and how `data list` names it: 'imagenette-160px'."""
        return f"{self.name}-{self.variant}" if self.variant else self.name

    @property
    def archive(self) -> bool:
        return self.max_unpacked_bytes > 0

    @property
    def spec(self) -> str:
        """The `--data` spec that reads it from the cache: its name, or name-variant."""
        return self.key if self.variant and self.variant != VARIANTS[self.name][0] else self.name

    @property
    def fetch_command(self) -> str:
        default = VARIANTS.get(self.name, ("",))[0]
        extra = f" --variant {self.variant}" if self.variant and self.variant != default else ""
        return f"cnnzoo data fetch {self.name}{extra}"


_IMAGENETTE = {"160px": ("imagenette2-160", 192, 224), "320px": ("imagenette2-320", 512, 576),
               "full": ("imagenette2", 2048, 2304)}  # folder, MiB downloaded, MiB unpacked
VARIANTS = {"imagenette": ("160px", "320px", "full")}  # the first is the default
TARGETS: dict[str, Target] = {t.key: t for t in (
    Target("mnist", "", "MNIST handwritten digits: four IDX files, 11 MB", "", 16 * MiB),
    Target("fashion-mnist", "", "Zalando's Fashion-MNIST clothes: four IDX files, 30 MB", "",
           40 * MiB),
    Target("cifar10", "", "CIFAR-10, python batches: 163 MiB", "cifar-10-batches-py", 192 * MiB,
           256 * MiB, 64),
    Target("cifar100", "", "CIFAR-100, python batches: 161 MiB", "cifar-100-python", 192 * MiB,
           256 * MiB, 64),
    *(Target("imagenette", v, f"Imagenette {v}: 10 ImageNet classes as an image folder",
             folder, mb * MiB, unpacked * MiB, 30000)
      for v, (folder, mb, unpacked) in _IMAGENETTE.items()),
)}
NAMES = tuple(dict.fromkeys(t.name for t in TARGETS.values()))

# torchvision's module and class per data set (what publisher_table reads)
_TV = {"mnist": ("mnist", "MNIST"), "fashion-mnist": ("mnist", "FashionMNIST"),
       "cifar10": ("cifar", "CIFAR10"), "cifar100": ("cifar", "CIFAR100"),
       "imagenette": ("imagenette", "Imagenette")}


class UnknownDatasetError(InvalidArgumentError):
    """A data set name (or variant) cnnzoo cannot fetch."""


def target(name: str, variant: str | None = None) -> Target:
    """The target `name` (and `variant`, default the first) names; an unknown one lists them."""
    if name not in NAMES:
        from ..errors import closest

        near = closest(name, NAMES)
        hint = f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""
        raise UnknownDatasetError(f"no data set {name!r}{hint}; cnnzoo fetches "
                                  f"{', '.join(NAMES)}")
    variants = VARIANTS.get(name, ("",))
    if variant and variant not in variants or (variant and variants == ("",)):
        listed = ", ".join(v for v in variants if v) or "none"
        raise UnknownDatasetError(f"{name} has no variant {variant!r}; its variants: {listed}")
    return TARGETS[f"{name}-{variant or variants[0]}" if variants[0] else name]


def remotes(t: Target) -> tuple[Remote, ...]:
    """The files `t` is fetched from, with the publisher's MD5s (from torchvision)."""
    return publisher_table()[t.key]


@lru_cache(maxsize=1)
def publisher_table() -> dict[str, tuple[Remote, ...]]:
    """Target key -> its publisher's files and MD5s, as the installed torchvision lists them.
    The one seam for the checksums (tests replace it with their own small archives')."""
    attrs = {name: _class_attrs(*_TV[name]) for name in NAMES}
    out: dict[str, tuple[Remote, ...]] = {}
    for name in ("mnist", "fashion-mnist"):
        a = attrs[name]
        out[name] = tuple(Remote(f, md5, tuple(m.rstrip("/") + "/" + f for m in a["mirrors"]))
                          for f, md5 in a["resources"])
    for name in ("cifar10", "cifar100"):
        a = attrs[name]
        out[name] = (Remote(a["filename"], a["tgz_md5"], (a["url"],)),)
    for variant, (url, md5) in attrs["imagenette"]["_ARCHIVES"].items():
        out[f"imagenette-{variant}"] = (Remote(url.rsplit("/", 1)[1], md5, (url,)),)
    missing = [k for k in TARGETS if k not in out]
    if missing:
        raise CnnzooError(f"the installed torchvision lists no checksums for {', '.join(missing)}")
    return out


@lru_cache(maxsize=1)
def imagenette_class_names() -> dict[str, str]:
    """WordNet id -> the first of its names, from torchvision's Imagenette (n01440764 -> tench)."""
    try:
        table = _class_attrs("imagenette", "Imagenette")["_WNID_TO_CLASS"]
        return {wnid: names[0] for wnid, names in table.items()}
    except CnnzooError:
        return {}


_NEEDED = {"MNIST": ("mirrors", "resources"), "FashionMNIST": ("mirrors", "resources"),
           "CIFAR10": ("url", "filename", "tgz_md5"), "CIFAR100": ("url", "filename", "tgz_md5"),
           "Imagenette": ("_ARCHIVES", "_WNID_TO_CLASS")}


def _class_attrs(module: str, cls: str) -> dict[str, Any]:
    """The literal class attributes of torchvision.datasets.<module>.<cls>, read from its source
    (else, where the source has another shape, from the imported class)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise CnnzooError("the publishers' checksums are read from torchvision's data set "
                          "modules, and torchvision is not installed: pip install torchvision")
    source = Path(list(spec.submodule_search_locations)[0]) / "datasets" / f"{module}.py"
    found: dict[str, Any] = {}
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
    except (OSError, SyntaxError, ValueError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for stmt in node.body:
                target_ = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                    else getattr(stmt, "target", None) if isinstance(stmt, ast.AnnAssign) else None
                if isinstance(target_, ast.Name) and stmt.value is not None:
                    try:
                        found[target_.id] = ast.literal_eval(stmt.value)
                    except ValueError:
                        pass
    if all(k in found for k in _NEEDED[cls]):
        return found
    try:  # another layout of the source: ask the class itself (imports torch)
        klass = getattr(importlib.import_module(f"torchvision.datasets.{module}"), cls)
        return {k: getattr(klass, k) for k in _NEEDED[cls]}
    except (ImportError, AttributeError) as err:
        raise CnnzooError(f"cannot read the checksums of {cls} from the installed torchvision "
                          f"({err}); cnnzoo needs torchvision's dataset modules") from None
