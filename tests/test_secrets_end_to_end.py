"""Secrets planted in a failing response and in the config never leave the machine.

A real `greenloop run` against a server that leaks credentials in its error
body; every file greenloop writes (worklog, JSON, JUnit, issues), what it
prints, and the store are searched for them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CONFIG_SECRET = "cfg-Secret-Value-7f3a9c"  # reaches tests through ${STAGING_API_TOKEN}
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJkZW1vIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
    "c2lnbmF0dXJlLXRoYXQtaXMtbG9uZy1lbm91Z2g"
)
DB_PASSWORD = "hunter2-db-pass"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PLANTED = (CONFIG_SECRET, JWT, DB_PASSWORD, AWS_KEY)


class _Leaky(BaseHTTPRequestHandler):
    """Health is fine; the API fails and echoes credentials, as careless services do."""

    def do_GET(self) -> None:
        if self.path == "/health":
            body, status = b'{"status": "healthy"}', 200
        else:
            body = json.dumps(
                {
                    "error": "upstream failed",
                    "debug": {
                        "authorization": f"Bearer {JWT}",
                        "database": f"postgresql://app:{DB_PASSWORD}@10.0.0.5/prod",
                        "aws_access_key_id": AWS_KEY,
                    },
                }
            ).encode()
            status = 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def leaky() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Leaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_planted_secrets_reach_no_output(tmp_path: Path, leaky: str) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_api.py").write_text(
        textwrap.dedent(
            """
            import os
            import httpx

            def test_orders():
                token = os.environ["API_TOKEN"]
                print("calling with token", token)
                r = httpx.get(os.environ["GREENLOOP_BASE_URL"] + "/orders",
                              headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, f"token {token} got {r.status_code}: {r.text}"
            """
        )
    )
    (tmp_path / "greenloop.toml").write_text(
        textwrap.dedent(
            f"""
            [environment]
            name = "staging"
            base_url = "{leaky}"
            env = {{ API_TOKEN = "${{STAGING_API_TOKEN}}" }}

            [execution]
            tests_dir = "tests"
            reruns = 0

            [[components]]
            name = "backend"

            [[probes]]
            name = "health"
            component = "backend"
            kind = "http"
            url = "{leaky}/health"
            conditions = ["status == 200"]

            [report]
            out_dir = "out"
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "run", "--json", "out/report.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "STAGING_API_TOKEN": CONFIG_SECRET},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["tests"][0]["outcome"] == "failed"
    assert report["issues"], "the failure was filed"
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.suffix for p in written} >= {".md", ".json", ".xml"}
    texts = {str(p): p.read_text(errors="replace") for p in written}
    texts["stdout"] = proc.stdout
    texts["stderr"] = proc.stderr
    store = sqlite3.connect(tmp_path / ".greenloop" / "store.db")
    texts["store"] = "\n".join(
        str(row)
        for table in ("test_results", "clusters", "issues", "outbox", "phases", "probe_results")
        for row in store.execute(f"SELECT * FROM {table}")
    )
    store.close()
    for where, text in texts.items():
        for secret in PLANTED:
            assert secret not in text, f"{secret[:12]}... leaked into {where}"
    # the failure itself is still there to read, with the secrets masked
    assert "got 500" in texts[report["worklog"]]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "STAGING_API_TOKEN"}


# --------------------------------------------------------------------------- issue 15: every place

SLACK = "xoxb-2041-99887766-PlantedSlackTokenAbc"
ENV_SECRET = "pa/ss w@rd-Zq81!x"  # through ${GL_PW}: '/', ' ' and '@' in a DSN password
BEARER = "PlantedBearerCredential99"
GH_TOKEN = "ghp_" + "Pl4nted" * 5 + "x"
EVERY = (SLACK, ENV_SECRET, BEARER, GH_TOKEN, AWS_KEY, DB_PASSWORD)


