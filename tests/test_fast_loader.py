"""The fast image-folder loader (data/fast_loader.py): the same crops as the PIL path, the PIL
fallbacks, corrupt files, DDP shards, exact resume, the loader choice; CUDA/DALI on a GPU."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_rgb)
from _train_models import SGD, _Stop, _weights
from cnnzoo.data.datasets import load_split, parse_spec, shard_indices
from cnnzoo.data.fast_loader import FastFolderLoader, FastSpec, choose_decoder
from cnnzoo.data.fastjpeg import crop_resize, decode_cpu, read_encoded, rrc_box
from cnnzoo.data.folder import CorruptImageError, NoReadableImageError
from cnnzoo.data.images import load_image
from cnnzoo.data.transforms import crop_box
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.train.run import fit

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CPU = torch.device("cpu")


def _photo(rng: np.random.Generator, w: int = 96, h: int = 72) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([128 + 90 * np.sin(xx / (9 + 4 * c) + yy / (7 + 3 * c) + rng.uniform(0, 6)) for c in range(3)], -1)
    return Image.fromarray(np.clip(a + rng.normal(0, 6, a.shape), 0, 255).astype(np.uint8))


def _flat_folder(root: Path, n: int = 24) -> Path:
    """n flat-coloured JPEGs, image i of colour (10 i, 250 - 10 i, 128), 3 classes: an image is
    known by its colour after any crop."""
    for i in range(n):
        d = root / "train" / f"c{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (10 * i, 250 - 10 * i, 128)).save(d / f"{i:02d}.jpg", quality=95)
    return root


def _ids(x: torch.Tensor) -> list[int]:
    """Which flat image each normalised batch row is (by its red channel)."""
    red = (x[:, 0].mean(dim=(1, 2)) * STD[0] + MEAN[0]) * 255
    return [int(round(v / 10)) for v in red.tolist()]


def _loader(root: Path, kind: str = "none", *, rank: int = 0, world: int = 1, workers: int = 0,
            on_error: str = "skip", batch: int = 8, size: int = 16) -> FastFolderLoader:
    data = load_split(parse_spec(f"folder:{root}"), "train")
    idx = shard_indices(len(data), batch * world, 0, 7, True, rank, world, True)
    seeds = [1000 * rank + k for k in range(len(idx))]
    return FastFolderLoader(data, FastSpec(kind, (size, size), size, MEAN, STD), idx, seeds, workers,
                            on_error, CPU)


def test_fast_crop_matches_pil_for_the_same_box(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(4):
        p = tmp_path / f"{k}.jpg"
        _photo(rng).save(p, quality=92)
        box = rrc_box(72, 96, random.Random(k))
        t, l, bh, bw = box
        ours = crop_resize(decode_cpu(read_encoded(p), p), box, (32, 32))
        pil = load_image(p).resize((32, 32), Image.BILINEAR, box=(l, t, l + bw, t + bh))
        ref = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)
        assert ours.dtype == torch.uint8 and ours.shape == (3, 32, 32)
        diff = (ours.float() - ref.float()).abs().mean().item()
        assert diff < 3.0, f"box {box}: mean |fast - PIL| = {diff:.2f} grey levels"


def test_crop_boxes_follow_the_augmentations_geometry():
    for s in range(300):
        t, l, bh, bw = rrc_box(375, 500, random.Random(s))
        assert 0 <= t and t + bh <= 375 and 0 <= l and l + bw <= 500
        assert 0.08 * 0.9 <= bh * bw / (375 * 500) <= 1.0 and 3 / 4 * 0.95 <= bw / bh <= 4 / 3 * 1.05
    # eval: the centre crop of `resize` -> `size`, in original pixels (shorter side 300 -> 256 -> 224)
    assert crop_box(300, 400, "none", (224, 224), 256, random.Random(0)) == (19, 69, 262, 262)
    t, l, bh, bw = crop_box(300, 400, "alexnet", (224, 224), 256, random.Random(3))
    assert (bh, bw) == (262, 262) and t + bh <= 300 and l + bw <= 400
    for s in range(50):
        t, l, bh, bw = crop_box(300, 400, "vgg", (224, 224), 256, random.Random(s))
        assert bh == bw and 131 <= bh <= 263 and t + bh <= 300 and l + bw <= 400


def _save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


def test_png_grayscale_cmyk_and_16_bit_fall_back_to_pil(tmp_path):
    rng = np.random.default_rng(1)
    rgb = _photo(rng, 48, 40)
    files = {
        "png": _save(rgb, tmp_path / "a.png"),
        "gray jpeg": _save(rgb.convert("L"), tmp_path / "g.jpg", quality=90),
        "cmyk jpeg": _save(rgb.convert("CMYK"), tmp_path / "c.jpg", quality=90),
        "16-bit png": _save(Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257), tmp_path / "s.png"),
    }
    assert read_encoded(_save(rgb, tmp_path / "rgb.jpg", quality=90)).data is not None  # the fast path
    for name, p in files.items():
        enc = read_encoded(p)
        assert enc.data is None and enc.pixels is not None, name  # decoded by PIL
        want = np.asarray(load_image(p).convert("RGB")).transpose(2, 0, 1)
        assert torch.equal(decode_cpu(enc, p), torch.from_numpy(want.copy())), name


def test_a_truncated_jpeg_goes_to_pil_which_refuses_it(tmp_path):
    p = _save(_photo(np.random.default_rng(2)), tmp_path / "t.jpg", quality=90)
    p.write_bytes(p.read_bytes()[:400])
    from cnnzoo.data.images import ImageError

    with pytest.raises(ImageError, match="t.jpg"):
        decode_cpu(read_encoded(p), p)


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_files_are_skipped_and_named_or_fail_the_pass(tmp_path, workers):
    root = _flat_folder(tmp_path / "f", 16)
    (root / "train/c0/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (root / "train/c1/empty.png").write_bytes(b"")
    loader = _loader(root, workers=workers, batch=18)
    xs = [x for x, _ in loader.iterate()]
    assert sum(len(x) for x in xs) == 16 and sorted(Path(p).name for p in loader.skipped) == ["broken.jpg", "empty.png"]
    with pytest.raises(CorruptImageError, match="cannot read image .*(broken|empty)"):
        list(_loader(root, workers=workers, batch=18, on_error="fail").iterate())


def test_a_folder_of_only_corrupt_files_is_refused(tmp_path):
    for i in range(4):
        d = tmp_path / "f/train/c0"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(NoReadableImageError):
        list(_loader(tmp_path / "f", batch=4).iterate())


def test_two_ranks_see_disjoint_shards_that_cover_the_set(tmp_path):
    root = _flat_folder(tmp_path / "f", 24)
    seen = [sorted(i for x, _ in _loader(root, "imagenet", rank=r, world=2, batch=6).iterate() for i in _ids(x))
            for r in (0, 1)]
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(24))


def test_resume_gives_the_same_batches_with_any_worker_count(tmp_path):
    root = tmp_path / "f"
    rng = np.random.default_rng(3)
    for i in range(20):
        (root / "train" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        _photo(rng, 60, 45).save(root / "train" / f"c{i % 2}" / f"{i}.jpg", quality=90)
    for kind in ("imagenet", "alexnet", "vgg"):
        full = list(_loader(root, kind, workers=0, batch=4).iterate())
        again = list(_loader(root, kind, workers=2, batch=4).iterate(2))
        assert len(again) == len(full) - 2
        for (x, y), (x2, y2) in zip(full[2:], again):
            assert torch.equal(x, x2) and torch.equal(y, y2), kind
        assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32


def _image_run_folder(root: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in range(2):
            (root / split / f"k{c}").mkdir(parents=True)
            for i in range(12):
                _photo(rng, 40, 36).save(root / split / f"k{c}" / f"{i}.jpg", quality=90)
    return root


def _killed_then_resumed_matches(tmp_path: Path, monkeypatch, overrides: dict, device: str = "cpu") -> None:
    """A run that dies right after its step-4 checkpoint (like kill -9), resumed, ends with the
    weights of an uninterrupted run."""
    from cnnzoo.train import state as ckpt

    kw = dict(data=f"folder:{_image_run_folder(tmp_path / 'imgs', 4)}", recipe="lenet", epochs=2,
              deterministic=True, device=device)
    fit("tiny_rgb", out=tmp_path / "full", overrides=overrides, **kw)
    real = ckpt.save_state

    def save_then_die(*a, **k):
        real(*a, **k)
        if k["step"] == 4:
            raise _Stop
    monkeypatch.setattr(ckpt, "save_state", save_then_die)
    with pytest.raises(_Stop):
        fit("tiny_rgb", out=tmp_path / "cut", overrides={**overrides, "ckpt_every": 2}, **kw)
    monkeypatch.setattr(ckpt, "save_state", real)
    fit(resume=tmp_path / "cut")
    full, cut = _weights(tmp_path / "full/model.safetensors"), _weights(tmp_path / "cut/model.safetensors")
    assert all(torch.equal(full[k], v) for k, v in cut.items())


def test_training_from_a_folder_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    o = {**SGD, "batch_size": 8, "workers": 1, "augment": "imagenet", "loader": "torch", "eval_every": 9}
    _killed_then_resumed_matches(tmp_path, monkeypatch, o)


def test_the_gpu_decoding_path_run_on_the_cpu_gives_the_cpu_paths_batches(tmp_path):
    """decode='cuda' hands nvJPEG a whole batch in the training process; torchvision's batched
    decode_jpeg runs on the CPU too, so its code path (PIL fallbacks, a JPEG only the decoder finds
    truncated, skip/fail) is checked here, not only on the rare GPU."""
    from cnnzoo.data.fast_loader import _Collate

    root = tmp_path / "f"
    rng = np.random.default_rng(7)
    for i in range(14):
        (root / "train" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        _photo(rng, 50, 40).save(root / "train" / f"c{i % 2}" / f"{i}.jpg", quality=90)
    _photo(rng, 50, 40).convert("CMYK").save(root / "train/c0/cmyk.jpg", quality=90)
    _photo(rng, 50, 40).save(root / "train/c1/p.png")
    raw = (root / "train/c0/0.jpg").read_bytes()
    (root / "train/c1/trunc.jpg").write_bytes(raw[: len(raw) // 2])  # its header reads fine
    data = load_split(parse_spec(f"folder:{root}"), "train")
    idx = shard_indices(len(data), 8, 0, 7, True, 0, 1, True)
    spec = FastSpec("imagenet", (24, 24), 24, MEAN, STD)

    def run(device_path: bool, on_error: str = "skip") -> tuple[list, list]:
        ld = FastFolderLoader(data, spec, idx, range(len(idx)), 1, on_error, CPU)
        if device_path:
            ld.decode = ld.ds.decode = "cuda"
            ld.collate = _Collate(spec, finish=False)
        return list(ld.iterate()), sorted(Path(p).name for p in ld.skipped)

    (cpu, cpu_bad), (dev, dev_bad) = run(False), run(True)
    assert cpu_bad == dev_bad == ["trunc.jpg"] and len(cpu) == len(dev) == 2
    for (x, y), (x2, y2) in zip(cpu, dev):
        assert torch.equal(y, y2) and torch.equal(x, x2)
    with pytest.raises(CorruptImageError, match="trunc.jpg"):
        run(True, "fail")


def test_the_loader_choice():
    assert choose_decoder("auto", "imagenet", CPU) == "cpu" and choose_decoder("torch", "none", CPU) == "cpu"
    assert choose_decoder("auto", "cifar", CPU) is None and choose_decoder("pil", "imagenet", CPU) is None
    with pytest.raises(InvalidArgumentError, match="loader=pil"):
        choose_decoder("torch", "cifar", CPU)


def test_loader_dali_without_dali_is_a_clear_error(tmp_path, cli, monkeypatch):
    from cnnzoo.data import dali_decode

    monkeypatch.setattr(dali_decode, "dali_available", lambda: False)
    root = _image_run_folder(tmp_path / "imgs", 5)
    for setting, words in (("loader=dali", "cnnzoo[dali]"), ("loader=fast", "loader must be one of")):
        r = cli("train", "tiny_rgb", "--data", f"folder:{root}", "--epochs", "1", "--batch-size", "8", "--set", setting,
                "--out", str(tmp_path / "run"), "--no-progress")
        err = r.err
        assert r.code == 2 and words in err and "Traceback" not in err, err
    assert "nvidia.dali" not in sys.modules


def test_the_loader_benchmark_writes_its_folder_and_compares_both_sides(tmp_path, cli):
    root = tmp_path / "photos"
    args = ["bench", "loader", f"folder:{root}", "--make-folder", "20", "--images", "16", "--batch", "8",
            "--reps", "1", "--workers", "0", "--format", "json"]
    r = cli(*args)
    out, err = r.out, r.err
    assert r.code in (0, None), err
    import json

    res = json.loads(out)
    assert res["images"] == 16 and res["decode"] == "cpu" and res["ratio"] > 0
    assert res["ours"]["images_per_s"] > 0 and res["reference"]["images_per_s"] > 0
    assert len(list((root / "train").rglob("*.jpg"))) == 20
    with Image.open(next((root / "train").rglob("*.jpg"))) as im:
        assert im.size == (500, 375)
    r = cli("bench", "loader", "mnist:x")
    assert r.code == 2 and "folder:PATH" in r.err


# -- on a GPU (benchmarks/gpu_check.sh) --------------------------------------------------------
def _gpu() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return torch.device("cuda")


@pytest.mark.cuda
def test_nvjpeg_batches_match_the_cpu_path(tmp_path):
    dev = _gpu()
    root = tmp_path / "f"
    rng = np.random.default_rng(5)
    for i in range(16):
        (root / "train" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        _photo(rng).save(root / "train" / f"c{i % 2}" / f"{i}.jpg", quality=90)
    _photo(rng).convert("CMYK").save(root / "train/c0/cmyk.jpg", quality=90)  # a PIL fallback in the batch
    (root / "train/c1/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    raw = (root / "train/c0/0.jpg").read_bytes()
    (root / "train/c1/trunc.jpg").write_bytes(raw[: len(raw) // 2])  # only a decoder finds it broken
    data = load_split(parse_spec(f"folder:{root}"), "train")
    idx = shard_indices(len(data), 6, 0, 7, True, 0, 1, True)
    spec = FastSpec("imagenet", (32, 32), 32, MEAN, STD)
    cpu = list(FastFolderLoader(data, spec, idx, range(len(idx)), 0, "skip", CPU).iterate())
    decoders = ["cuda"] + (["dali"] if _has_dali() else [])
    for decode in decoders:
        gpu = FastFolderLoader(data, spec, idx, range(len(idx)), 2, "skip", dev, decode)
        out = list(gpu.iterate())
        assert sorted(Path(p).name for p in gpu.skipped) == ["broken.jpg", "trunc.jpg"], decode
        for (x, y), (xg, yg) in zip(cpu, out):
            assert xg.device.type == "cuda" and torch.equal(y, yg.cpu())
            # the same crops and flips: pixels differ by the decoders' rounding only
            assert (x - xg.cpu()).abs().mean().item() * STD[0] * 255 < 4.0, decode


def _has_dali() -> bool:
    from cnnzoo.data.dali_decode import dali_available

    return dali_available()


@pytest.mark.cuda
def test_training_from_a_folder_on_the_gpu_resumes_exactly(tmp_path, monkeypatch):
    dev = _gpu()
    o = {**SGD, "batch_size": 8, "workers": 2, "augment": "imagenet", "loader": "auto", "eval_every": 9}
    _killed_then_resumed_matches(tmp_path, monkeypatch, o, device=str(dev))



@pytest.mark.slow
def test_two_torchrun_processes_on_a_folder_match_one_process(tmp_path):
    """torchrun (gloo, 2 CPU processes) with the fast loader: each rank reads its half of every
    global batch and the weights equal a single process's (augment 'none': no rank-seeded randomness)."""
    import os
    import subprocess

    root = _image_run_folder(tmp_path / "imgs", 8)
    o = {"amp": "off", "channels_last": "off", "optimizer": "sgd", "lr": 0.05, "batch_size": 8,
         "schedule": "constant", "eval_every": 9, "loader": "torch", "workers": 0}
    fit("tiny_rgb", data=f"folder:{root}", recipe="lenet", epochs=1, out=tmp_path / "single",
        deterministic=True, overrides=o)
    sets = [a for k, v in o.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).parent / "_train_models.py"), "train", "tiny_rgb", "--data", f"folder:{root}",
           "--recipe", "lenet", "--epochs", "1", "--deterministic", "--no-progress", "--out", str(tmp_path / "ddp"), *sets]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    single, ddp = _weights(tmp_path / "single/model.safetensors"), _weights(tmp_path / "ddp/model.safetensors")
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], atol=1e-5, rtol=1e-4)
