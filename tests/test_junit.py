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
