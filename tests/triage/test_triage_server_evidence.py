"""Server-side evidence: one cluster per server error, environment faults per reason and
component, slow dependencies from probe bodies, and chains that read as a person's conclusion.

Records are plain values shaped like what the pytest plugin, the gate and a JSON-lines
service log produce (request ids, tracebacks, probe details with body excerpts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from triage_helpers import T0, failed, gate, probe

from greenloop.probes.http import dependency_latencies
from greenloop.records import Category, Outcome, ProbeResult, TestResult
from greenloop.triage import triage
from greenloop.triage.logs.base import LogRecord, normalize_path, parse_lines

SERVER_TB = (
    "Traceback (most recent call last):\n"
    '  File "/srv/venv/lib/python3.11/site-packages/starlette/routing.py", line 74, in app\n'
    "    response = await func(request)\n"
    '  File "/srv/app/chat/routes.py", line 169, in message_json\n'
    '    "author": row["author_id"],\n'
    "KeyError: 'author_id'"
)


def log_json(**fields: object) -> str:
    return json.dumps(fields)


def server_500(rid: str, ms: int, thread: str) -> list[str]:
    """The two lines the service writes for a request that raised: request, then error."""
    ts = (T0 + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")
    common = {
        "ts": ts,
        "level": "error",
        "request_id": rid,
        "method": "POST",
        "path": f"/threads/{thread}/messages",
        "status": 500,
        "error_type": "KeyError",
        "error": "'author_id'",
    }
    return [
        log_json(event="request", duration_ms=8.5, **common),
        log_json(event="error", traceback=SERVER_TB, **common),
    ]


JOURNEY = """tests/test_critical_path.py:28: in test_user_journey
    assert posted.status_code == 201, posted.text
E   AssertionError: Internal Server Error
E   assert 500 == 201
E    +  where 500 = <Response [500 Internal Server Error]>.status_code"""

FIXTURE = """tests/test_message_flow.py:27: in conversation
    assert response.status_code == 201, f"post message: {response.status_code} {response.text}"
E   AssertionError: post message: 500 Internal Server Error
E   assert 500 == 201"""


def bad_deploy_run() -> tuple[list, list[LogRecord]]:
    """A journey test (own request id) and a module fixture's error re-raised for 3 tests."""
    lines = [
        log_json(
            ts="2025-03-01T12:00:01.002Z",
            level="info",
            event="request",
            request_id="rid-journey",
            method="POST",
            path="/auth/login",
            status=200,
        ),
        *server_500("rid-journey", 40, "313aeb9e-686a-4950-8d57-5328e59c8541"),
        *server_500("rid-module", 1040, "2526d23c-eda8-47ba-8537-e9b0334d076a"),
    ]
    records, malformed = parse_lines(lines, "svc")
    assert malformed == 0
    tests = [
        failed(JOURNEY, nodeid="tests/test_critical_path.py::test_user_journey",
               request_id="rid-journey", started_at=T0, duration_s=0.1),
        failed(FIXTURE, nodeid="tests/test_message_flow.py::test_create",
               started_at=T0 + timedelta(seconds=1), duration_s=0.09, when="setup"),
        failed(FIXTURE, nodeid="tests/test_message_flow.py::test_post",
               started_at=T0 + timedelta(seconds=1.2), duration_s=0.001, when="setup"),
        failed(FIXTURE, nodeid="tests/test_message_flow.py::test_order",
               started_at=T0 + timedelta(seconds=1.3), duration_s=0.001, when="setup"),
    ]  # fmt: skip
    return tests, records


def test_structured_log_lines_keep_the_request_status_and_error() -> None:
    (request, error), _ = parse_lines(
        server_500("r1", 5, "9b1f7c52-0d4e-4a52-8f0e-2f6c1d9a7e31"), "svc"
    )
    assert (request.method, request.status, request.error) == ("POST", 500, "KeyError: 'author_id'")
    assert request.endpoint == "POST /threads/<id>/messages"
    assert error.error_line == "KeyError: 'author_id'"
    assert normalize_path("/threads/2526d23c-eda8-47ba-8537-e9b0334d076a/messages?x=1") == (
        "/threads/<id>/messages"
    )


