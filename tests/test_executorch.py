"""ExecuTorch (.pte) export, predict and bench: issue 27 item 4 ("to a phone")."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("executorch.runtime", reason="ExecuTorch is optional: pip install 'cnnzoo[mobile]'")

import cnnzoo
from cnnzoo.deploy.executorch import PteModel, load_pte, quantize_program, read_pte_record, sidecar_path
from cnnzoo.deploy.export import deploy_record, export_model, run_exported
from cnnzoo.errors import ModelFileError

CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PP = {"input_size": [1, 32, 32], "resize": None, "pad": 2, "mean": [0.1307], "std": [0.3081],
      "grayscale": True}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pte") / "lenet.safetensors"
    cnnzoo.save_model(path, cnnzoo.create_model("lenet5_modern"), classes=CLASSES, preprocess=PP)
    return path


@pytest.fixture(scope="module")
def exported(model_file):
    """The model file exported through the CLI's code path (export_model, fmt executorch)."""
    model, record = cnnzoo.load_model(model_file)
    out = model_file.with_suffix(".pte")
    report = export_model(model.eval(), out, "executorch", input_size=(1, 32, 32),
                          metadata=deploy_record(model, record))
    return out, report, model.eval()


def _digit(tmp_path, name="digit.png"):
    rng = np.random.default_rng(0)
    p = tmp_path / name
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(p)
    return p


def test_export_matches_eager_and_writes_its_sidecar(exported):
    out, report, model = exported
    assert report["format"] == "executorch" and report["delegate"] == "XNNPACK"
    assert report["max_abs_diff"] <= 1e-4 and report["bytes"] == out.stat().st_size
    assert out.read_bytes()[4:6] == b"ET"
    # the program run by executorch.runtime gives the eager logits on fresh inputs
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(run_exported(out, "executorch", x), model(x), atol=1e-4, rtol=0)


def test_sidecar_round_trip(exported, model_file):
    out, _, _ = exported
    side, data = read_pte_record(out)
    assert data == out.read_bytes() and side["input_shape"] == [1, 1, 32, 32]
    record = side["record"]
    assert record["classes"] == CLASSES and record["model"] == "lenet5_modern"
    assert record["preprocess"]["mean"] == [0.1307] and record["preprocess"]["input_size"] == [1, 32, 32]
    model, rec = load_pte(out)
    assert rec == record and model.num_classes == 10


def test_cli_export_then_predict_equals_the_model_file(cli, model_file, tmp_path):
    out = tmp_path / "cli.pte"
    r = cli("export", model_file, "--to", "executorch", "-o", out)
    assert r.code == 0, r.err
    assert "executorch" in r.out and out.is_file() and sidecar_path(out).is_file()
    img = _digit(tmp_path)
    a = cli("predict", out, img, "--json")
    b = cli("predict", model_file, img, "--json")
    assert a.code == 0 and b.code == 0, a.err + b.err
    top_a, top_b = json.loads(a.out)[0]["top"], json.loads(b.out)[0]["top"]
    assert [t["class"] for t in top_a] == [t["class"] for t in top_b]
    assert np.allclose([t["prob"] for t in top_a], [t["prob"] for t in top_b], atol=1e-5)


def test_a_pte_from_another_program_is_refused(cli, exported, tmp_path):
    out, _, _ = exported
    img = _digit(tmp_path)
    bare = tmp_path / "foreign.pte"  # a real program without cnnzoo's sidecar
    shutil.copy(out, bare)
    r = cli("predict", bare, img)
    assert r.code == 2 and "sidecar" in r.err and "Traceback" not in r.err
    # a sidecar written for other bytes: the program was replaced
    shutil.copy(sidecar_path(out), sidecar_path(bare))
    bare.write_bytes(out.read_bytes()[:-16] + bytes(16))
    r = cli("predict", bare, img)
    assert r.code == 2 and "another program" in r.err
    # a sidecar whose record is damaged
    side = json.loads(sidecar_path(out).read_text())
    side["record"]["num_classes"] = "ten"
    shutil.copy(out, bare)
    sidecar_path(bare).write_text(json.dumps(side))
    with pytest.raises(ModelFileError, match="num_classes"):
        read_pte_record(bare)


def test_a_file_that_is_not_a_pte_is_refused(cli, tmp_path):
    fake = tmp_path / "notes.pte"
    fake.write_text("not a program at all\n")
    r = cli("predict", fake, _digit(tmp_path))
    assert r.code == 2 and "not an ExecuTorch program" in r.err and "Traceback" not in r.err


def test_bench_mobile_has_an_executorch_row(cli):
    r = cli("bench", "mobile", "--models", "lenet5_modern", "--reps", "2", "--json")
    assert r.code == 0, r.err
    (row,) = json.loads(r.out)["rows"]
    assert row["model"] == "lenet5_modern" and row["batch"] == 1
    for k in ("eager", "onnxruntime", "executorch"):
        assert row[f"{k}_ms"] > 0 and row[f"{k}_max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_mobilenet_v2_exports_and_executes(tmp_path):
    from cnnzoo.bench.mobile_bench import trained_like

    model = trained_like(cnnzoo.create_model("mobilenet_v2")).eval()  # logits of order 1, not ~1e-9
    out = tmp_path / "mnv2.pte"
    report = export_model(model, out, "executorch", input_size=(3, 224, 224),
                          metadata=deploy_record(model))
    assert report["max_abs_diff"] <= 1e-4
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(run_exported(out, "executorch", x), model(x), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_int8_program_runs_and_stays_close(exported):
    """XNNPACKQuantizer int8 (PT2E): a smaller program whose logits track fp32's (the accuracy
    change on real digits is measured in docs/transfer-and-deploy.md)."""
    out, _, model = exported
    calib = torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    program = quantize_program(model, [calib], (1, 32, 32))
    assert len(program) < out.stat().st_size / 2
    q = PteModel(program, {"in_chans": 1, "num_classes": 10})
    x = calib[:4]
    with torch.no_grad():
        ref = model(x)
    assert (q(x) - ref).abs().max() <= 0.1 * ref.abs().max() + 0.05
