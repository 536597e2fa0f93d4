"""JUnit XML from many tools -> TestResult records; broken files -> one clear InputError."""

# ruff: noqa: E501  (the XML samples keep the long lines real tools write)

from __future__ import annotations

from pathlib import Path

import pytest

from greenloop.errors import InputError
from greenloop.junit import parse_junit
from greenloop.records import Outcome

PYTEST = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="1.2">
<testcase classname="tests.test_api" name="test_ok" file="tests/test_api.py" line="10" time="0.120"/>
<testcase classname="tests.test_api" name="test_bad" time="0.300"><failure message="AssertionError: assert 500 == 200">def test_bad():
&gt;       assert r.status_code == 200
E       AssertionError: assert 500 == 200</failure><system-out>request id abc</system-out></testcase>
<testcase classname="tests.test_api" name="test_skip" time="0"><skipped type="pytest.skip" message="staging is not available">skip</skipped></testcase>
<testcase classname="tests.test_api" name="test_err" time="0.01"><error message="failed on setup with &quot;ConnectionRefusedError&quot;">ConnectionRefusedError</error></testcase>
<testcase classname="tests.test_api" name="test_slow" time="1.0"><failure message="Failed: Timeout (&gt;1.0s) from pytest-timeout.">Timeout</failure></testcase>
</testsuite></testsuites>"""

JEST = """<testsuites name="jest tests" tests="2" failures="1">
  <testsuite name="cart" tests="2" failures="1" time="1.1">
    <testcase classname="cart adds an item" name="cart adds an item" time="0.4"/>
    <testcase classname="cart pays" name="cart pays" time="0.7">
      <failure>Error: expect(received).toBe(expected) Expected: 200 Received: 502</failure>
    </testcase>
  </testsuite>
</testsuites>"""

GO = """<testsuites><testsuite name="example.com/api" tests="2" failures="0" time="0.5">
<properties><property name="go.version" value="go1.22"/></properties>
<testcase classname="example.com/api" name="TestHealth" time="0.010"/>
<testcase classname="example.com/api" name="TestHealth" time="0.020"/>
</testsuite></testsuites>"""

SUREFIRE = """<testsuite name="com.shop.CheckoutIT" tests="2">
<testcase classname="com.shop.CheckoutIT" name="pays" time="2.5"><flakyFailure message="502">stack</flakyFailure></testcase>
<testcase classname="com.shop.CheckoutIT" name="refunds" time="1,234.5"><failure message="boom"/><rerunFailure message="boom"/></testcase>
</testsuite>"""


def write(tmp_path: Path, text: str, name: str = "report.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_pytest_junit(tmp_path: Path) -> None:
    results = parse_junit(write(tmp_path, PYTEST), phase="api")
    got = [(r.nodeid, r.outcome, r.duration_s) for r in results]
    assert got == [
        ("tests/test_api.py::test_ok", Outcome.PASSED, 0.12),
        ("tests/test_api.py::test_bad", Outcome.FAILED, 0.3),
        ("tests/test_api.py::test_skip", Outcome.SKIPPED, 0.0),
        ("tests/test_api.py::test_err", Outcome.ERROR, 0.01),
        ("tests/test_api.py::test_slow", Outcome.TIMEOUT, 1.0),
    ]
    ok, bad, skip, *_ = results
    assert ok.file == "tests/test_api.py" and ok.line == 10 and ok.phase == "api"
    assert bad.message == "AssertionError: assert 500 == 200"
    assert "assert r.status_code == 200" in bad.longrepr and bad.stdout == "request id abc"
    assert skip.skip_reason == "staging is not available"


def test_jest_go_and_surefire_variants(tmp_path: Path) -> None:
    jest = parse_junit(write(tmp_path, JEST))
    assert [(r.nodeid, r.outcome) for r in jest] == [
        ("cart adds an item", Outcome.PASSED),
        ("cart pays", Outcome.FAILED),
    ]
    assert jest[1].message.startswith("Error: expect(received)")
    go = parse_junit(write(tmp_path, GO))  # `go test -count=2`: one test, run twice
    assert [(r.nodeid, r.outcome, r.reruns, r.duration_s) for r in go] == [
        ("example.com/api::TestHealth", Outcome.PASSED, (), 0.03)
    ]
    pays, refunds = parse_junit(write(tmp_path, SUREFIRE))
    assert pays.outcome is Outcome.FAILED and pays.passed_on_rerun
    assert refunds.reruns == (Outcome.FAILED,) and refunds.duration_s == 1234.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1: empty file"),
        (
            "<testsuites><testsuite>\n<testcase name='a'>\n</testsuite>",
            "line 3, column 3: not well-formed XML",
        ),
        (
            "<html><body>502 Bad Gateway</body></html>",
            "line 1: expected <testsuites> or <testsuite>",
        ),
        ("\x00\x01garbage", "line 1, column 1: not well-formed XML"),
    ],
)
def test_malformed_files_are_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        parse_junit(path)
    assert str(caught.value).startswith(f"{path}: {expected}")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.xml: JUnit XML file not found"):
        parse_junit(tmp_path / "missing.xml")


def test_times_in_any_notation(tmp_path: Path) -> None:
    times = ["0.5", "0,5", "1,234.5", "1.234,5", "1,234,567", "1.234.567", "150ms", "2.5s"]
    cases = "".join(f'<testcase name="t{i}" time="{t}"/>' for i, t in enumerate(times))
    results = parse_junit(write(tmp_path, f"<testsuite>{cases}</testsuite>"))
    assert [r.duration_s for r in results] == [
        0.5,
        0.5,
        1234.5,
        1234.5,
        1234567,
        1234567,
        0.15,
        2.5,
    ]


def test_same_names_in_different_files_are_different_tests(tmp_path: Path) -> None:
    """jest-junit names a suite after its file; the describe/test names repeat across files."""
    text = """<testsuites>
