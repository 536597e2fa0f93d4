"""The agent answers from the user's message and its tool result, and records each run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets

pytestmark = [pytest.mark.p1, pytest.mark.agent]

QUESTIONS = [
    "Which warehouse ships the Berlin orders?",
    "Draft a reminder about the overdue Lisbon invoice",
]


@pytest.fixture(scope="module")
def pipeline(chat: Any, module_client: httpx.Client) -> dict[str, Any]:
    """Two runs on one connection, and the stored record of the first."""
    runs = chat(QUESTIONS)
    finals = [run[-1] for run in runs]
    for final in finals:
        assert final["type"] == "agent_completed", f"run ended with {final}"
    stored = module_client.get(f"/runs/{finals[0]['run_id']}")
    assert stored.status_code == 200, f"run record: {stored.status_code} {stored.text}"
    return {"runs": runs, "finals": finals, "stored": stored.json()}


def test_answer_references_user_message(pipeline: dict[str, Any]) -> None:
    assert "Berlin" in pipeline["finals"][0]["answer"]


def test_answer_uses_tool_result(pipeline: dict[str, Any]) -> None:
    first = pipeline["runs"][0]
    results = next(e["results"] for e in first if e["type"] == "tool_completed")
    answer = pipeline["finals"][0]["answer"]
    assert f"{results['word_count']} words" in answer
    assert all(k in answer for k in results["keywords"])


def test_each_run_gets_its_own_id(pipeline: dict[str, Any]) -> None:
    ids = [f["run_id"] for f in pipeline["finals"]]
    assert len(set(ids)) == len(QUESTIONS)


def test_run_is_persisted(pipeline: dict[str, Any]) -> None:
    stored = pipeline["stored"]
    assert stored["message"] == QUESTIONS[0]
    assert stored["answer"] == pipeline["finals"][0]["answer"]


def test_websocket_requires_token(chat: Any) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        chat(["hello"], token="invalid")
    assert info.value.response.status_code == 401
