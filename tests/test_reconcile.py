"""`cnnzoo reconcile`: every counter's figure explained by named rules counted on the model, with
nothing left unexplained on the five landmark models (issue 28, item 4)."""

from __future__ import annotations

import pytest

from cnnzoo.analysis import counters as counters_mod
from cnnzoo.analysis.reconcile import reconcile

FIVE = ["alexnet", "vgg16", "googlenet", "resnet50", "mobilenet_v2"]
FAST = {"resnet50"}  # the others run with -m slow (each counter takes seconds per model on 2 cores)


def _installed(name: str) -> None:
    counter = next(c for c in counters_mod.COUNTERS if c.name == name)
    why = counters_mod.missing(counter)
    if why:
        pytest.skip(why)


@pytest.mark.parametrize("counter", [c.name for c in counters_mod.COUNTERS])
@pytest.mark.parametrize("model", [pytest.param(m, marks=() if m in FAST else pytest.mark.slow) for m in FIVE])
def test_every_difference_is_a_named_rule(model, counter):
    _installed(counter)
    r = reconcile(model, counters=[counter], published=False)
    (line,) = r.lines
    assert line.residual_macs == 0, line.as_dict()
    assert line.residual_params == 0, line.as_dict()
    assert line.macs == r.macs + sum(a for *_, a in line.rules)


@pytest.mark.parametrize("model", FIVE)
def test_torchvision_ops_are_multiply_adds_of_convs_and_fc(model):
    r = reconcile(model, counters=[])
    tv = next(ln for ln in r.lines if ln.source.startswith("torchvision"))
    assert tv.residual_macs == 0 and tv.residual_params == 0
    names = [n for n, *_ in tv.rules]
    assert "pooling not counted" in names
    if model == "googlenet":  # the zoo's googlenet is the paper's; torchvision's is googlenet_tv
        assert "torchvision's GoogLeNet" in names
    if model == "alexnet":  # native 227, torchvision's figure at 224
        assert "input size 3x224x224" in names
    # docs/analysis.md's side-by-side table: cnnzoo's and the published rows as computed (the
    # counters' rows depend on their versions, which the block names: the slow test below)
    want = r.to_markdown().splitlines()
    assert _docs_rows(model)[:len(want)] == want


def test_resnet50_paper_figure_is_v1():
    r = reconcile("resnet50", counters=[])
    paper = next(ln for ln in r.lines if ln.source.startswith("He et al."))
    (rule,) = [a for n, _, a in paper.rules if n == "v1 vs v1.5 stride placement"]
    assert rule == -231_211_008  # v1 3,859,879,936 - v1.5 4,091,090,944 (tests/test_analysis_seeds.py)
    assert paper.macs == 3_800_000_000 and paper.residual_macs == 3_800_000_000 - 3_859_879_936


def test_rule_amounts_are_counted_on_the_model():
    import torch

    from cnnzoo.analysis.reconcile import BN_X2, NO_POOL, model_census
    from cnnzoo.registry import create_model

    with torch.device("meta"):
        c = model_census(create_model("resnet50"), (3, 224, 224))
    assert BN_X2.amount(c) == 2 * 11_113_984  # 53 BN layers' output elements, scale and shift
    assert NO_POOL.amount(c) == -(64 * 56 * 56 * 9 + 2048 * 7 * 7)  # the stem's 3x3 max pool, global average


def test_cli_table_and_json(cli):
    res = cli("reconcile", "alexnet", "--input", "3x224x224", "--counters", "thop", "--json")
    assert res.code in (0, None)
    d = res.json()
    assert d["input_size"] == [3, 224, 224] and d["cnnzoo"]["macs"] == 714_992_576
    sources = [s["source"] for s in d["sources"]]
    assert sources[0] == "torchvision alexnet _ops" and sources[-1] == "thop"
    text = cli("reconcile", "alexnet", "--counters", "thop").out
    assert "unexplained: params 0, MACs 0" in text and "pooling not counted" in text


@pytest.mark.parametrize("argv, needle", [
    (["reconcile", "alexnet", "--counters", "nope"], "unknown counter 'nope'"),
    (["reconcile", "no_such_model"], "unknown model"),
    (["reconcile", "alexnet", "--input", "3x0x1"], "--input must be"),
])
def test_cli_bad_input_exits_2(cli, argv, needle):
    res = cli(*argv)
    assert res.code == 2 and needle in res.err


def test_missing_counter_is_listed_with_its_reason(monkeypatch):
    monkeypatch.setattr(counters_mod, "missing", lambda c: "thop is not installed" if c.name == "thop" else None)
    r = reconcile("alexnet", counters=["thop"], published=False)
    assert r.lines[0].macs is None and "not installed" in r.lines[0].note
    assert "not run: thop is not installed" in r.to_text()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from starlette.testclient import TestClient

    from cnnzoo.serve import create_app

    root = tmp_path_factory.mktemp("serve")
    with TestClient(create_app(root / "runs", models=["alexnet"], cache=root / "cache")) as c:
        yield c


def test_api_reconcile(client):
    r = client.get("/api/reconcile/alexnet?input=3x224x224&counters=thop")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["cnnzoo"]["macs"] == 714_992_576
    assert [s["residual_macs"] for s in d["sources"]] == [0, 0]


@pytest.mark.parametrize("url, status, needle", [
    ("/api/reconcile/no_such_model", 404, "unknown model"),
    ("/api/reconcile/alexnet?counters=nope", 400, "unknown counter"),
    ("/api/reconcile/alexnet?input=3x0x0", 400, "--input must be"),
    ("/api/reconcile/%2Fetc%2Fpasswd", 404, "no such page or API"),  # never a path on the server
    ("/api/reconcile/README.md", 404, "unknown model"),  # a file in the working folder: not read
    ("/api/reconcile/tv:resnet5", 400, "torchvision has no model"),
])
def test_api_reconcile_bad_input_is_4xx(client, url, status, needle):
    r = client.get(url)
    assert r.status_code == status and needle in r.json()["error"], r.text


def test_page_has_the_reconcile_view(client):
    html = client.get("/").text
    assert 'data-page="reconcile"' in html and "/static/reconcile.js" in html
    assert "async function reconcilePage" in client.get("/static/reconcile.js").text


def _docs_rows(model: str) -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "analysis.md").read_text()
    block = text.split(f"**{model}** (", 1)[1].split("\n\n", 2)[1]
    return block.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("model", FIVE)
def test_docs_tables_are_the_commands_output(model):
    for c in counters_mod.COUNTERS:
        _installed(c.name)
    assert _docs_rows(model) == reconcile(model).to_markdown().splitlines()


def test_a_timm_model_with_layer_norm():
    """Beyond the zoo: fvcore's LayerNorm (5 per element with scale and shift) is a rule too."""
    _installed("fvcore")
    pytest.importorskip("timm")
    r = reconcile("timm:convnext_tiny", counters=["fvcore"])
    (line,) = r.lines
    assert dict((n, a) for n, _, a in line.rules)["LayerNorm / GroupNorm counted (x5 affine)"] == 5 * 2_973_696
    assert line.residual_macs == 0 and line.residual_params == 0


def test_counters_leave_a_module_unchanged():
    import torch

    _installed("thop")
    from cnnzoo.registry import create_model

    model = create_model("lenet5").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = reconcile(model, input_size=(1, 32, 32))
    assert r.model == "LeNet5" and all(ln.residual_macs in (0, None) for ln in r.lines)
    after = model.state_dict()
    assert model.training and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