def test_one_server_error_is_one_product_cluster_citing_the_log_line() -> None:
    tests, records = bad_deploy_run()
    result = triage(tests, gate=gate(probe("backend", True, "HTTP 200 OK")), logs=records)
    assert [c.category for c in result.clusters] == [Category.PRODUCT]
    (cluster,) = result.clusters
    assert cluster.reason == "APP-500" and cluster.count == 4
    whys = cluster.root_cause.whys
    assert all(w.verified for w in whys)
    log_why = whys[1]
    assert "KeyError: 'author_id'" in log_why.why
    assert "POST /threads/<id>/messages" in log_why.why
    assert "rid-journey" in log_why.evidence and "12:00:01" in log_why.evidence
    assert "routes.py:169 in message_json" in whys[2].why
    summary = cluster.root_cause.summary
    assert "KeyError: 'author_id'" in summary and "raised in test code" not in summary


def test_the_module_fixture_error_is_tied_to_the_log_by_time_and_status() -> None:
    tests, records = bad_deploy_run()
    result = triage(tests[1:], gate=gate(probe("backend", True, "HTTP 200 OK")), logs=records)
    (cluster,) = result.clusters
    assert cluster.count == 3
    assert "matched by time and status" in cluster.root_cause.whys[1].evidence
    assert "rid-module" in cluster.root_cause.whys[1].evidence


