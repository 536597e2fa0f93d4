"""WebSocket probes against real websockets servers: pong, 503 rejection, close 1011."""

from __future__ import annotations

from typing import Any


def test_handshake_and_reply_type(servers: Any, check: Any) -> None:
    result = check("websocket", url=servers.ws, send="ping", expect_type="pong")
    assert result.ok, result.detail
    assert 'reply \'{"type": "pong"}\'' in result.detail


def test_reply_json_path_condition(servers: Any, check: Any) -> None:
    result = check(
        "websocket",
        conditions=("connected", 'reply.type == "pong"', "close_code == 1000"),
        url=servers.ws,
        send={"type": "ping"},
    )
    assert result.ok, result.detail


def test_wrong_reply_type_fails(servers: Any, check: Any) -> None:
    result = check("websocket", url=servers.ws, send="hello", expect_type="pong")
    assert not result.ok
    assert result.failed_conditions == ("reply.type == \"pong\" (reply.type='echo')",)


def test_no_reply_within_deadline(servers: Any, check: Any) -> None:
    result = check("websocket", url=servers.ws, send="silence", reply_timeout_s=0.2)
    assert not result.ok
    assert "no reply within 0.2 s" in result.detail
    assert "replied (replied=False)" in result.detail


def test_rejected_handshake_reports_status(servers: Any, check: Any) -> None:
    result = check("websocket", conditions=("status == 101",), url=servers.ws_reject)
    assert not result.ok
    assert result.detail.startswith("handshake rejected with HTTP 503")
    assert result.failed_conditions == ("status == 101 (status=503)",)


def test_server_closing_with_1011_is_captured(servers: Any, check: Any) -> None:
    result = check(
        "websocket",
        conditions=("connected", "close_code != 1011"),
        url=servers.ws_crash,
        send="ping",
        expect_reply=False,
    )
    assert not result.ok
    assert result.failed_conditions == ("close_code != 1011 (close_code=1011)",)
    assert "close code 1011 (internal error)" in result.detail


def test_server_closing_before_reply(servers: Any, check: Any) -> None:
    result = check("websocket", url=servers.ws_crash, send="ping", expect_type="pong")
    assert not result.ok
    assert "closed by server before replying" in result.detail


def test_nothing_listening(servers: Any, check: Any) -> None:
    result = check("websocket", url=f"ws://127.0.0.1:{servers.closed}/")
    assert not result.ok
    assert result.detail.startswith("connection refused")
