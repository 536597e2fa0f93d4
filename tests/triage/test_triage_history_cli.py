"""Flakiness as `greenloop run` meets it: real runs, one store, no known revision.

The field trial's case (P4): runs of two configs beside each other, none with a
`[deploy] version_url`, so every stored revision is unknown. A later failing run must not
call its failures flaky from those runs ("3 flips in 6 runs of None").
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def greenloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
    )


def _suite(tmp_path: Path, url: str) -> tuple[Path, Path]:
    """Two configs (no probe, no deploy) over one test that passes or fails as told."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_db.py").write_text(
        textwrap.dedent(
            """
            import os, pathlib, httpx

            def test_integration():
                assert httpx.get(os.environ["GREENLOOP_BASE_URL"] + "/health").status_code == 200
                mode = pathlib.Path(__file__).with_name("mode").read_text().strip()
                assert mode == "pass", "the server answered something else"
            """
        )
    )
    configs = []
    for name in ("greenloop.toml", "greenloop-other.toml"):
        config = tmp_path / name
        config.write_text(f'[environment]\nbase_url = "{url}"\n')
        configs.append(config)
    return configs[0], configs[1]


@pytest.mark.slow
def test_runs_with_no_known_revision_never_make_a_failure_flaky(
    tmp_path: Path, server: str
) -> None:
    main, other = _suite(tmp_path, server)
    mode = tmp_path / "tests" / "mode"
    for n, state in enumerate(["pass", "fail", "pass", "fail"]):
        mode.write_text(state)
        run = greenloop("run", "-c", str(other if n % 2 else main), cwd=tmp_path)
        assert run.returncode == (0 if state == "pass" else 1), run.stdout + run.stderr
    mode.write_text("fail")
    run = greenloop("run", "-c", str(main), "--json", "r.json", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["environment"]["revision"] is None
    (cluster,) = report["clusters"]
    assert cluster["category"] != "flaky" and cluster["reason"] != "FLAKY-HISTORY", cluster
    assert "runs of None" not in json.dumps(cluster)
    assert [t["category"] for t in report["tests"]] == [cluster["category"]]
    # `greenloop flaky` reads the same history: nothing flips on a known revision.
    flaky = greenloop("flaky", "-c", str(main), cwd=tmp_path)
    assert flaky.returncode == 0 and "test_integration" not in flaky.stdout, flaky.stdout
