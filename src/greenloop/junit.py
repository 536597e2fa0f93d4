"""JUnit XML -> `TestResult` records, one per test, read the way its producer meant it.

Reads what pytest (with xdist and rerunfailures), jest-junit, Playwright, googletest,
go-junit-report, Gradle, Maven Surefire/TestNG and most CI tools write: <testsuites> or a
bare <testsuite>, suites nested to any depth, <testcase> with <failure>, <error>,
<skipped>, <system-out>/<system-err>, and Surefire's <flakyFailure>/<rerunFailure>.

Identity (docs/execution.md, "JUnit test identity"): records of one test in one file are
attempts of that test, never new tests: pytest's second record for a teardown error joins
the call's record; pytest-rerunfailures' and Gradle test-retry's one record per attempt
become one result with `reruns`. The same test name under sibling suites that differ by
host or name (Playwright's projects, jest's files) is several tests, told apart by a
`[project]` or `[suite]` suffix. pytest's dotted `classname` and `file` attribute become
pytest's own node id (`tests/test_x.py::TestY::test_z`), so the index finds the file.

The file is read in chunks by an iterative parser (no recursion, bounded size, any
encoding Python knows); whatever it holds, a file that cannot be read becomes one
InputError naming the file and the line, never a traceback.
Used by the command runner and by `greenloop triage FILE.xml`.
"""

from __future__ import annotations

import codecs
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from pyexpat import version_info as EXPAT_VERSION
from typing import BinaryIO, cast

from greenloop.errors import InputError
from greenloop.records import Outcome, TestResult

TRIM = 8000
SUITE_TAGS = ("testsuites", "testsuite")
TIMEOUT_HINTS = ("from pytest-timeout", "test timed out after", "exceeded timeout")
MAX_BYTES = 1 << 30  # 1 GiB: far above 100,000 failures with tracebacks (~65 MB)
CHUNK = 1 << 20
# pytest-xdist's words when a worker process died under a test (segfault, os._exit, OOM kill)
_WORKER_CRASH = re.compile(
    r"worker '[^']*' crashed while running|node down: not properly terminated"
)  # matched against lower-cased text
# googletest's `status`/`result` values for a test it did not run
_NOT_RUN = frozenset({"notrun", "skipped", "suppressed", "disabled"})
# jest-junit's classname for a test file that could not load (import/syntax error)
_SUITE_FAILED = "Test suite failed to run"
_TEARDOWN = "failed on teardown with"  # pytest's message for a teardown error record
_FAILURES = frozenset(o for o in Outcome if o.is_failure)
# XML's EncName: a letter, then letters, digits, '.', '_', '-'
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z][\w.-]{0,39})["']""")
PYTEST_XFAIL = "pytest.xfail"  # the <skipped type> pytest gives an expected failure


def parse_junit(path: str | Path, *, phase: str = "") -> list[TestResult]:
    """Every test of a JUnit XML file, in document order of its first record.

    Raises InputError (one line, naming the file) for a file that is missing, unreadable,
    larger than MAX_BYTES, in an unknown encoding or not JUnit XML.
    """
    path = Path(path)
    try:
        with path.open("rb") as stream:
            return _parse(stream, str(path), phase)
    except FileNotFoundError:
        raise InputError(f"{path}: JUnit XML file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read JUnit XML ({exc.strerror or exc})") from None


def parse_junit_text(data: bytes | str, *, source: str, phase: str = "") -> list[TestResult]:
    """Parse JUnit XML already in memory; `source` names it in errors."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _parse(io.BytesIO(raw), source, phase)


# --------------------------------------------------------------------------- reading


def _encoding(head: bytes, source: str) -> str:
    """The Python codec for a file starting with `head`: its byte-order mark, the shape of
    its first '<' (UTF-16/32 without a mark), its XML declaration, else UTF-8."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return name
    for shape, name in (
        (b"<\0\0\0", "utf-32-le"),
        (b"\0\0\0<", "utf-32-be"),
        (b"<\0", "utf-16-le"),
        (b"\0<", "utf-16-be"),
    ):
        if head.startswith(shape):
            return name
    declared = _DECLARED.match(head)
    if declared is None:
        return "utf-8"
    name = declared.group(1).decode("ascii", "replace").strip()
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):
        codec = None
    if codec is None or not getattr(codec, "_is_text_encoding", True):  # 'hex', 'base64'
        raise InputError(
            f"{source}: line 1: the XML declaration names an unknown encoding {name!r}"
        )
    if codec.name in ("utf-16", "utf-32"):  # declared, but no mark and no shape: guess LE
        return codec.name + "-le"
    return codec.name


