"""Redis probes: the real server, and throwaway redis-server processes we stop, pause and lock."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest


@pytest.mark.redis
def test_real_redis_answers_ping(check: Any) -> None:
    result = check(
        "redis", conditions=("pong", "latency_ms < 5000"), url="redis://127.0.0.1:6379/0"
    )
    assert result.ok, result.detail
    assert result.detail.startswith("PONG in ")


def test_stopped_server_is_connection_refused(redis_process: Any, check: Any) -> None:
    assert check("redis", url=redis_process.url).ok
    redis_process.stop()
    result = check("redis", url=redis_process.url)
    assert not result.ok
    assert result.detail.startswith("connection refused")


def test_paused_server_times_out(redis_process: Any, check: Any) -> None:
    os.kill(redis_process.process.pid, signal.SIGSTOP)
    try:
        result = check("redis", url=redis_process.url, timeout_s=0.5)
    finally:
        os.kill(redis_process.process.pid, signal.SIGCONT)
    assert not result.ok
    assert "timed out" in result.detail


def test_password_from_config_authenticates(redis_with_password: Any, check: Any) -> None:
    result = check("redis", url=redis_with_password.url, password=redis_with_password.password)
    assert result.ok, result.detail
    assert redis_with_password.password not in result.detail + result.target


def test_wrong_password_is_named_and_not_shown(redis_with_password: Any, check: Any) -> None:
    result = check("redis", url=redis_with_password.url, password="wrong-pw-123")
    assert not result.ok
    assert result.detail.startswith("authentication failed")
    assert "wrong-pw-123" not in result.detail


def test_missing_password_is_refused(redis_with_password: Any, check: Any) -> None:
    result = check("redis", url=redis_with_password.url)
    assert not result.ok
    assert result.detail.startswith("authentication required: the server wants a password")


def test_password_in_url_is_masked(redis_with_password: Any, check: Any) -> None:
    pw = redis_with_password.password
    result = check("redis", url=f"redis://:{pw}@127.0.0.1:{redis_with_password.port}/0")
    assert result.ok, result.detail
    assert pw not in result.target + result.detail
    assert result.target == f"redis://:***@127.0.0.1:{redis_with_password.port}/0"
