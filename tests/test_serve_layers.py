"""The Convolution page's API (serve/layers.py) and the receptive-field spans it draws
(analysis/span.py): spans agree with the analyzer's rf on every row of models with branches and
residual adds, a unit's box is exactly the input it depends on (a linear net with positive
weights, where the gradient's support is the dependency set), the effective receptive field of
zoo models stays inside the box, the formula endpoint gives the analyzer's numbers, and bad
input is a 4xx with a reason."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

from _serve_fixtures import png_bytes
from cnnzoo import analyze
from cnnzoo.analysis import span as spanlib


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from cnnzoo.serve import create_app

    root = tmp_path_factory.mktemp("layers")
    app = create_app(root / "runs", models=["alexnet"], cache=root / "cache", max_upload=100_000)
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("name", ["googlenet", "resnet18", "inception_v3", "mobilenet_v2", "densenet121"])
def test_spans_give_the_analyzer_s_receptive_field_on_every_row(name):
    report, spans = spanlib.spans(name)
    assert [r.name for r in report.rows] == list(spans)
    for row in report.rows:
        assert spanlib.rf_of(spans[row.name]) == tuple(row.rf), row.name
        assert tuple(s[2] for s in spans[row.name]) == tuple(row.eff_stride), row.name


class _Branchy(nn.Module):
    """A residual add with a strided shortcut, an inception-style concat of branches with
    different kernels and paddings, a dilated conv and an average pool: linear throughout."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 5, stride=2, padding=1)
        self.main = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1))
        self.short = nn.Conv2d(4, 4, 1, stride=2)
        self.b1 = nn.Conv2d(4, 2, 3, padding=1)
        self.b2 = nn.Conv2d(4, 2, 5, padding=2)
        self.b3 = nn.AvgPool2d(3, stride=1, padding=1)
        self.head = nn.Conv2d(8, 2, 3, stride=1, padding=1, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.main(x) + self.short(x)
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)
        return self.head(x)


