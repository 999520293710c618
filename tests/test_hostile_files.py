"""Hostile and damaged files: every size a file declares is bounded before anything is
allocated, nothing hangs, and each bad file ends in a clear error (exit 2, no traceback).

The hostile inputs are small and made here; cases that used to hang or exhaust memory run under
a time limit (signal.alarm, or a subprocess with a timeout and a memory cap)."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnzoo
from _datasets import write_cifar_batch
from cnnzoo.data.cifar import UnsafePickleError, load_cifar, safe_unpickle
from cnnzoo.data.datasets import load_split, parse_spec, shard_indices
from cnnzoo.data.mnist import load_mnist, read_idx, write_idx
from cnnzoo.errors import CnnzooError, InvalidArgumentError, ModelFileError
from cnnzoo.files import atomic_write_bytes
from cnnzoo.modelfile import RECORD_KEY, model_record

SRC = Path(__file__).resolve().parents[1] / "src"


@contextmanager
def time_limit(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than `seconds`."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds}s: this used to hang")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- model files -----------------------------------------------------------------------------
def _model_file(path: Path, name: str = "lenet5", edit=None, raw: str | None = None,
                state_edit=None) -> Path:
    """A real model file whose record (or tensors) we then damage."""
    from safetensors.torch import save_file

    model = cnnzoo.create_model(name)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if state_edit:
        state_edit(state)
    record = model_record(model)
    if edit:
        edit(record)
    save_file(state, str(path), metadata={RECORD_KEY: raw if raw is not None else json.dumps(record)})
    return path


def _run_cli(args: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    """The CLI in a child with 6 GiB of address space: a runaway allocation fails there."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); "
            "from cnnzoo.cli import main; main(sys.argv[1:])")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_a_record_claiming_a_trillion_classes_is_refused_before_building(tmp_path):
    path = _model_file(tmp_path / "huge.safetensors", edit=lambda r: r.update(num_classes=10**12))
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    done = _run_cli(["predict", str(path), str(tmp_path / "x.png")], timeout=30)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "num_classes" in done.stderr and "Traceback" not in done.stderr + done.stdout
    # under the bound, the file's classifier tensor tells the real class count
    path = _model_file(tmp_path / "more.safetensors", edit=lambda r: r.update(num_classes=500_000))
    with time_limit(20), pytest.raises(ModelFileError, match=r"num_classes=500000 but its "
                                                                r"classifier tensor output.codes has 10"):
        cnnzoo.load_model(path)


@pytest.mark.parametrize("raw, words", [
    ("[1, 2, 3]", "a JSON list where an object"),
    ('{"num_classes": 10}', 'no "model" name'),
    ('{"model": "lenet5", "in_chans": 100000}', "in_chans must be an integer in 1..1,024"),
    ('{"model": "lenet5", "arch_kwargs": {"depth": 1e12}}', "arch_kwargs"),
    ('{"model": "lenet5", "arch_kwargs": {"num_classes": 3}}', "arch_kwargs"),
    ('{"model": "lenet5", "classes": 7}', "classes must be a list"),
    ('{"model": "lenet5", "preprocess": {"input_size": [1, 100000, 100000]}}', "preprocess"),
    ('{"model": "lenet5", "arch_kwargs": {"head": "banana"}}', "head must be one of"),
    ('{"model": "lenet5", "arch_kwargs": {"colour": 1}}', "does not take argument"),
])
def test_malformed_records_are_checkpoint_errors(tmp_path, raw, words):
    path = _model_file(tmp_path / "m.safetensors", raw=raw)
    with pytest.raises(ModelFileError, match=words.replace("(", r"\(").replace("[", r"\[")):
        cnnzoo.load_model(path)


