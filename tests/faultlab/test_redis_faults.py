"""Redis faults on a real throwaway redis-server: down, hung (SIGSTOP) and requirepass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faultlab_helpers import check, judge

from greenloop.demo.realdeps import RedisServer


def probes(server: RedisServer) -> list[dict[str, Any]]:
    """The cache probe as the app connects: no password configured."""
    return [
        {"name": "sessions", "component": "cache", "kind": "redis", "url": server.url,
         "timeout_s": 1},
    ]  # fmt: skip


@contextmanager
def paused(server: RedisServer) -> Iterator[None]:
    server.pause()
    try:
        yield
    finally:
        server.resume()


@contextmanager
def requirepass(server: RedisServer) -> Iterator[None]:
    """An operator turned on `requirepass`; the app was not given the password."""
    server.require_password("set-by-ops")
    try:
        yield
    finally:
        server.require_password(None)


@contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


def test_healthy_redis_passes_the_gate(redis_server: RedisServer) -> None:
    assert check(probes(redis_server)).healthy


def test_redis_down_is_refused(redis_server: RedisServer) -> None:
    with stopped(redis_server):
        verdict = judge(probes(redis_server))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "refused", "infrastructure", "cache",
    )  # fmt: skip


def test_redis_hung_is_a_timeout_not_an_outage(redis_server: RedisServer) -> None:
    with paused(redis_server):
        verdict = judge(probes(redis_server))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "timeout", "infrastructure", "cache",
    )  # fmt: skip
    assert (
        "timed out" in verdict.cluster.title and "timed out" in verdict.cluster.root_cause.summary
    )


def test_requirepass_is_a_configuration_problem(redis_server: RedisServer) -> None:
    with requirepass(redis_server):
        verdict = judge(probes(redis_server))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "credentials", "configuration", "cache",
    )  # fmt: skip
    assert "set-by-ops" not in str(verdict.cluster)


def test_outage_hang_and_requirepass_are_three_issues(redis_server: RedisServer) -> None:
    with stopped(redis_server):
        outage = judge(probes(redis_server))
    with paused(redis_server):
        hung = judge(probes(redis_server))
    with requirepass(redis_server):
        rejected = judge(probes(redis_server))
    assert len({v.cluster.fingerprint for v in (outage, hung, rejected)}) == 3
    assert len({v.cluster.title for v in (outage, hung, rejected)}) == 3
