"""CIFAR-10/100 "python version" batches, read without executing pickled code.

The official archives store each batch as a pickled dict ({b'data': uint8 array N x 3072,
b'labels' or b'fine_labels': list of ints, ...}). `pickle.load` on an untrusted file runs any
callable the file names, so we use an Unpickler whose `find_class` admits only what a numpy
array's reconstruction needs (numpy.ndarray, numpy.dtype, numpy's `_reconstruct`, and
`_codecs.encode` restricted to latin-1, which Python 3 protocol-2 pickles use for bytes).
Anything else (os.system, builtins.eval, a class of any other module) is refused with
an error naming the offending global, before it is called.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InvalidArgumentError


class UnsafePickleError(InvalidArgumentError):
    pass


def _latin1_encode(obj: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"pickle asks for codec {encoding!r}; only latin-1 is allowed")
    return obj.encode("latin1", errors)


def _allowed() -> dict[tuple[str, str], object]:
    try:  # numpy >= 2 (old pickles name numpy.core, which maps here)
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("_codecs", "encode"): _latin1_encode,
    }
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, name: str) -> None:
        super().__init__(file, encoding="bytes")
        self._name = name
        self._allowed = _allowed()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._name}: refusing to unpickle {module}.{name}: a CIFAR batch may only hold "
                "a dict of numpy arrays, lists, numbers and bytes (this file could run code)"
            ) from None


def safe_unpickle(data: bytes, name: str = "pickle") -> object:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), name).load()
    except UnsafePickleError:
        raise
    except Exception as err:
        raise InvalidArgumentError(f"{name} is not a readable pickle ({type(err).__name__}: {err})") from None
    _check_plain(obj, name)
    return obj


# A CIFAR batch is a dict of arrays and flat lists: two levels. Far deeper is a hostile file.
MAX_DEPTH = 32
_LEAVES = (bytes, str, int, float, bool, type(None))


def _check_plain(obj: object, name: str) -> None:
    """Only plain containers, numbers, bytes and non-object arrays; no cycles, no deep nesting.

    Iterative (no recursion), and each container is visited once however often it is shared,
    so the time is linear in the size of the pickle."""
    done: set[int] = set()  # containers fully checked
    open_: set[int] = set()  # containers on the current path: meeting one again is a cycle
    stack: list[tuple[object, Iterator[object] | None]] = [(obj, None)]
    while stack:
        node, children = stack[-1]
        if children is None:  # first visit
            if len(stack) > MAX_DEPTH:
                raise UnsafePickleError(
                    f"{name}: containers nested more than {MAX_DEPTH} deep; a CIFAR batch is a "
                    "dict of arrays and lists, refusing it")
            children = _children(node, name)
            if children is None:  # a leaf
                stack.pop()
                continue
            open_.add(id(node))
            stack[-1] = (node, children)
        child = next(children, _END)
        if child is _END:
            stack.pop()
            open_.discard(id(node))
            done.add(id(node))
        elif id(child) in open_:
            raise UnsafePickleError(f"{name}: a container holds itself (a reference cycle); "
                                    "a CIFAR batch cannot, refusing it")
        elif id(child) not in done:
            stack.append((child, None))


_END = object()


def _children(obj: object, name: str) -> Iterator[object] | None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickleError(f"{name}: holds an object-dtype array; refusing it")
        return None
    if isinstance(obj, dict):
        return (x for kv in obj.items() for x in kv)
    if isinstance(obj, (list, tuple)):
        return iter(obj)
    if isinstance(obj, _LEAVES):
        return None
    raise UnsafePickleError(f"{name}: unexpected {type(obj).__name__} in a CIFAR batch")


_LAYOUT = {
    10: {"dir": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)],
         "test": ["test_batch"], "labels": b"labels", "meta": ("batches.meta", b"label_names")},
    100: {"dir": "cifar-100-python", "train": ["train"], "test": ["test"],
          "labels": b"fine_labels", "meta": ("meta", b"fine_label_names")},
}


def _root(path: Path, classes: int) -> Path:
    lay = _LAYOUT[classes]
    for cand in (path, path / lay["dir"]):
        if all((cand / f).is_file() for f in lay["train"] + lay["test"]):
            return cand
    raise InvalidArgumentError(
        f"{path} holds no CIFAR-{classes} python batches: expected "
        f"{', '.join(lay['train'] + lay['test'])} (in {path} or {path / lay['dir']}); "
        "this reader takes the 'python version' archive, extracted")


def load_cifar(path: str | Path, classes: int, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 N x 3 x 32 x 32, labels int64 N, class names) of CIFAR-10 or CIFAR-100."""
    root = _root(Path(path), classes)
    lay = _LAYOUT[classes]
    images, labels = [], []
    for fname in lay[split]:
        x, y = _read_batch(root / fname, classes, lay["labels"])
        images.append(x)
        labels.append(y)
    names = [str(i) for i in range(classes)]
    meta_file, key = lay["meta"]
    if (root / meta_file).is_file():
        meta = safe_unpickle((root / meta_file).read_bytes(), str(root / meta_file))
        if isinstance(meta, dict) and key in meta:
            names = _names(meta[key], classes, root / meta_file)
    return np.concatenate(images), np.concatenate(labels), names


def _read_batch(path: Path, classes: int, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: its images and labels, every size and value checked."""
    batch = safe_unpickle(path.read_bytes(), str(path))
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise InvalidArgumentError(
            f"{path}: not a CIFAR-{classes} batch (needs keys data and {label_key.decode()})")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        what = f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) \
            else f"a {type(data).__name__}"
        raise InvalidArgumentError(
            f"{path}: data is {what}; a CIFAR batch holds a uint8 array of N x 3072 pixels")
    raw = batch[label_key]
    if isinstance(raw, np.ndarray):
        raw = raw.tolist() if raw.ndim == 1 and raw.dtype.kind in "iu" else None
    if not isinstance(raw, (list, tuple)) or \
            not all(type(v) is int for v in raw):  # type, not isinstance: a bool is no label
        raise InvalidArgumentError(f"{path}: {label_key.decode()} must be a list of integers")
    if len(raw) != len(data):
        raise InvalidArgumentError(
            f"{path}: {len(data)} images but {len(raw)} labels; each image needs exactly one "
            "label (a file with fewer would pair images with the wrong labels)")
    bad = [v for v in raw if not 0 <= v < classes]
    if bad:
        raise InvalidArgumentError(
            f"{path}: {len(bad)} labels outside 0..{classes - 1} (first: {bad[0]}); "
            f"CIFAR-{classes} labels are 0..{classes - 1}")
    return data.reshape(-1, 3, 32, 32), np.asarray(raw, dtype=np.int64)


def _names(raw: object, classes: int, path: Path) -> list[str]:
    if not isinstance(raw, (list, tuple)) or len(raw) != classes or \
            not all(isinstance(n, (bytes, str)) for n in raw):
        raise InvalidArgumentError(
            f"{path}: the class names must be a list of {classes} strings")
    try:
        return [n.decode() if isinstance(n, bytes) else n for n in raw]
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{path}: a class name is not UTF-8") from None

