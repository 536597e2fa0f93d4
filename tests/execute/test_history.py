"""The store reads risk ordering uses, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult
from greenloop.store import Store, schema
from greenloop.store.schema import IssueRow


def exercise(store: Store) -> None:
    store.runs.start_run("r1", environment="staging", focus="all", command_line="", config_path="")
    for iteration, outcome in ((1, Outcome.FAILED), (2, Outcome.PASSED)):
        tests = (TestResult("t.py::a", outcome), TestResult("t.py::b", Outcome.PASSED))
        store.results.record_phase(
            "r1", iteration, PhaseResult("p", PhaseStatus.PASSED, 1.0, tests=tests)
        )
    assert store.results.recent_outcomes() == {
        "t.py::a": ("passed", "failed"),
        "t.py::b": ("passed", "passed"),
    }
    assert store.results.recent_outcomes(per_test=1)["t.py::a"] == ("passed",)
    assert store.results.open_issue_nodeids() == set()
    now = datetime.now(UTC)
    with store.session() as s:
        s.add(
            IssueRow(tracker="local", fingerprint="fp1", title="x", created_at=now, updated_at=now)
        )
        for row in store.results.run_tests("r1"):
            if row.nodeid == "t.py::a":
                stored = s.get(schema.TestResultRow, row.id)
                assert stored is not None
                stored.fingerprint = "fp1"
    assert store.results.open_issue_nodeids() == {"t.py::a"}


def test_history_on_sqlite(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        exercise(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_history_on_postgres(pg_database: str) -> None:
    store = Store.open(pg_database)
    try:
        exercise(store)
    finally:
        store.close()
