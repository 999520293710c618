"""Your own model (issue 28, item 5): `tv:NAME`, `timm:NAME` and ONNX files in summary, compare,
reconcile and the analyzer's API, with the same per-layer rows; bad input exits 2 with the reason."""

from __future__ import annotations

import pytest

from cnnzoo.analysis import analyze
from cnnzoo.analysis.onnx_walk import UncostedOperatorsError
from cnnzoo.errors import InvalidArgumentError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _onnx(path, extra_op: str | None = None):
    """conv 3->8 3x3 pad 1, relu, maxpool 2, conv 8->16 3x3 stride 2, global pool, flatten, FC 16->10:
    the same net as `_torch()`, written node by node (no exporter: fast and exact)."""
    def init(name, *dims):
        return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.0] * int(__import__("math").prod(dims)))
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["y"], ["z"], name="mystery", domain="custom.ops"))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("z" if extra_op else "y", TensorProto.FLOAT, None)],
        [init("w1", 8, 3, 3, 3), init("b1", 8), init("w2", 16, 8, 3, 3), init("w3", 10, 16), init("b3", 10)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, str(path))
    return path


def _torch():
    from torch import nn
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, stride=2, bias=False), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(16, 10))


def test_onnx_rows_match_the_torch_analyzer(tmp_path):
    mine = analyze(_onnx(tmp_path / "tiny.onnx"))
    ref = analyze(_torch(), input_size=(3, 32, 32))
    assert (mine.total_params, mine.total_macs) == (ref.total_params, ref.total_macs)
    costed = [r for r in mine.rows if r.kind in ("conv", "linear", "pool")]
    want = [r for r in ref.rows if r.kind in ("conv", "linear", "pool")]
    assert [(r.out_shape, r.macs, r.params, r.rf) for r in costed] == [(r.out_shape, r.macs, r.params, r.rf) for r in want]
    assert mine.find("conv2").stride == (2, 2) and mine.find("conv2").rf == (8, 8)  # 3, +1 by the pool, +2x2 by conv2


def test_onnx_input_size_is_taken_and_checked(tmp_path):
    path = _onnx(tmp_path / "tiny.onnx")
    assert analyze(path, input_size=(3, 64, 64)).find("conv1").out_shape == (8, 64, 64)
    with pytest.raises(InvalidArgumentError, match="no fixed size"):
        # the file's input is n x 3 x 32 x 32 with a named batch: fine; a named H is not
        p2 = tmp_path / "free.onnx"
        m = onnx.load(str(path))
        m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
        onnx.save(m, str(p2))
        analyze(p2)


def test_unknown_operators_are_listed_not_guessed(tmp_path):
    with pytest.raises(UncostedOperatorsError) as ex:
        analyze(_onnx(tmp_path / "odd.onnx", extra_op="Mystery"))
    assert ex.value.operators == {"Mystery": ["mystery"]}


def test_cli_summary_compare_with_own_models(cli, tmp_path):
    path = _onnx(tmp_path / "tiny.onnx")
    res = cli("summary", path, "--rf")
    assert res.code in (0, None) and "conv2" in res.out and "MACs: 286,768" in res.out
    res = cli("compare", path, "tv:resnet18", "--json")
    rows = res.json()
    assert rows[1]["name"] == "tv:resnet18" and rows[1]["macs"] == 1_815_904_768 and rows[1]["source"] is None
    assert rows[0]["params"] == 1_546


def test_reconcile_an_onnx_file_gives_cnnzoos_figures(cli, tmp_path):
    res = cli("reconcile", _onnx(tmp_path / "tiny.onnx"), "--counters", "thop,fvcore")
    assert res.code in (0, None), res.err
    assert "cnnzoo 1,546 params, 286,768 multiply-adds" in res.out
    assert res.out.count("not run: the counters run PyTorch modules") == 2


def test_tv_and_timm_names_build_the_library_architecture():
    assert analyze("tv:resnet50").total_macs == analyze("resnet50").total_macs  # zoo resnet50 is torchvision's
    pytest.importorskip("timm")
    assert analyze("timm:resnet18").total_params == 11_689_512


