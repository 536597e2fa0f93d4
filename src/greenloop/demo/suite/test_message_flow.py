"""Threads and messages: created, persisted in the database, read back in order."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.p1, pytest.mark.messaging]

MESSAGES = ["first: the invoice is late", "second: resend it please", "third: thanks!"]


@pytest.fixture(scope="module")
def conversation(
    module_client: httpx.Client, base_url: str, timeout: float, access_token: str
) -> dict[str, Any]:
    """One thread with three messages, then read back on a fresh connection."""
    created = module_client.post("/threads", json={"title": "Invoice follow-up"})
    assert created.status_code == 201, f"create thread: {created.status_code} {created.text}"
    thread = created.json()
    posted = []
    for text in MESSAGES:
        response = module_client.post(f"/threads/{thread['id']}/messages", json={"content": text})
        assert response.status_code == 201, f"post message: {response.status_code} {response.text}"
        posted.append(response.json())
    headers = {"Authorization": f"Bearer {access_token}"}
    with httpx.Client(base_url=base_url, timeout=timeout, headers=headers) as fresh:
        listed = fresh.get(f"/threads/{thread['id']}/messages")
    assert listed.status_code == 200, f"list messages: {listed.status_code} {listed.text}"
    return {"thread": thread, "posted": posted, "listed": listed.json()["messages"]}


def test_create_thread_returns_id(conversation: dict[str, Any]) -> None:
    thread = conversation["thread"]
    uuid.UUID(thread["id"])
    assert thread["title"] == "Invoice follow-up"


def test_post_message_returns_message(conversation: dict[str, Any], credentials: dict) -> None:
    first = conversation["posted"][0]
    assert first["content"] == MESSAGES[0]
    assert first["author"] == credentials["username"]
    assert first["thread_id"] == conversation["thread"]["id"]


def test_messages_persist_across_requests(conversation: dict[str, Any]) -> None:
    listed_ids = {m["id"] for m in conversation["listed"]}
    assert {m["id"] for m in conversation["posted"]} <= listed_ids


def test_messages_keep_posting_order(conversation: dict[str, Any]) -> None:
    assert [m["content"] for m in conversation["listed"]] == MESSAGES


def test_unknown_thread_returns_404(auth_client: httpx.Client) -> None:
    response = auth_client.get(f"/threads/{uuid.uuid4()}/messages")
    assert response.status_code == 404


def test_empty_message_rejected(auth_client: httpx.Client) -> None:
    response = auth_client.post(f"/threads/{uuid.uuid4()}/messages", json={"content": ""})
    assert response.status_code == 422
