"""Data: IDX and CIFAR readers (incl. the restricted unpickler), image folders with corrupt
files, the embedded subset, specs, batched augmentations and input fitting."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from _datasets import write_cifar_batch
from _hostile import Evil, Reduce
from cnnzoo.data import transforms as T
from cnnzoo.data.cifar import UnsafePickleError, load_cifar, safe_unpickle
from cnnzoo.data.datasets import load_split, parse_spec, shard_indices
from cnnzoo.data.kinds import EMBEDDED_DIR
from cnnzoo.data.mnist import load_mnist, read_idx, write_idx
from cnnzoo.data.preprocess import fit_input
from cnnzoo.errors import InvalidArgumentError


# -- IDX / MNIST -----------------------------------------------------------------------------
def test_idx_roundtrip_gz_and_plain(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "a", a)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    assert np.array_equal(read_idx(tmp_path / "a"), a)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == (tmp_path / "a").read_bytes()


def test_idx_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "junk.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InvalidArgumentError, match="cannot read IDX"):
        read_idx(tmp_path / "junk.gz")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(InvalidArgumentError, match="not an IDX file"):
        read_idx(tmp_path / "text")
    write_idx(tmp_path / "t", np.zeros((4, 2, 2), np.uint8))
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-3])
    with pytest.raises(InvalidArgumentError, match="truncated"):
        read_idx(tmp_path / "t")
    with pytest.raises(InvalidArgumentError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path, "train")


def test_embedded_subset_is_real_balanced_mnist(mnist_dir):
    x, y = load_mnist(EMBEDDED_DIR, "train")
    xt, yt = load_mnist(EMBEDDED_DIR, "test")
    assert x.shape == (10000, 28, 28) and xt.shape == (1000, 28, 28)
    assert np.bincount(y).tolist() == [1000] * 10 and np.bincount(yt).tolist() == [100] * 10
    full_x, full_y = load_mnist(mnist_dir, "train")
    keep = np.sort(np.concatenate([np.flatnonzero(full_y == c)[:1000] for c in range(10)]))
    assert np.array_equal(full_x[keep], x) and np.array_equal(full_y[keep], y)
    size = sum(f.stat().st_size for f in EMBEDDED_DIR.glob("*.gz"))
    assert size < 3_000_000


def test_full_mnist_counts(mnist_dir):
    _, y = load_mnist(mnist_dir, "train")
    _, yt = load_mnist(mnist_dir, "test")
    assert len(y) == 60000 and len(yt) == 10000
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# -- CIFAR ----------------------------------------------------------------------------------
def _fake_cifar(root, classes=10, n=20):
    rng = np.random.default_rng(1)
    if classes == 10:
        d = root / "cifar-10-batches-py"
        d.mkdir(parents=True)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            write_cifar_batch(d / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                              rng.integers(0, 10, n))
        (d / "batches.meta").write_bytes(pickle.dumps(
            {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                              b"horse", b"ship", b"truck"], b"num_vis": 3072}, protocol=2))
    else:
        d = root / "cifar-100-python"
        d.mkdir(parents=True)
        for name in ("train", "test"):
            write_cifar_batch(d / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                              rng.integers(0, 100, n), classes=100)
    return d


def test_cifar10_and_100_batches(tmp_path):
    _fake_cifar(tmp_path / "c10")
    x, y, names = load_cifar(tmp_path / "c10", 10, "train")
    assert x.shape == (100, 3, 32, 32) and x.dtype == np.uint8 and len(y) == 100
    assert names[0] == "airplane" and names[9] == "truck"
    _fake_cifar(tmp_path / "c100", classes=100)
    x, y, names = load_cifar(tmp_path / "c100", 100, "test")
    assert x.shape == (20, 3, 32, 32) and len(names) == 100
    data = load_split(parse_spec(f"cifar10:{tmp_path / 'c10'}"), "test")
    assert data.images.shape == (20, 3, 32, 32) and data.classes[1] == "automobile"


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    marker = tmp_path / "pwned"
    d = _fake_cifar(tmp_path)
    (d / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        load_cifar(tmp_path, 10, "train")
    assert not marker.exists()
    # a builtin that could run code is refused too, and so is an object-dtype array
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_unpickle(pickle.dumps({b"x": Reduce(eval, ("1+1",))}), "p")
    with pytest.raises(UnsafePickleError, match="object-dtype"):
        safe_unpickle(pickle.dumps(np.array([1, "a"], dtype=object)), "p")


def test_cifar_missing_files_message(tmp_path):
    with pytest.raises(InvalidArgumentError, match="data_batch_1"):
        load_cifar(tmp_path, 10, "train")


# -- specs ----------------------------------------------------------------------------------
def test_parse_spec(tmp_path):
    assert parse_spec(None).kind == "embedded"
    assert parse_spec(f"mnist:{tmp_path}").path == tmp_path
    with pytest.raises(InvalidArgumentError, match="KIND:PATH"):
        parse_spec("imagenet:/x")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        parse_spec(f"mnist:{tmp_path / 'nope'}")


# -- image folders --------------------------------------------------------------------------
def _folder(root, corrupt=True):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, colour in (("red", 0), ("blue", 2)):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(6):
                a = rng.integers(0, 60, (20, 24, 3), dtype=np.uint8)
                a[..., colour] += 180
                Image.fromarray(a).save(d / f"{i}.png")
    if corrupt:
        (root / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_skips_corrupt_images_and_counts_them(tmp_path, workers):
    from cnnzoo.data.folder import FolderLoader
    from cnnzoo.data.transforms import folder_transform

    data = load_split(parse_spec(f"folder:{_folder(tmp_path)}"), "train")
    assert data.classes == ["blue", "red"] and len(data) == 13
    tf = folder_transform("imagenet", (16, 16), 18, [0.5] * 3, [0.25] * 3, True)
    idx = shard_indices(len(data), 4, 0, 0, False, 0, 1, False)
    loader = FolderLoader(data, tf, idx, workers, "skip", torch.device("cpu"))
    n = sum(len(y) for _, y in loader.iterate())
    assert n == 12
    assert [os.path.basename(p) for p in loader.skipped] == ["broken.png"]


def test_folder_fails_on_corrupt_image_naming_it(tmp_path):
    from cnnzoo.data.folder import CorruptImageError, FolderLoader
    from cnnzoo.data.transforms import folder_transform

    data = load_split(parse_spec(f"folder:{_folder(tmp_path)}"), "train")
    tf = folder_transform("none", (16, 16), 18, [0.5] * 3, [0.25] * 3, False)
    idx = shard_indices(len(data), 4, 0, 0, False, 0, 1, False)
    with pytest.raises(CorruptImageError, match="broken.png.*; remove it or train with --set on_corrupt=skip$"):
        list(FolderLoader(data, tf, idx, 0, "fail", torch.device("cpu")).iterate())
    # a caller without that option gives its own advice (transfer reads every image), workers or not
    for workers in (0, 1):
        with pytest.raises(CorruptImageError, match=r"broken.png .*\); read them all$") as e:
            list(FolderLoader(data, tf, idx, workers, "fail", torch.device("cpu"), advice="read them all").iterate())
        assert "--set on_corrupt" not in str(e.value)


def test_folder_without_split_dirs(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(InvalidArgumentError, match="train/"):
        load_split(parse_spec(f"folder:{tmp_path}"), "train")


# -- batched augmentation -------------------------------------------------------------------
def test_random_crop_is_an_exact_window_of_the_padded_image():
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 255, (16, 3, 8, 8), dtype=torch.uint8)
    out = T.random_crop(x, (8, 8), 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        assert any(torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8]) for dy in range(5) for dx in range(5))
    assert len({tuple(o.flatten()[:20].tolist()) for o in out}) > 1


def test_flip_ten_crop_and_resized_crops():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 10, 10)
    f = T.random_flip(x, g)
    flipped = [torch.equal(f[i], x[i].flip(-1)) for i in range(64)]
    assert 10 < sum(flipped) < 54 and all(fl or torch.equal(f[i], x[i]) for i, fl in enumerate(flipped))
    tc = T.ten_crop(x[:2], (8, 8))
    assert tc.shape == (10, 2, 3, 8, 8)
    assert torch.equal(tc[0], x[:2, :, :8, :8]) and torch.equal(tc[4], x[:2, :, 1:9, 1:9])
    assert torch.equal(tc[9], tc[4].flip(-1))
    # a crop of the whole image (fraction 1, centred) reproduces it
    ones = torch.ones(2)
    same = T.resized_crop(x[:2], (10, 10), ones, ones, g)
    torch.testing.assert_close(same, x[:2], atol=1e-5, rtol=0)
    for name in T.AUGMENTATIONS:
        assert T.augment_batch(torch.rand(4, 3, 36, 36), name, (32, 32), g).shape == (4, 3, 32, 32)


def test_pca_lighting_adds_a_colour_shift_along_the_eigenvectors():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 4, 4)
    val, vec = T.IMAGENET_EIGVAL, T.IMAGENET_EIGVEC
    out = T.pca_lighting(x, g, val, vec)
    shift = (out - x)[:, :, 0, 0]
    assert torch.allclose(out - x, shift[:, :, None, None].expand_as(x), atol=1e-6)
    coeff = shift @ torch.tensor(vec)  # back to the eigen-basis: alpha_i * lambda_i
    alpha = coeff / torch.tensor(val)
    assert alpha.abs().max() < 1.0 and alpha.std() > 0.02
    imgs = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    val2, vec2 = T.pixel_pca(imgs)
    assert val2[0] >= val2[1] >= val2[2] > 0


def test_fit_input_pads_mnist_to_lenets_32():
    p = fit_input("lenet5", (1, 32, 32), (1, 28, 28), [0.13], [0.31])
    assert p.pad == 2 and p.resize == 28 and "padded by 2" in p.note
    assert p.to_record() == {"input_size": [1, 32, 32], "resize": 28, "mean": [0.13], "std": [0.31],
                          "grayscale": True, "pad": 2}
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    b = p.eval_batch(x)
    assert b.shape == (2, 1, 32, 32)
    assert torch.allclose(b[0, 0, 0, 0], torch.tensor((0 - 0.13) / 0.31))
    assert torch.allclose(b[0, 0, 5, 5], torch.tensor((1 - 0.13) / 0.31))
    r = fit_input("alexnet", (3, 227, 227), (3, 32, 32), [0.5] * 3, [0.2] * 3)
    assert r.pad == 0 and r.resize == 227 and "resized" in r.note
    assert r.eval_batch(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)).shape == (1, 3, 227, 227)
    assert fit_input("m", (1, 28, 28), (1, 28, 28), [0], [1]).note == ""


def test_shard_indices_partition_the_global_batch():
    one = shard_indices(100, 20, 3, 7, True, 0, 1, True)
    two = [shard_indices(100, 20, 3, 7, True, r, 2, True) for r in range(2)]
    assert one.shape == (5, 20) and two[0].shape == (5, 10)
    for k in range(5):
        assert torch.equal(torch.cat([two[0][k], two[1][k]]), one[k])
    ev = shard_indices(25, 10, 0, 0, False, 1, 2, False)
    assert torch.cat(ev).tolist() == list(range(1, 25, 2))


def test_mnist_download_verifies_sha256_from_a_local_mirror(tmp_path, mnist_dir):
    """No network: the 'mirror' is a file:// folder. Good files pass, a tampered one is refused."""
    import shutil

    from cnnzoo.data.download import DownloadError, download_mnist

    mirror = tmp_path / "mirror"
    shutil.copytree(mnist_dir, mirror, ignore=shutil.ignore_patterns("*.md"))
    out = download_mnist(tmp_path / "dl", mirror=mirror.as_uri())
    assert load_mnist(out, "test")[0].shape == (10000, 28, 28)
    bad = np.zeros((2, 28, 28), np.uint8)
    write_idx(mirror / "t10k-labels-idx1-ubyte.gz", bad)
    (tmp_path / "dl" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DownloadError, match="SHA-256 of its content is"):
        download_mnist(tmp_path / "dl", mirror=mirror.as_uri())
    assert not (tmp_path / "dl" / "t10k-labels-idx1-ubyte.gz").exists()


def test_alexnet_lighting_builds_its_constants_once_per_device():
    from cnnzoo.data.transforms import augment_batch, device_pca

    device_pca.cache_clear()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 40, 40)
    for _ in range(3):  # three training steps: one host-to-device copy of the constants in all
        augment_batch(x, "alexnet", (35, 35), g)
    assert device_pca.cache_info().misses == 1 and device_pca.cache_info().hits == 2
