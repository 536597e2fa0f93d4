"""PostgreSQL faults on a real throwaway cluster: each gives its own mode, category and issue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from faultlab_helpers import check, judge

from greenloop.demo.realdeps import PostgresServer


def probes(server: PostgresServer, **dsn: Any) -> list[dict[str, Any]]:
    """The database probe a team writes: the app's own credentials, the app's own query."""
    return [
        {
            "name": "orders-db",
            "component": "database",
            "kind": "postgres",
            "dsn": server.dsn(**dsn),
            "query": "SELECT count(*) FROM orders",
            "timeout_s": 1.5,
        }
    ]


@contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


@contextmanager
def paused(server: PostgresServer) -> Iterator[None]:
    server.pause()
    try:
        yield
    finally:
        server.resume()


@contextmanager
def rotated_password(server: PostgresServer) -> Iterator[None]:
    """The password was rotated on the server; the app still has the old one."""
    server.rotate_password("rotated-by-ops")
    try:
        yield
    finally:
        server.rotate_password(server.password)


@contextmanager
def all_connections_taken(server: PostgresServer) -> Iterator[None]:
    held = server.take_all_connections()
    try:
        yield
    finally:
        for conn in held:
            conn.close()


@contextmanager
def table_locked(server: PostgresServer) -> Iterator[None]:
    """A migration holds an exclusive lock on `orders`: every query on it waits."""
    conn = psycopg.connect(server.dsn())
    conn.execute("BEGIN")
    conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_healthy_cluster_passes_the_gate(postgres: PostgresServer) -> None:
    gate = check(probes(postgres))
    assert gate.healthy, gate
    assert all(p.mode is None for p in gate.probes)


def test_database_down_is_refused_infrastructure(postgres: PostgresServer) -> None:
    with stopped(postgres):
        verdict = judge(probes(postgres))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "refused", "infrastructure", "database",
    )  # fmt: skip
    assert verdict.cluster.category.value == "blocked"
    assert "connection refused" in verdict.cluster.title
    assert "mode: refused" in verdict.cluster.root_cause.summary


def test_database_hung_is_a_timeout(postgres: PostgresServer) -> None:
    with paused(postgres):
        verdict = judge(probes(postgres))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "timeout", "infrastructure", "database",
    )  # fmt: skip
    assert "timed out" in verdict.cluster.title


def test_rotated_password_is_a_configuration_problem(postgres: PostgresServer) -> None:
    with rotated_password(postgres):
        verdict = judge(probes(postgres))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "credentials", "configuration", "database",
    )  # fmt: skip
    assert "credentials rejected, configuration" in verdict.cluster.title
    assert postgres.password not in str(verdict.cluster)  # the DSN's secret never shows


def test_exhausted_connection_slots(postgres: PostgresServer) -> None:
    with all_connections_taken(postgres):
        verdict = judge(probes(postgres))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "connection_limit", "infrastructure", "database",
    )  # fmt: skip


def test_query_stuck_behind_a_lock_is_slow_not_hung(postgres: PostgresServer) -> None:
    with table_locked(postgres):
        verdict = judge(probes(postgres))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "slow", "infrastructure", "database",
    )  # fmt: skip
    assert "statement timeout" in verdict.cluster.root_cause.whys[-1].evidence


def test_slow_queries_with_pg_sleep_fail_a_latency_condition(postgres: PostgresServer) -> None:
    probe = {**probes(postgres)[0], "query": "SELECT pg_sleep(0.3)", "timeout_s": 3}
    probe["conditions"] = ["queried", "latency_ms < 200"]
    verdict = judge([probe])
    assert (verdict.mode, verdict.category, verdict.component) == (
        "slow", "infrastructure", "database",
    )  # fmt: skip


def test_unresolvable_host_is_dns(postgres: PostgresServer) -> None:
    verdict = judge(probes(postgres, host="orders-db.greenloop.invalid"))
    assert (verdict.mode, verdict.category, verdict.component) == (
        "dns", "infrastructure", "database",
    )  # fmt: skip


def test_down_hung_and_wrong_password_are_three_problems(postgres: PostgresServer) -> None:
    with stopped(postgres):
        down = judge(probes(postgres))
    with paused(postgres):
        hung = judge(probes(postgres))
    with rotated_password(postgres):
        rejected = judge(probes(postgres))
    verdicts = (down, hung, rejected)
    assert len({v.cluster.fingerprint for v in verdicts}) == 3
    assert len({v.cluster.title for v in verdicts}) == 3
    assert len({v.cluster.root_cause.summary for v in verdicts}) == 3
    # The same fault seen again is the same problem (same issue, updated).
    with stopped(postgres):
        again = judge(probes(postgres))
    assert again.cluster.fingerprint == down.cluster.fingerprint
