"""What triage knows about one failure: the `FailureEvidence` record and how it is gathered.

Classification must not judge a failure by its message alone: the same
"Connection refused" is an outage when the cache probe is failing and a wrong
address when every probe is green. So the evidence holds the text facts
(exception types, HTTP statuses, WebSocket close codes, where each frame
lives) next to the environment facts (probe states at the time, reruns,
history, revision). Gathering is pure: the caller passes what it read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from greenloop.gate import root_failure
from greenloop.records import (
    FailureMode,
    GateResult,
    IndexEntry,
    Outcome,
    ProbeResult,
    TestResult,
)
from greenloop.triage.logs.base import LogRecord
from greenloop.triage.slowness import Slowness, slow_components

# Only the head and the tail of a long failure text carry the signal; the middle
# of a 2,000-frame recursion does not, and scanning it costs time per failure.
HEAD_CHARS = 2000
TAIL_CHARS = 6000


@dataclass(frozen=True, slots=True)
class Frame:
    """One traceback frame and where its code lives: app, test, library or pytest."""

    path: str
    line: int | None
    function: str
    kind: str  # app | test | library | pytest | unknown


@dataclass(frozen=True)  # no slots: the text facts below are cached on the instance
class FailureEvidence:
    """Everything a rule may look at for one non-passing test.

    The text facts (exception types, statuses, close codes, frames) are parsed from
    `text` on first use: most failures are decided before a rule asks for all of them.
    """

    nodeid: str
    outcome: Outcome
    text: str  # message + traceback (+ warnings), trimmed
    message: str = ""
    when: str = "call"
    tests_dirs: tuple[str, ...] = ("tests", "test")  # a frame under one of these is test code
    gate_known: bool = False  # False: nobody checked the environment (e.g. JUnit triage)
    failing_probes: tuple[ProbeResult, ...] = ()  # failing at the time of the test
    healthy_components: tuple[str, ...] = ()
    test_components: tuple[str, ...] = ()  # what the index says the test's file exercises
    passed_on_rerun: bool = False
    flips: int = 0  # pass/fail flips on the current revision in history
    history_runs: int = 0
    env_correlated: bool = False  # past failures coincided with probe failures
    revision: str | None = None
    previous_revision: str | None = None
    blocked_by: str | None = None
    # For a blocked test: the deepest unhealthy component below `blocked_by` and how it
    # failed (refused, timeout, credentials...): look-alike outages are different problems.
    blocked_root: str | None = None
    blocked_mode: FailureMode | None = None
    skip_reason: str = ""
    markers: tuple[str, ...] = ()
    request_id: str | None = None
    server_log: str = ""  # error log lines the service wrote for this test's request id
    # The service's log lines for this failure's requests (4xx/5xx and errors): matched by
    # request id, or by time and the status the test reports (`server_match` says which).
    server_records: tuple[LogRecord, ...] = ()
    server_match: str = ""
    slow: tuple[Slowness, ...] = ()  # components probes saw answering slowly (slowest first)
    known_components: tuple[str, ...] = ()  # every component the gate knows
    probe_targets: tuple[str, ...] = ()  # what the gate's probes check: the configured addresses
    last_request: str = ""  # the last request the test sent: `GET /threads/<id>/messages`

    @cached_property
    def own_text(self) -> str:
        """`text` without the source lines of library frames: a docstring or a comment in
        httpx or asyncio that says "TimeoutError" is not what happened."""
        return without_library_source(self.text, self.tests_dirs)

    @cached_property
    def exc_types(self) -> tuple[str, ...]:
        """Short names of the exceptions the text names, in order of appearance."""
        return exception_types(self.own_text)

    @cached_property
    def statuses(self) -> tuple[int, ...]:
        """HTTP statuses the failure reports receiving."""
        return http_statuses(self.own_text)

    @cached_property
    def status_assertion(self) -> bool:
        """The failure compares an HTTP status with another."""
        return _has_status_assertion(self.text)

    @cached_property
    def close_codes(self) -> tuple[int, ...]:
        """WebSocket close codes."""
        return _close_codes(self.text)

    @cached_property
    def frames(self) -> tuple[Frame, ...]:
        return parse_frames(self.text, self.tests_dirs)

    @property
    def exc_type(self) -> str | None:
        """The last exception named in the text: the one that ended the test."""
        return self.exc_types[-1] if self.exc_types else None

    @property
    def failing_components(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.component for p in self.failing_probes))

    @property
    def probes_green(self) -> bool:
        """The environment was checked and nothing was failing."""
        return self.gate_known and not self.failing_probes

    @property
    def server_error(self) -> LogRecord | None:
        """The service's own failure for this test's request: a 5xx or a traceback."""
        for r in self.server_records:
            if r.traceback or (r.status is not None and r.status >= 500):
                return r
        return None

    @property
    def revision_changed(self) -> bool:
        known = self.previous_revision and self.revision  # unknown is no change
        return bool(known and self.revision != self.previous_revision)

    @property
    def raising_frame(self) -> Frame | None:
        """The deepest frame in our own code (app or test): where the fault surfaced."""
        for frame in reversed(self.frames):
            if frame.kind in ("app", "test"):
                return frame
        return None


# --------------------------------------------------------------------------- text parsing

# PLAIN_START: these patterns run over every failure, so each alternative starts with a
# plain character where it can. The regex engine then jumps straight to the places where
# a match could begin; a pattern (or one alternative) that starts with \b, a lookbehind or
# [Cc] makes it try every alternative at every position, several times slower. A word
# boundary moves just after the first characters instead: `at (?<!\wat )` is `\bat `,
# `[A-Z](?<!\w.)` is `\b[A-Z]`.

_FRAME_PATTERNS = (
    # CPython: File "path", line 12, in func
    re.compile(r'File "(?P<path>[^"\n]+)", line (?P<line>\d+), in (?P<func>[^\s]+)'),
    # Django debug page: File "path" in func
    re.compile(r'File "(?P<path>[^"\n]+)" in (?P<func>[^\s]+)'),
    # pytest --tb=short/native summaries: path.py:12: in func
    re.compile(r"^\s*(?P<path>[^\s:\"'<>]+\.py):(?P<line>\d+):(?: in (?P<func>\S+))?", re.M),
    # JS/Java/JVM style: at func (path:12) / at pkg.Cls.m(File.java:12)
    re.compile(
        r"at (?<!\wat )(?P<func>[\w.$<>]+(?: [\w.$<>]+)?) ?\((?P<path>[^()\s:]+):(?P<line>\d+)"
    ),
)

# A literal every match of the pattern above holds: a text without it is not scanned.
_FRAME_NEEDLES = ('File "', '" in ', ".py:", "at ")

_EXC = re.compile(
    # Module prefixes (psycopg.errors.) are not needed: only the short name is kept.
    r"([A-Z](?<!\w.)(?:\w*(?:Error|Exception|Exit|Warning|Timeout|Mismatch|Violation|"
    r"DoesNotExist|Failure|Refused|Interrupt)|(?<=F)ailed))(?=[:(\s'\"`,]|$)",
    re.M,
)
_DJANGO_EXC = re.compile(r"Exception Type:\s*([A-Za-z_]\w*)")

# A three-digit number is an HTTP status only in the right company: find the numbers
# first (cheap), then look at a few characters either side (cheaper than one huge regex).
_CODE = re.compile(r"([1-5](?<![\w.:/-].)\d\d)(?![\w.:/-])")
_STATUS_BEFORE = re.compile(
    r"(?:\bHTTP(?:/\d(?:\.\d)?\"?)?|\bstatus(?:_code| code)?\s*[=:]?|[Rr]esponse code|"
    r"returned error:|[Aa]ctual:|actual value is <|\bgot|<Response \[|\bassert '?|"
    r"^(?:E\s+)?(?:AssertionError: )?)\s?$"
)
# How the text before a status can end (trailing whitespace aside) when _STATUS_BEFORE
# matches it: HTTP, HTTP/1.1, HTTP/1.1", status, status_code, status code, status=,
# status:, Response code, returned error:, Actual:, actual value is <, got, <Response [,
# assert, assert ', E, E   AssertionError:. Most numbers ("line 123") end otherwise,
# and this test is far cheaper than the search.
_STATUS_BEFORE_ENDS = ("HTTP", '"', "status", "code", "=", ":", "<", "got", "[", "assert", "'", "E")
_STATUS_AFTER = re.compile(
    r"^ (?:Server Error|Client Error|Bad Gateway|Service Unavailable|Gateway Time-?out|"
    r"Internal Server Error|Unauthorized|Forbidden|Not Found|Bad Request|Conflict|"
    r"Unprocessable|!= [1-5]\d\d\b)"
)
_ERROR_AFTER = re.compile(r"^ error\b")

_STATUS_ASSERTION = re.compile(
    r"assert(?<!\wassert) '?[1-5]\d\d\b[^=\n]{0,30} == '?[1-5]\d\d\b"
    r"|Expected:? \[?[1-5]\d\d\]?[.,;]? ?(?:[Aa]ctual:?|got) [1-5]\d\d\b"
    r"|expected:? \[?[1-5]\d\d\]?[.,;]? ?(?:[Aa]ctual:?|got) [1-5]\d\d\b"
    r"|Assert status code|assert status code|actual value is <[1-5]\d\d>"
)
# Apart from the rest: a pattern that starts with ^ cannot skip ahead (see PLAIN_START).
_STATUS_NOT_EQUAL_LINE = re.compile(
    r"^(?:E\s+)?(?:AssertionError: )?[1-5]\d\d != [1-5]\d\d\b", re.M
)
_CLOSE = re.compile(
    r"(?:received(?<!\wreceived)|sent(?<!\wsent)|close code(?<!\wclose code)|code(?<!\wcode)[= ])"
    r"\s*(?P<code>1\d{3}|4\d{3})\b"
)

_LIBRARY = re.compile(
    r"(?:site|dist)-packages/|/lib/python\d|/lib/pypy|<frozen|node_modules/|\.egg/"
    r"|/usr/lib/|^/?lib/[^/]+\.py$|/lib/[^/]+\.py$|/lib/(?:asyncio|json|unittest|importlib)/"
)
_PYTEST = re.compile(r"(?:^|/)(?:_pytest|pluggy|pytest_\w+)/")
# Test files by each ecosystem's naming convention: pytest, jest/vitest/mocha/Playwright
# (x.test.ts, x.spec.js), Go (x_test.go), JUnit (XTest.java), googletest (x_test.cc).
_TEST_FILE = re.compile(
    r"(?:^|/)(?:test_[^/]*|[^/]*_tests?\.py|conftest\.py|tests\.py"
    r"|[^/]+\.(?:test|spec)\.[cm]?[jt]sx?|[^/]+_test\.(?:go|cc|cpp)|[^/]+Tests?\.(?:java|kt))$"
)


def frame_kind(path: str, tests_dirs: Sequence[str] = ("tests", "test")) -> str:
    """Where a frame's code lives: our tests, our application, a library, or pytest."""
    return _frame_kind(path, tuple(tests_dirs))