def test_tensor_shapes_that_disagree_with_the_architecture_name_the_tensor(tmp_path):
    def widen(state):
        state["c5.weight"] = torch.zeros(120, 16, 3, 3)

    path = _model_file(tmp_path / "m.safetensors", state_edit=widen)
    with pytest.raises(ModelFileError, match=r"tensor c5.weight has shape \(120, 16, 3, 3\) in the "
                                              r"file but \(120, 16, 5, 5\) in the architecture"):
        cnnzoo.load_model(path)
    path = _model_file(tmp_path / "gone.safetensors", state_edit=lambda s: s.pop("f6.bias"))
    with pytest.raises(ModelFileError, match="f6.bias is missing"):
        cnnzoo.load_model(path)
    path = _model_file(tmp_path / "rgb.safetensors", edit=lambda r: r.update(in_chans=3))
    with pytest.raises(ModelFileError, match=r"c1.weight has shape \(6, 1, 5, 5\)"):
        cnnzoo.load_model(path)
    # the CLI says so, exit 2, no traceback
    done = _run_cli(["predict", str(path), str(path)])
    assert done.returncode == 2 and "c1.weight" in done.stderr and "Traceback" not in done.stderr


def test_a_good_model_file_still_loads(tmp_path):
    path = tmp_path / "ok.safetensors"
    model = cnnzoo.create_model("lenet5_modern", num_classes=7)
    cnnzoo.save_model(path, model, classes=list("abcdefg"))
    loaded, record = cnnzoo.load_model(path)
    assert record["num_classes"] == 7
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_preprocessing_with_another_channel_count_than_the_model(tmp_path):
    from cnnzoo.deploy.predict import get_preprocess

    pre = {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.2] * 3, "resize": None}
    path = _model_file(tmp_path / "m.safetensors", edit=lambda r: r.update(preprocess=pre))
    model, record = cnnzoo.load_model(path)
    with pytest.raises(ModelFileError, match="3-channel inputs but the model takes 1"):
        get_preprocess(record, model)


# -- CIFAR pickles ---------------------------------------------------------------------------
def test_shared_references_are_checked_in_linear_time():
    inner = list(range(1000))
    level = inner
    for _ in range(3):  # 100 x 100 x 100 references to one list: 10^9 items if walked naively
        level = [level] * 100
    data = pickle.dumps({b"data": level, b"labels": []}, protocol=2)
    assert len(data) < 300_000
    with time_limit(20):
        obj = safe_unpickle(data, "shared")
    assert obj[b"data"][99][99][99] is obj[b"data"][0][0][0]


def test_cycles_and_deep_nesting_are_refused_clearly():
    loop: list = []
    loop.append(loop)
    with pytest.raises(UnsafePickleError, match="reference cycle"):
        safe_unpickle(pickle.dumps(loop, protocol=2), "loop")
    selfdict: dict = {}
    selfdict[b"me"] = [selfdict]
    with pytest.raises(UnsafePickleError, match="reference cycle"):
        safe_unpickle(pickle.dumps(selfdict, protocol=2), "dict")
    depth = 100_000  # opcodes by hand: pickle.dumps itself would recurse too deep
    deep = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    with time_limit(20), pytest.raises(UnsafePickleError, match="nested more than 32 deep"):
        safe_unpickle(deep, "deep")


def _cifar(root: Path, n: int = 8, labels=None) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(d / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                          rng.integers(0, 10, n))
    if labels is not None:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": labels}
        (d / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    return d


@pytest.mark.parametrize("labels, words", [
    ([1, 2, 3], r"data_batch_2: 8 images but 3 labels"),
    ([0, 1, 2, 3, 4, 5, 6, -1], r"data_batch_2: 1 labels outside 0..9 \(first: -1\)"),
    ([0, 1, 2, 3, 4, 5, 6, 10], r"outside 0..9 \(first: 10\)"),
    ([b"cat"] * 8, "labels must be a list of integers"),
    (7, "labels must be a list of integers"),
])
def test_cifar_labels_must_match_the_images(tmp_path, labels, words):
    _cifar(tmp_path, labels=labels)
    with pytest.raises(InvalidArgumentError, match=words):
        load_cifar(tmp_path, 10, "train")


def test_cifar_data_of_the_wrong_kind(tmp_path):
    d = _cifar(tmp_path)
    (d / "test_batch").write_bytes(pickle.dumps(
        {b"data": np.full((2, 3072), 300.0), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(InvalidArgumentError, match="data is a float64 array"):
        load_cifar(tmp_path, 10, "test")
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"cat"]}, protocol=2))
    with pytest.raises(InvalidArgumentError, match="list of 10 strings"):
        load_cifar(tmp_path, 10, "train")


