"""PostgreSQL probes: the real server, and a throwaway cluster we stop, pause and lock."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from greenloop.probes.modes import mode_category
from greenloop.records import Category, FailureMode


@pytest.mark.postgres
def test_real_postgres_select_1(check: Any) -> None:
    result = check(
        "postgres",
        conditions=("connected", "result == 1"),
        dsn="postgresql://postgres@127.0.0.1:5432/test",
    )
    assert result.ok, result.detail
    assert result.detail.startswith("'SELECT 1' returned 1 in ")


@pytest.mark.postgres
def test_custom_query_result(check: Any) -> None:
    result = check(
        "postgres",
        conditions=("result >= 150000",),
        dsn="postgresql://postgres@127.0.0.1:5432/test",
        query="SELECT current_setting('server_version_num')::int",
    )
    assert result.ok, result.detail


def test_password_auth_succeeds_and_is_masked(postgres_cluster: Any, check: Any) -> None:
    result = check("postgres", dsn=postgres_cluster.dsn())
    assert result.ok, result.detail
    assert postgres_cluster.password not in result.target + result.detail
    assert result.target == f"postgresql://postgres:***@127.0.0.1:{postgres_cluster.port}/postgres"


def test_wrong_password_names_the_real_error(postgres_cluster: Any, check: Any) -> None:
    result = check("postgres", dsn=postgres_cluster.dsn("not-the-pw-77"))
    assert not result.ok
    assert result.detail.startswith("password authentication failed")
    assert 'password authentication failed for user "postgres"' in result.detail
    assert "not-the-pw-77" not in result.detail + result.target


def test_keyword_dsn_password_is_masked(postgres_cluster: Any, check: Any) -> None:
    dsn = f"host=127.0.0.1 port={postgres_cluster.port} user=postgres password=not-the-pw-88"
    result = check("postgres", dsn=dsn)
    assert not result.ok
    assert "not-the-pw-88" not in result.detail + result.target
    assert "password=***" in result.target


def test_bad_query_is_reported(postgres_cluster: Any, check: Any) -> None:
    result = check("postgres", dsn=postgres_cluster.dsn(), query="SELECT * FROM no_such_table")
    assert not result.ok
    assert 'query failed: relation "no_such_table" does not exist' in result.detail


def test_paused_server_times_out(postgres_cluster: Any, check: Any) -> None:
    pid = postgres_cluster.postmaster_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        result = check("postgres", dsn=postgres_cluster.dsn(), timeout_s=0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert not result.ok
    assert "timed out" in result.detail


def test_stopped_server_is_connection_refused(postgres_cluster: Any, check: Any) -> None:
    postgres_cluster.stop()
    try:
        result = check("postgres", dsn=postgres_cluster.dsn())
    finally:
        postgres_cluster.start()
    assert not result.ok
    assert result.detail.startswith("connection refused")
    assert check("postgres", dsn=postgres_cluster.dsn()).ok


@pytest.mark.postgres
def test_a_role_the_server_does_not_know_is_rejected_credentials(check: Any) -> None:
    result = check("postgres", dsn="postgresql://no_such_role_gl@127.0.0.1:5432/postgres")
    assert not result.ok
    assert 'role "no_such_role_gl" does not exist' in result.detail
    assert result.mode is FailureMode.CREDENTIALS
    assert mode_category(result.mode) is Category.CONFIGURATION