# The same few hundred files appear in every traceback of a run: decide each path once.
@lru_cache(maxsize=4096)
def _frame_kind(path: str, tests_dirs: tuple[str, ...]) -> str:
    p = path.replace("\\", "/")
    if p.startswith("<"):
        return "unknown"
    if _PYTEST.search(p):
        return "pytest"
    if _LIBRARY.search(p):
        return "library"
    if _TEST_FILE.search(p):
        return "test"
    parts = p.split("/")
    if any(d in parts for d in tests_dirs):
        return "test"
    return "app"


def parse_frames(text: str, tests_dirs: Sequence[str] = ("tests", "test")) -> tuple[Frame, ...]:
    """Every frame the text shows, in order, whatever the traceback dialect."""
    tests_dirs = tuple(tests_dirs)
    found: list[tuple[int, str, str | None, str]] = []  # (position, path, line, function)
    for pattern, needle in zip(_FRAME_PATTERNS, _FRAME_NEEDLES, strict=True):
        if needle not in text:
            continue
        for m in pattern.finditer(text):
            groups = m.groupdict()
            found.append((m.start(), groups["path"], groups.get("line"), groups.get("func") or ""))
    if len(found) > 1:
        found.sort(key=_position)  # stable: one position, pattern order
    return tuple(
        Frame(path, int(line) if line else None, func, _frame_kind(path, tests_dirs))
        for _, path, line, func in found
    )


