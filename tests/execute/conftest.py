"""Fixtures for the execution tests: a real HTTP target on loopback and test trees on disk."""

from __future__ import annotations

import http.server
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from greenloop.config import Config
from greenloop.load import config_from_dict


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(0.2)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def target() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1: the 'staging' the test trees talk to."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


Tree = Callable[[dict[str, str]], Path]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """Write test files under tmp_path/tests (dedented) and return the folder."""

    def write(files: dict[str, str]) -> Path:
        tests = tmp_path / "tests"
        for name, text in files.items():
            path = tests / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return tests

    return write


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, target: str) -> MakeConfig:
    """A Config beside tmp_path/tests, aimed at the loopback target; overrides by section."""

    def make(**sections: Any) -> Config:
        raw: dict[str, Any] = {
            "environment": {"base_url": target},
            "execution": {"tests_dir": "tests", "reruns": 0, "test_timeout_s": 30},
        }
        for key, value in sections.items():
            raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
        return config_from_dict(raw, tmp_path / "greenloop.toml")

    return make
