"""int8 ONNX export (ONNX Runtime static QDQ and dynamic quantization) and its check."""

import json

import onnx
import pytest
import torch

import cnnzoo
from _cli import run_cli
from _trained_lenet import train_lenet
from cnnzoo.deploy.quantize import QuantizeError, quantize_onnx
from cnnzoo.errors import InvalidArgumentError


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread (PyTorch and the ONNX Runtime sessions): on a loaded 2-core machine
    two threads made each small step many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, _one_thread):
    path = tmp_path_factory.mktemp("q") / "lenet.safetensors"
    train_lenet(path)
    return path


def _export(capsys, *args):
    r = run_cli(["export", *args, "--format", "json"], capsys)
    return r.code, (r.json() if r.code == 0 else r.err)


def test_static_int8_keeps_the_accuracy_and_reports_speed(trained, tmp_path, capsys):
    out = tmp_path / "l.int8.onnx"
    code, rep = _export(capsys, trained, "--int8", "--calibrate", "embedded",
                        "--calib-images", "128", "--out", out)
    assert code == 0, rep
    assert rep["mode"] == "static" and rep["format"] == "QDQ" and rep["quant_nodes"] > 0
    acc = rep["accuracy"]
    assert acc["images"] == 1000 and acc["fp32_acc_pct"] > 85
    assert abs(acc["acc_change_pts"]) <= 2.0  # loose: 1,000 images, one epoch (floor: docs)
    assert [r["batch"] for r in rep["speed"]] == [1, 32]
    assert all(r["speedup"] > 0 and r["int8_ms"] > 0 for r in rep["speed"])
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["cnnzoo.record"])["preprocess"]["mean"] == [0.1307]
    assert rep["bytes"] < rep["fp32_bytes"] / 2  # int8 weights


def test_dynamic_int8(trained, tmp_path, capsys):
    code, rep = _export(capsys, trained, "--int8-mode", "dynamic", "--check-data", "embedded",
                        "--out", tmp_path / "d.onnx")
    assert code == 0, rep
    assert rep["mode"] == "dynamic" and rep["calibration_images"] == 0
    assert abs(rep["accuracy"]["acc_change_pts"]) <= 2.0


@pytest.mark.parametrize("args,msg", [
    (["--int8"], "needs calibration images"),
    (["--int8-mode", "wild"], "choose static"),
    (["dynamic"], "unexpected extra argument"),  # the hidden positional of `--int8 dynamic` is gone
    (["--calibrate", "embedded"], "add --int8"),
    (["--int8", "--calibrate", "embedded", "--to", "torchscript"], "ONNX file"),
])
def test_bad_int8_options_exit_2(trained, tmp_path, capsys, args, msg):
    code, err = _export(capsys, trained, *args, "--out", tmp_path / "x.onnx")
    assert code == 2 and msg in err and "Traceback" not in err


def test_a_graph_without_conv_or_matmul_says_why(tmp_path):
    class Pool(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x).mean((2, 3))

    from cnnzoo.deploy.export import export_model

    export_model(Pool(), tmp_path / "p.onnx", "onnx", input_size=(1, 8, 8))
    with pytest.raises(QuantizeError, match="nothing .* was quantized: ONNX Runtime quantizes Conv"):
        quantize_onnx(tmp_path / "p.onnx", tmp_path / "q.onnx", "dynamic")
    assert not (tmp_path / "q.onnx").exists()
    with pytest.raises(InvalidArgumentError, match="calibration images"):
        quantize_onnx(tmp_path / "p.onnx", tmp_path / "q.onnx", "static")


def test_bench_int8_path_runs_and_agrees_roughly():
    """`cnnzoo bench` times onnxruntime/int8 beside the fp32 paths; here: it builds and runs."""
    from cnnzoo.bench.fastpath_bench import _default_plan, _int8

    assert ("onnxruntime", "int8") in _default_plan(cuda=False, quick=False)[1]
    torch.manual_seed(0)
    model = cnnzoo.create_model("lenet5_modern").eval()
    x = torch.randn(4, 1, 32, 32)
    fast = _int8(model, x, threads=1)
    assert fast.precision == "int8" and fast(x).shape == (4, 10)
    with torch.no_grad():
        scale = float(model(x).abs().max())
    assert fast.max_abs_diff < 0.2 * scale  # int8 rounding, not a different function


def test_calibration_and_check_through_the_library(trained, tmp_path):
    """cnnzoo.deploy.quantize.quantize_model: what `export --int8` calls, from data specs."""
    from cnnzoo.deploy.quantize import quantize_model

    out = tmp_path / "lib.int8.onnx"
    rep = quantize_model(trained, "static", calibrate="embedded", calib_images=64,
                         check_images=200, out=out)
    assert rep["out"] == str(out) and out.is_file()
    assert rep["calibration_images"] == 64 and rep["accuracy"]["images"] == 200
    with pytest.raises(InvalidArgumentError, match="needs calibration images"):
        quantize_model(trained, "static")