def test_a_unit_s_box_is_exactly_what_it_depends_on():
    torch.manual_seed(0)
    net = _Branchy()
    for p in net.parameters():
        p.data.uniform_(0.1, 1.0)  # positive and linear: no cancellation, no dead units
    size = (1, 37, 37)
    report, spans = spanlib.spans(net, size)
    net.double()
    for layer in ("stem", "main.1", "short", "b2", "b3", "head"):
        row = next(r for r in report.rows if r.name == layer)
        oh, ow = row.out_shape[1:]
        for y, x in {(0, 0), (oh // 2, ow // 3), (oh - 1, ow - 1)}:
            tracer_in = torch.ones((1, *size), dtype=torch.float64, requires_grad=True)
            out = spanlib.trace(net, tracer_in, capture=layer).captured[1]
            out[0, :, y, x].sum().backward()
            nz = torch.nonzero(tracer_in.grad[0, 0])
            (y0, y1), (x0, x1) = spanlib.box(spans[layer], (y, x))
            want = [max(0, y0), min(size[1] - 1, y1), max(0, x0), min(size[2] - 1, x1)]
            got = [int(nz[:, 0].min()), int(nz[:, 0].max()), int(nz[:, 1].min()), int(nz[:, 1].max())]
            assert got == want, (layer, y, x)
            assert len(nz) == (want[1] - want[0] + 1) * (want[3] - want[2] + 1)  # the whole box


@pytest.mark.parametrize("name, layer, unit", [
    ("resnet18", "layer2.0.conv2", (10, 3)),  # behind layer1's residual adds
    ("googlenet", "inception4a.branch3.1.conv", (7, 0)),  # behind inception3a/b's concats
    ("alexnet", "features.0", (0, 55)),
])
def test_unit_box_is_the_span_and_the_erf_stays_inside_it(client, name, layer, unit):
    y, x = unit
    r = client.get(f"/api/layers/{name}/unit", params={"layer": layer, "y": y, "x": x})
    assert r.status_code == 200, r.text
    box = r.json()
    row = next(row for row in analyze(name).rows if row.name == layer)
    assert box["rf"] == list(row.rf) and box["eff_stride"] == list(row.eff_stride)
    assert box["box"][1] - box["box"][0] + 1 == row.rf[0] and box["box"][3] - box["box"][2] + 1 == row.rf[1]
    assert box["box"][0] == spanlib.spans(name)[1][layer][0][0] + y * row.eff_stride[0]
    e = client.post(f"/api/layers/{name}/unit", params={"layer": layer, "y": y, "x": x})
    assert e.status_code == 200, e.text
    erf, clipped = e.json()["erf"], e.json()["clipped"]
    assert e.json()["box"] == box["box"] and erf["nonzero"] > 0 and erf["png"].startswith("data:image/png")
    s = erf["support"]
    assert clipped[0] <= s[0] <= s[1] <= clipped[1] and clipped[2] <= s[2] <= s[3] <= clipped[3]


def test_layers_are_the_analyzer_s_rows(client):
    for name in ("googlenet", "resnet18"):
        d = client.get(f"/api/layers/{name}").json()
        rows = {r.name: r for r in analyze(name).rows}
        assert len(d["layers"]) == sum(r.kind in ("conv", "pool") for r in rows.values())
        for layer in d["layers"]:
            row = rows[layer["name"]]
            assert (layer["params"], layer["macs"], layer["rf"]) == (row.params, row.macs, list(row.rf))
            assert layer["out_shape"] == list(row.out_shape) and layer["kernel"] == list(row.kernel)
    first = client.get("/api/layers/alexnet_original").json()["layers"][0]
    assert first["out_shape"] == [96, 55, 55] and first["kernel"] == [11, 11] and first["pad"] == [0, 0]
    pool = next(la for la in client.get("/api/layers/googlenet").json()["layers"] if la["name"] == "maxpool1")
    assert pool["op"] == "max" and pool["ceil_mode"] and pool["out_shape"] == [64, 56, 56]
    small = client.get("/api/layers/resnet18", params={"input": "3x64x48"}).json()
    assert small["input_size"] == [3, 64, 48] and small["layers"][0]["out_shape"] == [64, 32, 24]


@pytest.mark.parametrize("query, out, params, macs", [
    ("op=conv&input=227&k=11&s=4&cin=3&cout=96", [96, 55, 55], 96 * (3 * 121 + 1), 96 * 55 * 55 * 3 * 121),
    ("op=conv&input=224&k=7&s=2&p=3&cin=3&cout=64&bias=0", [64, 112, 112], 64 * 3 * 49, 64 * 112 * 112 * 3 * 49),
    ("op=conv&input=56&k=3&p=1&cin=32&cout=32&groups=32&bias=0", [32, 56, 56], 32 * 9, 32 * 56 * 56 * 9),
    ("op=conv&input=34&k=3&s=2&d=2&cin=8&cout=16&groups=2", [16, 15, 15], 16 * 4 * 9 + 16, 16 * 15 * 15 * 4 * 9),
    ("op=max&input=112&k=3&s=2&cin=64&ceil=1", [64, 56, 56], 0, 64 * 56 * 56 * 9),
    ("op=max&input=112&k=3&s=2&cin=64", [64, 55, 55], 0, 64 * 55 * 55 * 9),
    ("op=adaptive&input=13&cin=256&out=6", [256, 6, 6], 0, 256 * 18 * 18),
])
def test_formula_is_the_analyzer_s(client, query, out, params, macs):
    r = client.get(f"/api/layers/formula?{query}")
    assert r.status_code == 200, r.text
    assert (r.json()["out_shape"], r.json()["params"], r.json()["macs"]) == (out, params, macs)


@pytest.mark.parametrize("method, url, kw, code, words", [
    ("get", "/api/layers/nosuchnet", {}, 404, "unknown model"),
    ("get", "/api/layers/..%2F..%2Fetc%2Fpasswd", {}, 404, ""),
    ("get", "/api/layers/alexnet?input=3x100000x100000", {}, 400, "outside 1 <= side"),
    ("get", "/api/layers/alexnet?input=banana", {}, 400, "CxHxW"),
    ("get", "/api/layers/alexnet?input=3x8x8", {}, 400, "too small"),
    ("get", "/api/layers/alexnet/unit?layer=features.99&y=0&x=0", {}, 404, "no layer"),
    ("get", "/api/layers/alexnet/unit?layer=features.1&y=0&x=0", {}, 400, "not a convolution"),
    ("get", "/api/layers/alexnet/unit?layer=classifier.1&y=0&x=0", {}, 400, "not a convolution"),
    ("get", "/api/layers/alexnet/unit?layer=features.0&y=56&x=0", {}, 400, "0..55"),
    ("get", "/api/layers/alexnet/unit?layer=features.0&y=-1&x=0", {}, 400, "outside"),
    ("get", "/api/layers/alexnet/unit?layer=features.0&y=a&x=0", {}, 400, "integer"),
    ("get", "/api/layers/alexnet/unit?y=0&x=0", {}, 400, "layer= is required"),
    ("get", "/api/layers/formula?op=conv&input=5&k=7", {}, 400, "too small"),
    ("get", "/api/layers/formula?op=conv&cin=3&cout=4&groups=2", {}, 400, "divisible by groups"),
    ("get", "/api/layers/formula?op=max&k=2&p=3", {}, 400, "half"),
    ("get", "/api/layers/formula?op=conv&k=0", {}, 400, "k must be 1 or more"),
    ("get", "/api/layers/formula?op=conv&p=-1", {}, 400, "p must be 0 or more"),
    ("get", "/api/layers/formula?op=conv&s=0", {}, 400, "s must be"),
    ("get", "/api/layers/formula?op=conv&input=99999", {}, 400, "too large"),
    ("get", "/api/layers/formula?op=conv&cin=100000", {}, 400, "too large"),
    ("get", "/api/layers/formula?op=fft", {}, 400, "op must be"),
    ("get", "/api/layers/formula?k=3x3x3", {}, 400, "1 or 2"),
    ("post", "/api/layers/resnet18/watch?layer=conv1&input=3x2000x2000", {}, 400, "too large"),
    ("post", "/api/layers/alexnet/watch?layer=features.0", {"content": b"{", "headers": {"content-type": "application/json"}}, 400, "JSON"),
    ("post", "/api/layers/alexnet/watch?layer=features.0", {"json": {"pixels": [[1, 2], [3]]}}, 400, "2-D grid"),
    ("post", "/api/layers/alexnet/watch?layer=features.0", {"json": [1]}, 400, "object"),
    ("post", "/api/layers/alexnet/watch?layer=features.0", {"content": b"not an image", "headers": {"content-type": "image/png"}}, 415, "uploaded file"),
    ("post", "/api/layers/alexnet/watch?layer=features.0", {"content": b"x" * 200_000}, 413, "limit"),
    ("post", "/api/layers/alexnet/unit?layer=features.0&y=0&x=99", {}, 400, "outside"),
])
def test_bad_input_is_a_4xx_with_a_reason(client, method, url, kw, code, words):
    r = getattr(client, method)(url, **kw)
    assert r.status_code == code, r.text
    assert words in r.json()["error"]


def test_watch_returns_the_layer_s_real_maps(client):
    digit = [[1.0 if 10 <= x <= 14 else 0.0 for x in range(28)] for _ in range(28)]
    r = client.post("/api/layers/resnet18/watch", params={"layer": "layer1.0.conv1", "cin": 5, "cout": 9},
                    json={"pixels": digit})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["in_map"]["shape"] == [64, 56, 56] and d["out_map"]["shape"] == [64, 56, 56]
    assert (d["in_map"]["channel"], d["out_map"]["channel"]) == (5, 9)
    assert d["in_map"]["max"] > d["in_map"]["min"] and len(d["kernel"]) == 3
    up = client.post("/api/layers/vgg11/watch", params={"layer": "features.2", "input": "3x64x64"},
                     content=png_bytes(), headers={"content-type": "image/png"})
    assert up.status_code == 200, up.text
    assert up.json()["out_map"]["shape"] == [64, 32, 32] and up.json()["layer"]["op"] == "max"
    default = client.post("/api/layers/lenet5/watch", params={"layer": "s2"})
    assert default.status_code == 200 and default.json()["in_map"]["shape"][1:] == [28, 28]


def test_the_page_is_served_with_its_script(client):
    page = client.get("/").text
    assert "/static/conv.js" in page and "/static/conv.css" in page and "#/conv" in page
    for f in ("conv.js", "conv.css"):
        assert client.get(f"/static/{f}").status_code == 200
    assert "function convMath" in client.get("/static/conv.js").text
