import json

import onnx
import pytest
import torch

import cnnzoo
from _zoo_testmodels import ensure_registered
from cnnzoo.deploy.export import ExportCheckError, export_model, run_exported
from cnnzoo.errors import InvalidArgumentError

ensure_registered()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "small.safetensors"
    model = cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1)
    cnnzoo.save_model(path, model, classes=[str(i) for i in range(10)],
                      preprocess={"input_size": [1, 28, 28], "resize": None, "mean": [0.1307],
                                  "std": [0.3081], "grayscale": True})
    return path


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt"),
                                        ("exported", ".pt2")])
def test_export_cli_checks_and_keeps_the_batch_dynamic(small_file, tmp_path, cli, fmt, suffix):
    out = tmp_path / f"m{suffix}"
    r = cli("export", str(small_file), "--to", fmt, "--out", str(out), "--format", "json")
    assert r.code == 0
    rep = r.json()
    assert rep["max_abs_diff"] <= 1e-4 and rep["checked_batches"] == [2, 3]
    assert rep["input_size"] == [1, 28, 28]
    # independently of the built-in check: a batch size never seen at export time
    model, _ = cnnzoo.load_model(small_file)
    x = torch.randn(7, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(run_exported(out, fmt, x), model.eval()(x), atol=1e-4, rtol=0)


def test_onnx_graph_has_a_symbolic_batch_dimension(small_file, tmp_path):
    model, _ = cnnzoo.load_model(small_file)
    export_model(model, tmp_path / "m.onnx", "onnx", input_size=(1, 28, 28))
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    dim0 = graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.HasField("dim_value")


def test_resnet_with_batchnorm_exports_to_onnx_within_tolerance(tmp_path):
    model = cnnzoo.create_model("_tv_resnet18_test", num_classes=10)
    for m in model.modules():  # non-trivial BN statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    rep = export_model(model, tmp_path / "r.onnx", "onnx", input_size=(3, 64, 64))
    assert rep["max_abs_diff"] <= 1e-4


def test_a_disagreeing_export_fails_the_check(small_file, tmp_path, monkeypatch):
    import cnnzoo.deploy.export as ex

    real = ex.run_exported
    monkeypatch.setattr(ex, "run_exported", lambda p, f, x: real(p, f, x) + 1e-3)
    model, _ = cnnzoo.load_model(small_file)
    with pytest.raises(ExportCheckError, match=r"differs from the model by 0.001 \(> 0.0001\)"):
        export_model(model, tmp_path / "m.pt", "torchscript", input_size=(1, 28, 28))


def test_bad_format_and_batch():
    model = cnnzoo.create_model("_small_cnn_test", in_chans=1)
    with pytest.raises(InvalidArgumentError, match="choose one of onnx, torchscript, exported-program"):
        export_model(model, "x.bin", "tflite")
    with pytest.raises(InvalidArgumentError, match="batch_size must be >= 2"):
        export_model(model, "x.onnx", "onnx", batch_size=1)


def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    """A copy is exported: the caller's model keeps its dtype, device and training mode (a CUDA
    model moved to the CPU in place broke the caller's next GPU call)."""
    m = cnnzoo.create_model("lenet5_modern").to(torch.float64).train()
    export_model(m, tmp_path / "m.pt2", fmt="exported-program")
    assert m.training and next(m.parameters()).dtype == torch.float64


@pytest.mark.parametrize("old", ["onnx", "torchscript", "exported-program"])
def test_old_format_flag_says_to_use_to(small_file, tmp_path, cli, old):
    r = cli("export", str(small_file), "--format", old, "--out", str(tmp_path / "m.onnx"))
    assert r.code == 2
    err = r.err
    assert "--to" in err and "table or json" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_file_carries_preprocessing_and_class_names(small_file, tmp_path, cli):
    from cnnzoo.deploy.predict import ONNX_RECORD_KEY, read_onnx_record

    out = tmp_path / "m.onnx"
    r = cli("export", str(small_file), "--to", "onnx", "--out", str(out))
    assert r.code == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    rec = json.loads(props[ONNX_RECORD_KEY])
    assert rec == read_onnx_record(out)
    assert set(rec) == {"model", "num_classes", "in_chans", "preprocess", "classes"}
    assert rec["model"] == "_small_cnn_test" and rec["num_classes"] == 10 and rec["in_chans"] == 1
    assert rec["classes"] == [str(i) for i in range(10)]
    assert rec["preprocess"]["input_size"] == [1, 28, 28]
    assert rec["preprocess"]["mean"] == [0.1307] and rec["preprocess"]["std"] == [0.3081]


def test_metadata_falls_back_to_pretrained_cfg_then_defaults():
    from cnnzoo.deploy.export import deploy_record

    model = cnnzoo.create_model("_small_cnn_test", num_classes=3, in_chans=1)
    rec = deploy_record(model)
    assert rec["classes"] == ["0", "1", "2"] and rec["preprocess"]["input_size"][0] == 1
    model.pretrained_cfg = {"preprocess": {"input_size": [1, 20, 20], "mean": [0.5], "std": [0.25],
                                           "resize": None}, "classes": ["a", "b", "c"]}
    rec = deploy_record(model)
    assert rec["classes"] == ["a", "b", "c"]
    assert rec["preprocess"]["input_size"] == [1, 20, 20] and rec["preprocess"]["std"] == [0.25]