# -- MNIST / IDX -----------------------------------------------------------------------------
def test_gzip_with_flipped_bytes_is_a_clear_error(tmp_path):
    digits = np.random.default_rng(0).integers(0, 4, (50, 28, 28), np.uint8) * 60  # compressible
    write_idx(tmp_path / "a.gz", digits)
    good = (tmp_path / "a.gz").read_bytes()
    kinds = set()
    for at in range(20, len(good) - 8, max(1, len(good) // 40)):
        bad = bytearray(good)
        bad[at] ^= 0xFF
        (tmp_path / "b.gz").write_bytes(bytes(bad))
        with pytest.raises(InvalidArgumentError, match="cannot read IDX file|truncated or not IDX") \
                as err:
            read_idx(tmp_path / "b.gz")
        kinds.add("crc" if "CRC" in str(err.value) else "zlib" if "decompressing" in str(err.value)
                  else "size")
    assert {"crc", "zlib"} <= kinds  # both kinds of damage were met


def test_idx_dimensions_are_checked_against_the_bytes_present(tmp_path):
    # 2^22 x 2^21 x 2^21 = 2^64 elements: wraps to 0 in 64-bit arithmetic, and the file has 0
    (tmp_path / "wrap").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 1 << 22, 1 << 21, 1 << 21))
    with pytest.raises(InvalidArgumentError, match="18,446,744,073,709,551,616 bytes of data"):
        read_idx(tmp_path / "wrap")
    # a gzip that claims a huge array holds a few bytes: refused without inflating a bomb
    head = bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 4000, 4000)
    (tmp_path / "big.gz").write_bytes(gzip.compress(head + b"\x00" * 1000))
    with time_limit(20), pytest.raises(InvalidArgumentError, match="holds 1,000 bytes"):
        read_idx(tmp_path / "big.gz")
    # more data than declared
    (tmp_path / "long.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2]) + b"abc"))
    with pytest.raises(InvalidArgumentError, match="holds more than 2 bytes"):
        read_idx(tmp_path / "long.gz")


def _mnist(root: Path, labels: np.ndarray, code: int = 0x08) -> Path:
    root.mkdir()
    for split, n in (("train", len(labels)), ("test", len(labels))):
        images, lbl = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte") if split == "train" \
            else ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        write_idx(root / images, np.zeros((n, 28, 28), np.uint8))
        (root / lbl).write_bytes(bytes([0, 0, code, 1]) + struct.pack(">I", n)
                                 + labels.astype(np.int8).tobytes())
    return root


def test_negative_mnist_labels_are_refused(tmp_path):
    root = _mnist(tmp_path / "m", np.array([0, 1, -3, 2]), code=0x09)
    with pytest.raises(InvalidArgumentError, match="labels must be 0-9, found -3"):
        load_mnist(root, "train")
    assert len(load_mnist(_mnist(tmp_path / "ok", np.array([0, 9, 3])), "test")[1]) == 3


# -- image folders ---------------------------------------------------------------------------
def _folder(root: Path, classes=("blue", "red"), val_classes=None, n: int = 3, size: int = 12) -> Path:
    for split, names in (("train", classes), ("val", val_classes or classes)):
        for c in names:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (size, size), (i * 40, 10, 200)).save(d / f"{i}.png")
    return root


def test_train_and_val_class_names_must_agree(tmp_path):
    root = _folder(tmp_path, ("cat", "dog"), val_classes=("cat", "dgo"))
    assert load_split(parse_spec(f"folder:{root}"), "train").classes == ["cat", "dog"]
    with pytest.raises(InvalidArgumentError, match=r"only in train/: dog; only in val/: dgo"):
        load_split(parse_spec(f"folder:{root}"), "test")


