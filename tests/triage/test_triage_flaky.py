"""Flakiness from stored history: flips on one revision, pass-on-retry, environment or not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from triage_helpers import T0, failed, gate, probe

from greenloop.load import config_from_dict
from greenloop.records import (
    Category,
    Outcome,
    PhaseResult,
    PhaseStatus,
    ProbeResult,
    TestResult,
)
from greenloop.store import Store, schema
from greenloop.triage import triage
from greenloop.triage.flaky import HistoryPoint, flaky_report, flips, score_history

NODE_A = "tests/test_chat.py::test_typing_indicator"
NODE_B = "tests/test_chat.py::test_presence"
NODE_C = "tests/test_chat.py::test_login"


def test_flips_count_disagreements() -> None:
    assert flips([True, False, True, False]) == 3
    assert flips([False, False, False]) == 0


def test_score_only_counts_the_latest_revision() -> None:
    points = [
        HistoryPoint(True, "2", None),
        HistoryPoint(True, "2", None),
        HistoryPoint(False, "1", None),  # fixed by revision 2: not flakiness
    ]
    assert score_history("t", points).verdict == "stable"
    points = [HistoryPoint(False, "2", None, passed_on_retry=True), HistoryPoint(True, "2", None)]
    scored = score_history("t", points)
    assert (scored.verdict, scored.passed_on_retry, scored.flips) == ("flaky", 1, 1)


def _record(
    store: Store, run: str, at: datetime, outcomes: dict[str, Outcome], *, probe_down: bool
) -> None:
    """One past run `at` a given time (runs an hour apart, so probe windows never overlap)."""
    store.runs.start_run(run, environment="staging", focus="all", command_line="", config_path="")
    if probe_down:
        down = ProbeResult(
            "cache",
            "cache",
            "tcp",
            "127.0.0.1:6390",
            False,
            None,
            "refused",
            checked_at=at - timedelta(seconds=0.5),
        )
        store.probes.record_probes([down], run, 1)
    tests = tuple(TestResult(n, o, duration_s=1.0) for n, o in outcomes.items())
    store.results.record_phase(
        run, 1, PhaseResult("smoke", PhaseStatus.FAILED, 1.0, tests), "rev-7"
    )
    with store.session() as s:
        s.execute(
            update(schema.TestResultRow)
            .where(schema.TestResultRow.run_id == run)
            .values(finished_at=at)
        )


def _history(store: Store) -> None:
    for i in range(6):
        down = i % 2 == 1
        _record(
            store,
            f"run-{i}",
            T0 - timedelta(hours=6 - i),
            {
                # flips with no probe failing: nondeterministic
                NODE_A: Outcome.FAILED if i in (2, 4) else Outcome.PASSED,
                # fails exactly when the cache probe fails: the environment
                NODE_B: Outcome.FAILED if down else Outcome.PASSED,
                NODE_C: Outcome.PASSED,
            },
            probe_down=down,
        )


def _check(store: Store) -> None:
    report = {f.nodeid: f for f in flaky_report(store, 20)}
    assert report[NODE_A].verdict == "flaky" and report[NODE_A].flips == 4
    assert report[NODE_A].score == pytest.approx(4 / 5)
    assert report[NODE_B].verdict == "environment"
    assert NODE_C not in report
    assert flaky_report(store, 20)[0].nodeid == NODE_A  # flaky ones first

    # triage reads the same history: A is flaky, B is the environment's fault
    text = "E   AssertionError: assert 'typing' in []"
    result = triage(
        [failed(text, nodeid=NODE_A), failed(text, nodeid=NODE_B)],
        gate=gate(probe("backend", True, "200")),
        index=[],
        config=None,
        store=store,
        revision="rev-7",
    )
    categories = {c.nodeid: c.category for c in result.classifications}
    assert categories == {NODE_A: Category.FLAKY, NODE_B: Category.INFRASTRUCTURE}


def test_flaky_report_on_sqlite(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        _history(store)
        _check(store)
    finally:
        store.close()


@pytest.fixture
def pg_store(pg_database: str) -> Iterator[Store]:
    store = Store.open(pg_database)
    yield store
    store.close()


@pytest.mark.postgres
def test_flaky_report_on_postgres(pg_store: Store) -> None:
    _history(pg_store)
    _check(pg_store)


def test_triage_reads_the_store_once_per_kind_not_once_per_failure(tmp_path) -> None:
    """History, probes during the tests and the previous revision's results are read in a
    fixed number of queries, whether 2 or 40 tests fail; the facts equal each test's own."""
    from sqlalchemy import event

    from greenloop.triage.flaky import histories_facts, history_facts

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    nodes = [f"tests/test_m.py::test_{i}" for i in range(40)]
    try:
        for i in range(4):
            outcomes = {n: Outcome.FAILED if (i + k) % 2 else Outcome.PASSED for k, n in
                        enumerate(nodes)}  # fmt: skip
            _record(store, f"run-{i}", T0 - timedelta(hours=6 - i), outcomes, probe_down=i == 1)
        statements: list[str] = []

        def count(conn: object, cursor: object, sql: str, *args: object) -> None:
            if sql.lstrip().upper().startswith("SELECT"):
                statements.append(sql)

        event.listen(store.engine, "before_cursor_execute", count)

        def reads(n: int) -> int:
            statements.clear()
            tests = [failed("E   AssertionError: boom", nodeid=node, started_at=T0) for node in
                     nodes[:n]]  # fmt: skip
            triage(tests, gate=gate(probe("backend", True, "200")), store=store, revision="rev-8")
            return len(statements)

        few, many = reads(2), reads(40)
        assert few == many and many <= 6, statements
        batch = histories_facts(store, nodes, 20)
        assert all(batch[n] == history_facts(store, n, 20) for n in nodes)
        assert {f.verdict for f in batch.values()} >= {"environment", "flaky"}
    finally:
        store.close()


