"""Concurrent first opens of a fresh store: migrations take turns, every opener succeeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

OPEN = (
    "import sys\n"
    "from greenloop.store import Store\n"
    "store = Store.open(sys.argv[1])\n"
    "store.start_run(sys.argv[2], environment='e', focus='all', command_line='', config_path='c')\n"
    "store.close()\n"
)


def _open_together(url: str, openers: int) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, f"run-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(openers)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_first_opens_of_a_fresh_sqlite_store(tmp_path: Path, round_: int) -> None:
    db = tmp_path / f"fresh-{round_}.db"
    _open_together(f"sqlite:///{db}", 4)
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (4,)
        assert len(conn.execute("SELECT * FROM alembic_version").fetchall()) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(2))
def test_concurrent_first_opens_of_a_fresh_postgres_store(pg_database: str, round_: int) -> None:
    _open_together(pg_database, 4)
    import psycopg

    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (4,)
        assert len(conn.execute("SELECT * FROM alembic_version").fetchall()) == 1