@pytest.mark.parametrize("argv, needle", [
    (["summary", "tv:resnet5"], "torchvision has no model 'resnet5'; did you mean: tv:resnet50"),
    (["summary", "timm:nope_net"], "timm has no model 'nope_net'"),
    (["reconcile", "BADFILE"], "is not an ONNX model"),
    (["summary", "BADFILE"], "is not an ONNX model"),
    (["summary", "ODDFILE"], "cannot cost these operators: Mystery x1 (e.g. mystery)"),
    (["summary", "missing.onnx"], "no such file"),
])
def test_bad_own_models_exit_2(cli, tmp_path, argv, needle):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf \xff\xff")
    odd = _onnx(tmp_path / "odd.onnx", extra_op="Mystery")
    argv = [str(bad) if a == "BADFILE" else str(odd) if a == "ODDFILE" else a for a in argv]
    res = cli(*argv)
    assert res.code == 2 and needle in res.err, res.err


def test_library_not_installed_is_bad_input(monkeypatch):
    import importlib.util

    from cnnzoo.analysis import own
    real = importlib.util.find_spec
    monkeypatch.setattr(own.importlib.util, "find_spec", lambda n, *a: None if n == "timm" else real(n, *a))
    with pytest.raises(InvalidArgumentError, match="timm is not installed"):
        analyze("timm:resnet18")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from starlette.testclient import TestClient

    from cnnzoo.serve import create_app

    root = tmp_path_factory.mktemp("serve")
    with TestClient(create_app(root / "runs", models=["alexnet"], cache=root / "cache")) as c:
        yield c


def test_api_own_model_by_name_and_upload(client, tmp_path):
    r = client.get("/api/own?name=tv:resnet18")
    assert r.status_code == 200 and r.json()["totals"]["macs"] == 1_815_904_768
    data = _onnx(tmp_path / "tiny.onnx").read_bytes()
    r = client.post("/api/own?input=3x64x64", content=data)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["model"] == "uploaded ONNX file" and d["rows"][0]["out_shape"] == [8, 64, 64]


@pytest.mark.parametrize("how, status, needle", [
    ("bad", 400, "is not an ONNX model"),
    ("odd", 400, "cannot cost these operators: Mystery"),
    ("empty", 400, "empty upload"),
    ("path", 400, "name must be tv:NAME or timm:NAME"),
    ("unknown", 400, "torchvision has no model"),
])
def test_api_own_bad_input_is_4xx(client, tmp_path, how, status, needle):
    if how in ("path", "unknown"):
        r = client.get("/api/own?name=" + ("/etc/passwd" if how == "path" else "tv:nope"))
    else:
        body = {"bad": b"\xff\xfe not onnx", "empty": b"",
                "odd": _onnx(tmp_path / "odd.onnx", extra_op="Mystery").read_bytes() if how == "odd" else b""}[how]
        r = client.post("/api/own", content=body)
    assert r.status_code == status and needle in r.json()["error"], r.text
    assert "/tmp" not in r.json()["error"]


@pytest.mark.browser
def test_browser_reconcile_and_own_model_pages(tmp_path):
    """The two pages in headless Chromium: the reconcile table, a tv: model's rows, an ONNX upload."""
    pytest.importorskip("selenium.webdriver")
    pytest.importorskip("uvicorn")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from _browser import chrome, need_browser, screenshot_dir, serving
    from cnnzoo.serve import create_app

    need_browser(module_level=False)
    shots = screenshot_dir()
    app = create_app(tmp_path / "runs", models=["alexnet"], cache=tmp_path / "c")
    with serving(app) as base, chrome() as drv:
        def open_(hash_: str, page: str) -> None:
            drv.get(f"{base}/{hash_}")
            WebDriverWait(drv, 120).until(lambda d: d.execute_script("return document.getElementById('main').dataset.ready") == page)
            assert not drv.find_elements(By.CSS_SELECTOR, "#main .error")

        open_("#/reconcile/alexnet?input=3x224x224&counters=thop", "reconcile")
        rows = drv.find_elements(By.CSS_SELECTOR, "#rec-table tr[data-source]")
        assert [r.get_attribute("data-source") for r in rows] == ["torchvision alexnet _ops", "thop"]
        assert all(r.find_elements(By.TAG_NAME, "td")[-1].text == "0" for r in rows)
        if shots:
            drv.save_screenshot(str(shots / "serve-reconcile.png"))
        open_("#/own/tv:resnet18", "own")
        assert "1,815,904,768 multiply-adds" in drv.find_element(By.ID, "own-totals").text
        drv.find_element(By.ID, "own-file").send_keys(str(_onnx(tmp_path / "tiny.onnx")))
        WebDriverWait(drv, 60).until(lambda d: "uploaded ONNX file" in d.find_element(By.ID, "own-out").text)
        assert "conv2" in drv.find_element(By.ID, "own-table").text
        if shots:
            drv.save_screenshot(str(shots / "serve-own.png"))
