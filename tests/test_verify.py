"""Authenticity checks over plain records: did each test really run?"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from greenloop.load import config_from_dict
from greenloop.records import (
    Connection,
    IndexEntry,
    Outcome,
    PhaseResult,
    PhaseStatus,
    Strength,
    TestResult,
)
from greenloop.verify import check_authenticity, env_skip

CONFIG = config_from_dict(
    {
        "environment": {
            "base_url": "http://localhost:8000",
            "urls": {"ws": "ws://10.0.0.5:9000/ws"},
        },
        "execution": {"target_hosts": ["db.internal"]},
        "phases": [
            {"name": "js", "runner": "command", "command": ["npm", "test"], "junit": "j.xml"}
        ],
    },
    Path("greenloop.toml"),
)
REAL = (Connection("127.0.0.1", 8000),)


def run(*tests: TestResult, name: str = "smoke", **phase: object) -> PhaseResult:
    return PhaseResult(name=name, status=PhaseStatus.PASSED, duration_s=1.0, tests=tests, **phase)  # type: ignore[arg-type]


def checks(
    *phases: PhaseResult,
    history: dict[str, list[float]] | None = None,
    index=(),
    strength: Strength = Strength.STRONG,
) -> list[tuple[str, str, str]]:
    found = check_authenticity(phases, config=CONFIG, index=index, history=history or {})
    return [(f.nodeid, f.check, f.evidence) for f in found if f.strength is strength]


def test_a_real_passing_test_has_no_findings() -> None:
    assert checks(run(TestResult("t::ok", Outcome.PASSED, duration_s=0.2, connections=REAL))) == []


def test_each_kind_of_evidence() -> None:
    """A phase where nothing reached a target: every signal is strong."""
    phase = run(
        TestResult(
            "t::alone", Outcome.PASSED, duration_s=0.2, connections=(Connection("8.8.8.8", 53),)
        ),
        TestResult(
            "t::mock",
            Outcome.PASSED,
            duration_s=0.2,
            mocks=("httpx.Client.get was replaced by MagicMock",),
        ),
        TestResult("t::env", Outcome.SKIPPED, skip_reason="staging is not available"),
        TestResult("t::feature", Outcome.SKIPPED, skip_reason="feature flag off"),
        TestResult(
            "t::coro", Outcome.PASSED, warnings=("RuntimeWarning: coroutine 'f' was never awaited",)
        ),
        TestResult("t::blocked", Outcome.BLOCKED, blocked_by="db"),
    )
    assert checks(phase) == [
        (
            "t::alone",
            "no_connection",
            "opened no connection to localhost:8000, 10.0.0.5:9000, db.internal; "
            "connections: 8.8.8.8:53",
        ),
        ("t::mock", "mocked", "httpx.Client.get was replaced by MagicMock"),
        (
            "t::mock",
            "no_connection",
            "opened no connection to localhost:8000, 10.0.0.5:9000, db.internal; connections: none",
        ),
        (
            "t::env",
            "skipped_env",
            "skipped because the environment was missing: 'staging is not available'",
        ),
        (
            "t::coro",
            "unawaited_coroutine",
            "RuntimeWarning: coroutine 'f' was never awaited: its checks never ran",
        ),
        (
            "t::coro",
            "no_connection",
            "opened no connection to localhost:8000, 10.0.0.5:9000, db.internal; connections: none",
        ),
    ]
    assert checks(phase, strength=Strength.WEAK) == []


def test_a_unit_test_among_e2e_tests_is_no_verdict_unless_the_index_says_e2e() -> None:
    """Real suites mix unit tests in: no traffic is only damning where traffic was expected."""
    e2e = TestResult(
        "t.py::db", Outcome.PASSED, duration_s=0.2, connections=(Connection("db.internal", 5432),)
    )
    unit = TestResult("t.py::parses_url", Outcome.PASSED, duration_s=0.0001, file="t.py")
    mocked = TestResult("t.py::retries", Outcome.PASSED, duration_s=0.01, mocks=("x was replaced",))
    phase = run(e2e, unit, mocked)
    assert checks(phase) == []
    assert checks(phase, strength=Strength.WEAK) == [("t.py::retries", "mocked", "x was replaced")]
    # An outage: the E2E tests fail (a C client's refused connect is not observable); the
    # one pass beside them is no reason to call the run fake.
    down = run(replace(e2e, outcome=Outcome.FAILED, connections=()), unit)
    assert checks(down) == [] and checks(down, strength=Strength.WEAK) == []
    declared = (IndexEntry("t.py", components=("payments",)),)
    assert [(n, c) for n, c, _ in checks(phase, index=declared)] == [
        ("t.py::parses_url", "no_connection"),
        ("t.py::retries", "mocked"),
        ("t.py::retries", "no_connection"),
    ]


def test_traffic_to_a_target_outranks_every_weaker_signal() -> None:
    """A 0.3 ms pass that talked to the target is real: no floor, no history overrides it."""
    fast = TestResult("t::fast", Outcome.PASSED, duration_s=0.0003, connections=REAL)
    mocked = TestResult(
        "t::mock", Outcome.PASSED, duration_s=0.004, connections=REAL, mocks=("x was replaced",)
    )
    index = (IndexEntry("t", min_duration_ms=100),)
    history = {"t::fast": [0.9] * 10}
    assert checks(run(fast, mocked), history=history, index=index) == []
    assert checks(run(fast, mocked), history=history, strength=Strength.WEAK) == [
        ("t::mock", "mocked", "x was replaced (the test also reached a target)")
    ]


def test_duration_is_judged_against_robust_history_only_without_traffic() -> None:
    """Command phases have no socket record: only the test's own history can say too fast."""
    nodeid = "cart::pays"
    js = run(TestResult(nodeid, Outcome.PASSED, duration_s=0.004), name="js")
    # One run (even a slow one, learned on a busy machine) is no history.
    assert checks(js, history={nodeid: [0.9]}) == []
    # 42 ms against a usual 418 ms is within the generous factor: not a finding.
    near = run(TestResult(nodeid, Outcome.PASSED, duration_s=0.042), name="js")
    assert checks(near, history={nodeid: [0.418] * 6}) == []
    # Far faster than the median of several real runs: strong.
    assert checks(js, history={nodeid: [0.9, 1.0, 0.8, 5.0, 0.95]}) == [
        (nodeid, "too_fast", "passed in 4.0 ms; the median of its last real passing runs is 950 ms")
    ]
    # A usual time too short to mean anything never flags.
    assert checks(js, history={nodeid: [0.05] * 10}) == []