def _position(item: tuple[int, str, str | None, str]) -> int:
    return item[0]


_CPYTHON_FRAME = re.compile(r'^\s*File "(?P<path>[^"\n]+)", line \d+')
_PYTEST_LOCATION = re.compile(r"^(?P<path>[^\s:\"'<>]+\.py):\d+: ")
_PYTEST_SEPARATOR = re.compile(r"^(?:_ )+_?\s*$")


def without_library_source(text: str, tests_dirs: Sequence[str] = ("tests", "test")) -> str:
    """The text with the quoted source lines of library frames left out.

    A CPython frame (`File "...", line N, in f`) is followed by its source lines; a
    pytest frame block ends with `path.py:N: in f` after its source. Library code quoted
    there (docstrings, comments, other branches) names exceptions and numbers that did
    not happen; the frame's location and pytest's `E ` lines (what did happen) stay.
    """
    if ".py" not in text:
        return text
    dirs = tuple(tests_dirs)
    lines = text.split("\n")
    keep = [True] * len(lines)
    # CPython: the indented lines after a library frame's File line.
    skipping = False
    for i, line in enumerate(lines):
        m = _CPYTHON_FRAME.match(line)
        if m:
            skipping = _frame_kind(m.group("path"), dirs) in ("library", "pytest")
            continue
        if skipping and line.startswith("    "):
            keep[i] = False
        else:
            skipping = False
    # pytest: a block (between separators) whose location line is a library frame.
    start = 0
    for i, line in enumerate([*lines, "_ _"]):
        if i < len(lines) and not _PYTEST_SEPARATOR.match(line):
            continue
        block = range(start, i)
        where = next((j for j in reversed(block) if _PYTEST_LOCATION.match(lines[j])), None)
        if where is not None:
            path = _PYTEST_LOCATION.match(lines[where])
            assert path is not None
            if _frame_kind(path.group("path"), dirs) in ("library", "pytest"):
                for j in range(start, where):  # the frame's quoted source, above its location
                    if not lines[j].startswith("E "):
                        keep[j] = False
        start = i + 1
    if all(keep):
        return text
    return "\n".join(line for line, kept in zip(lines, keep, strict=True) if kept)


