"""Shared set-up of the browser tests: Debian's chromium + chromium-driver through Selenium, an
app served by uvicorn on a free 127.0.0.1 port, and where screenshots go. Import it after
`pytest.importorskip("selenium.webdriver")` and `pytest.importorskip("uvicorn")`."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
MISSING = ("browser tests need chromium and chromedriver (Debian: apt-get install chromium "
           "chromium-driver; .ci/run installs them where apt is available)")


def need_browser(module_level: bool = True) -> None:
    """Skip (the module, or one test) where chromium or its driver is missing."""
    if not CHROMIUM or not DRIVER:
        pytest.skip(MISSING, allow_module_level=module_level)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` on uvicorn in a thread; yields its base URL, stops it afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chrome(window: str = "1280,1000", script_timeout: float = 60) -> Iterator[Any]:
    """A headless Chromium driver, quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={window}"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_script_timeout(script_timeout)
    try:
        yield drv
    finally:
        drv.quit()


def screenshot_dir(default: Path | None = None) -> Path | None:
    """CNNZOO_SCREENSHOTS=1: docs/img (refreshes the docs' pictures); another value: that folder;
    unset: `default` (None: take none)."""
    env = os.environ.get("CNNZOO_SCREENSHOTS")
    folder = DOCS_IMG if env == "1" else Path(env) if env else default
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
