"""Authenticity checks over plain records: did each test really run?"""

from __future__ import annotations

from pathlib import Path

from greenloop.config import config_from_dict
from greenloop.records import Connection, IndexEntry, Outcome, PhaseResult, PhaseStatus, TestResult
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
    *phases: PhaseResult, durations: dict[str, float] | None = None, index=()
) -> list[tuple[str, str, str]]:
    found = check_authenticity(phases, config=CONFIG, index=index, durations=durations or {})
    return [(f.nodeid, f.check, f.evidence) for f in found]


def test_a_real_passing_test_has_no_findings() -> None:
    assert checks(run(TestResult("t::ok", Outcome.PASSED, duration_s=0.2, connections=REAL))) == []


def test_each_kind_of_evidence() -> None:
    phase = run(
        TestResult("t::fast", Outcome.PASSED, duration_s=0.0003, connections=REAL),
        TestResult(
            "t::alone", Outcome.PASSED, duration_s=0.2, connections=(Connection("8.8.8.8", 53),)
        ),
        TestResult(
            "t::mock",
            Outcome.PASSED,
            duration_s=0.2,
            connections=REAL,
            mocks=("httpx.Client.get was replaced by MagicMock",),
        ),
        TestResult("t::env", Outcome.SKIPPED, skip_reason="staging is not available"),
        TestResult("t::feature", Outcome.SKIPPED, skip_reason="feature flag off"),
        TestResult(
            "t::coro", Outcome.FAILED, warnings=("RuntimeWarning: coroutine 'f' was never awaited",)
        ),
        TestResult("t::blocked", Outcome.BLOCKED, blocked_by="db"),
        TestResult(
            "t::db", Outcome.PASSED, duration_s=0.2, connections=(Connection("db.internal", 5432),)
        ),
    )
    assert checks(phase) == [
        ("t::fast", "too_fast", "passed in 0.3 ms; minimum for an E2E test is 10 ms"),
        (
            "t::alone",
            "no_connection",
            "opened no connection to localhost:8000, 10.0.0.5:9000, db.internal; "
            "connections: 8.8.8.8:53",
        ),
        ("t::mock", "mocked", "httpx.Client.get was replaced by MagicMock"),
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
    ]


def test_history_and_index_set_the_minimum_duration() -> None:
    test = TestResult(
        "api/test_a.py::t", Outcome.PASSED, duration_s=0.04, file="api/test_a.py", connections=REAL
    )
    assert checks(run(test), durations={"api/test_a.py::t": 0.9}) == [
        (
            "api/test_a.py::t",
            "too_fast",
            "passed in 40 ms; it usually takes 900 ms (past passing runs)",
        )
    ]
    index = (IndexEntry("api/test_a.py", min_duration_ms=100),)
    assert (
        checks(run(test), index=index)[0][2] == "passed in 40 ms; minimum for an E2E test is 100 ms"
    )


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
    ):
        assert env_skip(reason), reason
    for reason in (
        "only on Windows",
        "feature flag off",
        "xfail: known bug 12",
        "available in v2 only",
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
    findings = check_authenticity(phases, config=Config(), index=[], durations={})
    assert [f.check for f in findings] == ["nothing_collected"]
    assert "no file matches" in findings[0].evidence
    blocked = [PhaseResult("smoke", PhaseStatus.BLOCKED, 0.0, blocked_by="cache")]
    assert check_authenticity(blocked, config=Config(), index=[], durations={}) == []
