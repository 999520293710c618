"""The benchmark harness and the inference fast paths (structure and numerics; never timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnzoo import bench
from cnnzoo.bench import Case, Settings, flop_counter_macs, loss_of, side_by_side, time_interleaved, transfer_weights
from cnnzoo.bench.cases import _plain_lenet5
from cnnzoo.contract import AuxOutputs
from cnnzoo.deploy.fastpath import FastModel, FastPathError, check_against, optimize

TINY = Settings(infer_batch=2, train_batch=3, warmup=1, reps=2, iters=1, threads=1)
# LeNet-5 sizes on 32x32: conv 6*28*28*25 + 16*10*10*6*25 + 120*16*25, fc 120*84 + 84*10
LENET_MACS = 117_600 + 240_000 + 48_000 + 10_080 + 840


def lenet_case(name="plain_lenet") -> Case:
    return Case(name, "plain nn.Sequential", _plain_lenet5, _plain_lenet5, (1, 32, 32), 10,
                macs=lambda: (flop_counter_macs(_plain_lenet5, (1, 32, 32)), "FlopCounterMode/2"))


class Renamed(nn.Module):
    """_plain_lenet5 under other module names: weights can only be matched by position."""

    def __init__(self) -> None:
        super().__init__()
        seq = _plain_lenet5()
        self.a, self.b, self.c = seq[0], seq[3], seq[6]
        self.d, self.e = seq[9], seq[11]

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.a(x)), 2)
        x = torch.max_pool2d(torch.relu(self.b(x)), 2)
        x = torch.relu(self.c(x)).flatten(1)
        return self.e(torch.relu(self.d(x)))


class TinyAux(nn.Module):
    """A small conv net with BN that returns AuxOutputs in training mode, as our models do."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, num_classes)
        self.aux = nn.Linear(16, num_classes)

    def forward(self, x):
        f = self.body(x)
        if self.training:
            return AuxOutputs(self.fc(f), (self.aux(f),), 0.3)
        return self.fc(f)


def test_harness_gives_structured_side_by_side_results():
    threads = torch.get_num_threads()
    res = bench.run([lenet_case(), Case("tiny_aux", "itself", TinyAux, TinyAux, (3, 16, 16), 10)],
                    TINY, fastpath=False, loop=False)
    json.dumps(res)  # JSON-ready
    assert res["machine"]["torch"] == torch.__version__ and res["machine"]["torch_threads"] == 1
    assert res["settings"]["reps"] == 2 and res["skipped"] == []
    lenet, aux = res["models"]
    assert lenet["weights"] == "by name" and lenet["max_abs_diff"] == 0.0
    assert lenet["macs"] == LENET_MACS and lenet["params"] == 61_706
    for r in (lenet, aux):
        for mode, batch in (("infer", 2), ("train", 3)):
            c = r[mode]
            assert c["batch"] == batch
            o, f = c["ours"], c["reference"]
            assert o["min_ms"] <= o["median_ms"] <= o["max_ms"]
            assert o["images_per_s"] == pytest.approx(batch / (o["median_ms"] / 1e3))
            assert c["ratio"] == pytest.approx(o["images_per_s"] / f["images_per_s"])
        # same weights, data and optimiser on both sides: identical training losses
        a, b = r["train"]["loss_sums"]
        assert a == pytest.approx(b, rel=1e-5) and a > 0
    macs_rate = lenet["infer"]["ours"]["images_per_s"] * LENET_MACS / 1e9
    assert lenet["infer"]["ours"]["gmacs_per_s"] == pytest.approx(macs_rate)
    assert lenet["train"]["ours"]["gmacs_per_s"] == pytest.approx(
        3 * lenet["train"]["ours"]["images_per_s"] * LENET_MACS / 1e9)
    assert lenet["infer"]["ours"]["mfu"] is None  # no peak table entry on a CPU
    assert torch.get_num_threads() == threads  # restored after the run
    text = bench.format_report(res)
    assert "plain_lenet" in text and "ratio" in text and "ABBA" in text


def test_training_loop_comparison_on_real_mnist():
    res = bench.bench_loop(Settings(reps=2, warmup=1), max_images=320)
    assert res["model"] == "lenet5_modern" and res["batch"] == 32 and res["steps_per_epoch"] == 10
    for arm in ("ours", "reference", "synthetic"):
        assert res[arm]["images_per_s"] == pytest.approx(320 / (res[arm]["median_ms"] / 1e3))
    assert res["ratio"] == pytest.approx(res["ours"]["images_per_s"] / res["reference"]["images_per_s"])
    assert res["real_vs_synthetic"] == pytest.approx(
        res["ours"]["images_per_s"] / res["synthetic"]["images_per_s"])
    # both loops really train on the same labelled data: well above chance after 3 epochs
    assert min(res["train_acc_last_epoch"].values()) > 0.2
    assert "training loop" in bench.format_report({**_empty_result(), "loop": res})


def _empty_result() -> dict:
    return {"machine": bench.machine_info(), "settings": vars(TINY), "models": [], "wall_s": 0.0}


