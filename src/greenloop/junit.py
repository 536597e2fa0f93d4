"""JUnit XML -> `TestResult` records.

Reads what pytest, jest-junit, Playwright, go-junit-report, Maven Surefire and
most CI tools write: <testsuites> or a bare <testsuite>, nested suites,
<testcase> with <failure>, <error>, <skipped>, <system-out>/<system-err>, and
Surefire's <flakyFailure>/<rerunFailure>. A file that cannot be read becomes
one InputError naming the file and the line, never a traceback.
Used by the command runner and by `greenloop triage FILE.xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from greenloop.errors import InputError
from greenloop.records import Outcome, TestResult

TRIM = 8000
SUITE_TAGS = ("testsuites", "testsuite")
TIMEOUT_HINTS = ("from pytest-timeout", "test timed out after", "exceeded timeout")


def parse_junit(path: str | Path, *, phase: str = "") -> list[TestResult]:
    """Every <testcase> of a JUnit XML file, in document order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: JUnit XML file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read JUnit XML ({exc.strerror or exc})") from None
    return parse_junit_text(data, source=str(path), phase=phase)


def parse_junit_text(data: bytes | str, *, source: str, phase: str = "") -> list[TestResult]:
    """Parse JUnit XML already in memory; `source` names it in errors."""
    if not data.strip():
        raise InputError(f"{source}: line 1: empty file, expected JUnit XML")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        raise InputError(
            f"{source}: line {line}, column {column + 1}: not well-formed XML ({reason})"
        ) from None
    if root.tag not in SUITE_TAGS:
        raise InputError(
            f"{source}: line 1: expected <testsuites> or <testsuite> as the root element, "
            f"found <{root.tag}>"
        )
    results: list[TestResult] = []
    seen: dict[str, int] = {}
    _walk(root, "", results, seen, phase)
    return results


def _walk(
    suite: ET.Element, parent: str, out: list[TestResult], seen: dict[str, int], phase: str
) -> None:
    name = suite.get("name") or parent
    for child in suite:
        if child.tag in SUITE_TAGS:
            _walk(child, name, out, seen, phase)
        elif child.tag == "testcase":
            result = _testcase(child, name, suite.get("file", ""), phase)
            count = seen.get(result.nodeid, 0) + 1
            seen[result.nodeid] = count
            if count > 1:  # the same name twice (parametrised in other tools): keep both
                result = _renamed(result, f"{result.nodeid}[{count}]")
            out.append(result)


def _nodeid(case: ET.Element, suite: str) -> str:
    name = (case.get("name") or "").strip()
    classname = (case.get("classname") or "").strip()
    if classname and name and classname != name:
        return f"{classname}::{name}"
    return name or classname or suite or "unnamed"


def _testcase(case: ET.Element, suite: str, suite_file: str, phase: str) -> TestResult:
    failure = case.find("failure")
    error = case.find("error")
    skipped = case.find("skipped")
    decisive = failure if failure is not None else error
    reruns: tuple[Outcome, ...] = ()
    if decisive is not None:
        outcome = Outcome.FAILED if failure is not None else Outcome.ERROR
        reruns = tuple(Outcome.FAILED for _ in case.iter("rerunFailure")) + tuple(
            Outcome.ERROR for _ in case.iter("rerunError")
        )
    elif (flaky := _first(case, "flakyFailure", "flakyError")) is not None:
        # Surefire: failed first, passed on a re-run. greenloop calls that a failure.
        decisive = flaky
        outcome = Outcome.FAILED if flaky.tag == "flakyFailure" else Outcome.ERROR
        reruns = (Outcome.PASSED,)
    elif skipped is not None:
        outcome = Outcome.SKIPPED
        decisive = skipped
    else:
        outcome = Outcome.PASSED
    message, longrepr = "", ""
    if decisive is not None:
        text = (decisive.text or "").strip()
        kind = decisive.get("type", "")
        message = decisive.get("message") or (text.splitlines()[0] if text else "") or kind
        longrepr = _trim(text or message)
        if outcome.is_failure and any(h in (message + text).lower() for h in TIMEOUT_HINTS):
            outcome = Outcome.TIMEOUT
    line = case.get("line")
    return TestResult(
        nodeid=_nodeid(case, suite),
        outcome=outcome,
        duration_s=_seconds(case.get("time")),
        phase=phase,
        file=case.get("file") or suite_file,
        line=int(line) if line and line.isdigit() else None,
        message=message.strip().splitlines()[0][:500] if message.strip() else "",
        longrepr=longrepr,
        stdout=_trim(_text(case, "system-out")),
        stderr=_trim(_text(case, "system-err")),
        skip_reason=message if outcome is Outcome.SKIPPED else "",
        reruns=reruns,
    )


def _seconds(value: str | None) -> float:
    """'1.5', '1,234.5' or missing -> seconds (0 when unreadable)."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value.replace(",", "")))
    except ValueError:
        return 0.0


def _text(case: ET.Element, tag: str) -> str:
    return "\n".join((e.text or "") for e in case.findall(tag)).strip()


def _trim(text: str) -> str:
    return text if len(text) <= TRIM else text[: TRIM // 4] + "\n...\n" + text[-TRIM * 3 // 4 :]


def _renamed(result: TestResult, nodeid: str) -> TestResult:
    return replace(result, nodeid=nodeid)


def _first(case: ET.Element, *tags: str) -> ET.Element | None:
    # Not `find(a) or find(b)`: an Element without children is falsy.
    for tag in tags:
        found = case.find(tag)
        if found is not None:
            return found
    return None
