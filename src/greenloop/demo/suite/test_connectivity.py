"""Is the service reachable through the load balancer, and are its dependencies up?"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.p1, pytest.mark.connectivity]


@pytest.fixture(scope="module")
def health(base_url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """One health check for the module (status code and body)."""
    with httpx.Client(base_url=base_url, timeout=timeout) as c:
        response = c.get("/health")
    return response.status_code, response.json()


def test_health_endpoint_reports_healthy(health: tuple[int, dict[str, Any]]) -> None:
    status, body = health
    assert status == 200, f"health returned {status}: {body}"
    assert body["status"] == "healthy"


def test_health_reports_each_dependency(health: tuple[int, dict[str, Any]]) -> None:
    _, body = health
    deps = body["dependencies"]
    assert set(deps) >= {"database", "cache"}
    for name, dep in deps.items():
        assert dep["ok"] is True, f"{name} is failing: {dep.get('error')}"
        assert isinstance(dep["latency_ms"], int | float)


def test_version_reports_revision(client: httpx.Client) -> None:
    response = client.get("/version")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["revision"], int) and body["revision"] >= 1
    assert body["commit"]
    datetime.fromisoformat(body["deployed_at"].replace("Z", "+00:00"))


def test_request_id_is_echoed(client: httpx.Client, request_id: str) -> None:
    response = client.get("/version")
    assert response.status_code == 200
    assert response.headers.get("x-request-id") == request_id


def test_unknown_route_returns_json_404(client: httpx.Client) -> None:
    response = client.get("/no-such-route")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
