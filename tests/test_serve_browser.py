"""`cnnzoo serve` in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
every page loads, the zoo sorts, the chart opens a model, the input size changes the totals, a
drawn digit is classified, an upload is classified, a curve grows while a run trains; on a cold
`cnnzoo serve` of the whole zoo, how fast each page paints, and the bubble chart's labels, legend
and width as the browser draws them. Each page is saved as a screenshot in a temporary folder;
CNNZOO_SCREENSHOTS=DIR keeps them there; CNNZOO_SCREENSHOTS=1 refreshes docs/serve.md's (docs/img)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn not installed (the serve extra)")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from _browser import chrome, free_port, need_browser, screenshot_dir, serving  # noqa: E402
from _serve_fixtures import ZOO, png_bytes, serve_app, train_tiny_run  # noqa: E402

need_browser()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    app = serve_app(tmp_path_factory.mktemp("browser"))
    with serving(app) as url:
        yield url, app.state.runs


@pytest.fixture(scope="module")
def browser():
    with chrome() as drv:
        yield drv


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def _open(drv, url: str, page: str, timeout: float = 90) -> None:
    drv.get("about:blank")
    drv.get(url)
    WebDriverWait(drv, timeout).until(
        lambda d: d.execute_script("return document.getElementById('main').dataset.ready") == page)
    errors = drv.find_elements(By.CSS_SELECTOR, "#main .error")
    assert not errors, errors[0].text


def test_zoo_sorts_and_its_chart_opens_a_model(site, browser, shots):
    base, _ = site
    _open(browser, base + "/#/zoo", "zoo")

    def rows():
        return [r.get_attribute("data-name") for r in browser.find_elements(By.CSS_SELECTOR, "#zoo-table tr[data-name]")]

    assert sorted(rows()) == sorted(ZOO)
    browser.find_element(By.CSS_SELECTOR, "#zoo-table th[data-key=params]").click()
    assert rows()[0] == "lenet5" and rows()[-1] == "vgg11"
    browser.find_element(By.CSS_SELECTOR, "#zoo-table th[data-key=params]").click()
    assert rows()[0] == "vgg11"
    browser.find_element(By.ID, "zoo-filter").send_keys("res")
    assert rows() == ["resnet18"]
    bubbles = browser.find_elements(By.CSS_SELECTOR, "#bubble circle[data-name]")
    assert len(bubbles) >= 3  # the models with a published top-1 error
    name = bubbles[-1].get_attribute("data-name")  # the smallest, drawn on top
    ActionChains(browser).move_to_element(bubbles[-1]).click().perform()
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "return document.getElementById('main').dataset.ready") == "model"
        and d.find_element(By.ID, "model-title").text == name)


def test_model_input_size_and_explain(site, browser, shots):
    base, _ = site
    _open(browser, base + "/#/model/alexnet", "model")
    before = browser.find_element(By.ID, "total-macs").text
    box = browser.find_element(By.ID, "input-size")
    box.clear()
    box.send_keys("3x224x224")
    browser.find_element(By.ID, "input-apply").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "input-size").get_attribute("value") == "3x224x224"
                                     and d.find_element(By.ID, "total-macs").text != before)
    browser.find_element(By.CSS_SELECTOR, "#layer-table tr[data-layer='features.0']").click()
    WebDriverWait(browser, 30).until(lambda d: "(W - K + 2P)/S + 1" in d.find_element(By.ID, "explain").text)
    assert "(224 - 11 + 2*2)/4 + 1" in browser.find_element(By.ID, "explain").text
    browser.save_screenshot(str(shots / "serve-model.png"))
    assert browser.find_elements(By.CSS_SELECTOR, "#diagram g.block")


def test_compare_page(site, browser, shots):
    base, _ = site
    _open(browser, base + "/#/compare?models=alexnet,resnet18,googlenet", "compare")
    heads = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#compare-table th a")]
    assert heads == ["alexnet", "resnet18", "googlenet"]
    browser.save_screenshot(str(shots / "serve-compare.png"))


def test_playground_draw_and_upload(site, browser, shots, tmp_path):
    base, _ = site
    _open(browser, base + "/#/playground", "playground")
    canvas = browser.find_element(By.ID, "draw")
    chain = ActionChains(browser).move_to_element_with_offset(canvas, 0, -90).click_and_hold()
    for dy in range(-80, 100, 20):
        chain = chain.move_to_element_with_offset(canvas, 0, dy)
    chain.release().perform()
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "prediction").text not in ("?", ""))
    assert browser.find_element(By.ID, "prediction").text in "0123456789"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#maps img")) == 6 + 6 + 16
    browser.save_screenshot(str(shots / "serve-playground.png"))
    img = tmp_path / "photo.png"
    img.write_bytes(png_bytes((64, 48)))
    browser.find_element(By.ID, "upload").send_keys(str(img))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#top5 tr"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#top5 tr")) == 5
    assert browser.find_element(By.ID, "gradcam").get_attribute("src").startswith("data:image/png")
    browser.execute_script("document.getElementById('upload-result').scrollIntoView()")
    browser.save_screenshot(str(shots / "serve-upload.png"))


def test_runs_curve_grows_while_training(site, browser, shots):
    base, runs = site
    live = runs / "live"
    t = threading.Thread(target=train_tiny_run, args=(live,), kwargs={"epochs": 3}, daemon=True)
    t.start()
    while not (live / "metrics.csv").exists() and t.is_alive():
        time.sleep(0.2)
    _open(browser, base + "/#/runs/live", "runs")

    def n(d):
        return int(d.execute_script(
            "const p = document.querySelector('#curve path[data-series=train]'); return p ? p.dataset.points : 0"))

    first = n(browser)
    assert first >= 1
    WebDriverWait(browser, 120).until(lambda d: n(d) >= 3)
    t.join(60)
    browser.save_screenshot(str(shots / "serve-runs.png"))
    assert n(browser) > first or first == 3


@pytest.fixture(scope="module")
def cold_site(tmp_path_factory):
    """`cnnzoo serve` in a process of its own, nothing analysed yet: the whole zoo."""
    import cnnzoo

    tmp = tmp_path_factory.mktemp("cold")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(cnnzoo.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]),
           "CNNZOO_CACHE": str(tmp / "cache")}
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "cnnzoo", "serve", "--port", str(port), "--runs", str(tmp / "runs")],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    assert proc.poll() is None, (tmp / "serve.log").read_text()
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(30)
    log.close()


def _timings(drv) -> dict[str, float]:
    """Milliseconds from the navigation's start: first contentful paint, the page's marks and
    the arrival of each API answer."""
    return drv.execute_script("""
        const out = {};
        for (const e of performance.getEntriesByType('paint')) out[e.name] = e.startTime;
        for (const e of performance.getEntriesByType('mark')) out[e.name] = e.startTime;
        for (const e of performance.getEntriesByType('resource'))  // when each API answer arrived
            if (e.name.includes('/api/')) out['answer ' + new URL(e.name).pathname] = e.responseEnd;
        return out;""")


def _overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_cold_server_pages_paint_at_once_and_the_chart_is_readable(cold_site, browser, shots):
    """Issue 28: first paint under 2 s on 2 cores with a cold server (printed: run with -s; the
    bound asserted is generous, the numbers go to BENCHMARKS.md); labels that touch nothing."""
    times = {}
    for page, url in (("zoo", "/#/zoo"), ("model", "/#/model/densenet201"), ("compare", "/#/compare"),
                      ("playground", "/#/playground"), ("runs", "/#/runs")):
        _open(browser, cold_site + url, page, timeout=180)
        times[url] = _timings(browser)
        if page == "zoo":
            zoo = times[url]
            _check_bubble_chart(browser, shots)
    for url, t in times.items():
        print(f"first paint {url}: " + ", ".join(f"{k} {v / 1000:.2f} s" for k, v in sorted(t.items())))
    assert zoo["zoo-table"] < 15_000, zoo  # seconds, not the 19-23 s of analysing every model first


def _check_bubble_chart(drv, shots: Path) -> None:
    svg = drv.find_element(By.ID, "bubble")
    assert svg.get_attribute("data-dataset") == "ImageNet"
    main_width = drv.execute_script("return document.getElementById('main').clientWidth")
    assert svg.rect["width"] >= 0.9 * main_width, (svg.rect, main_width)  # the page's full width
    labels = drv.execute_script("""return [...document.querySelectorAll('#bubble text.label')].map(t => {
        const r = t.getBoundingClientRect();
        return {name: t.dataset.name, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; });""")
    circles = drv.execute_script("""return [...document.querySelectorAll('#bubble circle.bubble')].map(c => {
        const r = c.getBoundingClientRect();
        return {name: c.dataset.name, x: r.left + r.width / 2, y: r.top + r.height / 2, r: r.width / 2}; });""")
    assert len(labels) == len(circles) >= 40
    for i, a in enumerate(labels):  # measured as drawn, as the CLI chart's test does
        assert not [b["name"] for b in labels[i + 1:] if _overlap(a, b)], a["name"]
        on = [c["name"] for c in circles if (max(a["left"] - c["x"], 0, c["x"] - a["right"]) ** 2
                                             + max(a["top"] - c["y"], 0, c["y"] - a["bottom"]) ** 2) < (c["r"] - 0.5) ** 2]
        assert not on, (a["name"], "lies on", on)
    families = drv.execute_script("return [...document.querySelectorAll('#bubble .legend-family')].map(e => e.dataset.family)")
    assert len(families) >= 8 and "resnet" in families
    assert drv.find_elements(By.CSS_SELECTOR, "#bubble .legend-size")
    svg.screenshot(str(shots / "serve-zoo-chart.png"))
    bubble = drv.find_element(By.CSS_SELECTOR, "#bubble circle[data-name=resnet50]")
    ActionChains(drv).move_to_element(bubble).perform()  # hover details
    tip = drv.find_element(By.ID, "bubble-tip")
    WebDriverWait(drv, 10).until(lambda d: tip.is_displayed() and "resnet50" in tip.text)
    assert "MACs" in tip.text and "params" in tip.text and "top-1" in tip.text
    drv.save_screenshot(str(shots / "serve-zoo.png"))
