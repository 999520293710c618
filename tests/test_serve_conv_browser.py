"""The Convolution page in headless Chromium: the page's arithmetic (convMath in conv.js) agrees
with the analyzer on every conv/pool row of a few models and on single layers built from
hyper-parameters (valid and not); the kernel steps, a hyper-parameter change recomputes the
formula and an impossible one is explained, a click on an output cell draws its receptive field.
CNNZOO_SCREENSHOTS=1 writes the page to docs/img/serve-conv.png (any other value: that folder)."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.browser

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn not installed (the serve extra)")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from _browser import chrome, need_browser, screenshot_dir, serving  # noqa: E402

need_browser()
# op, input HxW, k, s, p, d, cin, cout, groups, bias, ceil, out (adaptive)
LAYERS = [
    ("conv", 227, 11, 4, 0, 1, 3, 96, 1, 1, 0, 1),  # AlexNet conv1: (227 - 11) / 4 + 1 = 55
    ("conv", 224, 7, 2, 3, 1, 3, 64, 1, 0, 0, 1),
    ("conv", 56, 3, 1, 1, 1, 64, 64, 64, 0, 0, 1),  # depthwise
    ("conv", 34, 3, 2, 0, 2, 8, 16, 2, 1, 0, 1),  # dilated, grouped, not a whole division
    ("conv", 17, "1x7", 1, "0x3", 1, 4, 4, 1, 1, 0, 1),
    ("max", 112, 3, 2, 0, 1, 64, 64, 1, 0, 1, 1),  # GoogLeNet's ceil mode
    ("max", 112, 3, 2, 1, 1, 64, 64, 1, 0, 0, 1),
    ("avg", 35, 3, 1, 1, 1, 8, 8, 1, 0, 0, 1),
    ("adaptive", 13, 1, 1, 0, 1, 16, 16, 1, 0, 0, 6),
    ("conv", 5, 7, 1, 0, 1, 3, 8, 1, 1, 0, 1),  # kernel larger than the input
    ("conv", 32, 3, 1, 1, 1, 3, 8, 2, 1, 0, 1),  # groups do not divide the channels
    ("max", 32, 2, 2, 3, 1, 3, 3, 1, 0, 0, 1),  # padding over half the window
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from cnnzoo.serve import create_app

    root = tmp_path_factory.mktemp("conv")
    with serving(create_app(root / "runs", models=["alexnet", "resnet18"], cache=root / "cache")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chrome("1400,1500", script_timeout=120) as drv:
        yield drv


def _query(row: tuple) -> str:
    keys = ("op", "input", "k", "s", "p", "d", "cin", "cout", "groups", "bias", "ceil", "out")
    return "&".join(f"{k}={v}" for k, v in zip(keys, row))


def _hyper(row: tuple) -> dict:
    pair = lambda v: [int(t) for t in str(v).split("x")] * (1 if "x" in str(v) else 2)  # noqa: E731
    op, size, k, s, p, d, cin, cout, groups, bias, ceil, out = row
    return {"op": op, "h": size, "w": size, "k": pair(k), "s": pair(s), "p": pair(p), "d": pair(d),
            "cin": cin, "cout": cout if op == "conv" else cin, "groups": groups, "bias": bool(bias),
            "ceil": bool(ceil), "out": pair(out)}


def _open(drv, url: str) -> None:
    drv.get("about:blank")  # a new document: a hash change alone would keep the old one ready
    drv.get(url)
    _wait(drv, "return document.querySelector('main').dataset.ready === 'conv'"
               " && !!document.getElementById('conv-in').dataset.window")


def _wait(drv, cond, timeout: float = 180):
    return WebDriverWait(drv, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(cond))


def test_page_math_is_the_analyzer_s(site, browser):
    """convMath against /api/layers/formula (single layers) and the analyzer's model rows."""
    _open(browser, f"{site}/#/conv/alexnet")
    checked = browser.execute_async_script("""
        const [cases, models, done] = arguments, bad = [];
        (async () => {
          let n = 0;
          for (const [q, hp] of cases) {
            const r = await fetch('/api/layers/formula?' + q), body = await r.json(), m = convMath(hp);
            n++;
            if (r.ok !== (m.errors.length === 0)) bad.push([q, r.status, body, m.errors]);
            else if (r.ok && (JSON.stringify(m.out) !== JSON.stringify(body.out_shape.slice(1))
                     || m.params !== body.params || m.macs !== body.macs)) bad.push([q, body, m]);
          }
          for (const name of models) {
            const d = await (await fetch('/api/layers/' + name)).json();
            for (const row of d.layers) {
              const m = convMath(rowHyper(row));
              n++;
              if (JSON.stringify(m.out) !== JSON.stringify(row.out_shape.slice(1)) || m.macs !== row.macs
                  || (!row.name.includes('#') && m.params !== row.params)) bad.push([name, row.name, m, row]);
            }
          }
          done([n, bad]);
        })().catch(e => done([0, [String(e)]]));
    """, [[_query(r), _hyper(r)] for r in LAYERS],
        ["alexnet", "googlenet", "resnet18", "mobilenet_v2", "inception_v3", "shufflenet_v1_g3"])
    n, bad = checked
    assert not bad, bad[:3]
    assert n > 250


