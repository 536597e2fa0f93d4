"""The plugin records the requests a test sends, with their id headers, whatever the client."""

from __future__ import annotations

import pytest

from greenloop.config import PhaseConfig
from greenloop.execute.phase import run_phase
from greenloop.execute.pytestplugin.network import parse_request_head
from greenloop.execute.selection import select_tests

pytest.importorskip("requests", reason="a dev dependency (pip install -e '.[dev]')")
pytest.importorskip("aiohttp", reason="a dev dependency (pip install -e '.[dev]')")

PHASE = PhaseConfig(name="e2e")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

CLIENTS = """
import asyncio
import os

import aiohttp
import httpx
import pytest
import requests
import urllib3
import websockets

BASE = os.environ["GREENLOOP_BASE_URL"]


def test_httpx():
    httpx.get(BASE + "/orders/1", headers={"X-Request-ID": "rid-httpx"})


def test_httpx_async():
    async def go():
        async with httpx.AsyncClient() as client:
            await client.post(BASE + "/orders", headers={"X-Correlation-ID": "rid-async"})
    asyncio.run(go())


def test_requests():
    requests.get(BASE + "/orders/2", headers={"X-Request-ID": "rid-requests"}, timeout=5)


def test_urllib3():
    urllib3.PoolManager().request(
        "GET", BASE + "/orders/3", headers={"traceparent": "00-%s-00f067aa0ba902b7-01"}
    )


def test_aiohttp():
    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.delete(BASE + "/orders/4", headers={"Request-Id": "rid-aio"}):
                pass
    asyncio.run(go())


def test_websockets():
    async def go():
        # The target is no WebSocket server: the handshake is refused, but it was sent.
        with pytest.raises(websockets.InvalidHandshake):
            await websockets.connect(
                BASE.replace("http", "ws", 1) + "/ws", additional_headers={"X-Request-ID": "rid-ws"}
            )
    asyncio.run(go())
""".replace("%s", TRACE)


def test_each_client_s_request_and_id_header_is_recorded(tree, make_config) -> None:
    tree({"test_clients.py": CLIENTS})
    config = make_config()
    result = run_phase(config, PHASE, select_tests(config, PHASE, []))
    sent = {t.nodeid.rsplit("::", 1)[-1]: t.sent_requests for t in result.tests}
    assert all(t.outcome.value == "passed" for t in result.tests), [
        (t.nodeid, t.outcome, t.message) for t in result.tests
    ]

    def only(name: str) -> tuple[str, str, dict[str, str]]:
        assert len(sent[name]) == 1, (name, sent[name])
        (request,) = sent[name]
        return request.method, request.path, dict(request.ids)

    assert only("test_httpx") == ("GET", "/orders/1", {"x-request-id": "rid-httpx"})
    assert only("test_httpx_async") == ("POST", "/orders", {"x-correlation-id": "rid-async"})
    assert only("test_requests") == ("GET", "/orders/2", {"x-request-id": "rid-requests"})
    assert only("test_aiohttp") == ("DELETE", "/orders/4", {"request-id": "rid-aio"})
    assert only("test_websockets") == ("GET", "/ws", {"x-request-id": "rid-ws"})
    method, path, _ = only("test_urllib3")
    assert (method, path) == ("GET", "/orders/3")
    urllib3_test = next(t for t in result.tests if t.nodeid.endswith("::test_urllib3"))
    assert TRACE in urllib3_test.request_keys  # the trace id a service logs is a key too


def test_a_request_head_is_parsed_and_anything_else_is_not() -> None:
    head = b"GET http://api.test/v1/x?q=1 HTTP/1.1\r\nHost: api.test\r\nX-Request-ID: abc\r\n\r\n"
    assert parse_request_head(head) == {
        "method": "GET",
        "path": "/v1/x?q=1",
        "ids": {"x-request-id": "abc"},
    }
    assert parse_request_head(b"HTTP/1.1 200 OK\r\n\r\n") is None  # a response
    assert parse_request_head(b"GET is not a request line") is None
    assert parse_request_head(b"\x16\x03\x01 binary TLS bytes") is None
