"""BAD TEST: imports a helper module that no longer exists (ModuleNotFoundError at collection)."""

import pytest
from staging_helpers.websocket import wait_for_agent_events  # removed in a refactor


@pytest.mark.p1
def test_agent_events_arrive():
    events = wait_for_agent_events("ws://127.0.0.1:8080/ws", timeout=5)
    assert len(events) == 5
