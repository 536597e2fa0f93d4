"""The dashboard in a real browser: Chromium from the OS packages, driven by Selenium.

One module, one browser, one store: a synthetic history of 20 runs, then a real
`greenloop demo --scenario outage`, then a real `greenloop serve` process over it.
Every page must render, draw its charts, raise no console error and link only to
pages that exist; the one-file report must open from file:// with the network off.

Locally these tests skip when /usr/bin/chromium or chromedriver is missing; with
GREENLOOP_REQUIRE_SERVICES=1 (CI, where .ci/run installs them) that is a failure.
GREENLOOP_SCREENSHOTS=DIR also saves each page's screenshot there (docs/img).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import httpx
import pytest
from dashboard_seed import seed_history

from greenloop.cli import main
from greenloop.store import Store, store_url

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("GREENLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GREENLOOP_CHROMEDRIVER", "/usr/bin/chromedriver")
HISTORY = 20
GREENLOOP = [sys.executable, "-m", "greenloop.cli"]


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if not missing:
        return
    message = f"no browser for the dashboard tests: {', '.join(missing)} missing"
    if os.environ.get("GREENLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (GREENLOOP_REQUIRE_SERVICES=1; .ci/run installs chromium)")
    pytest.skip(message)


@dataclass(frozen=True)
class Demo:
    out: Path
    config: Path
    run_id: str  # the outage run
    history: list[str]  # the synthetic runs before it, oldest first
    base: str  # where `greenloop serve` listens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    _need_browser()
    out = tmp_path_factory.mktemp("dashboard")
    store = Store.open(store_url(None, out))  # where the demo's config puts its store
    history = seed_history(store, HISTORY)
    store.close()
    ran = subprocess.run(
        [*GREENLOOP, "demo", "--scenario", "outage", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert ran.returncode == 3, ran.stdout[-2000:] + ran.stderr[-2000:]
    run_id = re.search(r"BLOCKED run (\S+)", ran.stdout)
    assert run_id, ran.stdout[-2000:]
    config = out / "greenloop.toml"
    assert f"dashboard: greenloop serve -c {config}" in ran.stdout  # the demo says how to look
    port = _free_port()
    server = subprocess.Popen(
        [*GREENLOOP, "serve", "-c", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"greenloop serve did not start: {server.communicate()[0][-2000:]}")
            time.sleep(0.2)
        yield Demo(out, config, run_id.group(1), history, base)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(demo: Demo) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--hide-scrollbars",
        # Only loopback: anything else the page tried to fetch would fail, and show.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _console_errors(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _open(driver, url: str, shot: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"
    driver.save_screenshot(str(tmp_path / f"{shot}.png"))
    keep = os.environ.get("GREENLOOP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(keep) / f"dashboard-{shot}.png"))
    assert _console_errors(driver) == []


def _css(driver, selector: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    return driver.find_elements("css selector", selector)


def test_runs_page_lists_the_outage_run_blocked_with_its_charts(
    browser, demo: Demo, tmp_path: Path
) -> None:
    _open(browser, demo.base + "/", "runs", tmp_path)
    row = browser.find_element("xpath", f"//tr[td//a[@href='/runs/{demo.run_id}']]")
    assert "blocked" in row.find_element("css selector", ".badge").text
    assert "$505,000" in row.text  # the cache outage's money at risk
    charts = _css(browser, "svg.chart")
    assert len(charts) == 2
    # Every run draws: availability for all of them, the demo's pass rate is a gap (no test ran).
    points = _css(browser, "svg.chart circle.point")
    assert len(points) >= 2 * HISTORY + 1
    assert all(c.size["width"] > 0 for c in charts)
    # Links work: the run link opens the run page.
    row.find_element("css selector", f"a[href='/runs/{demo.run_id}']").click()
    assert browser.current_url == f"{demo.base}/runs/{demo.run_id}"


def test_run_page_shows_the_verdict_the_gate_and_the_cluster(
    browser, demo: Demo, tmp_path: Path
) -> None:
    _open(browser, f"{demo.base}/runs/{demo.run_id}", "run", tmp_path)
    assert "blocked" in browser.find_element("css selector", "h1 .badge").text
    bar = [t.get_attribute("textContent") for t in _css(browser, "svg.chart rect.bar title")]
    assert bar == ["blocked: 40"]
    assert _css(browser, "svg.chart circle.highlight")  # this run, ringed on the trend
    failed_probes = _css(browser, "#gate ~ table tr.bad")
    assert any("cache" in r.text for r in failed_probes)
    cluster = _css(browser, "article.cluster")
    assert len(cluster) == 1 and "cache" in cluster[0].text
    badges = [b.text for b in cluster[0].find_elements("css selector", "ol.whys .badge")]
    assert badges and set(badges) <= {"verified", "hypothesis"}
    # A test's cluster link jumps to that cluster on the page.
    link = _css(browser, "table.tests a[href^='#cluster-']")[0]
    target = link.get_attribute("href").split("#", 1)[1]
    assert _css(browser, f"#{target}")


@pytest.mark.parametrize(
    ("path", "shot", "selector"),
    [
        ("/clusters", "clusters", "svg.chart circle.point"),
        ("/flaky", "flaky", "svg.strip rect.cell"),
        ("/probes", "probes", "svg.chart circle.point"),
    ],
)
def test_history_pages_render_and_draw(
    browser, demo: Demo, tmp_path: Path, path: str, shot: str, selector: str
) -> None:
    _open(browser, demo.base + path, shot, tmp_path)
    assert _css(browser, selector)
    if path == "/clusters":
        assert "cache" in browser.find_element("tag name", "main").text.lower()
    if path == "/probes":
        names = [r.text.split()[0] for r in _css(browser, "main table tbody tr")]
        assert "cache" in names


def test_every_link_on_every_page_works(browser, demo: Demo) -> None:
    pages = ["/", f"/runs/{demo.run_id}", "/clusters", "/flaky", "/probes"]
    checked: set[str] = set()
    client = httpx.Client(timeout=30)
    for page in pages:
        browser.get(demo.base + page)
        # The attribute as written (an SVG link's href property is not a string).
        hrefs = [a.get_dom_attribute("href") for a in _css(browser, "a[href]")]
        for href in hrefs:
            url, fragment = urldefrag(urljoin(demo.base + page, href))
            assert urlparse(url).netloc == urlparse(demo.base).netloc, href  # nothing external
            if fragment and url == demo.base + page:
                assert _css(browser, f"[id='{fragment}']"), href
            if url in checked:
                continue
            checked.add(url)
            assert client.get(url).status_code == 200, url
    client.close()
    assert len(checked) > len(pages)


def test_api_lists_the_demo_run(demo: Demo) -> None:
    runs = httpx.get(f"{demo.base}/api/runs", timeout=30).json()
    assert runs["total"] == HISTORY + 1
    newest = runs["items"][0]
    assert newest["run_id"] == demo.run_id and newest["verdict"] == "blocked"
    assert newest["exit_code"] == 3


def test_html_report_opens_offline(browser, demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "report" / "run.html"
    # In process: the CLI's code path without a second interpreter start-up.
    assert main(["report", demo.run_id, "-c", str(demo.config), "--html", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    # Nothing to fetch: no script or stylesheet from anywhere, no link out of the file.
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=["'](?!data:)""", text)
    assert not re.search(r"""href=["']/""", text)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    try:
        _open(browser, target.as_uri(), "report", tmp_path)
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
        assert "blocked" in browser.find_element("css selector", "h1 .badge").text
        assert len(_css(browser, "svg.chart")) == 3
        assert _css(browser, "article.cluster")
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
