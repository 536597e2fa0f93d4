"""Each fault produces its real symptom on the wire, against a real running service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets


@pytest.fixture
def admin(service: Any) -> Iterator[httpx.Client]:
    """An admin client; every runtime fault is cleared after the test."""
    with service.admin() as client:
        try:
            yield client
        finally:
            client.delete("/admin/faults")


@pytest.fixture
def token(service: Any, login: Any) -> str:
    return str(login(service.base_url))


@pytest.fixture
def api(service: Any, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=10) as client:
        yield client


def set_fault(admin: httpx.Client, name: str, **params: object) -> None:
    response = admin.post("/admin/faults", json={"name": name, "params": params})
    assert response.status_code == 201, response.text


def log_lines(service: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.log_path.read_text().splitlines()]


def logged(service: Any, request_id: str) -> list[dict[str, Any]]:
    return [r for r in log_lines(service) if r.get("request_id") == request_id]


async def _chat(url: str, message: str = "Plan the Lisbon offsite agenda") -> list[dict]:
    async with websockets.connect(url, open_timeout=5, close_timeout=1) as ws:
        await ws.send(json.dumps({"type": "chat", "message": message}))
        events = []
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            events.append(event)
            if event["type"] == "agent_completed":
                return events


def chat(service: Any, token: str) -> list[dict]:
    return asyncio.run(_chat(f"{service.ws_url}?token={token}"))


def test_healthy_service(service: Any, api: httpx.Client, token: str) -> None:
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert set(health.json()["dependencies"]) == {"database", "cache"}
    assert api.get("/version").json()["revision"] == 1
    events = chat(service, token)
    assert [e["type"] for e in events] == [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ]
    assert "Lisbon" in events[-1]["answer"]


def test_request_log_line(service: Any, api: httpx.Client) -> None:
    response = api.get("/version", headers={"X-Request-ID": "req-log-check"})
    assert response.headers["x-request-id"] == "req-log-check"
    (line,) = logged(service, "req-log-check")
    assert line["level"] == "info" and line["status"] == 200 and line["path"] == "/version"
    assert {"ts", "method", "duration_ms", "revision"} <= set(line)


def test_lb_503(service: Any, admin: httpx.Client, api: httpx.Client, token: str) -> None:
    set_fault(admin, "lb-503")
    for path in ("/health", "/version", "/threads"):
        response = api.get(path)
        assert response.status_code == 503
        assert "upstream connect error" in response.text
    with pytest.raises(websockets.InvalidStatus) as info:
        chat(service, token)
    assert info.value.response.status_code == 503
    assert admin.get("/admin/faults").status_code == 200  # admin is never faulted


@pytest.mark.parametrize("dependency", ["cache", "database"])
def test_dependency_down(
    service: Any, admin: httpx.Client, api: httpx.Client, dependency: str
) -> None:
    set_fault(admin, "dependency-down", dependency=dependency)
    health = api.get("/health", headers={"X-Request-ID": f"down-{dependency}"})
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unhealthy" and body["failing"] == [dependency]
    error = body["dependencies"][dependency]["error"]
    assert error.startswith(f"connection refused to {dependency} at 127.0.0.1:")
    assert "Connection refused" in error
    failed = api.post("/threads", json={"title": "t"})
    assert failed.status_code == 503 and failed.json()["dependency"] == dependency
    lines = logged(service, f"down-{dependency}")
    error_line = next(r for r in lines if r["event"] == "error")
    assert error_line["level"] == "error" and error_line["fault"] == "dependency-down"
    assert "Connection refused" in error_line["traceback"]
    assert admin.delete("/admin/faults/dependency-down").status_code == 204
    assert api.get("/health").status_code == 200


def test_slow_db_shows_in_health_latency(admin: httpx.Client, api: httpx.Client) -> None:
    set_fault(admin, "slow-db", seconds=1.2)
    body = api.get("/health").json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["database"]["latency_ms"] >= 1200
    assert body["dependencies"]["cache"]["latency_ms"] < 1200


def test_ws_reject(service: Any, admin: httpx.Client, token: str, api: httpx.Client) -> None:
    set_fault(admin, "ws-reject")
    with pytest.raises(websockets.InvalidStatus) as info:
        chat(service, token)
    assert info.value.response.status_code == 503
    assert api.get("/health").status_code == 200


def test_ws_1011(service: Any, admin: httpx.Client, token: str) -> None:
    set_fault(admin, "ws-1011")
    with pytest.raises(websockets.ConnectionClosedError) as info:
        chat(service, token)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    line = next(r for r in reversed(log_lines(service)) if r.get("fault") == "ws-1011")
    assert line["level"] == "error" and "AgentCrashed" in line["error_type"]


def test_app_bug(service: Any, admin: httpx.Client, api: httpx.Client) -> None:
    thread = api.post("/threads", json={"title": "bug"}).json()
    set_fault(admin, "app-bug")
    response = api.post(
        f"/threads/{thread['id']}/messages",
        json={"content": "hi"},
        headers={"X-Request-ID": "app-bug-check"},
    )
    assert response.status_code == 500
    error_line = next(r for r in logged(service, "app-bug-check") if r["event"] == "error")
    assert error_line["level"] == "error" and error_line["fault"] == "app-bug"
    assert error_line["error_type"] == "KeyError" and "author_id" in error_line["error"]
    assert "Traceback (most recent call last)" in error_line["traceback"]
    assert "routes.py" in error_line["traceback"]


def test_missing_event(service: Any, admin: httpx.Client, token: str) -> None:
    set_fault(admin, "missing-event")
    types = [e["type"] for e in chat(service, token)]
    assert types == ["agent_started", "agent_thinking", "tool_executing", "agent_completed"]


def test_auth_broken(service: Any, admin: httpx.Client, api: httpx.Client, login: Any) -> None:
    set_fault(admin, "auth-broken")
    me = api.get("/me")
    assert me.status_code == 401 and "Signature verification failed" in me.text
    login(service.base_url)  # login itself still works; the tokens it issues do not


def test_intermittent_is_seeded(admin: httpx.Client, api: httpx.Client) -> None:
    runs = []
    for _ in range(2):
        set_fault(admin, "intermittent", percent=50, seed=7)
        runs.append([api.get("/version").status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}
    assert api.get("/health").status_code == 200


def test_flaky_fails_every_other_call(admin: httpx.Client, api: httpx.Client) -> None:
    set_fault(admin, "flaky", path="/search", every=2)
    statuses = [api.get("/search", params={"q": "x"}).status_code for _ in range(4)]
    assert statuses == [500, 200, 500, 200]
    assert api.get("/threads").status_code == 200


def test_slow_start_at_runtime(admin: httpx.Client, api: httpx.Client) -> None:
    set_fault(admin, "slow-start", seconds=60)
    health = api.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "starting"
    admin.delete("/admin/faults/slow-start")
    assert api.get("/health").status_code == 200


def test_admin_is_guarded(service: Any, admin: httpx.Client) -> None:
    assert httpx.get(service.base_url + "/admin/faults").status_code == 401
    wrong = httpx.get(service.base_url + "/admin/faults", headers={"X-Admin-Token": "x"})
    assert wrong.status_code == 403
    assert admin.post("/admin/faults", json={"name": "nope"}).status_code == 400
    assert admin.post("/admin/faults", json={"name": "tls-mismatch"}).status_code == 409
    assert admin.delete("/admin/faults/lb-503").status_code == 404