# ------------------------------------- one known revision, one environment, real verdicts


def _runs(
    store: Store,
    outcomes: list[Outcome],
    *,
    revision: str | None,
    environment: str = "staging",
    prefix: str = "run",
) -> None:
    """One past run per outcome of NODE_A, an hour apart, no probe failing."""
    for i, outcome in enumerate(outcomes):
        run = f"{prefix}-{i}"
        store.runs.start_run(
            run, environment=environment, focus="all", command_line="", config_path=""
        )
        tests = (TestResult(NODE_A, outcome, duration_s=1.0),)
        store.results.record_phase(
            run, 1, PhaseResult("smoke", PhaseStatus.FAILED, 1.0, tests), revision
        )
        with store.session() as s:
            s.execute(
                update(schema.TestResultRow)
                .where(schema.TestResultRow.run_id == run)
                .values(finished_at=T0 - timedelta(hours=len(outcomes) - i))
            )


def _category(store: Store, outcome: Outcome, revision: str | None) -> Category:
    """The category triage gives NODE_A's failure now, in a run of environment `staging`."""
    text = "E   AssertionError: assert 'typing' in []"
    config = config_from_dict({"environment": {"name": "staging"}}, Path("greenloop.toml"))
    (c,) = triage(
        [failed(text, nodeid=NODE_A, outcome=outcome)],
        gate=gate(probe("backend", True, "200")),
        config=config,
        store=store,
        revision=revision,
    ).classifications
    return c.category


P, F = Outcome.PASSED, Outcome.FAILED


