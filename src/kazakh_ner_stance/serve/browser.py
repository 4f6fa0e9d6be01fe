"""Drive the page in a real headless Chromium: the browser test and the README screenshot.

Uses the system's `chromium` and `chromedriver` (Debian: `apt-get install chromium
chromium-driver`) through Selenium with both paths given, so Selenium Manager never tries to
download a browser or a driver. `KNS_CHROMIUM` / `KNS_CHROMEDRIVER` override the paths.
Also a server in a background thread (`background_server`) for tests and scripts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver",)


def find_chromium() -> tuple[str | None, str | None]:
    """(browser, driver) executables, or None for what is missing."""
    browser = os.environ.get("KNS_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = os.environ.get("KNS_CHROMEDRIVER") or next(filter(None, map(shutil.which, DRIVERS)), None)
    if driver is None and Path("/usr/lib/chromium/chromedriver").is_file():
        driver = "/usr/lib/chromium/chromedriver"
    return browser, driver


@contextlib.contextmanager
def headless_chromium(width: int = 1100, height: int = 760) -> Iterator:
    """A Selenium WebDriver on a headless system Chromium (no downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_chromium()
    if not browser or not driver_path:
        raise RuntimeError("chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--hide-scrollbars", f"--window-size={width},{height}",
                "--lang=kk-KZ"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    # The page's viewport exactly width x height (--window-size counts the window's own frame).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def analyse_in_page(driver, url: str, text: str, timeout_s: float = 30.0) -> dict:
    """Open the page, type `text`, submit, wait for the answer; return what the DOM shows:
    entity chips (text, type, background), stance targets (label, outline colour, tooltip),
    the legend and the JSON view's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout_s)
    box = wait.until(ec.element_to_be_clickable((By.ID, "text")))
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "submit").click()
    wait.until(lambda d: d.find_element(By.ID, "results").is_displayed() or d.find_element(By.ID, "error").is_displayed())
    wait.until(lambda d: "entit" in d.find_element(By.ID, "status").text or d.find_element(By.ID, "error").is_displayed())
    facts = driver.execute_script("""
        const chips = [...document.querySelectorAll('#rendered .doc mark.ent')];
        const targets = [...document.querySelectorAll('#rendered .doc .target')];
        const textOf = (n) => [...n.childNodes].filter((c) => c.nodeType === 3).map((c) => c.textContent).join('');
        return {
          error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
          doc_text: [...document.querySelectorAll('#rendered .doc')].map((d) => {
              const c = d.cloneNode(true); c.querySelectorAll('.tag, .stance').forEach((t) => t.remove());
              return c.textContent; }),
          entities: chips.map((m) => ({text: textOf(m), type: m.dataset.type, start: +m.dataset.start,
                                       end: +m.dataset.end, background: getComputedStyle(m).backgroundColor,
                                       tag: (m.querySelector('.tag') || {}).textContent})),
          targets: targets.map((t) => ({text: textOf(t), label: t.dataset.label, tip: t.dataset.tip, title: t.title,
                                        outline: getComputedStyle(t).outlineColor,
                                        badge: (t.querySelector('.stance') || {}).textContent})),
          stance_colours: Object.fromEntries(['FAVOR', 'AGAINST', 'NONE'].map((l) => [l,
              (() => { const s = document.createElement('span'); s.className = 'target'; s.dataset.label = l;
                       document.body.append(s); const c = getComputedStyle(s).outlineColor; s.remove(); return c; })()])),
          legend: [...document.querySelectorAll('#legend .item')].map((i) => i.dataset.type || i.dataset.label),
          status: document.getElementById('status').textContent,
        };""")
    facts["json_visible"], facts["json_text"] = False, ""
    if facts["error"] is None:  # the JSON view, one click away
        driver.find_element(By.ID, "show-json").click()
        facts["json_visible"] = driver.find_element(By.ID, "json").is_displayed()
        facts["json_text"] = driver.find_element(By.ID, "json").text
        driver.find_element(By.ID, "show-rendered").click()
    return facts


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def background_server(app, host: str = "127.0.0.1", port: int | None = None, log_level: str = "warning"):
    """Serve `app` with uvicorn in a daemon thread; yields its base URL."""
    import uvicorn

    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False))
    thread = threading.Thread(target=server.run, name="kns-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
