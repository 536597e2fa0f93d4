"""Shared fixtures: the real PostgreSQL and Redis on this machine, and free ports.

Tests marked `postgres` or `redis` skip when the server is unreachable, unless
GREENLOOP_REQUIRE_SERVICES=1 (CI), where a missing server is a failure.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenloop.store import Store

PG_ADMIN_URL = os.environ.get("GREENLOOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GREENLOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    return os.environ.get("GREENLOOP_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, under GREENLOOP_REQUIRE_SERVICES=1, fail) when a server is not there."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if services_required():
        pytest.fail(f"{message} (GREENLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres"):
        need_service("PostgreSQL", "127.0.0.1", 5432)
    if item.get_closest_marker("redis"):
        need_service("Redis", "127.0.0.1", 6379)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in the test's folder (suites that need PostgreSQL too override it)."""
    opened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its URL. Dropped afterwards."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"gl_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix on the real Redis; its keys are deleted afterwards."""
    need_service("Redis", "127.0.0.1", 6379)
    import redis

    prefix = f"gl-test-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()