def test_runs_of_an_unknown_revision_are_never_one_revision(tmp_path) -> None:
    """The field trial: pass/fail runs with no `version_url` (revision None), then a run
    whose tests fail: no flips, because nothing says those runs ran the same code."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        _runs(store, [P, F, P, F, P, F], revision=None)
        assert _category(store, F, None) is not Category.FLAKY
        # Even a known revision now does not make the unknown past comparable with it.
        assert _category(store, F, "rev-9") is not Category.FLAKY
        facts = flaky_report(store, 20)
        assert facts == [], facts  # `greenloop flaky`: nothing flips on a known revision
        assert score_history(NODE_A, [HistoryPoint(True, None, None)] * 2 + [
            HistoryPoint(False, None, None)]).runs == 0  # fmt: skip
    finally:
        store.close()


def test_flips_on_one_known_revision_in_another_environment_do_not_count(tmp_path) -> None:
    from greenloop.triage.flaky import history_facts

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        _runs(store, [P, F, P, F, P], revision="rev-7", environment="perf")
        assert _category(store, F, "rev-7") is not Category.FLAKY  # triage's env: staging
        assert history_facts(store, NODE_A, 20, environment="staging").runs == 0
        assert history_facts(store, NODE_A, 20, environment="perf").verdict == "flaky"
        # The same history in this environment is flakiness (the control).
        _runs(store, [P, F, P, F, P], revision="rev-7", prefix="staging")
        assert _category(store, F, "rev-7") is Category.FLAKY
    finally:
        store.close()


def test_timeouts_and_tests_that_never_started_are_no_flips(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        # Passes with timeouts and crashes (pytest stopped) between them: no flip.
        _runs(store, [P, Outcome.TIMEOUT, P, Outcome.CRASHED, P, Outcome.TIMEOUT], revision="r1")
        assert _category(store, F, "r1") is not Category.FLAKY
        # A test that timed out now is no flip either, whatever its past on this revision.
        _runs(store, [P, F, P, F, P], revision="r1", prefix="flips")
        assert _category(store, F, "r1") is Category.FLAKY  # the control: a real failure
        assert _category(store, Outcome.TIMEOUT, "r1") is not Category.FLAKY
    finally:
        store.close()


def test_a_test_the_runner_stopped_is_no_one_s_fault_on_that_evidence() -> None:
    """The field trial's hung run: one test was stopped by the phase deadline, the other
    never started. Neither is flaky, nor the test's fault by a guess from the runner's note."""
    tests = [
        TestResult(f"{NODE_A}[asyncpg]", Outcome.TIMEOUT,
                   message="the phase deadline of 900s passed while it ran"),
        TestResult(f"{NODE_A}[aiopg]", Outcome.TIMEOUT,
                   message="not run: the phase deadline of 900s passed"),
        TestResult(NODE_B, Outcome.CRASHED, message="pytest died (exit code -9) while it ran"),
    ]  # fmt: skip
    result = triage(tests, gate=gate(), revision="r1")
    assert {(c.category, c.rule) for c in result.classifications} == {
        (Category.UNKNOWN, "stopped-by-runner")
    }
    # An error of its own decides as usual (here pytest-timeout's, in test code).
    own = failed("E   Failed: Timeout >20.0s", outcome=Outcome.TIMEOUT)
    (c,) = triage([own], gate=gate(), revision="r1").classifications
    assert c.rule != "stopped-by-runner"


def test_the_revision_a_failure_came_with_is_read_in_this_environment(tmp_path) -> None:
    """With no deploy in the run, triage looks up the revision the failing test last passed
    on: a pass in another environment is no evidence that this revision brought it."""
    config = config_from_dict({"environment": {"name": "staging"}}, Path("greenloop.toml"))
    text = "E   AssertionError: assert 'typing' in []"

    def whys(store: Store) -> str:
        result = triage([failed(text, nodeid=NODE_A)], gate=gate(probe("backend", True, "200")),
                        config=config, store=store, revision="rev-2")  # fmt: skip
        return " ".join(w.why for c in result.clusters for w in c.root_cause.whys)

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        _runs(store, [P], revision="rev-1", environment="perf")
        assert "revision rev-2" not in whys(store)
        _runs(store, [P], revision="rev-1", prefix="staging")  # the control: this environment
        assert "it appeared with revision rev-2" in whys(store)
    finally:
        store.close()
