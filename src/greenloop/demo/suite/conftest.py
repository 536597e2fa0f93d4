"""Fixtures of the staging E2E suite: clients that talk to the real deployed service.

Reads GREENLOOP_BASE_URL (required), GREENLOOP_WS_URL (default: derived from the base URL),
GREENLOOP_CLIENT_TIMEOUT (seconds, default 5), GREENLOOP_DEMO_USER / GREENLOOP_DEMO_PASSWORD.
An unreachable environment makes tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

Events = list[dict[str, Any]]
Chat = Callable[..., list[Events]]


@pytest.fixture(scope="session")
def base_url() -> str:
    """Where the service under test answers."""
    url = os.environ.get("GREENLOOP_BASE_URL", "").rstrip("/")
    if not url:
        pytest.fail("GREENLOOP_BASE_URL is not set; point it at the staging service")
    return url


@pytest.fixture(scope="session")
def ws_url(base_url: str) -> str:
    """The agent WebSocket endpoint."""
    explicit = os.environ.get("GREENLOOP_WS_URL")
    if explicit:
        return explicit
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest + "/ws"


@pytest.fixture(scope="session")
def timeout() -> float:
    """Client timeout in seconds: short, so an outage fails fast."""
    return float(os.environ.get("GREENLOOP_CLIENT_TIMEOUT", "5"))


@pytest.fixture(scope="session")
def credentials() -> dict[str, str]:
    """The demo user's login."""
    return {
        "username": os.environ.get("GREENLOOP_DEMO_USER", "demo"),
        "password": os.environ.get("GREENLOOP_DEMO_PASSWORD", "demo-password"),
    }


@pytest.fixture
def request_id(request: pytest.FixtureRequest) -> str:
    """greenloop's request ID for this test when its plugin is active, else a fresh one."""
    try:
        return str(request.getfixturevalue("greenloop_request_id"))
    except pytest.FixtureLookupError:
        return uuid.uuid4().hex


def make_client(
    base_url: str, timeout: float, request_id: str, token: str | None = None
) -> httpx.Client:
    """An HTTP client for the service, tagged with ``request_id``."""
    headers = {"X-Request-ID": request_id}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=base_url, timeout=timeout, headers=headers)


@pytest.fixture
def client(base_url: str, timeout: float, request_id: str) -> Iterator[httpx.Client]:
    """An anonymous HTTP client."""
    with make_client(base_url, timeout, request_id) as c:
        yield c


def login(base_url: str, timeout: float, credentials: dict[str, str]) -> str:
    """Log in like a user and return the bearer token."""
    with make_client(base_url, timeout, uuid.uuid4().hex) as c:
        response = c.post("/auth/login", json=credentials)
    assert response.status_code == 200, f"login failed: {response.status_code} {response.text}"
    return str(response.json()["access_token"])


@pytest.fixture(scope="session")
def access_token(base_url: str, timeout: float, credentials: dict[str, str]) -> str:
    """One login for the whole run, as a browser session would."""
    return login(base_url, timeout, credentials)


@pytest.fixture
def auth_client(
    base_url: str, timeout: float, request_id: str, access_token: str
) -> Iterator[httpx.Client]:
    """An HTTP client logged in as the demo user."""
    with make_client(base_url, timeout, request_id, access_token) as c:
        yield c


@pytest.fixture(scope="module")
def module_client(base_url: str, timeout: float, access_token: str) -> Iterator[httpx.Client]:
    """A logged-in client for module-scoped setup (data seeded once per file)."""
    with make_client(base_url, timeout, uuid.uuid4().hex, access_token) as c:
        yield c


async def _converse(url: str, messages: list[str], request_id: str, timeout: float) -> list[Events]:
    """Send each chat message and collect its events until agent_completed or an error."""
    runs: list[Events] = []
    async with websockets.connect(
        url,
        additional_headers={"X-Request-ID": request_id},
        open_timeout=timeout,
        close_timeout=1,
    ) as ws:
        for message in messages:
            await ws.send(json.dumps({"type": "chat", "message": message}))
            events: Events = []
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                events.append(event)
                if event.get("type") in ("agent_completed", "error"):
                    break
            runs.append(events)
    return runs


@pytest.fixture(scope="session")
def chat(ws_url: str, timeout: float, access_token: str) -> Chat:
    """``chat(messages, token=..., request_id=...)``: one WebSocket session, events per run."""

    def run(
        messages: list[str], token: str | None = None, request_id: str | None = None
    ) -> list[Events]:
        url = f"{ws_url}?token={token or access_token}"
        rid = request_id or uuid.uuid4().hex
        return asyncio.run(_converse(url, messages, rid, timeout))

    return run
