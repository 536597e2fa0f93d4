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
    "store.runs.start_run(\n"
    "    sys.argv[2], environment='e', focus='all', command_line='', config_path='c'\n"
    ")\n"
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


RUN_CONFIG = """
[environment]
name = "staging"

[execution]
tests_dir = "suite"
reruns = 0

[report]
out_dir = "out"

[store]
url = "sqlite:///{store}"
"""


def test_two_whole_runs_started_together_on_a_fresh_store_both_report(tmp_path: Path) -> None:
    # Two `greenloop run` processes at once: both migrate the same fresh store, both finish,
    # and runs started in the same second still write their own worklog and JSON.
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_a.py").write_text("def test_a():\n    assert True\n")
    config = tmp_path / "greenloop.toml"
    config.write_text(RUN_CONFIG.format(store=tmp_path / "store.db"), encoding="utf-8")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "greenloop.cli", "run", "-c", str(config)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    worklogs = sorted((tmp_path / "out").glob("*.md"))
    reports = sorted((tmp_path / "out").glob("*.json"))
    assert len(worklogs) == 2 and len(reports) == 2, (worklogs, reports)