class _HealthLeaks(BaseHTTPRequestHandler):
    """A failing health check that echoes credentials in its body and headers."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "status": "[/boom] degraded",
                "cache": f"redis://:{DB_PASSWORD}@10.0.0.9:6379",
                "auth": f"Bearer {BEARER}",
                "slack": SLACK,
                "aws": AWS_KEY,
                "deploy_token": GH_TOKEN,
            }
        ).encode()
        self.send_response(503, "[bold]Down[/bold]")
        self.send_header("X-Debug-Token", GH_TOKEN)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_leaks() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _HealthLeaks)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _everything(tmp_path: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    # Everything greenloop wrote (the test tree and its pytest cache are the inputs).
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    texts = {str(p): p.read_text(errors="replace") for p in written}
    texts["stdout"] = proc.stdout
    texts["stderr"] = proc.stderr
    store = sqlite3.connect(tmp_path / ".greenloop" / "store.db")
    tables = [r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    texts["store"] = "\n".join(
        str(row) for table in tables for row in store.execute(f'SELECT * FROM "{table}"')
    )
    store.close()
    return texts


def test_planted_secrets_in_every_place_reach_no_output_and_no_store(
    tmp_path: Path, leaky: str, health_leaks: str
) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_leaks.py").write_text(
        textwrap.dedent(
            f"""
            import base64, json, os
            from urllib.parse import quote
            import httpx

            def test_AKIAIOSFODNN7EXAMPLE_x():
                secret = os.environ["APP_PW"]
                print("encoded", quote(secret, safe=""))
                print("wrapped", secret[:6] + "\\n    " + secret[6:])
                print("b64", base64.b64encode(json.dumps({{"pw": secret}}).encode()).decode())
                r = httpx.get(os.environ["GREENLOOP_BASE_URL"] + "/orders")
                assert r.status_code == 200, "{SLACK} " + r.text
            """
        )
    )
    (tmp_path / "app.log").write_text(
        "".join(
            f"2026-11-30T12:00:0{i}Z ERROR notify failed token={SLACK} user {i}\n"
            f"2026-11-30T12:00:0{i}Z ERROR slack call with {SLACK} refused\n"
            for i in range(5)
        )
    )
    (tmp_path / "greenloop.toml").write_text(
        textwrap.dedent(
            f"""
            [environment]
            name = "staging"
            base_url = "{leaky}"
            env = {{ APP_PW = "${{GL_PW}}" }}

            [execution]
            tests_dir = "tests"
            reruns = 0

            [[components]]
            name = "api"

            [[components]]
            name = "backend"

            [[components]]
            name = "db"

            [[phases]]
            name = "all"
            needs = ["api"]

            [[probes]]
            name = "api-health"
            component = "api"
            kind = "http"
            url = "{leaky}/health"
            timeout_s = 15  # a loaded machine must not block the phase

            [[probes]]
            name = "[red]health[/red]"
            component = "backend"
            kind = "http"
            url = "{health_leaks}/health"
            conditions = ["status == 200"]
            timeout_s = 15

            [[probes]]
            name = "database"
            component = "db"
            kind = "postgres"
            dsn = "postgresql://app:${{GL_PW}}@127.0.0.1:1/app"

            [[triage.logs]]
            name = "app"
            kind = "file"
            path = "app.log"

            [report]
            out_dir = "out"
            """
        )
    )
    env = {**_env(), "GL_PW": ENV_SECRET, "COLUMNS": "400"}  # no wrapping inside a name
    probe = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "probe", "--json", "out/probes.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert probe.returncode == 3, probe.stdout + probe.stderr
    # Markup in a probe name, a reason phrase and a health body is shown as text.
    assert "[/boom]" in probe.stdout and "[red]health[/red]" in probe.stdout
    # The password's '@' did not move the host: the DSN reached 127.0.0.1:1 and was refused.
    probes = json.loads((tmp_path / "out" / "probes.json").read_text())["probes"]
    database = next(p for p in probes if p["name"] == "database")
    assert "127.0.0.1" in database["target"] and "resolve" not in database["detail"]

    proc = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "run", "--json", "out/report.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [t["outcome"] for t in report["tests"]] == ["failed"], "the planted test ran"
    texts = _everything(tmp_path, proc)
    texts["probe stdout"] = probe.stdout
    assert any(p.endswith(".md") for p in texts) and any(p.endswith(".xml") for p in texts)
    for where, text in texts.items():
        for secret in EVERY:
            assert secret not in text, f"{secret[:10]}... leaked into {where}"
