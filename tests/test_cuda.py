"""The CUDA path, checked where a GPU is at hand (`make gpu-check` runs these first).

Every test skips without CUDA. CNNZOO_CUDA_TESTS_ON_CPU=1 runs the ones that mean something on
the CPU there too, so that the test code itself is exercised before the rare GPU session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn, tiny_bn, tiny_rgb)
import cnnzoo
from _train_models import SGD, _fit_until, _Stop, _weights
from cnnzoo.contract import classification_loss
from cnnzoo.data.preprocess import Preprocess
from cnnzoo.data.transforms import AUGMENTATIONS
from cnnzoo.train import state as ckpt
from cnnzoo.train.evaluation import evaluate_file
from cnnzoo.train.run import fit

pytestmark = pytest.mark.cuda
ON_CPU = os.environ.get("CNNZOO_CUDA_TESTS_ON_CPU") == "1"
HELPER = Path(__file__).parent / "_train_models.py"
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def dev() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if ON_CPU:
        return "cpu"
    pytest.skip("no CUDA device")


@pytest.fixture
def cuda_only() -> str:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (this check has no CPU meaning)")
    return "cuda"


def test_resume_mid_epoch_with_the_cuda_defaults_is_exact(dev, tmp_path):
    """channels_last + fused optimizer + bf16, killed after a mid-epoch checkpoint and resumed:
    the weights equal an uninterrupted deterministic run's."""
    o = {**SGD, "batch_size": 64, "limit_train": 640, "eval_every": 9, "fused": "on",
         "channels_last": "on", "amp": "bf16", "ckpt_every": 13}
    fit("tiny_bn", recipe="lenet", epochs=2, out=tmp_path / "full", overrides=o, deterministic=True,
        device=dev)
    with pytest.raises(_Stop):
        _fit_until(tmp_path / "cut", o, stop_at=13, device=dev)
    assert ckpt.read_training_state(tmp_path / "cut")[1]["step"] == 13
    assert fit(resume=tmp_path / "cut", device=dev)["steps"] == 20
    full, cut = _weights(tmp_path / "full/model.safetensors"), _weights(tmp_path / "cut/model.safetensors")
    for k in full:
        assert torch.equal(full[k], cut[k]), k


