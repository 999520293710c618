"""`cnnzoo summary` / `cnnzoo compare`: golden outputs, plots, and clear errors (exit 2).

Golden files live in tests/expected/; regenerate them with CNNZOO_REGEN=1 after a deliberate
change to the output. Until the zoo's own models land, the CLI runs on torchvision models
registered here under test-only names (same architectures, random init, nothing downloads).
"""

import json
import os
from pathlib import Path

import pytest
import torchvision

from _cli import run_cli
from cnnzoo.registry import _REGISTRY, Paper, Published, register, unregister

EXPECTED = Path(__file__).parent / "expected"
PAPER = Paper("torchvision stand-in for tests", "-", 2024, "-")
# torchvision's published ImageNet errors (1 - acc@1, 1 - acc@5 of its model cards)
TV = {
    "_tv_alexnet": (lambda **kw: torchvision.models.alexnet(**kw), (3, 227, 227), 43.45, 20.07),
    "_tv_resnet18": (lambda **kw: torchvision.models.resnet18(**kw), (3, 224, 224), 30.24, 10.92),
    "_tv_vgg16": (lambda **kw: torchvision.models.vgg16(**kw), (3, 224, 224), 28.41, 9.62),
    "_tv_googlenet": (lambda **kw: torchvision.models.googlenet(aux_logits=False, init_weights=False, **kw),
                      (3, 224, 224), 30.22, 10.47),
}


@pytest.fixture(scope="module", autouse=True)
def tv_models():
    for name, (build, size, top1, top5) in TV.items():
        if name not in _REGISTRY:
            register(name, lambda num_classes, in_chans, _b=build: _b(num_classes=num_classes),
                     family="test", paper=PAPER, input_size=size,
                     published=Published(source="torchvision", top1_err=top1, top5_err=top5))
    if "_tv_nopub" not in _REGISTRY:
        register("_tv_nopub", lambda num_classes, in_chans: torchvision.models.resnet18(num_classes=num_classes),
                 family="test", paper=PAPER, input_size=(3, 224, 224))
    yield
    for name in [*TV, "_tv_nopub"]:  # leave the registry as other tests expect it
        unregister(name)


def run(capsys, *argv):
    r = run_cli(list(argv), capsys)
    return r.code, r.out, " ".join(r.err.split())


def check_golden(name: str, text: str) -> None:
    path = EXPECTED / name
    if os.environ.get("CNNZOO_REGEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"missing golden file {path}: run the tests with CNNZOO_REGEN=1"
    assert text == path.read_text(), f"{name} changed; CNNZOO_REGEN=1 regenerates it"


@pytest.mark.parametrize("fmt,ext", [("table", "txt"), ("markdown", "md"), ("csv", "csv"), ("json", "json")])
def test_summary_alexnet_golden(capsys, fmt, ext):
    code, out, _ = run(capsys, "summary", "alexnet", "--input", "3x227x227", "--format", fmt)
    assert code == 0
    check_golden(f"summary_alexnet_227.{ext}", out)


def test_summary_table_has_the_seed_columns_and_rows(capsys):
    code, out, _ = run(capsys, "summary", "alexnet", "--input", "3x227x227")
    lines = out.splitlines()
    assert lines[2].split() == ["Layer", "C", "H/W", "filters", "kernel", "stride", "pad", "C", "H/W",
                                "memory", "(KB)", "params", "(k)", "MACs", "(M)"]
    conv1 = next(line for line in lines if line.startswith("features.0 "))
    assert conv1.split() == ["features.0", "3", "227", "64", "11", "4", "2", "64", "56", "784", "23", "73"]
    fc6 = next(line for line in lines if line.startswith("classifier.1 "))
    assert fc6.split() == ["classifier.1", "9216", "4096", "4096", "16", "37,753", "38"]
    assert next(line for line in lines if line.startswith("total")).split() == ["total", "2,375", "61,101", "718"]
    assert "params: 61,100,840" in out


def test_summary_depth_flops_rf_and_training_memory(capsys):
    code, out, _ = run(capsys, "summary", "_tv_googlenet", "--depth", "1", "--flops", "--rf",
                       "--train-memory", "adam", "--batch-size", "8")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("inception3a "))
    assert row.split()[:3] == ["inception3a", "192", "28"] and row.split()[3:5] == ["256", "28"]
    assert "FLOP (M)" in out and "RF" in out and "training memory (batch 8, adam)" in out
    code, out, _ = run(capsys, "summary", "_tv_resnet18", "--depth", "1", "--format", "json",
                       "--train-memory", "sgd")
    d = json.loads(out)
    assert d["depth"] == 1 and [r["name"] for r in d["rows"]][2:7] == ["relu", "maxpool", "layer1",
                                                                       "layer2", "layer3"]
    assert d["totals"]["params"] == 11_689_512 and d["training_memory"]["optimizer"] == "sgd"