def test_the_same_run_twice_gives_the_same_fingerprints() -> None:
    first = triage(bad_deploy_run()[0], gate=None, logs=bad_deploy_run()[1])
    tests, _ = bad_deploy_run()
    other = [
        *server_500("rid-journey", 40, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        *server_500("rid-module", 1040, "11111111-2222-3333-4444-555555555555"),
    ]
    second = triage(tests, gate=None, logs=parse_lines(other, "svc")[0])
    assert [c.fingerprint for c in first.clusters] == [c.fingerprint for c in second.clusters]


def test_revision_cause_comes_from_the_store_when_no_deploy_happened(tmp_path: Path) -> None:
    from greenloop.records import PhaseResult, PhaseStatus
    from greenloop.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        store.runs.start_run(
            "r1", environment="staging", focus="all", command_line="", config_path=""
        )
        passed = PhaseResult(
            "critical",
            PhaseStatus.PASSED,
            1.0,
            (TestResult("tests/test_critical_path.py::test_user_journey", Outcome.PASSED),),
        )
        store.results.record_phase("r1", 1, passed, "1")
        tests, records = bad_deploy_run()
        result = triage(tests[:1], gate=None, logs=records, store=store, revision="2")
    finally:
        store.close()
    root = result.clusters[0].root_cause
    assert root.whys[-1].why == "it appeared with revision 2" and root.whys[-1].verified
    assert "introduced by revision 2" in root.summary


AUTH_WS = """self = <websockets.client.ClientProtocol object at 0x7fd9bd473490>
>           raise InvalidStatus(response)
E           websockets.exceptions.InvalidStatus: server rejected WebSocket connection: HTTP 401

/srv/venv/lib/python3.11/site-packages/websockets/client.py:145: InvalidStatus"""
AUTH_ASSERT = """tests/test_auth.py:34: in test_me
    assert me.status_code == 200, me.text
E   AssertionError: {"detail":"invalid token: Signature verification failed"}
E   assert 401 == 200"""
AUTH_KEYERROR = """tests/test_search.py:36: in test_search
    hits = response.json()["results"]
E   KeyError: 'results'"""


def test_rejected_tokens_are_one_configuration_cluster_with_the_login_that_issued_them() -> None:
    def line(ms: int, rid: str, method: str, path: str, status: int, **extra: object) -> str:
        ts = (T0 + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")
        level = "warning" if status >= 400 else "info"
        return log_json(ts=ts, level=level, event="request", request_id=rid, method=method,
                        path=path, status=status, **extra)  # fmt: skip

    rejected = {"error_type": "AuthError", "error": "invalid token: Signature verification failed"}
    records, _ = parse_lines(
        [
            line(0, "login", "POST", "/auth/login", 200),
            line(30, "ws", "GET", "/ws", 401, **rejected),
            line(60, "me", "GET", "/me", 401, **rejected),
            line(90, "search", "GET", "/search", 401, **rejected),
        ],
        "svc",
    )
    tests = [
        failed(AUTH_WS, nodeid="tests/test_ws.py::test_events", started_at=T0, duration_s=0.05),
        failed(AUTH_ASSERT, nodeid="tests/test_auth.py::test_me", request_id="me"),
        failed(AUTH_KEYERROR, nodeid="tests/test_search.py::test_search", request_id="search"),
    ]
    auth = ProbeResult("auth", "auth-login", "http", "POST /auth/login", True, 3.0, "HTTP 200")
    result = triage(tests, gate=gate(probe("backend", True, "HTTP 200 OK"), auth), logs=records)
    assert [c.category for c in result.clusters] == [Category.CONFIGURATION]
    (cluster,) = result.clusters
    assert (cluster.reason, cluster.count, cluster.root_cause.component) == ("AUTH-401", 3, "auth")
    rules = {c.nodeid: c.rule for c in result.classifications}
    assert rules["tests/test_search.py::test_search"] == "server-rejected-credentials"
    whys = cluster.root_cause.whys
    assert all(w.verified for w in whys)
    assert "POST /auth/login" in whys[-1].why and "/auth/login" in whys[-1].evidence
    assert cluster.root_cause.summary.startswith("Valid credentials are rejected with 401")


def health_probe(component: str, detail: str, latency: float) -> ProbeResult:
    """A passing http probe whose slow answer's body reported per-dependency latencies:
    the structured `dependencies` come from its excerpt as the http probe makes them."""
    return ProbeResult(
        component, f"{component}-health", "http", "GET http://127.0.0.1:8000/health", True,
        latency, detail, checked_at=T0, dependencies=dependency_latencies(detail),
    )  # fmt: skip


SLOW_BODY = (
    'HTTP 200 OK in 3022 ms; body: {"status":"degraded","dependencies":{"database":'
    '{"ok":true,"latency_ms":3004.9,"backend":"sqlite","slow":true},"cache":'
    '{"ok":true,"latency_ms":0.1,"backend":"memory"}}}'
)
READ_TIMEOUT = """/srv/venv/lib/python3.11/site-packages/httpx/_transports/default.py:118: in map
    raise mapped_exc(message) from exc
E   httpx.ReadTimeout: timed out"""
WAIT_FOR = """tests/conftest.py:128: in _converse
    event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
/usr/lib/python3.11/asyncio/tasks.py:502: in wait_for
    raise exceptions.TimeoutError() from exc
E   TimeoutError"""


def test_timeouts_while_the_health_body_reports_a_slow_database_are_one_database_cluster() -> None:
    slow_gate = gate(
        health_probe("backend", SLOW_BODY, 3022.0),
        health_probe("database", SLOW_BODY, 3021.0),
        health_probe("cache", SLOW_BODY, 3020.0),
    )
    tests = [
        failed(READ_TIMEOUT, nodeid="tests/test_threads.py::test_list"),
        failed(WAIT_FOR, nodeid="tests/test_ws.py::test_events", outcome=Outcome.ERROR),
    ]
    result = triage(tests, gate=slow_gate)
    (cluster,) = result.clusters
    assert (cluster.category, cluster.reason) == (Category.INFRASTRUCTURE, "DATABASE-SLOW")
    assert cluster.root_cause.component == "database"
    slow = cluster.root_cause.whys[1]
    assert slow.verified and "3005 ms" in slow.why and '"latency_ms":3004.9' in slow.evidence


def test_blocked_chain_goes_one_step_deeper_only_with_the_body_and_log_lines() -> None:
    body = (
        'HTTP 503 Service Unavailable in 24 ms; body: {"status":"unhealthy","dependencies":'
        '{"cache":{"ok":false,"error":"connection refused to cache at 127.0.0.1:6390: '
        'ConnectionError: Error 111"}}}; failed: body.dependencies.cache.ok == true'
    )
    down = ProbeResult(
        "cache", "cache-health", "http", "GET http://127.0.0.1:8000/health", False, 24.0, body,
        checked_at=T0,
    )  # fmt: skip
    records, _ = parse_lines(
        [
            log_json(ts="2025-03-01T12:00:01Z", level="error", event="request",
                     request_id="h1", method="GET", path="/health", status=503,
                     error_type="DependencyError",
                     error="connection refused to cache at 127.0.0.1:6390"),
        ],
        "svc",
    )  # fmt: skip
    blocked = [
        TestResult(f"tests/t.py::test_{i}", Outcome.BLOCKED, blocked_by="cache") for i in range(3)
    ]
    result = triage(blocked, gate=gate(down), logs=records)
    whys = result.clusters[0].root_cause.whys
    assert [w.verified for w in whys] == [True, True, True, True]
    assert whys[2].why.startswith("cache does not accept connections: connection refused to cache")
    assert "12:00:01" in whys[3].evidence and "h1" in whys[3].evidence
    assert result.clusters[0].root_cause.summary.startswith("Cache does not accept connections")


def test_without_a_body_or_log_the_blocked_chain_stops_at_the_gate() -> None:
    bare = gate(probe("cache", False, "HTTP 503 Service Unavailable in 3 ms", kind="http"))
    result = triage(
        [TestResult("tests/t.py::test_a", Outcome.BLOCKED, blocked_by="cache")], gate=bare
    )
    whys = result.clusters[0].root_cause.whys
    assert [w.why for w in whys][1:] == ["the gate found cache unhealthy"]


def test_bad_deploy_demo_end_to_end(tmp_path: Path) -> None:
    """The real demo: one product cluster whose chain cites the service log line."""
    out = tmp_path / "demo"
    report = tmp_path / "r.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("greenloop")), "demo", "--scenario", "bad-deploy",
         "--out", str(out), "--json", str(report)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    clusters = json.loads(report.read_text())["clusters"]
    product = [c for c in clusters if c["category"] == "product"]
    assert len(product) == 1, [(c["category"], c["title"]) for c in clusters]
    whys = product[0]["root_cause"]["whys"]
    assert "KeyError: 'author_id'" in whys[1]["why"] and whys[1]["verified"]
    assert "matched by request id" in whys[1]["evidence"]


def test_a_real_health_probe_hands_triage_the_dependency_latencies_as_data() -> None:
    """Triage reads a slow dependency from the probe's structured `dependencies`, which the
    http probe fills from the body it received (never from its human detail): a real
    server whose /health answers 503 with per-dependency latencies."""
    import asyncio
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from greenloop.config import ProbeConfig
    from greenloop.probes.run import run_probes
    from greenloop.triage.slowness import slow_components

    body = {"status": "degraded", "dependencies": {
        "db": {"ok": True, "latency_ms": 3004.9}, "cache": {"ok": True, "latency_ms": 0.4},
    }}  # fmt: skip

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        cfg = ProbeConfig.model_validate(
            {"name": "health", "component": "backend", "kind": "http", "url": url}
        )
        (result,) = asyncio.run(run_probes([cfg]))
    finally:
        server.shutdown()
        server.server_close()
    assert not result.ok and '"latency_ms":3004.9' in result.detail
    assert [(d.name, d.latency_ms) for d in result.dependencies] == [("db", 3004.9), ("cache", 0.4)]
    assert result.dependencies[0].said == '"db":{"ok":true,"latency_ms":3004.9}'
    (slow,) = slow_components((result,), ("backend", "database"))
    assert (slow.component, slow.latency_ms, slow.probe) == ("database", 3004.9, result)
    # The same words in a detail with no structured field are not read by triage.
    words_only = ProbeResult(
        "backend", "health", "http", url, False, 5.0, result.detail, checked_at=T0
    )
    assert slow_components((words_only,), ("backend", "database")) == ()