def exception_types(text: str) -> tuple[str, ...]:
    """Short names of the exceptions the text mentions, in order.

    `psycopg.OperationalError` becomes `OperationalError`.
    """
    names = _EXC.findall(text)
    names += _DJANGO_EXC.findall(text)
    return tuple(names)


def http_statuses(text: str) -> tuple[int, ...]:
    """HTTP statuses the failure reports having received (not ports, not line numbers)."""
    out: list[int] = []
    for m in _CODE.finditer(text):
        start, end = m.span()
        value = m.group(1)
        line_start = text.rfind("\n", max(0, start - 60), start) + 1
        before = text[max(line_start, start - 40) : start]
        after = text[end : end + 40]
        if (
            (_could_precede_status(before) and _STATUS_BEFORE.search(before))
            or _STATUS_AFTER.match(after)
            or (value[0] in "45" and _ERROR_AFTER.match(after))
        ):
            out.append(int(value))
    return tuple(dict.fromkeys(out))


def _could_precede_status(before: str) -> bool:
    """False when `before` cannot match _STATUS_BEFORE (true does not mean it does)."""
    tail = before.rstrip()
    return not tail or tail.endswith(_STATUS_BEFORE_ENDS) or tail[-1].isdigit()


_ASSERTION_NEEDLES = ("==", "!=", "xpected", "ssert status", "actual value")
_CLOSE_NEEDLES = ("received", "sent", "code")