def _chunks(stream: BinaryIO, source: str) -> Iterator[str]:
    """The file as text chunks: decoded by Python (so any codec it knows works; bytes that
    are not valid in it become U+FFFD), at most MAX_BYTES read."""
    head = stream.read(CHUNK)
    if EXPAT_VERSION < (2, 4, 1) and b"<!ENTITY" in head:
        # Older expat has no limit on entity expansion ("billion laughs"); no JUnit writer
        # declares entities, so refuse them rather than expand them.
        raise InputError(f"{source}: declares XML entities; JUnit XML has none, not read")
    decoder = codecs.getincrementaldecoder(_encoding(head[:1024], source))(errors="replace")
    total = len(head)
    chunk = head
    try:
        while chunk:
            yield decoder.decode(chunk)
            chunk = stream.read(CHUNK)
            total += len(chunk)
            if total > MAX_BYTES:
                raise InputError(
                    f"{source}: larger than {MAX_BYTES >> 20} MiB; not read (split the report)"
                )
        yield decoder.decode(b"", final=True)
    except UnicodeError as exc:  # a codec that refuses even with errors="replace" (idna)
        raise InputError(f"{source}: cannot decode the file ({exc})") from None


@dataclass(slots=True)
class _Suite:
    name: str
    host: str
    file: str
    path: tuple[str, ...]  # names of this suite and those around it, outermost first


@dataclass(slots=True)
class _Record:
    """One <testcase> as written, before the identity rules join attempts (mutable: the
    rules rename it in place; a TestResult is built once, at the end)."""

    nodeid: str  # the test's identity before suites are told apart
    outcome: Outcome
    duration_s: float
    file: str
    line: int | None
    message: str
    longrepr: str
    stdout: str
    stderr: str
    skip_reason: str
    reruns: tuple[Outcome, ...]
    when: str
    suite: _Suite
    teardown: bool  # pytest's extra record for a teardown error
    xfail: str = ""  # "xfailed" for pytest's expected failure
    xfail_reason: str = ""

    def result(self, nodeid: str, phase: str) -> TestResult:
        return TestResult(
            nodeid=nodeid,
            outcome=self.outcome,
            duration_s=self.duration_s,
            phase=phase,
            file=self.file,
            line=self.line,
            message=self.message,
            longrepr=self.longrepr,
            stdout=self.stdout,
            stderr=self.stderr,
            skip_reason=self.skip_reason,
            reruns=self.reruns,
            when=self.when,
            xfail=self.xfail,
            xfail_reason=self.xfail_reason,
        )


def _parse(stream: BinaryIO, source: str, phase: str) -> list[TestResult]:
    parser: ET.XMLPullParser = ET.XMLPullParser(events=("start", "end"))
    stack: list[str] = []  # open elements; "" for a suite tag that is not a suite here
    suites: list[_Suite] = []
    records: list[_Record] = []
    pytest_file = False
    seen_root = content = False
    try:
        for text in _chunks(stream, source):
            content = content or bool(text.strip())
            if not content:
                continue
            parser.feed(text)
            events = cast(Iterator[tuple[str, ET.Element]], parser.read_events())
            for event, elem in events:  # "start" and "end" events carry elements
                tag = elem.tag
                if not isinstance(tag, str):
                    tag = ""
                elif "}" in tag:
                    tag = tag.rsplit("}", 1)[-1]  # {namespace}testsuite -> testsuite
                if event == "start":
                    if not seen_root:
                        seen_root = True
                        if tag not in SUITE_TAGS:
                            raise InputError(
                                f"{source}: line 1: expected <testsuites> or <testsuite> as "
                                f"the root element, found <{tag}>"
                            )
                        pytest_file = (elem.get("name") or "") == "pytest tests"
                    in_suite = not stack or stack[-1] in SUITE_TAGS
                    if tag in SUITE_TAGS and in_suite:
                        suites.append(_suite(elem, suites))
                        pytest_file = pytest_file or suites[-1].name == "pytest"
                    stack.append("" if tag in SUITE_TAGS and not in_suite else tag)
                    continue
                opened = stack.pop()
                if stack and stack[-1] not in SUITE_TAGS:
                    continue  # inside a test case or another element: not ours to read
                if opened == "testcase" and suites:
                    records.append(_record(elem, suites[-1]))
                    elem.clear()
                elif opened in SUITE_TAGS:
                    suites.pop()
                    elem.clear()
        if not content:
            raise InputError(f"{source}: line 1: empty file, expected JUnit XML")
        parser.close()
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        raise InputError(
            f"{source}: line {line}, column {column + 1}: not well-formed XML ({reason})"
        ) from None
    return _identify(records, pytest_file, phase)