def test_mfu_uses_the_peak_table(monkeypatch):
    monkeypatch.setattr(side_by_side, "peak_flops", lambda device, precision: (1e9, "test peak"))
    res = bench.compare(lambda: None, lambda: None, 4, Settings(reps=2, warmup=0, precision="bf16"), 1000, 3)
    o = res["ours"]
    assert o["mfu"] == pytest.approx(2 * 3 * 1000 * o["images_per_s"] / 1e9)


def test_known_gpus_have_their_dense_bf16_peak():
    table = {key: peak for key, peak, _ in bench.PEAK_BF16_FLOPS}
    assert table["H100"] == table["H200"] == 989e12
    assert bench.peak_flops("cpu") == (None, None)
    # an fp32 run has no MFU against the bf16 peak (it would understate it several times)
    assert bench.peak_flops("cuda", "fp32") == (None, None)


def test_repetitions_alternate_abba():
    calls = []
    time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                     reps=4, iters=2, warmup=1)
    assert "".join(calls) == "ab" + "aabb" + "bbaa" + "aabb" + "bbaa"


def test_a_reference_that_computes_something_else_is_refused():
    def shifted():
        m = _plain_lenet5()
        m.append(nn.Hardtanh(-0.01, 0.01))  # same weights, another function
        return m

    res = bench.run([Case("clipped", "plain", shifted, _plain_lenet5, (1, 32, 32), 10)], TINY,
                    fastpath=False, loop=False)
    assert res["models"] == []
    (sk,) = res["skipped"]
    assert sk["model"] == "clipped" and "not the same architecture" in sk["reason"]


def test_weights_transfer_by_position_and_refuse_other_shapes():
    src, dst = _plain_lenet5(), Renamed()
    assert transfer_weights(src, dst) == "by position"
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    with pytest.raises(bench.BenchError, match="by position"):
        transfer_weights(_plain_lenet5(num_classes=5), Renamed())


def test_aux_losses_are_weighted_like_ours_and_torchvisions():
    y = torch.tensor([1, 2])
    main, aux1, aux2 = torch.randn(2, 5), torch.randn(2, 5), torch.randn(2, 5)
    ce = nn.functional.cross_entropy
    assert loss_of(main, y) == ce(main, y)
    torch.testing.assert_close(loss_of(AuxOutputs(main, (aux1,), 0.5), y), ce(main, y) + 0.5 * ce(aux1, y))
    from torchvision.models.googlenet import GoogLeNetOutputs

    torch.testing.assert_close(loss_of(GoogLeNetOutputs(main, aux2, aux1), y),
                               ce(main, y) + 0.3 * (ce(aux2, y) + ce(aux1, y)))


def test_main_cases_skip_models_not_registered_and_reject_unknown_names():
    from cnnzoo.errors import InvalidArgumentError
    from cnnzoo.registry import list_models

    cases, skipped = bench.main_cases()
    assert {c.name for c in cases} | {s["model"] for s in skipped} == {n for n, _, _ in bench.MAIN_MODELS}
    assert all(s["model"] not in list_models() for s in skipped)
    with pytest.raises(InvalidArgumentError, match="resnet50"):
        bench.main_cases(["resnet5O"])


def test_settings_validate_and_device_defaults():
    from cnnzoo.errors import InvalidArgumentError

    s = bench.settings_from(quick=True)
    assert (s.device, s.precision, s.compile, s.channels_last) == ("cpu", "fp32", False, False)
    assert bench.settings_from(precision="bf16", channels_last=True).precision == "bf16"
    with pytest.raises(InvalidArgumentError, match="precision"):
        bench.settings_from(precision="fp8")
    with pytest.raises(InvalidArgumentError, match="reps"):
        bench.settings_from(reps=0)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="CUDA"):
            bench.settings_from(device="cuda")


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_gpu_settings_path_runs_on_cpu(compiled):
    """The GPU settings (bf16 autocast, channels_last, fused SGD, loss kept on the device, and
    torch.compile in the slow variant) on the CPU: both sides still agree on the training loss."""
    s = Settings(precision="bf16", channels_last=True, compile=compiled, infer_batch=2,
                 train_batch=2, warmup=1, reps=2)
    r = bench.bench_case(Case("tiny_aux", "itself", TinyAux, TinyAux, (3, 16, 16), 10), s)
    a, b = r["train"]["loss_sums"]
    assert a == pytest.approx(b, rel=2e-2)
    assert r["infer"]["ratio"] > 0


def test_cli_rejects_bad_options():
    from typer.testing import CliRunner

    from cnnzoo.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["bench", "models", "--modes", "fly"])
    assert res.exit_code != 0 and "infer" in str(res.exception)
    res = runner.invoke(app, ["bench", "models", "--models", "vgg61"])
    assert res.exit_code != 0 and "vgg16" in str(res.exception)


