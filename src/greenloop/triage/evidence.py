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

from greenloop.records import GateResult, IndexEntry, Outcome, ProbeResult, TestResult

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


@dataclass(frozen=True, slots=True)
class FailureEvidence:
    """Everything a rule may look at for one non-passing test."""

    nodeid: str
    outcome: Outcome
    text: str  # message + traceback (+ warnings), trimmed
    message: str = ""
    when: str = "call"
    exc_types: tuple[str, ...] = ()  # short names, in order of appearance
    statuses: tuple[int, ...] = ()  # HTTP statuses the failure reports receiving
    status_assertion: bool = False  # the failure compares an HTTP status with another
    close_codes: tuple[int, ...] = ()  # WebSocket close codes
    frames: tuple[Frame, ...] = ()
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
    skip_reason: str = ""
    markers: tuple[str, ...] = ()
    request_id: str | None = None
    server_log: str = ""  # error log lines the service wrote for this test's request id

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
    def revision_changed(self) -> bool:
        return bool(self.previous_revision and self.revision != self.previous_revision)

    @property
    def raising_frame(self) -> Frame | None:
        """The deepest frame in our own code (app or test): where the fault surfaced."""
        for frame in reversed(self.frames):
            if frame.kind in ("app", "test"):
                return frame
        return None


# --------------------------------------------------------------------------- text parsing

_FRAME_PATTERNS = (
    # CPython: File "path", line 12, in func
    re.compile(r'File "(?P<path>[^"\n]+)", line (?P<line>\d+), in (?P<func>[^\s]+)'),
    # Django debug page: File "path" in func
    re.compile(r'File "(?P<path>[^"\n]+)" in (?P<func>[^\s]+)'),
    # pytest --tb=short/native summaries: path.py:12: in func
    re.compile(r"^\s*(?P<path>[^\s:\"'<>]+\.py):(?P<line>\d+):(?: in (?P<func>\S+))?", re.M),
    # JS/Java/JVM style: at func (path:12) / at pkg.Cls.m(File.java:12)
    re.compile(r"\bat (?P<func>[\w.$<>]+(?: [\w.$<>]+)?) ?\((?P<path>[^()\s:]+):(?P<line>\d+)"),
)

_FRAME_NEEDLES = ('File "', 'File "', ".py:", "at ")

_EXC = re.compile(
    # Module prefixes (psycopg.errors.) are not needed: only the short name is kept.
    r"\b([A-Z]\w*(?:Error|Exception|Exit|Warning|Timeout|Mismatch|Violation|DoesNotExist|"
    r"Failure|Refused|Interrupt)|Failed)(?=[:(\s'\"`,]|$)",
    re.M,
)
_DJANGO_EXC = re.compile(r"Exception Type:\s*([A-Za-z_]\w*)")

# A three-digit number is an HTTP status only in the right company: find the numbers
# first (cheap), then look at a few characters either side (cheaper than one huge regex).
_CODE = re.compile(r"(?<![\w.:/-])([1-5]\d\d)(?![\w.:/-])|(?<=<)([1-5]\d\d)(?=>)")
_STATUS_BEFORE = re.compile(
    r"(?:\bHTTP(?:/\d(?:\.\d)?\"?)?|\bstatus(?:_code| code)?\s*[=:]?|[Rr]esponse code|"
    r"returned error:|[Aa]ctual:|actual value is <|\bgot|<Response \[|\bassert '?|"
    r"^(?:E\s+)?(?:AssertionError: )?)\s?$"
)
_STATUS_AFTER = re.compile(
    r"^ (?:Server Error|Client Error|Bad Gateway|Service Unavailable|Gateway Time-?out|"
    r"Internal Server Error|Unauthorized|Forbidden|Not Found|Bad Request|Conflict|"
    r"Unprocessable|!= [1-5]\d\d\b)"
)
_ERROR_AFTER = re.compile(r"^ error\b")