def _has_status_assertion(text: str) -> bool:
    if not any(n in text for n in _ASSERTION_NEEDLES):
        return False
    if _STATUS_ASSERTION.search(text):
        return True
    return " != " in text and bool(_STATUS_NOT_EQUAL_LINE.search(text))


def _close_codes(text: str) -> tuple[int, ...]:
    if not any(n in text for n in _CLOSE_NEEDLES):
        return ()
    return tuple(dict.fromkeys(int(c) for c in _CLOSE.findall(text)))


def trim(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n...\n" + text[-TAIL_CHARS:]


def failure_text(test: TestResult) -> str:
    """The text rules read: the one-line message, the traceback and any warnings."""
    parts = [test.message, test.longrepr]
    if test.warnings:
        parts.extend(test.warnings)
    if test.outcome is Outcome.SKIPPED and test.skip_reason:
        parts.append(test.skip_reason)
    joined = "\n".join(p for p in parts if p)
    return trim(joined)


def index_components(nodeid: str, index: Sequence[IndexEntry]) -> tuple[str, ...]:
    """The components the index says the test's file exercises."""
    if not index:
        return ()
    from greenloop.triage.impact import entry_for, test_file

    entry = entry_for(test_file(nodeid), index)
    return entry.components if entry else ()


def gather_evidence(
    test: TestResult,
    *,
    gate: GateResult | None = None,
    probe_history: Sequence[ProbeResult] = (),
    index: Sequence[IndexEntry] = (),
    tests_dirs: Sequence[str] = ("tests", "test"),
    flips: int = 0,
    history_runs: int = 0,
    env_correlated: bool = False,
    revision: str | None = None,
    previous_revision: str | None = None,
    server_log: str = "",
    test_components: tuple[str, ...] | None = None,
    server_records: Sequence[LogRecord] = (),
    server_match: str = "",
) -> FailureEvidence:
    """Turn one test result plus what the environment showed into evidence for the rules.

    `probe_history` holds probe results stored while the test ran (they may
    differ from the gate's check before the phase started). `test_components`
    is what `index_components` returns, for a caller that looked it up already.
    """
    text = failure_text(test)
    seen = _gate_facts(gate)
    failing_probes, healthy = seen.failing_probes, seen.healthy_not_failing
    if probe_history:
        failing = dict(seen.failing)
        for probe in probe_history:
            if not probe.ok:
                failing.setdefault((probe.component, probe.name), probe)
        failing_components = {component for component, _ in failing}
        failing_probes = tuple(failing.values())
        healthy = tuple(c for c in seen.healthy if c not in failing_components)
    blocked = (
        root_failure(gate, test.blocked_by)
        if gate is not None and test.blocked_by and test.outcome is Outcome.BLOCKED
        else None
    )
    return FailureEvidence(
        nodeid=test.nodeid,
        outcome=test.outcome,
        text=text,
        message=test.message,
        when=test.when,
        tests_dirs=tuple(tests_dirs),
        gate_known=gate is not None or bool(probe_history),
        failing_probes=failing_probes,
        healthy_components=healthy,
        test_components=(
            index_components(test.nodeid, index) if test_components is None else test_components
        ),
        passed_on_rerun=test.passed_on_rerun,
        flips=flips,
        history_runs=history_runs,
        env_correlated=env_correlated,
        revision=revision,
        previous_revision=previous_revision,
        blocked_by=test.blocked_by,
        blocked_root=blocked.component if blocked else None,
        blocked_mode=blocked.mode if blocked else None,
        skip_reason=test.skip_reason or (test.message if test.outcome is Outcome.SKIPPED else ""),
        markers=test.markers,
        request_id=test.request_id or next(iter(test.request_keys), None),
        server_log=server_log,
        server_records=tuple(server_records),
        server_match=server_match,
        slow=seen.slow,
        known_components=seen.known,
        probe_targets=seen.targets,
        last_request=(
            f"{test.sent_requests[-1].method} {test.sent_requests[-1].path}"
            if test.sent_requests
            else ""
        ),
    )


# Path segments that name a component under another word (`/ws` is the websocket).
_ROUTE_ALIASES = {
    "ws": "websocket", "wss": "websocket", "socket": "websocket", "realtime": "websocket",
    "login": "auth", "logout": "auth", "token": "auth", "oauth": "auth", "session": "auth",
    "sessions": "auth",
}  # fmt: skip
# Index components that carry requests (edges) or hold data (stores), not product code:
# a product failure is named after the code that answers, when nothing names it better.
_NOT_PRODUCT = re.compile(
    r"load.?balancer|\blb\b|proxy|gateway|edge|ingress|cdn|database|\bdb\b|postgres|mysql|"
    r"cache|redis|memcache|queue|kafka|broker|storage|bucket",
    re.I,
)


def route_component(request: str, candidates: Sequence[str]) -> str | None:
    """The candidate a request's path names (`GET /ws?token=..` -> websocket), or None."""
    path = request.split(" ", 1)[-1].split("?", 1)[0]
    for segment in (s.lower() for s in path.split("/") if s):
        for name in candidates:
            if segment in (name.lower(), name.lower().rstrip("s")) or (
                _ROUTE_ALIASES.get(segment) == name.lower()
            ):
                return name
    return None


def product_component(ev: FailureEvidence) -> str | None:
    """Where a product failure lives: the component its failing request's route names
    (the service's own log line for it, else the last request the test sent), else the
    first component the index lists for the test's file that runs product code."""
    candidates = ev.test_components or ev.known_components
    if not candidates:
        return None
    server = ev.server_error
    for request in (server.endpoint if server else "", ev.last_request):
        found = route_component(request, candidates) if request else None
        if found:
            return found
    return next((c for c in ev.test_components if not _NOT_PRODUCT.search(c)), None)


@dataclass(frozen=True)
class _GateFacts:
    """What one gate says about every failure judged against it (read-only)."""

    gate: GateResult | None
    failing: dict[tuple[str, str], ProbeResult]  # (component, probe name) -> failing probe
    healthy: tuple[str, ...]  # healthy components
    known: tuple[str, ...]
    slow: tuple[Slowness, ...]
    targets: tuple[str, ...] = ()

    @cached_property
    def failing_probes(self) -> tuple[ProbeResult, ...]:
        return tuple(self.failing.values())

    @cached_property
    def healthy_not_failing(self) -> tuple[str, ...]:
        failing_components = {component for component, _ in self.failing}
        return tuple(c for c in self.healthy if c not in failing_components)


# Every failure of a run is judged against the same gate: work out what it says once and
# keep the last gate's facts (one entry; the gate is immutable, so identity is enough).
_last_gate: list[_GateFacts] = []


def _gate_facts(gate: GateResult | None) -> _GateFacts:
    last = _last_gate[-1] if _last_gate else None
    if last is not None and last.gate is gate:
        return last
    failing: dict[tuple[str, str], ProbeResult] = {}
    healthy: tuple[str, ...] = ()
    known: tuple[str, ...] = ()
    slow: tuple[Slowness, ...] = ()
    if gate is not None:
        for probe in gate.probes:
            if not probe.ok:
                failing[(probe.component, probe.name)] = probe
        healthy = tuple(c.name for c in gate.components if c.healthy)
        known = tuple(c.name for c in gate.components)
        slow = slow_components(gate.probes, known)
    targets = tuple(dict.fromkeys(p.target for p in gate.probes)) if gate is not None else ()
    facts = _GateFacts(gate, failing, healthy, known, slow, targets)
    _last_gate[:] = [facts]
    return facts
