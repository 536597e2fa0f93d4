"""The fault lab: real throwaway servers, faults made the way production makes them.

Each module shares its servers (a PostgreSQL cluster, a redis-server, TLS endpoints,
the demo service on real dependencies) and every test undoes its fault before the next
one runs. `faultlab_helpers.judge` runs the real gate against the faulty server and
triages the tests the gate blocked, as the loop does.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenloop.demo.realdeps import PostgresServer, RealDepsError, RedisServer, missing


def unavailable(message: str) -> None:
    """Skip, or under GREENLOOP_REQUIRE_SERVICES=1 fail, when a server cannot run here."""
    if os.environ.get("GREENLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (GREENLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (its own folder and port) with an `orders` table."""
    absent = [m for m in missing() if "redis" not in m]
    if absent:
        unavailable("; ".join(absent))
    folder = Path(tempfile.mkdtemp(prefix="gl-faultlab-pg-"))
    folder.chmod(0o755)  # PostgreSQL's own user must reach its folder inside
    server = PostgresServer(folder / "cluster", max_connections=6)
    try:
        server.start()
    except RealDepsError as exc:
        server.remove()
        unavailable(str(exc))
    server.sql("CREATE TABLE orders (id int PRIMARY KEY, total numeric)", database="app")
    server.sql("ALTER TABLE orders OWNER TO app", database="app")
    yield server
    server.remove()
    folder.rmdir()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on a free port."""
    if any("redis" in m for m in missing()):
        unavailable("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.stop()
