"""Fixtures for the demo service's tests: real servers, real PostgreSQL and Redis.

Tests marked ``postgres`` / ``redis`` skip when the server is unreachable, unless
GREENLOOP_REQUIRE_SERVICES=1, in which case they fail (CI must not silently skip them).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from greenloop.demo import control

SERVICES = {"postgres": ("127.0.0.1", 5432), "redis": ("127.0.0.1", 6379)}
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, with GREENLOOP_REQUIRE_SERVICES=1, fail) tests whose server is down."""
    for marker, (host, port) in SERVICES.items():
        if item.get_closest_marker(marker) and not reachable(host, port):
            message = f"{marker} is not reachable on {host}:{port}"
            if os.environ.get("GREENLOOP_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{message} and GREENLOOP_REQUIRE_SERVICES=1")
            pytest.skip(message)


@dataclass(frozen=True)
class Deployed:
    """A running demo service and how to reach it."""

    state_dir: Path
    base_url: str
    admin_token: str

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "service.log"

    def admin(self) -> httpx.Client:
        """A client that sends the admin token."""
        headers = {"X-Admin-Token": self.admin_token}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


def deployed(state_dir: Path) -> Deployed:
    """Describe the service running on ``state_dir``."""
    token = control.load_state(state_dir)["admin_token"]
    return Deployed(state_dir, control.base_url(state_dir), token)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """A healthy service (revision 1, SQLite + in-process cache), stopped at the end."""
    state_dir = tmp_path_factory.mktemp("demo-state")
    control.deploy(state_dir)
    try:
        yield deployed(state_dir)
    finally:
        control.stop(state_dir)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh state directory whose service (if any) is stopped after the test."""
    path = tmp_path / "state"
    try:
        yield path
    finally:
        control.stop(path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    name = f"greenloop_demo_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique Redis key prefix handed to services started in this test; keys removed after."""
    prefix = f"greenloop-test-{uuid.uuid4().hex[:12]}:"
    monkeypatch.setenv("GREENLOOP_DEMO_CACHE_PREFIX", prefix)
    yield prefix
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    finally:
        client.close()


def _login(base_url: str) -> str:
    response = httpx.post(
        base_url + "/auth/login",
        json={"username": "demo", "password": "demo-password"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture(scope="session")
def login() -> Callable[[str], str]:
    """``login(base_url)``: a bearer token for the demo user."""
    return _login


@pytest.fixture(scope="session")
def describe() -> Callable[[Path], Deployed]:
    """``describe(state_dir)``: the Deployed view of the service running there."""
    return deployed