def test_a_configured_floor_is_only_a_warning() -> None:
    test = TestResult("api/test_a.py::t", Outcome.PASSED, duration_s=0.04, file="api/test_a.py")
    index = (IndexEntry("api/test_a.py", min_duration_ms=100),)
    js = run(test, name="js")
    assert checks(js, index=index) == []
    assert checks(js, index=index, strength=Strength.WEAK) == [
        ("api/test_a.py::t", "too_fast", "passed in 40 ms; the configured minimum is 100 ms")
    ]


def test_zero_second_command_passes_are_a_warning_not_a_verdict() -> None:
    js = run(
        TestResult("cart::a", Outcome.PASSED, duration_s=0.0),
        TestResult("cart::b", Outcome.PASSED, duration_s=0.0),
        TestResult("cart::c", Outcome.PASSED, duration_s=0.3),
        name="js",
    )
    assert checks(js) == []
    assert checks(js, strength=Strength.WEAK) == [
        (
            "js",
            "no_duration",
            "2 of 3 passing tests report 0.000 s in the command's JUnit and no traffic is "
            "observable (cart::a, cart::b)",
        )
    ]
    # ...unless the test's own history says it takes seconds.
    assert [c for _, c, _ in checks(js, history={"cart::a": [2.0] * 5})] == ["too_fast"]


def test_xfail_is_neither_a_skip_nor_a_finding() -> None:
    xfailed = TestResult(
        "t::eu",
        Outcome.PASSED,
        duration_s=0.05,
        xfail="xfailed",
        xfail_reason="search backend not available for EU tenants",
    )
    assert checks(run(xfailed)) == [] and checks(run(xfailed), strength=Strength.WEAK) == []
    xpassed = TestResult("t::x", Outcome.PASSED, duration_s=0.05, xfail="xpassed")
    assert [c for _, c, _ in checks(run(xpassed))] == ["no_connection"]


def test_phase_level_findings_and_what_is_exempt() -> None:
    empty = run(name="smoke")
    broken = run(
        TestResult("t::ok", Outcome.PASSED, duration_s=1, connections=REAL),
        collection_errors=("tests/test_x.py: E   ModuleNotFoundError: No module named 'foo'",),
    )
    blocked = PhaseResult("late", PhaseStatus.BLOCKED, 0.0, blocked_by="db")
    js = run(TestResult("cart::pays", Outcome.PASSED, duration_s=0.5), name="js")
    assert checks(empty, broken, blocked, js) == [
        ("smoke", "nothing_collected", "phase 'smoke' collected no tests"),
        (
            "tests/test_x.py",
            "collection_error",
            "could not be collected: ModuleNotFoundError: No module named 'foo'",
        ),
    ]


def test_env_skip_patterns() -> None:
    for reason in (
        "staging is not available",
        "environment unavailable",
        "service down",
        "Connection refused",
        "API not reachable",
        "STAGING_URL not set",
        "Redis server is not running",
        "could not connect to server: Connection refused",
    ):
        assert env_skip(reason), reason
    for reason in (
        "only on Windows",
        "feature flag off",
        "xfail: known bug 12",
        "available in v2 only",
        "SSL not available on this server",
        "libpq not available",
        "numpy not installed",
        "requires server version >= 7.0",
        "RedisJSON module not available",
        # A capability of a server that answered (psycopg2's suite on a PostgreSQL with
        # max_prepared_transactions = 0 gave exit 4 for this one).
        "server not configured for two phase transactions. "
        "set max_prepared_transactions to > 0 to run the test",
        "database does not support the JSONB type",
        "server too old for this feature",
    ):
        assert not env_skip(reason), reason


def test_an_iteration_where_no_phase_ran_anything_is_not_real() -> None:
    from greenloop.config import Config
    from greenloop.records import PhaseResult, PhaseStatus
    from greenloop.verify import check_authenticity

    phases = [
        PhaseResult("smoke", PhaseStatus.SKIPPED, 0.0, note="nothing selected: no file matches"),
        PhaseResult("all", PhaseStatus.SKIPPED, 0.0, note="nothing selected: no file matches"),
    ]
    findings = check_authenticity(phases, config=Config(), index=[], history={})
    assert [f.check for f in findings] == ["nothing_collected"]
    assert "no file matches" in findings[0].evidence
    blocked = [PhaseResult("smoke", PhaseStatus.BLOCKED, 0.0, blocked_by="cache")]
    assert check_authenticity(blocked, config=Config(), index=[], history={}) == []