_STATUS_ASSERTION = re.compile(
    r"\bassert '?[1-5]\d\d\b[^=\n]{0,30} == '?[1-5]\d\d\b"
    r"|^(?:E\s+)?(?:AssertionError: )?[1-5]\d\d != [1-5]\d\d\b"
    r"|[Ee]xpected:? \[?[1-5]\d\d\]?[.,;]? ?(?:[Aa]ctual:?|got) [1-5]\d\d\b"
    r"|[Aa]ssert status code|actual value is <[1-5]\d\d>",
    re.M,
)
_CLOSE = re.compile(r"\b(?:received|sent|close code|code[= ])\s*(?P<code>1\d{3}|4\d{3})\b")

_LIBRARY = re.compile(
    r"(?:site|dist)-packages/|/lib/python\d|/lib/pypy|<frozen|node_modules/|\.egg/"
    r"|/usr/lib/|^/?lib/[^/]+\.py$|/lib/[^/]+\.py$|/lib/(?:asyncio|json|unittest|importlib)/"
)
_PYTEST = re.compile(r"(?:^|/)(?:_pytest|pluggy|pytest_\w+)/")
_TEST_FILE = re.compile(r"(?:^|/)(?:test_[^/]*|[^/]*_tests?\.py|conftest\.py|tests\.py)$")


def frame_kind(path: str, tests_dirs: Sequence[str] = ("tests", "test")) -> str:
    """Where a frame's code lives: our tests, our application, a library, or pytest."""
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
    found: list[tuple[int, Frame]] = []
    for pattern, needle in zip(_FRAME_PATTERNS, _FRAME_NEEDLES, strict=True):
        if needle not in text:
            continue
        for m in pattern.finditer(text):
            path = m.group("path")
            line = m.groupdict().get("line")
            func = m.groupdict().get("func") or ""
            found.append(
                (
                    m.start(),
                    Frame(path, int(line) if line else None, func, frame_kind(path, tests_dirs)),
                )
            )
    found.sort(key=lambda item: item[0])
    return tuple(frame for _, frame in found)


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
        value = m.group(1) or m.group(2)
        line_start = text.rfind("\n", max(0, start - 60), start) + 1
        before = text[max(line_start, start - 40) : start]
        after = text[end : end + 40]
        if (
            _STATUS_BEFORE.search(before)
            or _STATUS_AFTER.match(after)
            or (value[0] in "45" and _ERROR_AFTER.match(after))
        ):
            out.append(int(value))
    return tuple(dict.fromkeys(out))


_ASSERTION_NEEDLES = ("==", "!=", "xpected", "ssert status", "actual value")
_CLOSE_NEEDLES = ("received", "sent", "code")


def _has_status_assertion(text: str) -> bool:
    return any(n in text for n in _ASSERTION_NEEDLES) and bool(_STATUS_ASSERTION.search(text))


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
) -> FailureEvidence:
    """Turn one test result plus what the environment showed into evidence for the rules.

    `probe_history` holds probe results stored while the test ran (they may
    differ from the gate's check before the phase started).
    """
    text = failure_text(test)
    failing: dict[tuple[str, str], ProbeResult] = {}
    healthy: list[str] = []
    if gate is not None:
        for probe in gate.probes:
            if not probe.ok:
                failing[(probe.component, probe.name)] = probe
        healthy = [c.name for c in gate.components if c.healthy]
    for probe in probe_history:
        if not probe.ok:
            failing.setdefault((probe.component, probe.name), probe)
    return FailureEvidence(
        nodeid=test.nodeid,
        outcome=test.outcome,
        text=text,
        message=test.message,
        when=test.when,
        exc_types=exception_types(text),
        statuses=http_statuses(text),
        status_assertion=_has_status_assertion(text),
        close_codes=_close_codes(text),
        frames=parse_frames(text, tests_dirs),
        gate_known=gate is not None or bool(probe_history),
        failing_probes=tuple(failing.values()),
        healthy_components=tuple(c for c in healthy if c not in {p[0] for p in failing}),
        test_components=index_components(test.nodeid, index),
        passed_on_rerun=test.passed_on_rerun,
        flips=flips,
        history_runs=history_runs,
        env_correlated=env_correlated,
        revision=revision,
        previous_revision=previous_revision,
        blocked_by=test.blocked_by,
        skip_reason=test.skip_reason or (test.message if test.outcome is Outcome.SKIPPED else ""),
        markers=test.markers,
        request_id=test.request_id,
        server_log=server_log,
    )