@pytest.mark.parametrize("name", ["alexnet", "vgg11_lrn", "googlenet", "googlenet_tv", "resnet18"])
def test_one_deterministic_bf16_step(dev, name):
    """torch.use_deterministic_algorithms(True) refuses ops without a deterministic CUDA
    backward at the first backward; two identical steps give identical weights."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        weights = []
        for _ in range(2):
            torch.manual_seed(0)
            m = cnnzoo.create_model(name, num_classes=10).to(dev).train()
            size = cnnzoo.model_info(name)["input_size"]
            x, y = torch.randn(2, *size, device=dev), torch.tensor([1, 2], device=dev)
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            with torch.autocast(device_type=torch.device(dev).type, dtype=torch.bfloat16):
                out = m(x)
            loss, _ = classification_loss(out, y)
            loss.backward()
            opt.step()
            weights.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("augment", AUGMENTATIONS)
def test_augmentations_never_sync_with_the_host(cuda_only, augment):
    prep = Preprocess(3, (32, 32), (40, 40), 0, None, [0.5] * 3, [0.25] * 3)
    x = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    prep.train_batch(x, augment, g)  # first call: constants made once, allowed to copy
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            out = prep.train_batch(x, augment, g)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == (8, 3, 32, 32)


def _syncs_in_an_epoch(steps: int) -> int:
    from cnnzoo.train.engine import StepContext, build_optimizer, train_one_epoch
    from cnnzoo.train.recipes import Recipe

    dev = torch.device("cuda")
    torch.manual_seed(0)
    m = cnnzoo.create_model("tiny_bn", num_classes=10, in_chans=1).to(dev)
    r = Recipe(optimizer="sgd", lr=0.01, amp="bf16", log_every=10_000)
    ctx = StepContext(recipe=r, optimizer=build_optimizer(m, r, dev), scheduler=None, device=dev)
    xs = torch.randn(16, 1, 28, 28, device=dev)
    ys = torch.randint(0, 10, (16,), device=dev)
    train_one_epoch(m, [(xs, ys)] * 2, ctx, 0, 0)  # warm-up: lazy inits may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            train_one_epoch(m, [(xs, ys)] * steps, ctx, 0, 0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in seen)


def test_the_step_loop_syncs_only_at_the_epoch_end(cuda_only):
    """The count of host syncs does not grow with the number of steps."""
    assert _syncs_in_an_epoch(2) == _syncs_in_an_epoch(12)


def test_compiled_training_then_eval_with_a_smaller_last_batch(dev, tmp_path):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    before = counters["stats"]["unique_graphs"]
    res = fit("tiny_bn", recipe="lenet", epochs=2, out=tmp_path / "c", device=dev,
              overrides={**SGD, "batch_size": 96, "limit_train": 640, "compile": True, "amp": "bf16",
                         "channels_last": "on"})
    graphs = counters["stats"]["unique_graphs"] - before
    assert res["steps"] > 0 and res["test_acc_pct"] > 30
    assert 1 <= graphs <= 6, graphs  # train, eval and their batch sizes: a few, not one per step


def test_fast_path_serves_new_batch_sizes(dev):
    from cnnzoo.deploy.fastpath import optimize

    m = cnnzoo.create_model("resnet18", num_classes=10).to(dev).eval()
    fast = optimize(m, torch.randn(4, 3, 64, 64, device=dev), "compile", check=True)
    for n in (1, 3, 16):
        x = torch.randn(n, 3, 64, 64, device=dev)
        with torch.no_grad():
            want = m(x).float()
        got = fast(x).float()
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=0.05 * want.abs().max().item() + 1e-3, rtol=0.05)


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    fit("tiny_cnn", recipe="lenet", epochs=1, out=out, device="cpu",
        overrides={**SGD, "batch_size": 64, "limit_train": 2000})
    return out / "model.safetensors"


def test_evaluate_on_cuda_equals_the_cpu(dev, trained_file):
    gpu = evaluate_file(trained_file, device=dev, amp="off")
    cpu = evaluate_file(trained_file, device="cpu", amp="off")
    assert gpu["precision"] == cpu["precision"] == "fp32"
    assert abs(gpu["top1_err_pct"] - cpu["top1_err_pct"]) <= 0.2 and gpu["images"] == cpu["images"]


def test_export_leaves_a_cuda_model_on_cuda(dev, tmp_path):
    from cnnzoo.deploy.export import export_model

    m = cnnzoo.create_model("lenet5_modern").to(dev)
    export_model(m, tmp_path / "m.onnx", fmt="onnx")
    assert next(m.parameters()).device.type == torch.device(dev).type
    with torch.no_grad():
        m(torch.randn(2, 1, 32, 32, device=dev))  # still usable where it was


def test_predict_on_cuda(dev, trained_file, tmp_path):
    from PIL import Image

    from cnnzoo.deploy.predict import load_for_inference, predict

    img = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(img)
    model, record = load_for_inference(trained_file)
    cpu = predict(model, [img], record)
    gpu = predict(model.to(dev), [img], record)
    assert gpu[0]["top"][0]["class"] == cpu[0]["top"][0]["class"]


def test_on_device_mnist_path_learns(dev, tmp_path):
    res = fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "m", device=dev,
              overrides={**SGD, "batch_size": 64, "limit_train": 4000, "amp": "bf16"})
    assert res["test_acc_pct"] > 60


def test_torchrun_one_process_with_nccl(cuda_only, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(HELPER), "train", "tiny_cnn", "--device", "cuda", "--epochs", "1", "--no-progress",
           "--out", str(tmp_path / "ddp"), "--set", "limit_train=640", "--batch-size", "64"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "ddp/model.safetensors").is_file()


def test_image_folder_with_a_corrupt_jpeg(dev, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, colour in (("red", 0), ("blue", 2)):
            d = tmp_path / "imgs" / split / c
            d.mkdir(parents=True)
            for i in range(8):
                a = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8)
                a[..., colour] += 180
                Image.fromarray(a).save(d / f"{i}.jpg", quality=90)
    (tmp_path / "imgs/train/red/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    res = fit("tiny_rgb", data=f"folder:{tmp_path / 'imgs'}", recipe="lenet", epochs=2,
              out=tmp_path / "run", device=dev, overrides={**SGD, "batch_size": 8, "workers": 0})
    assert res["skipped_images"] >= 1 and res["test_acc_pct"] >= 50
