"""The command line as users and scripts meet it: exit codes, one-line errors, every verb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from greenloop.load import load_config

VERBS = ["run", "probe", "triage", "demo", "init", "history", "flaky", "report", "issues", "serve"]


def greenloop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb: str) -> None:
    result = greenloop(verb, "--help")
    assert result.returncode == 0
    if verb != "issues":
        assert "Example" in result.stdout


def test_a_broken_config_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "greenloop.toml"
    config.write_text('[execution]\nworkers = "many"\n')
    result = greenloop("run", "-c", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "greenloop.toml: execution.workers" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_missing_config_and_unknown_option_are_usage_errors(tmp_path: Path) -> None:
    missing = greenloop("probe", "-c", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "config file not found" in missing.stderr
    unknown = greenloop("run", "--no-such-flag")
    assert unknown.returncode == 2 and "No such option" in unknown.stderr


def probe_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "greenloop.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [[components]]
            name = "backend"

            [[probes]]
            name = "health"
            component = "backend"
            kind = "http"
            url = "{url}/health"
            conditions = ["status == 200"]
            """
        )
    )
    return config


def test_probe_exits_0_when_healthy_and_3_when_not(
    tmp_path: Path, health_server: tuple[str, type[_Health]]
) -> None:
    url, handler = health_server
    config = probe_config(tmp_path, url)
    healthy = greenloop("probe", "-c", str(config), "--json", str(tmp_path / "p.json"))
    assert healthy.returncode == 0, healthy.stderr
    probes = json.loads((tmp_path / "p.json").read_text())["probes"]
    assert [(p["name"], p["ok"]) for p in probes] == [("health", True)]
    handler.status = 503
    down = greenloop("probe", "-c", str(config))
    assert down.returncode == 3
    assert "deepest failing component is backend" in down.stdout


def test_a_bad_condition_points_at_its_column(tmp_path: Path) -> None:
    config = probe_config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace("status == 200", "status === 200"))
    result = greenloop("probe", "-c", str(config))
    assert result.returncode == 2
    assert "probes[0]" in result.stderr and "column" in result.stderr


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="e2e" tests="3" failures="1" errors="1">
  <testcase classname="tests.test_api" name="test_ok" time="0.2"/>
  <testcase classname="tests.test_api" name="test_create" time="0.3">
    <failure message="httpx.ConnectError: [Errno 111] Connection refused">
Traceback (most recent call last):
  File "tests/test_api.py", line 12, in test_create
    r = client.post("/threads")
httpx.ConnectError: [Errno 111] Connection refused</failure>
  </testcase>
  <testcase classname="" name="tests.test_imports" time="0.0">
    <error message="collection failure">
ImportError while importing test module '/ci/tests/test_imports.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_imports.py:3: in &lt;module&gt;
    from helpers import login
E   ModuleNotFoundError: No module named 'helpers'</error>
  </testcase>
</testsuite></testsuites>
"""


def test_triage_classifies_junit_from_elsewhere(tmp_path: Path) -> None:
    junit = tmp_path / "results.xml"
    junit.write_text(JUNIT)
    result = greenloop("triage", str(junit), "--json", str(tmp_path / "t.json"))
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["schema"] == "greenloop.report/v1"
    assert report["probes"] == [] and report["phases"] == [] and report["iterations"] == []
    categories = {t["nodeid"].split("::")[-1]: t["category"] for t in report["tests"]}
    assert categories["test_create"] == "infrastructure"
    assert categories["tests.test_imports"] == "test"
    assert len(report["clusters"]) == 2


def test_triage_of_broken_xml_is_a_clear_user_error(tmp_path: Path) -> None:
    junit = tmp_path / "broken.xml"
    junit.write_text("<testsuites><testsuite><testcase name='a'>")
    result = greenloop("triage", str(junit))
    assert result.returncode == 2
    assert "broken.xml" in result.stderr and "Traceback" not in result.stderr


def test_init_writes_a_config_that_loads(tmp_path: Path) -> None:
    tests = tmp_path / "e2e"
    tests.mkdir()
    (tests / "test_checkout.py").write_text(
        "import pytest\n\n@pytest.mark.payments\ndef test_pay():\n    pass\n"
    )
    result = greenloop("init", "e2e", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "greenloop.toml").read_text()
    # Markers are reported, not turned into index categories; no index is made up.
    assert "payments (1)" in text and "[[index.files]]" not in text
    os.environ["STAGING_URL"] = "http://127.0.0.1:9"
    try:
        config = load_config(tmp_path / "greenloop.toml")
    finally:
        del os.environ["STAGING_URL"]
    assert [p.name for p in config.phases] == ["all"] and config.index.files == []
    again = greenloop("init", "e2e", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_store_readers_after_a_run(
    tmp_path: Path, health_server: tuple[str, type[_Health]]
) -> None:
    url, _ = health_server
    config = probe_config(tmp_path, url)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_api.py").write_text(
        "import os, time, httpx\n\n"
        "def test_health():\n"
        "    time.sleep(0.02)\n"
        "    assert httpx.get(os.environ['GREENLOOP_BASE_URL'] + '/health').status_code == 500\n"
    )
    config.write_text(f'[environment]\nbase_url = "{url}"\n' + config.read_text())
    run = greenloop("run", "-c", str(config), "--json", str(tmp_path / "r.json"))
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    run_id = report["run_id"]

    history = greenloop("history", "-c", str(config))
    assert history.returncode == 0 and run_id in history.stdout
    shown = greenloop("report", run_id, "-c", str(config))
    assert shown.returncode == 0 and "failing" in shown.stdout.lower()
    assert greenloop("report", "nope", "-c", str(config)).returncode == 2
    issues = greenloop("issues", "list", "-c", str(config))
    assert issues.returncode == 0 and report["issues"][0]["key"] in issues.stdout
    show = greenloop("issues", "show", report["issues"][0]["key"], "-c", str(config))
    assert show.returncode == 0 and "E2E-DEPLOY-" in show.stdout
    sync = greenloop("issues", "sync", "-c", str(config))
    assert sync.returncode == 0
    flaky = greenloop("flaky", "-c", str(config))
    assert flaky.returncode == 0
