"""The Zoo page's data (issue 28: instant pages, readable charts; issue 29: bounded caches):
the packaged table is current, /api/zoo answers without analysing, the report cache stays
bounded and never holds one request behind another, and the bubble chart's labels touch
nothing."""

from __future__ import annotations

import math
import threading
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

from cnnzoo import analyze
from cnnzoo.analysis.compare import compare_row
from cnnzoo.registry import get_entry, list_models
from cnnzoo.serve import create_app, zoo
from cnnzoo.serve.state import BoundedCache

# one model of each kind of graph the analyzer walks: plain, branches, residual, dense, depthwise
SAMPLE = ["lenet5", "alexnet", "vgg11", "googlenet", "resnet50", "densenet121", "mobilenet_v2", "squeezenet1_0"]


def _zoo_models() -> list[str]:
    """The zoo's own models (other tests may register test models in this process)."""
    return [n for n in list_models() if get_entry(n).builder.__module__.startswith("cnnzoo.models")]


def test_packaged_table_has_every_model_at_its_native_input():
    table = zoo.stored_table()
    assert sorted(table) == _zoo_models(), "run scripts/gen_zoo_table.py (or make docs)"
    stale = [n for n in table if table[n]["input_size"] != list(get_entry(n).input_size)]
    assert not stale, f"native input changed for {stale}: run scripts/gen_zoo_table.py"


@pytest.mark.parametrize("name", SAMPLE)
def test_packaged_table_is_the_analyzer_s_totals(name):
    """A sample (seconds); test_packaged_table_is_current_for_every_model checks them all."""
    assert zoo.stored_table()[name] == zoo.totals(name, analyze(name)), "run scripts/gen_zoo_table.py"


@pytest.mark.slow
def test_packaged_table_is_current_for_every_model():
    table = zoo.stored_table()
    stale = [n for n in _zoo_models() if table[n] != zoo.totals(n, analyze(n))]
    assert not stale, f"stale rows {stale}: run scripts/gen_zoo_table.py"


def test_zoo_rows_are_compare_rows_and_need_no_analysis():
    zoo._REPORTS.clear()
    # the zoo's own models (other test files in this process register small test nets too)
    names = [n for n in list_models() if get_entry(n).builder.__module__.startswith("cnnzoo.models")]
    rows = {r["name"]: r for r in zoo.zoo_rows(names)}
    analysed = [k for k in zoo._REPORTS._items if k != ("lenet5", None)]  # lenet5: an app's warm-up
    assert not analysed, "the zoo table analysed models instead of reading zoo_table.json"
    e = get_entry("resnet50")
    assert rows["resnet50"] == {**compare_row("resnet50", analyze("resnet50"), "resnet50"), "family": e.family,
                                "year": e.paper.year, "description": e.description}


def test_a_row_whose_native_input_changed_is_analysed_again(monkeypatch):
    table = {n: dict(r) for n, r in zoo.stored_table().items()}
    table["alexnet"].update(input_size=[3, 224, 224], macs=1)
    monkeypatch.setattr(zoo, "stored_table", lambda: table)
    assert zoo.zoo_row("alexnet")["macs"] == analyze("alexnet").total_macs


def test_report_cache_is_bounded_through_the_api(tmp_path):
    zoo._REPORTS.clear()
    with TestClient(create_app(tmp_path, models=["lenet5"], cache=tmp_path)) as client:
        for side in range(32, 32 + zoo.REPORTS_KEPT + 20):
            r = client.get("/api/models/lenet5", params={"input": f"1x{side}x{side}"})
            assert r.status_code == 200, r.text
            assert len(zoo._REPORTS) <= zoo.REPORTS_KEPT
        # the most recent sizes are the ones kept
        assert (("lenet5", (1, side, side))) in zoo._REPORTS._items
    assert len(zoo._REPORTS) == zoo.REPORTS_KEPT


def test_a_slow_key_does_not_block_another_and_one_key_is_computed_once():
    cache: BoundedCache[str, int] = BoundedCache(2)
    release, calls = threading.Event(), []

    def slow() -> int:
        calls.append("slow")
        release.wait(10)
        return 1

    threads = [threading.Thread(target=cache.get, args=("big", slow)) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    assert cache.get("small", lambda: 2) == 2  # answered while "big" is still computing
    assert time.perf_counter() - t0 < 1
    release.set()
    for t in threads:
        t.join(10)
    assert calls == ["slow"] and cache.get("big", lambda: 3) == 1
    cache.get("third", lambda: 3)
    assert len(cache) == 2 and cache.get("small", lambda: 9) == 9  # the least recently used went


def test_an_error_is_shared_by_waiters_and_not_kept():
    cache: BoundedCache[str, int] = BoundedCache(2)

    def fails() -> int:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        cache.get("k", fails)
    assert cache.get("k", lambda: 5) == 5


def _hits(box: tuple[float, float, float, float], bubble: dict) -> bool:
    dx = max(box[0] - bubble["x"], 0, bubble["x"] - box[2])
    dy = max(box[1] - bubble["y"], 0, bubble["y"] - box[3])
    return math.hypot(dx, dy) < bubble["r"]


def test_chart_labels_touch_no_bubble_and_no_other_label(tmp_path):
    with TestClient(create_app(tmp_path, cache=tmp_path)) as client:
        charts = client.get("/api/zoo/charts").json()
    assert charts[0]["dataset"] == "ImageNet" and len({c["dataset"] for c in charts}) == len(charts) >= 2
    assert len(charts[0]["bubbles"]) >= 40  # the dense case of the issue: every ImageNet model with a top-1
    for c in charts:
        boxes = [(lb["x0"], lb["y0"], lb["x0"] + lb["w"], lb["y0"] + lb["h"]) for lb in c["labels"]]
        left, top, right, bottom = c["frame"]
        for i, a in enumerate(boxes):
            name = c["labels"][i]["name"]
            assert left <= a[0] and a[2] <= right and top <= a[1] and a[3] <= bottom, name
            for j, b in enumerate(boxes[i + 1:], i + 1):
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (name, c["labels"][j]["name"])
            assert not [b["name"] for b in c["bubbles"] if _hits(a, b)], name
        for b in c["bubbles"]:  # bubbles whole inside the frame
            assert left <= b["x"] - b["r"] and b["x"] + b["r"] <= right and top <= b["y"] - b["r"] and b["y"] + b["r"] <= bottom, b
        assert {c["families"][b["family"]] for b in c["bubbles"]} == set(c["families"])
        assert all(v <= 100 for _, v in c["y_ticks"]), "an accuracy tick above 100%"
        assert c["sizes"] and all(r > 0 for _, r in c["sizes"])


def test_label_widths_grow_with_the_text():
    from cnnzoo.serve.chart import label_width

    assert label_width("lenet5") < label_width("inception_resnet_v2") < 12 * len("inception_resnet_v2")
    assert label_width("mmmm") > label_width("iiii")
