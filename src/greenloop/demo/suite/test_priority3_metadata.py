"""Search, metadata and diagnostics: nice to have, rarely urgent."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.p3, pytest.mark.observability]


def test_commit_is_hex(client: httpx.Client) -> None:
    assert re.fullmatch(r"[0-9a-f]{7,40}", client.get("/version").json()["commit"])


def test_request_id_generated_when_absent(base_url: str, timeout: float) -> None:
    with httpx.Client(base_url=base_url, timeout=timeout) as c:
        response = c.get("/version")
    assert response.status_code == 200
    assert len(response.headers.get("x-request-id", "")) >= 16


def test_responses_are_json(client: httpx.Client) -> None:
    assert client.get("/version").headers["content-type"].startswith("application/json")


def test_login_validation_error_is_422(client: httpx.Client) -> None:
    assert client.post("/auth/login", json={"username": "demo"}).status_code == 422


def test_search_finds_posted_message(auth_client: httpx.Client) -> None:
    marker = f"needle-{uuid.uuid4().hex[:8]}"
    thread = auth_client.post("/threads", json={"title": "search check"}).json()
    auth_client.post(f"/threads/{thread['id']}/messages", json={"content": f"find {marker}"})
    response = auth_client.get("/search", params={"q": marker})
    assert response.status_code == 200, response.text
    assert [r["content"] for r in response.json()["results"]] == [f"find {marker}"]