def test_watch_step_explain_and_receptive_field(site, browser):
    drv = browser
    _open(drv, f"{site}/#/conv/alexnet?layer=features.0")
    formula = drv.find_element(By.ID, "conv-formula")
    assert "(227 − 11 + 2·2) / 4 + 1" in formula.text and formula.get_attribute("data-out") == "56x56"
    assert drv.find_element(By.ID, "conv-params").get_attribute("data-value") == str(64 * (3 * 121 + 1))
    pos = drv.find_element(By.ID, "conv-pos")
    assert pos.get_attribute("data-step") == "0" and pos.get_attribute("data-total") == str(56 * 56)
    drv.find_element(By.ID, "conv-step").click()
    drv.find_element(By.ID, "conv-step").click()
    assert pos.get_attribute("data-step") == "2"
    assert drv.find_element(By.ID, "conv-in").get_attribute("data-window") == "-2,6,11,11"  # x: 2*4-2
    drv.find_element(By.ID, "conv-play").click()
    _wait(drv, "return +document.getElementById('conv-pos').dataset.step > 10", 30)
    drv.find_element(By.ID, "conv-play").click()

    # the paper's AlexNet: no padding, 227 -> 55; then a kernel that cannot fit
    pad = drv.find_element(By.ID, "hp-p")
    pad.clear()
    pad.send_keys("0")
    assert formula.get_attribute("data-out") == "55x55"
    assert "(227 − 11 + 2·0) / 4 + 1 = 54 + 1 = 55" in formula.text
    size = drv.find_element(By.ID, "hp-h")
    size.clear()
    size.send_keys("8")
    invalid = drv.find_element(By.ID, "conv-invalid")
    assert invalid.get_attribute("data-count") == "1" and "no window fits" in invalid.text
    drv.find_element(By.ID, "hp-reset").click()
    assert invalid.get_attribute("data-count") == "0" and formula.get_attribute("data-out") == "56x56"

    # a click on output cell (3, 54): the box the analyzer's geometry gives, and the ERF beside
    _click_cell(drv, 3, 54)
    rf = drv.find_element(By.ID, "conv-rf")
    _wait(drv, "return !!document.getElementById('conv-rf').dataset.box", 120)
    assert rf.get_attribute("data-box") == "10,20,214,224"
    assert rf.get_attribute("data-clipped") == "10,20,214,224"
    _wait(drv, "return document.getElementById('conv-erf').dataset.drawn === '1'", 120)

    # behind residual adds: resnet18's layer2.0.conv1, the box the API gives for the clicked unit
    _open(drv, f"{site}/#/conv/resnet18?layer=layer2.0.conv1")
    loads = drv.execute_script("return +document.querySelector('main').dataset.loads")
    pad = drv.find_element(By.ID, "conv-draw")  # a 2, drawn with the pointer
    chain = ActionChains(drv).move_to_element_with_offset(pad, -30, -30).click_and_hold()
    for dx, dy in ((0, -38), (28, -36), (36, -12), (-34, 34), (-4, 38), (36, 38)):
        chain = chain.move_to_element_with_offset(pad, dx * 0.8, dy * 0.8)
    chain.release().perform()
    _wait(drv, f"return +document.querySelector('main').dataset.loads > {loads}", 120)
    _click_cell(drv, 9, 17)
    _wait(drv, "return document.getElementById('conv-erf').dataset.drawn === '1'", 120)
    with urllib.request.urlopen(f"{site}/api/layers/resnet18/unit?layer=layer2.0.conv1&y=9&x=17") as r:
        want = json.load(r)
    assert drv.find_element(By.ID, "conv-rf").get_attribute("data-box") == ",".join(map(str, want["box"]))
    assert drv.find_element(By.ID, "conv-pos").get_attribute("data-step") == str(9 * 28 + 17)
    folder = screenshot_dir()
    if folder is not None:
        drv.execute_script("window.scrollTo(0, 0)")
        drv.save_screenshot(str(folder / "serve-conv.png"))


def _click_cell(drv, y: int, x: int) -> None:
    out = drv.find_element(By.ID, "conv-out")
    cell = int(out.get_attribute("data-cell"))
    scale = out.size["width"] / int(out.get_attribute("width"))
    drv.execute_script("""const c = arguments[0], b = c.getBoundingClientRect();
        c.dispatchEvent(new MouseEvent('click', {clientX: b.left + arguments[1], clientY: b.top + arguments[2], bubbles: true}));""",
                       out, (x + 0.5) * cell * scale, (y + 0.5) * cell * scale)
