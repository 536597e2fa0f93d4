"""The store against SQLite and the real PostgreSQL: migrations, runs, results, history."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from greenloop.records import (
    Category,
    Classification,
    Cluster,
    Outcome,
    PhaseResult,
    PhaseStatus,
    ProbeResult,
    RootCause,
    RunResult,
    TestResult,
    Verdict,
    Why,
    utcnow,
)
from greenloop.store import Store, store_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = store_url(None, tmp_path)
    else:
        url = store_url(request.getfixturevalue("pg_database"), tmp_path)
    s = Store.open(url)
    yield s
    s.close()


def phase(*tests: TestResult) -> PhaseResult:
    return PhaseResult(name="smoke", status=PhaseStatus.FAILED, duration_s=1.0, tests=tests)


def test_sqlite_lives_beside_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENLOOP_STORE_URL", raising=False)
    assert store_url(None, tmp_path) == f"sqlite:///{tmp_path / '.greenloop' / 'store.db'}"
    assert store_url("postgresql://u@h/db", tmp_path) == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("GREENLOOP_STORE_URL", "postgresql://x@y/z")
    assert store_url(None, tmp_path).startswith("postgresql+psycopg://x@y/z")


def test_reopening_applies_no_migration_twice(tmp_path: Path) -> None:
    url = store_url(None, tmp_path)
    Store.open(url).close()
    store = Store.open(url)
    store.runs.start_run("r1", environment="e", focus="all", command_line="", config_path="")
    assert store.runs.latest_run() is not None
    store.close()


def test_a_current_store_opens_without_alembic_and_an_old_one_is_upgraded(
    tmp_path: Path,
) -> None:
    import sqlalchemy
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from greenloop.store import MIGRATIONS, migration_heads, schema_is_current

    # Exactly one head: every new migration chains onto the newest one before it.
    assert len(migration_heads()) == 1
    url = store_url(None, tmp_path)
    engine = sqlalchemy.create_engine(url)
    (tmp_path / ".greenloop").mkdir(exist_ok=True)
    with engine.begin() as conn:  # a store written by the first release
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert not schema_is_current(engine)
    engine.dispose()
    store = Store.open(url)
    assert store.collections.cached_collections(["nothing"]) == {}  # a table of a later migration
    assert schema_is_current(store.engine)
    store.close()


def test_run_lifecycle_and_results(store: Store) -> None:
    store.runs.start_run(
        "r1", environment="staging", focus="all", command_line="gl run", config_path=""
    )
    passed = TestResult("t.py::a", Outcome.PASSED, duration_s=0.5)
    failed = TestResult("t.py::b", Outcome.FAILED, duration_s=1.5, message="boom")
    store.results.record_phase("r1", 1, phase(passed, failed), revision="7")
    cluster = Cluster(
        id="C-1",
        fingerprint="abc",
        category=Category.PRODUCT,
        confidence=0.9,
        tests=("t.py::b",),
        title="b fails",
        reason="APP-500",
        root_cause=RootCause("bug", "backend", (Why("500", "log line", True),)),
    )
    classification = Classification("t.py::b", Category.PRODUCT, 0.9, "rule", "evidence")
    store.triage.record_triage("r1", 1, [classification], [cluster], {"t.py::a": False})
    now = utcnow()
    store.runs.finish_run(RunResult("r1", Verdict.FAILING, now, now, "staging", "7", iterations=()))

    row = store.runs.run("r1")
    assert row is not None and row.status == "finished" and row.exit_code == 1
    tests = {t.nodeid: t for t in store.results.run_tests("r1")}
    assert tests["t.py::b"].category == "product" and tests["t.py::b"].fingerprint == "abc"
    assert tests["t.py::a"].real is False
    assert store.triage.run_clusters("r1")[0].root_cause["whys"][0]["verified"] is True
    assert store.results.durations() == {"t.py::a": 0.5}
    assert [h.outcome for h in store.triage.test_history("t.py::b")] == ["failed"]


def test_pass_durations_are_recent_real_passes_newest_first(store: Store) -> None:
    """The raw history verify takes its robust median over: real passes only, capped."""
    for i in range(4):
        run_id = f"r{i}"
        store.runs.start_run(run_id, environment="e", focus="all", command_line="", config_path="")
        store.results.record_phase(
            run_id,
            1,
            phase(
                TestResult("t.py::a", Outcome.PASSED, duration_s=1.0 + i),
                TestResult("t.py::b", Outcome.FAILED, duration_s=9.0),
                TestResult("t.py::c", Outcome.PASSED, duration_s=0.001),
            ),
        )
        store.triage.record_triage(run_id, 1, [], [], {"t.py::c": False})  # c never really ran
    assert store.results.pass_durations() == {"t.py::a": [4.0, 3.0, 2.0, 1.0]}
    assert store.results.pass_durations(["t.py::a"], last=2) == {"t.py::a": [4.0, 3.0]}


def test_probe_history_window(store: Store) -> None:
    now = utcnow()
    store.probes.record_probes(
        [
            ProbeResult("cache", "ping", "redis", "redis://x", False, None, "refused", now),
            ProbeResult(
                "cache", "ping", "redis", "redis://x", True, 1.0, "ok", now - timedelta(hours=1)
            ),
        ]
    )
    window = store.triage.probes_between(now - timedelta(minutes=1), now + timedelta(minutes=1))
    assert [p.ok for p in window] == [False]


def test_dead_runs_are_marked_crashed(store: Store) -> None:
    store.runs.start_run("dead", environment="e", focus="all", command_line="", config_path="")
    store.runs.start_run("alive", environment="e", focus="all", command_line="", config_path="")
    with store.session() as s:
        from greenloop.store.schema import RunRow

        row = s.get(RunRow, "dead")
        assert row is not None
        row.pid = 2**22 + 12345  # above pid_max: never a live process
    assert store.runs.mark_dead_runs() == ["dead"]
    dead, alive = store.runs.run("dead"), store.runs.run("alive")
    assert dead is not None and dead.status == "crashed"
    assert alive is not None and alive.status == "running" and alive.pid == os.getpid()
