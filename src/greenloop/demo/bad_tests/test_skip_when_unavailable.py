"""BAD TEST: skips when staging is down, so an outage shows up as green."""

import httpx
import pytest


def is_staging_available():
    # Someone "temporarily" hard-coded this during an incident and never reverted it.
    return False


@pytest.mark.p1
def test_websocket_agent_flow():
    if not is_staging_available():
        pytest.skip("Staging environment is not available")
    response = httpx.get("http://127.0.0.1:8080/health", timeout=5)
    assert response.status_code == 200


@pytest.mark.p1
def test_message_persistence():
    if not is_staging_available():
        pytest.skip("Staging environment is not available")
    assert httpx.get("http://127.0.0.1:8080/threads", timeout=5).status_code == 200
