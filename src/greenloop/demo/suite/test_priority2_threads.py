"""Thread listing and details: important, but a user can live without them for a while."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.p2, pytest.mark.messaging]


@pytest.fixture(scope="module")
def listing(module_client: httpx.Client) -> dict[str, Any]:
    """Two new threads, the listing, a limited listing and one thread's details."""
    created = []
    for title in ("Quarterly planning", "Hiring pipeline"):
        response = module_client.post("/threads", json={"title": title})
        assert response.status_code == 201, f"create thread: {response.status_code}"
        created.append(response.json())
    full = module_client.get("/threads", params={"limit": 100})
    limited = module_client.get("/threads", params={"limit": 1})
    detail = module_client.get(f"/threads/{created[0]['id']}")
    for response in (full, limited, detail):
        assert response.status_code == 200, f"{response.url}: {response.status_code}"
    return {
        "created": created,
        "full": full.json()["threads"],
        "limited": limited.json()["threads"],
        "detail": detail.json(),
    }


def test_list_threads_includes_new_threads(listing: dict[str, Any]) -> None:
    ids = {t["id"] for t in listing["full"]}
    assert {t["id"] for t in listing["created"]} <= ids


def test_thread_limit_is_respected(listing: dict[str, Any]) -> None:
    assert len(listing["limited"]) == 1


def test_thread_detail_matches_creation(listing: dict[str, Any]) -> None:
    assert listing["detail"]["title"] == "Quarterly planning"


def test_threads_belong_to_user(listing: dict[str, Any], credentials: dict[str, str]) -> None:
    assert {t["owner"] for t in listing["full"]} == {credentials["username"]}


def test_invalid_limit_rejected(auth_client: httpx.Client) -> None:
    assert auth_client.get("/threads", params={"limit": 0}).status_code == 422
