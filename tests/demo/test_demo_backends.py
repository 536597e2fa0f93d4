"""The service on real PostgreSQL and Redis: persistence, sessions, refused connections."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from greenloop.demo import control

SUITE = Path(control.__file__).parent / "suite"

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_postgres_and_redis_backends(
    state_dir: Path, pg_url: str, redis_prefix: str, login: Any
) -> None:
    rev = control.deploy(state_dir, database_url=pg_url, cache_url="redis://127.0.0.1:6379/0")
    health = httpx.get(rev.base_url + "/health").json()
    assert health["dependencies"]["database"]["backend"] == "postgresql"
    assert health["dependencies"]["cache"]["backend"] == "redis"

    token = login(rev.base_url)
    store = redis.Redis(host="127.0.0.1", port=6379, decode_responses=True)
    assert list(store.scan_iter(match=redis_prefix + "session:*"))  # the login's session
    store.close()

    headers = {"Authorization": f"Bearer {token}"}
    thread = httpx.post(rev.base_url + "/threads", json={"title": "pg"}, headers=headers).json()
    httpx.post(
        f"{rev.base_url}/threads/{thread['id']}/messages",
        json={"content": "stored in postgres"},
        headers=headers,
    )
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT content FROM demo_messages WHERE thread_id = %s", (thread["id"],)
        ).fetchall()
    assert rows == [("stored in postgres",)]

    control.set_fault(state_dir, "dependency-down", {"dependency": "database"})
    down = httpx.get(rev.base_url + "/health")
    error = down.json()["dependencies"]["database"]["error"]
    assert down.status_code == 503 and "Connection refused" in error and ":5432" not in error
    control.restart_dependency(state_dir, "database")
    assert httpx.get(rev.base_url + "/health").status_code == 200

    control.set_fault(state_dir, "dependency-down", {"dependency": "cache"})
    down = httpx.get(rev.base_url + "/health")
    assert down.json()["failing"] == ["cache"] and ":6379" not in down.json()["error"]


def test_suite_passes_on_postgres_and_redis(
    state_dir: Path, pg_url: str, redis_prefix: str
) -> None:
    rev = control.deploy(state_dir, database_url=pg_url, cache_url="redis://127.0.0.1:6379/0")
    env = {**os.environ, "GREENLOOP_BASE_URL": rev.base_url}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "40 passed" in result.stdout