@pytest.mark.parametrize("ext,magic", [("png", b"\x89PNG"), ("svg", b"<svg")])
def test_summary_plot(capsys, tmp_path, ext, magic):
    path = tmp_path / f"alexnet.{ext}"
    code, _, err = run(capsys, "summary", "_tv_alexnet", "--plot", str(path))
    assert code == 0 and f"wrote {path}" in err
    data = path.read_bytes()
    assert magic in data[:400] and len(data) > 10_000
    if ext == "svg":  # labelled axes
        text = data.decode()
        assert "Memory (KB)" in text and "Params (k)" in text and "M multiply-adds" in text


def test_compare_table_json_and_bubble_chart(capsys, tmp_path):
    path = tmp_path / "compare.svg"
    code, out, err = run(capsys, "compare", "_tv_alexnet", "_tv_vgg16", "_tv_googlenet",
                         "_tv_nopub", "--plot", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "input", "params"]
    vgg = next(line for line in lines if line.startswith("_tv_vgg16"))
    assert vgg.split()[:6] == ["_tv_vgg16", "3x224x224", "138.36", "15,476.4", "57.74", "28.41"]
    assert next(line for line in lines if line.startswith("_tv_nopub")).split()[5] == "-"
    svg = path.read_text()
    for label in ("Top-1 accuracy (%, ImageNet)", "Operations (G multiply-adds", "bubble area", "_tv_vgg16",
                  "no published top-1 accuracy"):
        assert label in svg
    code, out, _ = run(capsys, "compare", "_tv_alexnet", "_tv_resnet18", "--format", "json")
    items = json.loads(out)
    assert [i["name"] for i in items] == ["_tv_alexnet", "_tv_resnet18"]
    assert items[0]["top1_acc_pct"] == pytest.approx(56.55) and items[1]["macs"] == 1_815_904_768


def test_compare_zoo_models_uses_registry_figures(capsys):
    from cnnzoo.registry import get_entry

    code, out, _ = run(capsys, "compare", "alexnet", "mobilenet_v1", "--format", "json")
    items = {i["name"]: i for i in json.loads(out)}
    pub = next(p for p in get_entry("mobilenet_v1").published if p.top1_err is not None)
    assert items["mobilenet_v1"]["top1_err_pct"] == pub.top1_err and items["mobilenet_v1"]["source"] == pub.source
    assert items["mobilenet_v1"]["params"] == 4_231_976 and round(items["mobilenet_v1"]["macs"] / 1e6) == 569
    assert items["alexnet"]["input_size"] == [3, 227, 227]


def test_compare_png(capsys, tmp_path):
    path = tmp_path / "c.png"
    code, _, _ = run(capsys, "compare", "_tv_alexnet", "_tv_resnet18", "--plot", str(path))
    assert code == 0 and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv,message", [
    (["summary", "_tv_alexnet", "--input", "3x224"], "--input must be three positive integers CxHxW"),
    (["summary", "_tv_alexnet", "--input", "3x0x224"], "--input must be three positive integers CxHxW"),
    (["summary", "_tv_alexnet", "--input", "axbxc"], "got 'axbxc'"),
    (["summary", "_tv_alexnet", "--input", "3x20x20"],
     "input 3x20x20 is too small for _tv_alexnet: the spatial size reaches zero at layer 'features.5'"),
    (["summary", "alexnett_nope"], "unknown model 'alexnett_nope'"),
    (["compare", "_tv_alexnet", "nope_net"], "unknown model 'nope_net'"),
    (["summary", "_tv_alexnet", "--plot", "/nonexistent-dir/x.png"],
     "cannot write plot '/nonexistent-dir/x.png': directory '/nonexistent-dir' does not exist"),
    (["summary", "_tv_alexnet", "--plot", "out.jpg"], "must end in .png or .svg"),
    (["compare", "_tv_nopub", "_tv_nopub", "--plot", "PLOT"], "has a published top-1 error"),
    (["compare", "_tv_alexnet"], "compare takes two or more models"),
])
def test_bad_input_exits_2_with_a_clear_message(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / "c.png") if a == "PLOT" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_unwritable_plot_file(capsys, tmp_path):
    # a directory where the file should go, and a place the OS refuses (even to root)
    (tmp_path / "taken.png").mkdir()
    code, _, err = run(capsys, "summary", "_tv_alexnet", "--plot", str(tmp_path / "taken.png"))
    assert code == 2 and "permission denied or not a file" in err
    code, _, err = run(capsys, "summary", "_tv_alexnet", "--plot", "/proc/cnnzoo-test.png")
    assert code == 2 and "cannot write plot '/proc/cnnzoo-test.png'" in err and "Traceback" not in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # permissions apply (not root)
            code, _, err = run(capsys, "summary", "_tv_alexnet", "--plot", str(locked / "a.png"))
            assert code == 2 and "permission denied" in err
    finally:
        locked.chmod(0o700)


def test_depth_must_be_positive(capsys):
    code, _, err = run(capsys, "summary", "_tv_alexnet", "--depth", "0")
    assert code == 2 and "--depth" in err


def test_plot_of_a_deep_model_groups_its_layers(capsys, tmp_path):
    path = tmp_path / "r152.svg"
    code, _, _ = run(capsys, "summary", "resnet152", "--plot", str(path))
    assert code == 0 and "layers grouped to depth 2" in path.read_text()
