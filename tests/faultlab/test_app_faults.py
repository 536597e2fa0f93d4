"""App faults on the demo service running on real PostgreSQL and Redis behind real TLS.

A small E2E suite of a team's own (httpx with X-Request-ID, urllib3 with only a W3C
traceparent, websockets with X-Request-ID) runs in a real pytest subprocess through
greenloop's plugin; triage then reads the service's JSON log. Each product fault must be
tied to the service's own evidence, and an app that was killed must block, not fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from faultlab_helpers import judge

from greenloop.config import Config, PhaseConfig
from greenloop.demo import control
from greenloop.demo.realdeps import RealDepsError, RealEnvironment, missing, wait_refused
from greenloop.execute.phase import run_phase
from greenloop.execute.selection import select_tests
from greenloop.gate import evaluate_gate
from greenloop.index import load_index
from greenloop.load import config_from_dict
from greenloop.probes.run import run_probes
from greenloop.records import Category, Cluster
from greenloop.triage import triage

SUITE = {
    "conftest.py": """
        import os
        import uuid

        import httpx
        import pytest


        @pytest.fixture
        def base_url():
            return os.environ["GREENLOOP_BASE_URL"]


        @pytest.fixture
        def token(base_url):
            answer = httpx.post(base_url + "/auth/login",
                                json={"username": "demo", "password": "demo-password"})
            return answer.json()["access_token"]


        @pytest.fixture
        def thread(base_url, token):
            headers = {"Authorization": f"Bearer {token}", "X-Request-ID": uuid.uuid4().hex}
            answer = httpx.post(base_url + "/threads", json={"title": "order 1"}, headers=headers)
            return answer.json()["id"]
    """,
    "test_messages.py": """
        import json
        import uuid

        import httpx
        import urllib3


        def test_listing_returns_every_message(base_url, token, thread):
            headers = {"Authorization": f"Bearer {token}", "X-Request-ID": uuid.uuid4().hex}
            with httpx.Client(base_url=base_url, headers=headers, timeout=5) as client:
                for text in ("first", "second"):
                    client.post(f"/threads/{thread}/messages", json={"content": text})
                listed = client.get(f"/threads/{thread}/messages").json()["messages"]
            assert [m["content"] for m in listed] == ["first", "second"]


        def test_posting_a_message(base_url, token, thread):
            # A client that sends no request id, only W3C trace context.
            trace = uuid.uuid4().hex
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                       "traceparent": f"00-{trace}-{uuid.uuid4().hex[:16]}-01"}
            pool = urllib3.PoolManager(ca_certs=__import__("os").environ["SSL_CERT_FILE"])
            answer = pool.request("POST", f"{base_url}/threads/{thread}/messages",
                                  body=json.dumps({"content": "hello"}), headers=headers)
            assert answer.status == 201, answer.data[:200]
    """,
    "test_agent.py": """
        import asyncio
        import json
        import ssl
        import uuid

        import websockets


        def test_agent_answers_a_chat(base_url, token):
            url = base_url.replace("https", "wss", 1) + f"/ws?token={token}"

            async def chat():
                context = ssl.create_default_context()
                async with websockets.connect(
                    url, ssl=context, additional_headers={"X-Request-ID": uuid.uuid4().hex}
                ) as ws:
                    await ws.send(json.dumps({"type": "chat", "message": "status of order 1"}))
                    return json.loads(await ws.recv())

            assert asyncio.run(chat())["type"] == "agent_started"
    """,
    "index.toml": """
        [[files]]
        path = "test_messages.py"
        priority = 1
        components = ["backend", "database"]

        [[files]]
        path = "test_agent.py"
        priority = 1
        components = ["websocket", "backend"]
    """,
}


@dataclass(frozen=True)
class App:
    real: RealEnvironment
    state_dir: Path
    base_url: str
    config: Config


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    if missing():
        pytest.skip("; ".join(missing()))
    folder = Path(tempfile.mkdtemp(prefix="gl-faultlab-app-"))
    try:
        real = RealEnvironment.start(folder / "real")
    except RealDepsError as exc:
        pytest.skip(str(exc))
    state_dir = folder / "service"
    cert, key = real.certs.paths("good")
    try:
        revision = control.deploy(
            state_dir, database_url=real.database_url(), cache_url=real.deps.redis.url,
            tls_cert=str(cert), tls_key=str(key),
        )  # fmt: skip
        tests = folder / "suite"
        for name, text in SUITE.items():
            (tests / name).parent.mkdir(parents=True, exist_ok=True)
            (tests / name).write_text(textwrap.dedent(text), encoding="utf-8")
        served = urlsplit(revision.base_url)
        raw: dict[str, Any] = {
            # The gate a real run has: a green probe is evidence the service answered.
            "probes": [{"name": "backend-tcp", "component": "backend", "kind": "tcp",
                        "host": served.hostname, "port": served.port,
                        "conditions": ["connected"], "timeout_s": 5}],
            "environment": {
                "base_url": revision.base_url,
                "env": {"SSL_CERT_FILE": str(real.certs.ca_file)},
            },
            "execution": {"tests_dir": "suite", "reruns": 0, "test_timeout_s": 30,
                          "min_duration_ms": 0},
            "index": {"path": "suite/index.toml"},
            "triage": {"logs": [{"name": "demo", "kind": "file",
                                 "path": str(state_dir / "service.log")}]},
        }  # fmt: skip
        config = config_from_dict(raw, folder / "greenloop.toml")
        yield App(real, state_dir, revision.base_url, config)
    finally:
        control.stop(state_dir)
        real.close()


def clusters_with(app: App, fault: str) -> tuple[Cluster, ...]:
    """Run the suite with `fault` active on the service and triage what failed."""
    phase = PhaseConfig(name="e2e")
    control.set_fault(app.state_dir, fault)
    try:
        result = run_phase(app.config, phase, select_tests(app.config, phase, []))
    finally:
        control.clear_fault(app.state_dir, fault)
    index = load_index(app.config)
    gate = evaluate_gate(app.config, asyncio.run(run_probes(app.config.probes)))
    return triage(result.tests, gate=gate, index=index, config=app.config).clusters


def only(clusters: tuple[Cluster, ...], test: str) -> Cluster:
    found = [c for c in clusters if any(t.endswith(test) for t in c.tests)]
    assert len(found) == 1, clusters
    return found[0]


def test_a_500_cites_the_services_error_line_matched_by_trace_context(app: App) -> None:
    cluster = only(clusters_with(app, "app-bug"), "::test_posting_a_message")
    assert cluster.category is Category.PRODUCT
    cited = [w for w in cluster.root_cause.whys if "KeyError" in w.evidence and w.verified]
    assert cited, cluster.root_cause.whys
    assert "ERROR" in cited[0].evidence and "matched by request id" in cited[0].evidence
    assert "routes.py" in cluster.root_cause.summary


def test_websocket_1011_cites_the_server_side_exception(app: App) -> None:
    cluster = only(clusters_with(app, "ws-1011"), "::test_agent_answers_a_chat")
    assert cluster.category is Category.PRODUCT
    assert cluster.root_cause.component == "websocket"
    cited = [w for w in cluster.root_cause.whys if "AgentCrashed" in w.evidence]
    assert cited and cited[0].verified, cluster.root_cause.whys


def test_a_wrong_result_with_no_log_line_names_the_component_from_the_index(app: App) -> None:
    cluster = only(clusters_with(app, "wrong-result"), "::test_listing_returns_every_message")
    # Nothing in the log, only an assertion on the answer while the gate was green: a product
    # bug, its component named from the index (backend runs the code; database stores).
    assert cluster.category is Category.PRODUCT
    assert cluster.root_cause.component == "backend"
    assert not any(w.verified and "ERROR" in w.evidence for w in cluster.root_cause.whys)


def test_a_killed_app_blocks_with_refused(app: App) -> None:
    probes = [
        {"name": "edge", "component": "load_balancer", "kind": "tcp", "host": "127.0.0.1",
         "port": int(app.base_url.rsplit(":", 1)[1])},
        {"name": "health", "component": "backend", "kind": "http",
         "url": app.base_url + "/health", "ca_file": str(app.real.certs.ca_file)},
    ]  # fmt: skip
    components = [{"name": "load_balancer"}, {"name": "backend", "depends_on": ["load_balancer"]}]
    pid = control.status(app.state_dir).pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    wait_refused(int(app.base_url.rsplit(":", 1)[1]))  # its port closes a moment after
    try:
        verdict = judge(probes, components=components)
    finally:
        control.deploy(app.state_dir)  # the next revision, same settings
    assert (verdict.mode, verdict.category, verdict.component) == (
        "refused", "infrastructure", "load_balancer",
    )  # fmt: skip
