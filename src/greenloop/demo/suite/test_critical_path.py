"""The golden path a paying customer takes: log in, open a thread, ask the agent, read back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.p1, pytest.mark.critical_path]


def test_user_journey(
    base_url: str, timeout: float, request_id: str, credentials: dict[str, str], chat: Any
) -> None:
    with httpx.Client(
        base_url=base_url, timeout=timeout, headers={"X-Request-ID": request_id}
    ) as c:
        login = c.post("/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        thread = c.post("/threads", json={"title": "Renewal questions"})
        assert thread.status_code == 201, thread.text
        thread_id = thread.json()["id"]
        question = "When does the enterprise contract renew?"
        posted = c.post(f"/threads/{thread_id}/messages", json={"content": question})
        assert posted.status_code == 201, posted.text
        events = chat([question], token=token, request_id=request_id)[0]
        assert [e["type"] for e in events][-1] == "agent_completed"
        answer = events[-1]["answer"]
        assert "contract" in answer
        reply = c.post(f"/threads/{thread_id}/messages", json={"content": answer})
        assert reply.status_code == 201, reply.text
        history = c.get(f"/threads/{thread_id}/messages")
        assert history.status_code == 200, history.text
        assert [m["content"] for m in history.json()["messages"]] == [question, answer]


def test_fresh_session_can_use_the_product(
    base_url: str, timeout: float, credentials: dict[str, str]
) -> None:
    with httpx.Client(base_url=base_url, timeout=timeout) as c:
        token = c.post("/auth/login", json=credentials).json()["access_token"]
        me = c.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