def test_cli_end_to_end_sets_passive_openmp_and_prints_json():
    """`cnnzoo bench models` restarts itself with OMP_WAIT_POLICY=PASSIVE (OpenMP reads it at load)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run(
        [sys.executable, "-m", "cnnzoo", "bench", "models", "--quick", "--models", "lenet5_modern",
         "--modes", "infer", "--reps", "2", "--threads", "1", "--no-fastpath", "--no-loop",
         "--format", "json"], env=env, capture_output=True, text=True, timeout=300, check=True)
    res = json.loads(out.stdout)
    assert res["machine"]["OMP_WAIT_POLICY"] == "PASSIVE" and res["quick"] is True
    (r,) = res["models"]
    assert r["model"] == "lenet5_modern" and r["max_abs_diff"] == 0.0 and "train" not in r
    assert r["infer"]["batch"] == 1 and r["macs"] == 422_824  # the analyzer's count, pooling included


# --- fast paths ------------------------------------------------------------------------------


def _net() -> nn.Module:
    torch.manual_seed(0)
    m = TinyAux().eval()
    for bn in (m.body[1], m.body[4]):  # non-trivial statistics so BN folding is really tested
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return m


@pytest.mark.parametrize("backend", ["onnxruntime", "jit", "eager"])
def test_fast_paths_equal_eager_at_any_batch(backend):
    model, x = _net(), torch.randn(2, 3, 16, 16)
    fast = optimize(model, x, backend)
    assert isinstance(fast, FastModel) and fast.max_abs_diff <= 1e-4
    x5 = torch.randn(5, 3, 16, 16)  # another batch size than the example
    with torch.no_grad():
        torch.testing.assert_close(fast(x5), model(x5), rtol=1e-4, atol=1e-5)


def test_compile_path_equals_eager():
    model, x = _net(), torch.randn(4, 3, 16, 16)
    fast = optimize(model, x, "compile")
    assert fast.channels_last
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    # the caller's model keeps its memory format: channels_last is applied to a copy
    assert model.body[0].weight.is_contiguous()


@pytest.mark.parametrize("backend", ["eager", pytest.param("compile", marks=pytest.mark.slow)])
def test_bf16_paths_agree_with_fp32_eager(backend):
    model, x = _net(), torch.randn(4, 3, 16, 16)
    fast = optimize(model, x, backend, precision="bf16")
    assert fast.precision == "bf16" and fast.max_abs_diff > 0  # really ran in bf16
    with torch.no_grad():
        ref = model(x)
    torch.testing.assert_close(fast(x).float(), ref, rtol=0.05, atol=0.05 * ref.abs().max().item())


def test_fast_path_check_catches_wrong_outputs_and_bad_arguments():
    from cnnzoo.errors import InvalidArgumentError

    model, x = _net(), torch.randn(2, 3, 16, 16)
    wrong = FastModel(lambda t: model(t) + 1.0, "eager", "fp32", x.device, False)
    with pytest.raises(FastPathError, match="differs from the eager model"):
        check_against(wrong, model, x)
    with pytest.raises(InvalidArgumentError, match="onnxruntime, compile"):
        optimize(model, x, "tensorrt")
    with pytest.raises(InvalidArgumentError, match="fp32 only"):
        optimize(model, x, "onnxruntime", precision="bf16")


def test_fastpath_benchmark_rows():
    from cnnzoo.bench import bench_fastpath

    res = bench_fastpath(Settings(reps=2, warmup=1), model="resnet18", batches=(1,),
                         paths=(("onnxruntime", "fp32"),))
    (row,) = res["rows"]
    assert row["batch"] == 1 and row["backend"] == "onnxruntime" and row["max_abs_diff"] < 1e-3
    assert row["speedup"] == pytest.approx(row["fast_images_per_s"] / row["eager_images_per_s"])
    assert len(row["eager_ms"]) == len(row["fast_ms"]) == 2


def test_compiled_bench_over_six_models_runs_no_side_eager():
    """Every zoo model shares ZooModel.forward: without a dynamo reset per case the recompile
    limit (8) was hit around the fifth model and that side silently ran eager. The 'eager'
    backend checks dynamo's capture (what falls back) without inductor's code generation."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "OMP_NUM_THREADS": "1"}
    models = "lenet5_modern,alexnet,resnet50,mobilenet_v2,shufflenet_v2_x1_0,squeezenet1_0"
    p = subprocess.run([sys.executable, "-m", "cnnzoo", "bench", "models", "--quick", "--compile", "--compile-backend",
                        "eager", "--models", models, "--no-fastpath", "--no-loop", "--reps", "1",
                        "--threads", "1", "--format", "json"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout)
    assert [m["model"] for m in res["models"]] == models.split(",") and not res["skipped"]
    assert all(m["compiled_graphs"] >= 2 for m in res["models"])


class _GraphBreak(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._dynamo.graph_break()  # dynamo would run this eager (in pieces) without fullgraph
        return self.fc(x.flatten(1))


def test_a_side_that_cannot_stay_compiled_fails_the_benchmark():
    s = Settings(compile=True, compile_backend="eager", infer_batch=2, train_batch=2, warmup=1, reps=1)
    with pytest.raises(bench.CompileFallbackError, match="refusing to time eager code"):
        bench.bench_case(Case("graph_break", "itself", _GraphBreak, _GraphBreak, (3, 4, 4), 10), s)
