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
from typing import Sequence

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


def _check_plain(obj: object, name: str) -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickleError(f"{name}: holds an object-dtype array; refusing it")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, name)
            _check_plain(v, name)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_plain(v, name)
    elif not isinstance(obj, (bytes, str, int, float, bool, type(None))):
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
        batch = safe_unpickle((root / fname).read_bytes(), str(root / fname))
        if not isinstance(batch, dict) or b"data" not in batch or lay["labels"] not in batch:
            raise InvalidArgumentError(
                f"{root / fname}: not a CIFAR-{classes} batch (needs keys data and "
                f"{lay['labels'].decode()})")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise InvalidArgumentError(f"{root / fname}: data has shape {data.shape}, expected N x 3072")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[lay["labels"]], dtype=np.int64))
    names = [str(i) for i in range(classes)]
    meta_file, key = lay["meta"]
    if (root / meta_file).is_file():
        meta = safe_unpickle((root / meta_file).read_bytes(), str(root / meta_file))
        if isinstance(meta, dict) and key in meta:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]
    x, y = np.concatenate(images), np.concatenate(labels)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise InvalidArgumentError(f"{root}: labels outside 0..{classes - 1}")
    return x, y, names


def write_cifar_batch(path: str | Path, images: np.ndarray, labels: Sequence[int] | np.ndarray,
                      classes: int = 10) -> None:
    """Write a batch in the official layout (used by tests to make small CIFAR-like sets)."""
    key = b"labels" if classes == 10 else b"fine_labels"
    obj = {b"batch_label": b"cnnzoo", key: [int(v) for v in labels],
           b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
           b"filenames": [f"{i}.png".encode() for i in range(len(images))]}
    Path(path).write_bytes(pickle.dumps(obj, protocol=2))
