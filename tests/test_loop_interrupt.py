"""Interrupting the loop: SIGTERM ends cleanly, SIGKILL is detected, --resume carries on.

Real `greenloop run` processes against a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from greenloop.store import Store, store_url

GREENLOOP = [sys.executable, "-m", "greenloop.cli"]


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "healthy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


SLOW_TEST = """
    import os, time
    from pathlib import Path
    import httpx

    def test_slow():
        httpx.get(os.environ["GREENLOOP_BASE_URL"])
        Path({marker!r}).write_text(str(os.getpid()))
        time.sleep(120)
"""

FAST_TEST = """
    import os, time
    import httpx

    def test_{name}():
        time.sleep(0.02)
        assert httpx.get(os.environ["GREENLOOP_BASE_URL"]).status_code == 200
"""


def make_project(root: Path, base_url: str) -> Path:
    tests = root / "tests"
    tests.mkdir()
    (tests / "test_fast.py").write_text(textwrap.dedent(FAST_TEST.format(name="fast")))
    marker = root / "slow-started"
    (tests / "test_slow.py").write_text(textwrap.dedent(SLOW_TEST.format(marker=str(marker))))
    config = root / "greenloop.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [environment]
            name = "local"
            base_url = "{base_url}"

            [execution]
            tests_dir = "tests"
            reruns = 0

            [[components]]
            name = "backend"

            [[probes]]
            name = "health"
            component = "backend"
            kind = "http"
            url = "{base_url}/health"
            conditions = ["status == 200"]

            [[phases]]
            name = "smoke"
            select = {{ files = ["test_fast.py"] }}

            [[phases]]
            name = "slow"
            select = {{ files = ["test_slow.py"] }}

            [report]
            out_dir = "out"
            """
        )
    )
    return config


def start_run(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*GREENLOOP, "run", "-c", str(config), "--json", str(config.parent / "r.json"), *extra],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(path: Path, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    """Until the slow test has started (bounded, so a broken run fails instead of hanging)."""
    end = time.monotonic() + limit_s
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < end, "the slow test never started"
        time.sleep(0.1)


def gone(pid: int, limit_s: float = 15) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def runs(config: Path) -> dict[str, str]:
    store = Store.open(store_url(None, config.parent))
    try:
        return {r.id: r.status for r in store.runs.recent_runs(10)}
    finally:
        store.close()


def test_sigterm_ends_the_phase_and_leaves_a_partial_worklog(tmp_path: Path, server: str) -> None:
    config = make_project(tmp_path, server)
    proc = start_run(config)
    wait_for(tmp_path / "slow-started", proc)
    pytest_pid = int((tmp_path / "slow-started").read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130

    assert gone(pytest_pid), "the interrupted test kept running"
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_code"] == 130 and report["interrupted"] is True
    slow = next(t for t in report["tests"] if t["nodeid"].endswith("test_slow"))
    assert slow["outcome"] == "skipped"
    fast = next(t for t in report["tests"] if t["nodeid"].endswith("test_fast"))
    assert fast["outcome"] == "passed"
    assert "interrupted" in Path(report["worklog"]).read_text()
    assert list(runs(config).values()) == ["interrupted"]
    assert report["issues"] == []  # a partial run files nothing


def test_sigkill_is_detected_and_resume_keeps_completed_phases(tmp_path: Path, server: str) -> None:
    config = make_project(tmp_path, server)
    proc = start_run(config)
    wait_for(tmp_path / "slow-started", proc)
    pytest_pid = int((tmp_path / "slow-started").read_text())
    proc.kill()
    proc.wait(timeout=10)
    assert gone(pytest_pid), "pytest outlived the greenloop that started it"
    (killed,) = runs(config)

    (tmp_path / "tests" / "test_slow.py").write_text(textwrap.dedent(FAST_TEST.format(name="slow")))
    resumed = subprocess.run(
        [*GREENLOOP, "run", "-c", str(config), "--resume", "--json", str(tmp_path / "r.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {killed} was killed without finishing; marked crashed" in resumed.stdout.replace(
        "\n", " "
    )
    report = json.loads((tmp_path / "r.json").read_text())
    smoke = next(p for p in report["phases"] if p["name"] == "smoke")
    assert smoke["counts"]["passed"] == 1
    statuses = runs(config)
    assert statuses[killed] == "resumed"
    assert statuses[report["run_id"]] == "finished"