def _suite(elem: ET.Element, around: list[_Suite]) -> _Suite:
    parent = around[-1] if around else None
    name = (elem.get("name") or "").strip() or (parent.name if parent else "")
    return _Suite(
        name=name,
        host=(elem.get("hostname") or "").strip() or (parent.host if parent else ""),
        file=(elem.get("file") or "").strip() or (parent.file if parent else ""),
        path=(parent.path if parent else ()) + (name,),
    )


# --------------------------------------------------------------------------- one record


_DECISIVE = ("failure", "error", "flakyFailure", "flakyError", "skipped")


def _record(case: ET.Element, suite: _Suite) -> _Record:
    found: dict[str, ET.Element] = {}
    reran: list[Outcome] = []
    out: list[str] = []
    err: list[str] = []
    for child in case:  # one pass over the children
        tag = child.tag
        if tag in _DECISIVE:
            found.setdefault(tag, child)
        elif tag == "rerunFailure" or tag == "rerunError":
            reran.append(Outcome.FAILED if tag == "rerunFailure" else Outcome.ERROR)
        elif tag == "system-out":
            out.append(child.text or "")
        elif tag == "system-err":
            err.append(child.text or "")
        elif tag == "properties" and not reran:
            reran.extend(_property_reruns(child))
    reruns: tuple[Outcome, ...] = ()
    not_run = ""
    skipped = found.get("skipped")
    xfail = skipped is not None and skipped.get("type") == PYTEST_XFAIL
    decisive = found.get("failure")
    if decisive is None:
        decisive = found.get("error")
    if decisive is not None:
        outcome = Outcome.FAILED if decisive.tag == "failure" else Outcome.ERROR
        reruns = tuple(reran)
    elif (flaky := _first(found, "flakyFailure", "flakyError")) is not None:
        # Surefire: failed first, passed on a re-run. greenloop calls that a failure.
        decisive = flaky
        outcome = Outcome.FAILED if flaky.tag == "flakyFailure" else Outcome.ERROR
        reruns = (Outcome.PASSED,)
    elif xfail:
        # pytest writes an xfail as <skipped type="pytest.xfail">: it ran and failed as
        # expected, which is not a skip (and its reason is not an environment's).
        outcome = Outcome.PASSED
    elif skipped is not None:
        outcome = Outcome.SKIPPED
        decisive = skipped
    elif not_run := _not_run(case):
        outcome = Outcome.SKIPPED  # googletest: DISABLED_ tests, GTEST_SKIP() without a child
    else:
        outcome = Outcome.PASSED
        reruns = tuple(reran)  # greenloop's own report of a test that passed on re-run
    message, longrepr, when = "", "", "call"
    if decisive is not None:
        text = (decisive.text or "").strip()
        kind = decisive.get("type", "")
        message = decisive.get("message") or text.partition("\n")[0] or kind
        longrepr = _trim(text or message)
        if outcome in _FAILURES:
            detail = f"{message}\n{text}".lower()
            if kind == "Timeout" or any(h in detail for h in TIMEOUT_HINTS):
                outcome = Outcome.TIMEOUT
            elif kind == "Crash" or (
                ("crashed" in detail or "node down" in detail) and _WORKER_CRASH.search(detail)
            ):
                outcome = Outcome.CRASHED
    elif outcome is Outcome.SKIPPED:
        message = f"not run ({not_run})"
    classname = (case.get("classname") or "").strip()
    name = (case.get("name") or "").strip()
    nodeid = _base_nodeid(classname, name, suite.name)
    file = (case.get("file") or "").strip() or suite.file
    if classname == _SUITE_FAILED and outcome in _FAILURES:
        # jest-junit: the test file itself could not load; its name is the file.
        nodeid = file = name or suite.name
        when = "collect"
    stripped = message.strip()
    return _Record(
        nodeid=nodeid,
        outcome=outcome,
        duration_s=_seconds(case.get("time")),
        file=file,
        line=_line(case.get("line")),
        message=stripped.partition("\n")[0].rstrip("\r")[:500],
        longrepr=longrepr,
        stdout=_trim("\n".join(out).strip()) if out else "",
        stderr=_trim("\n".join(err).strip()) if err else "",
        skip_reason=message if outcome is Outcome.SKIPPED else "",
        reruns=reruns,
        when=when,
        suite=suite,
        teardown=outcome is Outcome.ERROR and message.startswith(_TEARDOWN),
        xfail="xfailed" if xfail else "",
        xfail_reason=(skipped.get("message") or "") if xfail and skipped is not None else "",
    )