def test_a_directory_symlink_loop_does_not_multiply_the_dataset(tmp_path):
    root = _folder(tmp_path)
    os.symlink("..", root / "train" / "red" / "up")  # red/up -> train/ (a loop through red)
    os.symlink(".", root / "train" / "blue" / "self")
    with time_limit(20):
        data = load_split(parse_spec(f"folder:{root}"), "train")
    assert len(data) == 6 and data.classes == ["blue", "red"]
    assert sorted(os.path.basename(p) for p, _ in data.samples) == ["0.png", "0.png", "1.png", "1.png", "2.png", "2.png"]


def _loader(data, on_error="skip", workers=0):
    from cnnzoo.data.folder import FolderLoader
    from cnnzoo.data.transforms import folder_transform

    tf = folder_transform("none", (8, 8), 8, [0.5] * 3, [0.25] * 3, False)
    idx = shard_indices(len(data), 4, 0, 0, False, 0, 1, False)
    return FolderLoader(data, tf, idx, workers, on_error, torch.device("cpu"))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_split_with_no_readable_image_is_refused(tmp_path, workers):
    from cnnzoo.data.folder import NoReadableImageError

    root = _folder(tmp_path)
    for p in (root / "val").rglob("*.png"):
        p.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    loader = _loader(load_split(parse_spec(f"folder:{root}"), "test"), workers=workers)
    with pytest.raises(NoReadableImageError, match=r"val: none of the 6 image files tried"):
        list(loader.iterate())
    assert len(loader.skipped) == 6


def test_all_corrupt_training_folder_exits_2_through_the_cli(tmp_path):
    root = _folder(tmp_path)
    for p in (root / "train").rglob("*.png"):
        p.write_bytes(b"junk")
    done = _run_cli(["train", "lenet5_modern", "--data", f"folder:{root}", "--epochs", "1",
                     "--set", "batch_size=2", "--set", "workers=0",
                     "--out", str(tmp_path / "run")], timeout=120)
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    assert "none of the" in done.stderr and "image files tried" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_the_pixel_cap_applies_to_folder_images(tmp_path, monkeypatch):
    import cnnzoo.data.images as images
    from cnnzoo.data.folder import CorruptImageError

    root = _folder(tmp_path)
    Image.new("RGB", (40, 40)).save(root / "train" / "red" / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 12 * 12)
    data = load_split(parse_spec(f"folder:{root}"), "train")
    loader = _loader(data)
    assert sum(len(y) for _, y in loader.iterate()) == 6
    assert [os.path.basename(p) for p in loader.skipped] == ["big.png"]
    with pytest.raises(CorruptImageError, match=r"big.png: 40x40 = 1,600 pixels exceeds the limit"):
        list(_loader(data, "fail").iterate())


# -- output files ----------------------------------------------------------------------------
def test_output_files_get_the_mode_open_would_give(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        cnnzoo.save_model(tmp_path / "m.safetensors", cnnzoo.create_model("lenet5"))
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.bin", b"x")
        os.chmod(tmp_path / "a.bin", 0o640)
        atomic_write_bytes(tmp_path / "a.bin", b"y")  # an existing file keeps its mode
    finally:
        os.umask(old)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert mode == {"a.bin": 0o640, "m.safetensors": 0o644, "private.bin": 0o600}
    assert (tmp_path / "a.bin").read_bytes() == b"y"


def test_every_error_here_is_a_cnnzoo_error():
    # the CLI turns CnnzooError into "error: ..." and exit 2: the classes used above are such
    from cnnzoo.data.folder import CorruptImageError, NoReadableImageError

    for cls in (ModelFileError, InvalidArgumentError, UnsafePickleError, CorruptImageError,
                NoReadableImageError):
        assert issubclass(cls, CnnzooError) and cls.exit_code == 2


def test_a_damaged_record_in_a_plain_weights_file_is_ignored(tmp_path):
    # create_model(name, weights=path) needs only the tensors: a list as record does not matter
    path = _model_file(tmp_path / "w.safetensors", raw="[1, 2]")
    model = cnnzoo.create_model("lenet5", weights=str(path))
    assert model.num_classes == 10