<testsuite name="src/a.test.ts"><testcase classname="cart adds" name="cart adds"/></testsuite>
<testsuite name="src/b.test.ts"><testcase classname="cart adds" name="cart adds">
<failure>boom</failure></testcase></testsuite>
</testsuites>"""
    results = parse_junit(write(tmp_path, text))
    assert [(r.nodeid, r.outcome) for r in results] == [
        ("cart adds[src/a.test.ts]", Outcome.PASSED),
        ("cart adds[src/b.test.ts]", Outcome.FAILED),
    ]


def test_greenloops_own_junit_reads_back_to_the_same_tests(tmp_path: Path) -> None:
    """`report/junit_out.py` writes what `parse_junit` reads: node ids, outcomes, reruns."""
    from datetime import UTC, datetime

    from greenloop.records import (
        IterationResult,
        PhaseResult,
        PhaseStatus,
        RunResult,
        TestResult,
        Verdict,
    )
    from greenloop.report.junit_out import junit_xml

    now = datetime(2026, 3, 1, tzinfo=UTC)
    tests = (
        TestResult("tests/test_a.py::test_ok", Outcome.PASSED, 0.2, file="tests/test_a.py"),
        TestResult(
            "tests/test_a.py::TestCart::test_total",
            Outcome.FAILED,
            0.3,
            file="tests/test_a.py",
            message="assert 1 == 2",
            reruns=(Outcome.PASSED,),
        ),
        TestResult("tests/test_b.py::test_native", Outcome.CRASHED, 1.0, file="tests/test_b.py"),
        TestResult("tests/test_b.py::test_slow", Outcome.TIMEOUT, 5.0, file="tests/test_b.py"),
        TestResult("tests/test_b.py::test_env", Outcome.SKIPPED, file="tests/test_b.py"),
    )
    phase = PhaseResult("api", PhaseStatus.FAILED, 7.0, tests)
    iteration = IterationResult(1, Verdict.FAILING, 7.0, now, phases=(phase,))
    run = RunResult("r1", Verdict.FAILING, now, now, "staging", None, (iteration,))
    back = parse_junit(write(tmp_path, junit_xml(run)))
    assert [(r.nodeid, r.outcome, r.reruns) for r in back] == [
        (t.nodeid, t.outcome, t.reruns) for t in tests
    ]