def _not_run(case: ET.Element) -> str:
    """`status="notrun"` or `result="skipped"` (googletest), as written; '' when it ran."""
    for attribute in ("status", "result"):
        value = (case.get(attribute) or "").strip()
        if value.lower() in _NOT_RUN:
            return f'{attribute}="{value}"'
    return ""


def _base_nodeid(classname: str, name: str, suite: str) -> str:
    if classname and name and classname != name:
        return f"{classname}::{name}"
    return name or classname or suite or "unnamed"


def _property_reruns(properties: ET.Element) -> tuple[Outcome, ...]:
    """greenloop's own JUnit output keeps re-run outcomes in a `reruns` property."""
    for prop in properties.iter("property"):
        if prop.get("name") == "reruns":
            values = [v.strip() for v in (prop.get("value") or "").split(",")]
            return tuple(Outcome(v) for v in values if v in Outcome.__members__.values())
    return ()


def _seconds(value: str | None) -> float:
    """A duration as tools write it -> seconds; 0 when missing or unreadable.

    '1.5', '1,234.5' (grouped), '1.234,5' and '0,160' (decimal comma): when both marks
    appear the last one is the decimal mark; a lone comma is a decimal mark unless it
    repeats ('1,234,567'), and so are repeated dots; a trailing 's' or 'ms' is a unit.
    Infinite, NaN and negative values read as 0.
    """
    if not value:
        return 0.0
    if "," not in value:
        try:  # the common case: '0.123'
            seconds = float(value)
            return seconds if 0 < seconds < math.inf else 0.0
        except ValueError:
            pass
    text = value.strip().replace(" ", "").replace("\u00a0", "").lower()
    scale = 1.0
    if text.endswith("ms"):  # some reporters add the unit: '150ms', '1.5s'
        text, scale = text[:-2], 0.001
    elif text.endswith("s"):
        text = text[:-1]
    comma, dot = text.rfind(","), text.rfind(".")
    if comma != -1 and dot != -1:
        thousands = "," if dot > comma else "."
        text = text.replace(thousands, "").replace(",", ".")
    elif comma != -1:
        text = text.replace(",", "") if text.count(",") > 1 else text.replace(",", ".")
    elif text.count(".") > 1:  # '1.234.567': dots that group thousands
        text = text.replace(".", "")
    try:
        seconds = float(text) * scale
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _line(value: str | None) -> int | None:
    """A `line` attribute: ASCII digits only ('²' is a digit to str.isdigit, not to int)."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def _trim(text: str) -> str:
    return text if len(text) <= TRIM else text[: TRIM // 4] + "\n...\n" + text[-TRIM * 3 // 4 :]


def _first(found: dict[str, ET.Element], *tags: str) -> ET.Element | None:
    # Not `get(a) or get(b)`: an Element without children is falsy.
    for tag in tags:
        element = found.get(tag)
        if element is not None:
            return element
    return None


# --------------------------------------------------------------------------- identity


def _identify(records: list[_Record], pytest_file: bool, phase: str) -> list[TestResult]:
    """Apply the identity rules: name tests, tell suites apart, join attempts."""
    pytest_file = pytest_file or any(r.file.endswith(".py") for r in records)
    if pytest_file:
        modules: dict[tuple[str, str], tuple[str, str]] = {}
        for r in records:
            _pytest_nodeid(r, modules)
    # The same name under suites that differ (by host, else by name) is several tests.
    by_name: dict[str, list[_Record]] = {}
    for r in records:
        by_name.setdefault(r.nodeid, []).append(r)
    groups: dict[str, list[_Record]] = {}
    for nodeid, same in by_name.items():
        if len(same) == 1:
            groups[nodeid] = same
            continue
        places = {(r.suite.host, r.suite.name, "/".join(r.suite.path)) for r in same}
        for r in same:
            key = f"{nodeid}[{_suite_tag(r.suite, places)}]" if len(places) > 1 else nodeid
            groups.setdefault(key, []).append(r)
    return [
        attempts[0].result(nodeid, phase)
        if len(attempts) == 1
        else _join(nodeid, attempts, pytest_file, phase)
        for nodeid, attempts in groups.items()
    ]


def _suite_tag(suite: _Suite, places: set[tuple[str, str, str]]) -> str:
    """What tells this suite's copy of a test from the others: the host (Playwright writes
    the project there), else the suite name, else the suite path."""
    for position, value in ((0, suite.host), (1, suite.name)):
        if len({place[position] for place in places}) == len(places):
            return value
    return "/".join(suite.path)


def _pytest_nodeid(record: _Record, modules: dict[tuple[str, str], tuple[str, str]]) -> None:
    """pytest's `classname` is the module's dotted path plus classes: make it the node id
    pytest itself uses (`tests/test_x.py::TestY::test_z`), guided by the `file` attribute
    when pytest wrote one (junit_family=xunit1). `modules` remembers each (classname,
    file) -> (path, node id prefix) already worked out."""
    if record.when == "collect":
        return
    if "::" not in record.nodeid:
        if record.outcome in _FAILURES and "." in record.nodeid:
            # a collection error: pytest writes the module's dotted path as the name
            record.nodeid = record.file = record.nodeid.replace(".", "/") + ".py"
        return
    classname, name = record.nodeid.rsplit("::", 1)
    known = modules.get((classname, record.file))
    if known is None:
        known = modules[(classname, record.file)] = _pytest_module(classname, record.file)
    path, prefix = known
    record.nodeid = f"{prefix}::{name}"
    record.file = path


def _pytest_module(classname: str, file: str) -> tuple[str, str]:
    """(file path, node id prefix) for a pytest classname such as `tests.test_x.TestY`:
    the module ends where the `file` attribute says, else before the first segment that
    starts with a capital (pytest collects classes named `Test*`)."""
    parts = classname.split(".")
    file = file.replace("\\", "/")
    if file.endswith(".py"):
        module = file.removesuffix(".py").split("/")
        classes = parts[len(module) :] if parts[: len(module)] == module else []
        path = file
    else:
        cut = next((i for i, p in enumerate(parts) if i and p[:1].isupper()), len(parts))
        path = "/".join(parts[:cut]) + ".py"
        classes = parts[cut:]
    return path, "::".join([path, *classes])


def _join(nodeid: str, attempts: list[_Record], pytest_file: bool, phase: str) -> TestResult:
    """The records of one test as one result: pytest's teardown-error record joins the
    record before it (one attempt, two phases); several attempts become `reruns`."""
    runs: list[_Record] = []
    for r in attempts:
        if r.teardown and runs:
            _add_teardown(runs[-1], r)
        else:
            runs.append(r)
    outcomes = [r.outcome for r in runs]
    if pytest_file and len(runs) > 1:
        # pytest-rerunfailures writes a record per attempt, without the failure of the
        # attempts it re-ran: an attempt was re-run only because it failed.
        outcomes = [o if o in _FAILURES else Outcome.FAILED for o in outcomes[:-1]] + outcomes[-1:]
    first = next((i for i, o in enumerate(outcomes) if o in _FAILURES), None)
    # repeated runs that all passed (or were skipped) are one result with no re-runs
    later = tuple(outcomes[first + 1 :]) if first is not None else ()
    detail = next((r for r in runs if r.longrepr), runs[first or 0])
    result = detail.result(nodeid, phase)
    return replace(
        result,
        outcome=outcomes[first or 0],
        duration_s=sum(r.duration_s for r in runs),
        file=detail.file or runs[0].file,
        line=detail.line if detail.line is not None else runs[0].line,
        reruns=later + detail.reruns,
    )


def _add_teardown(call: _Record, teardown: _Record) -> None:
    """pytest wrote a record for the call and another for its teardown error: one attempt."""
    if call.outcome in _FAILURES:
        parts = (call.longrepr, f"teardown: {teardown.longrepr}")
        call.longrepr = _trim("\n\n".join(p for p in parts if p))
    else:
        call.outcome, call.when = teardown.outcome, "teardown"
        call.message, call.longrepr = teardown.message, teardown.longrepr
    call.duration_s += teardown.duration_s
