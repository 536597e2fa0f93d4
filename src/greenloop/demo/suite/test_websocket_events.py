"""The agent WebSocket streams its five events, in order, for one run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

pytestmark = [pytest.mark.p1, pytest.mark.websocket]

EXPECTED = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


@pytest.fixture(scope="module")
def events(chat: Any) -> list[dict[str, Any]]:
    """The events of one agent run."""
    runs: list[list[dict[str, Any]]] = chat(["Summarize the quarterly revenue report for finance"])
    return runs[0]


def test_five_events_in_order(events: list[dict[str, Any]]) -> None:
    assert [e["type"] for e in events] == EXPECTED


def test_events_share_one_run_id(events: list[dict[str, Any]]) -> None:
    run_ids = {e.get("run_id") for e in events}
    assert len(run_ids) == 1 and None not in run_ids


def test_event_timestamps_are_ordered(events: list[dict[str, Any]]) -> None:
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in events]
    assert stamps == sorted(stamps)


def test_tool_events_name_the_tool(events: list[dict[str, Any]]) -> None:
    tool_events = [e for e in events if e["type"] in ("tool_executing", "tool_completed")]
    assert len(tool_events) == 2
    assert all(e.get("tool_name") for e in tool_events)


def test_tool_completed_carries_results(events: list[dict[str, Any]]) -> None:
    completed = next((e for e in events if e["type"] == "tool_completed"), None)
    assert completed is not None, "tool_completed was never sent"
    assert completed["results"]["word_count"] > 0


def test_agent_completed_reports_duration(events: list[dict[str, Any]]) -> None:
    final = events[-1]
    assert final["type"] == "agent_completed"
    assert isinstance(final["duration"], int | float) and final["duration"] >= 0
