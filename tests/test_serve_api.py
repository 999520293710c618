"""`cnnzoo serve` at the HTTP level (no browser): every route, the error cases of the issue's
"Safety" list, concurrent requests, and the CLI's --explain and serve commands."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

import cnnzoo.serve.state as state
from _hostile import bomb_bytes
from _serve_fixtures import ZOO, digit_one, png_bytes, serve_app
from cnnzoo import analyze
from cnnzoo.analysis.explain import explain
from cnnzoo.runfolder import MODEL_FILE


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    app = serve_app(tmp_path_factory.mktemp("serve"), max_upload=200_000)
    with TestClient(app) as client:
        yield client, app.state.runs, app


def test_page_and_static_files_are_served(env):
    client, _, _ = env
    r = client.get("/")
    assert r.status_code == 200 and "cnnzoo" in r.text and "/static/app.js" in r.text
    for f in ("app.js", "pages.js", "charts.js", "playground.js", "style.css"):
        assert client.get(f"/static/{f}").status_code == 200, f
    assert "cdn" not in r.text.lower() and "https://" not in r.text  # works offline
    assert client.get("/api/nothing").status_code == 404


def test_zoo_rows_are_the_analyzer_s_totals(env):
    client, _, _ = env
    rows = {r["name"]: r for r in client.get("/api/zoo").json()}
    assert set(rows) == set(ZOO)
    rep = analyze("alexnet")
    a = rows["alexnet"]
    assert (a["params"], a["macs"], a["memory_bytes"]) == (rep.total_params, rep.total_macs, rep.total_memory)
    assert a["family"] and isinstance(a["year"], int) and a["top1_err_pct"] is not None and a["source"]


def test_model_page_data_and_input_size(env):
    client, _, _ = env
    d224 = client.get("/api/models/alexnet", params={"input": "3x224x224"}).json()
    d227 = client.get("/api/models/alexnet", params={"input": "3x227x227"}).json()
    assert d227["input_size"] == [3, 227, 227]
    assert d227["totals"]["macs"] == analyze("alexnet", (3, 227, 227)).total_macs
    assert d224["totals"]["macs"] != d227["totals"]["macs"]
    assert d224["rows"][0]["rf"] and d224["stages"] and d224["info"]["paper"]["title"]
    assert "memory" in d224["text_table"].lower()
    # the seeds' printed numbers that disagree with their own rules, as docs/analysis.md lists them
    assert any("conv4" in x["where"] and x["printed"] == "145 M" for x in d224["disagreements"])


def test_bad_input_size_and_unknown_model(env):
    client, _, _ = env
    r = client.get("/api/models/alexnet", params={"input": "3x0"})
    assert r.status_code == 400 and "CxHxW" in r.json()["error"]
    r = client.get("/api/models/alexnett")
    assert r.status_code == 404 and "alexnet" in r.json()["error"]
    r = client.get("/api/models/lenet5", params={"input": "1x4x4"})  # too small for the network
    assert r.status_code == 400 and r.json()["error"]


def test_explain_is_the_cli_text(env, cli):
    client, _, _ = env
    r = client.get("/api/models/alexnet/explain", params={"layer": "features.0", "input": "3x227x227"})
    assert r.status_code == 200
    d = r.json()
    assert d["text"] == explain(analyze("alexnet", (3, 227, 227)), "features.0")
    assert "(227 - 11 + 2*2)/4 + 1 = 56" in d["text"]
    assert "64 x 56 x 56 = 200,704 elements x 4 bytes" in d["text"]
    assert "64 x 3 x 11 x 11 + 64 = 23,296" in d["text"]
    res = cli("summary", "alexnet", "--input", "3x227x227", "--explain", "features.0")
    assert res.code == 0 and res.out == d["text"]
    r = client.get("/api/models/alexnet/explain", params={"layer": "feature.0"})
    assert r.status_code == 400 and "features.0" in r.json()["error"]


def test_diagram_is_drawn_from_the_module_tree(env):
    client, _, _ = env
    g = {n["name"]: n for n in client.get("/api/models/googlenet").json()["diagram"]}
    assert g["inception3a"]["branches"] == ["branch1", "branch2", "branch3", "branch4"]
    assert "aux1" not in g  # not run at inference
    r = {n["name"]: n for n in client.get("/api/models/resnet18").json()["diagram"]}
    blocks = r["layer2"]["blocks"]
    assert [b["shortcut"] for b in blocks] == [True, True] and blocks[0]["projection"]
    assert not blocks[1]["projection"]


def test_compare(env):
    client, _, _ = env
    r = client.get("/api/compare", params={"models": "alexnet,resnet18"})
    assert r.status_code == 200
    a, b = r.json()
    assert a["macs"] == analyze("alexnet").total_macs and b["stages"]
    assert client.get("/api/compare", params={"models": "alexnet"}).status_code == 400
    r = client.get("/api/compare", params={"models": "alexnet,resnet81"})
    assert r.status_code == 404 and "resnet18" in r.json()["error"]


def test_runs_and_figures(env):
    client, runs, _ = env
    names = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(names) == {"lenet-tiny", "empty-run"}  # the symlink out is not listed
    assert names["lenet-tiny"]["has_model"] and not names["empty-run"]["has_model"]
    d = client.get("/api/runs/lenet-tiny").json()
    assert d["metrics"][0]["epoch"] == 1 and d["record"]["model"] == "lenet5"
    assert "training_curves.png" in d["figures"]
    r = client.get("/api/runs/lenet-tiny/figure/training_curves.png")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    assert client.get("/api/runs/nope").status_code == 404


@pytest.mark.parametrize("path, code", [
    ("/api/runs/..%2Foutside", 403), ("/api/runs/escape", 403), ("/api/runs/%2Fetc", 403),
    ("/api/runs/lenet-tiny/figure/..%2F..%2Foutside%2Fsecret.png", 403),
    ("/api/runs/escape/figure/secret.png", 403), ("/api/runs/lenet-tiny/figure/model.safetensors", 404),
])
def test_no_path_leads_out_of_runs(env, path, code):
    client, _, _ = env
    r = client.get(path)
    assert r.status_code == code, r.text
    assert "error" in r.json()


def test_playground_classifies_a_drawing(env):
    client, _, _ = env
    r = client.post("/api/playground/lenet", json={"pixels": digit_one()})
    assert r.status_code == 200, r.text
    d = r.json()
    assert len(d["probs"]) == 10 and abs(sum(d["probs"]) - 1) < 1e-4
    assert d["prediction"]["class"] in "0123456789"
    assert [(l["layer"], l["shape"]) for l in d["layers"]] == [
        ("c1", [6, 28, 28]), ("s2", [6, 14, 14]), ("c3", [16, 10, 10])]
    assert all(m.startswith("data:image/png;base64,") for l in d["layers"] for m in l["maps"])


@pytest.mark.parametrize("body, code", [(b"not json", 400), (b"[1, 2]", 400),
                                        (b'{"pixels": [[1, 2], [3]]}', 400),
                                        (b'{"pixels": "' + b"x" * (2**20 + 10) + b'"}', 413)])
def test_playground_refuses_bad_bodies(env, body, code):
    client, _, _ = env
    r = client.post("/api/playground/lenet", content=body)
    assert r.status_code == code and r.json()["error"]


def test_upload_predicts_with_maps_and_grad_cam(env):
    client, _, _ = env
    r = client.post("/api/runs/lenet-tiny/predict", content=png_bytes(), params={"layer": "c3.convs.1"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert len(d["top"]) == 5 and d["filters"]["shape"] == [6, 1, 5, 5]
    assert d["features"]["layer"] == "c3.convs.1" and d["grad_cam"]["image"].startswith("data:image/png")
    assert "c1" in d["layers"]


@pytest.mark.parametrize("run, body, params, code, words", [
    ("lenet-tiny", b"hello, not an image", {}, 415, "not an image"),
    ("lenet-tiny", b"", {}, 415, "empty upload"),
    ("lenet-tiny", "bomb", {}, 415, "decompression bomb"),
    ("lenet-tiny", b"\0" * 300_000, {}, 413, "limit"),
    ("lenet-tiny", "png", {"layer": "c9"}, 400, "no layer named"),
    ("empty-run", "png", {}, 404, "no model.safetensors"),
    ("escape", "png", {}, 403, "out of the runs folder"),
    ("..%2Foutside", "png", {}, 403, "only paths inside"),
])
def test_upload_errors_are_4xx_with_a_message(env, run, body, params, code, words):
    client, _, _ = env
    data = {"bomb": bomb_bytes, "png": png_bytes}[body]() if isinstance(body, str) else body
    r = client.post(f"/api/runs/{run}/predict", content=data, params=params)
    assert r.status_code == code, r.text
    assert words in r.json()["error"]
    assert "cnnzoo-upload-" not in r.json()["error"]  # names the upload, not a temporary path


def test_concurrent_requests_share_one_model(env):
    client, _, app = env
    before = len(app.state.models_cache)
    png = png_bytes()

    def one(i: int) -> int:
        if i % 3 == 0:
            return client.post("/api/runs/lenet-tiny/predict", content=png).status_code
        if i % 3 == 1:
            return client.post("/api/playground/lenet", json={"pixels": digit_one()}).status_code
        return client.get("/api/models/resnet18", params={"input": f"3x{160 + 32 * (i % 2)}x160"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(24)))
    assert codes == [200] * 24
    assert len(app.state.models_cache) <= max(before, 2)  # one instance per model file


def test_playground_weights_are_trained_once(tmp_path, monkeypatch):
    calls = []
    barrier = threading.Barrier(4)

    def fake_train(root):
        calls.append(root)
        d = root / state.PLAYGROUND_DIR
        d.mkdir()
        (d / MODEL_FILE).write_bytes(b"x")

    monkeypatch.setattr(state, "_train_playground", fake_train)

    def get(_):
        barrier.wait()
        return state.playground_file(tmp_path)

    with ThreadPoolExecutor(4) as pool:
        paths = set(pool.map(get, range(4)))
    assert len(calls) == 1 and paths == {tmp_path / state.PLAYGROUND_DIR / MODEL_FILE}


def test_serve_command_prints_the_url_and_warns_for_other_hosts(monkeypatch, tmp_path, cli):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    out = cli("serve", "--port", "8123", "--runs", tmp_path)
    assert out.code == 0 and "http://127.0.0.1:8123/" in out.out and "warning" not in out.err
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert "warning: listening on 0.0.0.0" in cli("serve", "--host", "0.0.0.0", "--runs", tmp_path).err
