"""The classification rule table: ordered data, first match wins.

Each `Rule` names a category, a REASON (names.py), a confidence and a pure
predicate over `FailureEvidence` that returns the excerpt that convinced it
(or None). Order matters and is deliberate: environment facts that override
the text (re-runs, probe failures) come first, then failures whose text is
unambiguous (a missing fixture is a test bug whatever the environment), then
the network family where probe states decide between infrastructure and
configuration, then product signals, and "unknown" last. User rules from
`[[triage.rules]]` are tried before all of them. docs/triage.md lists the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar
from urllib.parse import urlsplit

from greenloop.config import RuleConfig
from greenloop.errors import ConfigError
from greenloop.records import Category, Outcome, ProbeResult
from greenloop.triage import model as learned
from greenloop.triage.evidence import FailureEvidence, frame_kind
from greenloop.triage.vocab import (
    PLUGIN_FIXTURES,
    REMOVED_MODULES,
    TEST_API_MISUSE,
    TEST_TREE_MODULES,
)

Matcher = Callable[[FailureEvidence], str | None]
# Every pattern rx() compiled, with its flags: the literal check in the test suite splits
# each into its alternatives and counts the labelled items each one matches.
RX_PATTERNS: list[tuple[str, int]] = []
ComponentOf = Callable[[FailureEvidence], str | None]
Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table."""

    name: str
    category: Category
    reason: str
    confidence: float
    doc: str
    match: Matcher
    component: ComponentOf = lambda ev: None


# --------------------------------------------------------------------------- building blocks


def excerpt(text: str, start: int, end: int, width: int = 240) -> str:
    """The line holding a match, trimmed: what a person checks against the rule."""
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    line = text[lo : hi if hi != -1 else len(text)].strip()
    return line if len(line) <= width else line[: width - 3] + "..."


def rx(pattern: str, *needles: str, flags: int = 0) -> Matcher:
    """Match a regex over the text; `needles` are literal substrings one of which must occur
    (a cheap filter run before the regex). Start every alternative with a plain character,
    `Connection refused|connection refused` rather than `[Cc]onnection refused`, and
    `401(?<!\\w401)` rather than `\\b401`: see PLAIN_START in evidence.py for why."""
    compiled = re.compile(pattern, flags)
    RX_PATTERNS.append((pattern, flags))

    def match(ev: FailureEvidence) -> str | None:
        text = ev.text
        # A plain loop in place: cheaper than any() or a helper, and this runs ~20 times
        # per failure.
        for needle in needles:
            if needle in text:
                break
        else:
            if needles:
                return None
        m = compiled.search(text)
        return excerpt(text, m.start(), m.end()) if m else None

    return match


def both(first: Matcher, second: Matcher) -> Matcher:
    def match(ev: FailureEvidence) -> str | None:
        a = first(ev)
        if a is None:
            return None
        b = second(ev)
        return None if b is None else (a if a == b else f"{a} | {b}")

    return match


def when(
    predicate: Callable[[FailureEvidence], bool],
    matcher: Matcher,
    note: str | Callable[[FailureEvidence], str] = "",
) -> Matcher:
    """`matcher`, but only when an environment fact holds; the fact is added to the evidence."""

    def match(ev: FailureEvidence) -> str | None:
        if not predicate(ev):
            return None
        found = matcher(ev)
        if found is None:
            return None
        return f"{found} ({note(ev) if callable(note) else note})" if note else found

    return match


def probes_note(ev: FailureEvidence) -> str:
    if not ev.failing_probes:
        return "every probe green" if ev.gate_known else "no probe data"
    return _failing_note(ev.failing_probes[:3])


# Every failure of a run shares the gate's failing probes: format them (a strftime each) once.
@lru_cache(maxsize=64)
def _failing_note(probes: tuple[ProbeResult, ...]) -> str:
    return "; ".join(
        f"probe {p.name!r} ({p.component}) failing at {p.checked_at:%H:%M:%S}: {p.detail[:120]}"
        for p in probes
    )


# --------------------------------------------------------------------------- components


@dataclass(frozen=True, slots=True)
class _Family:
    """A kind of component an error text can name: its pattern, and the probe names it fits.

    `needles` are literals one of which every match of `pattern` holds: a text without any
    of them is not searched (the search costs several times more than the scans).
    """

    name: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...]
    hints: tuple[str, ...]  # a probe whose component or kind holds one is of this family

    def named_in(self, text: str) -> bool:
        for needle in self.needles:
            if needle in text:
                return self.pattern.search(text) is not None
        return False


_FAMILIES = (
    _Family(
        "database",
        re.compile(r"psycopg|postgres|PgDatabase|sqlalchemy|django\.db|mysql|:5432\b|port 5432"),
        ("psycopg", "postgres", "PgDatabase", "sqlalchemy", "django.db", "mysql", "5432"),
        ("db", "database", "postgres", "pg", "sql"),
    ),
    _Family(
        "cache",
        re.compile(r"Redis|redis|:6379\b|port 6379"),
        ("edis", "6379"),
        ("redis", "cache"),
    ),
    _Family(
        "websocket",
        re.compile(r"WebSocket|Websocket|webSocket|websocket|ws(?<!\wws)s?://"),
        ("ebSocket", "ebsocket", "ws://", "wss://"),
        ("ws", "websocket", "realtime", "gateway"),
    ),
)
_PORT = re.compile(r"(?:[:(,]\s?|port |, )(\d{2,5})\b")
_HOST = re.compile(r"""(?:host=['"]?|https?://|wss?://|host ")([\w.-]+)""")


@lru_cache(maxsize=256)  # a handful of probe targets, asked about for every failure
def _target_port(target: str) -> str | None:
    try:
        parts = urlsplit(target if "://" in target else f"tcp://{target}")
        return str(parts.port) if parts.port else None
    except ValueError:
        return None


def target_component(ev: FailureEvidence) -> str | None:
    """Which component a network failure points at.

    Failing probes first (same port as the error, then a name matching the
    error's family), then the family of the error itself, then the host.
    """
    text = ev.text
    if ev.failing_probes:
        targets = [(probe, _target_port(probe.target)) for probe in ev.failing_probes]
        # A port the text names is digits of it: list them only when a probe's port is there.
        if any(port and port in text for _, port in targets):
            ports = set(_PORT.findall(text))
            for probe, port in targets:
                if port and port in ports:
                    return probe.component
        for family in _FAMILIES:  # each family searched only when it is needed
            if not family.named_in(text):
                continue
            for probe in ev.failing_probes:
                if any(h in probe.component.lower() or h in probe.kind for h in family.hints):
                    return probe.component
        return ev.failing_probes[0].component
    for family in _FAMILIES:
        if family.named_in(text):
            return family.name
    host = _HOST.search(text)
    return host.group(1) if host else None


_AUTH_HINTS = ("auth", "identity", "login", "sso", "oauth", "iam", "keycloak")


def auth_component(ev: FailureEvidence) -> str | None:
    """The component the environment names for authentication ('auth', 'identity', ...)."""
    for name in (*ev.test_components, *ev.known_components):
        if any(h in name.lower() for h in _AUTH_HINTS):
            return name
    return None


def slow_component(ev: FailureEvidence) -> str | None:
    return ev.slow[0].component if ev.slow else None


def failing_component(ev: FailureEvidence) -> str | None:
    """The failing component the test depends on, else the first failing one."""
    for probe in ev.failing_probes:
        if probe.component in ev.test_components:
            return probe.component
    return ev.failing_probes[0].component if ev.failing_probes else None


# --------------------------------------------------------------------------- predicates


def once_per_text(
    question: Callable[[FailureEvidence], Answer],
) -> Callable[[FailureEvidence], Answer]:
    """`question`, a function of `ev.text` alone that several rules ask: the answer for the
    last text asked is kept, so a failure that reaches all of those rules pays once."""
    last: list[tuple[str, Answer]] = []  # (text, answer), the text held so `is` is safe

    def ask(ev: FailureEvidence) -> Answer:
        text = ev.text
        if last:
            seen, answer = last[0]
            if seen is text:
                return answer
        answer = question(ev)
        last[:] = [(text, answer)]
        return answer

    return ask


# Four rules ask whether the connection was refused: history-and-outage, then (when no probe
# was failing) refused-probes-green or refused-loopback, and connection-refused.
_REFUSED = once_per_text(
    rx(
        r"Connection refused|connection refused|ECONNREFUSED|"
        r"(?:Errno|WinError|Error) (?:111|61|10061)\b|All connection attempts failed|"
        r"Could not connect to server|could not connect to server|Connect call failed|"
        r"Failed to connect to|failed to connect to|"
        r"httpx\.ConnectError|Cannot connect to host",
        "efused",
        "ECONNREFUSED",
        "111",
        "61",
        "ttempts failed",
        "onnect",
    )
)
_LOOPBACK = re.compile(r"localhost(?<!\wlocalhost)\b|127\.0\.0\.1|\[::1\]?[ :,)]|::1\]?[ :,)]")
_PROGRAMMING_ERRORS = frozenset(
    {
        "AttributeError",
        "KeyError",
        "TypeError",
        "ValueError",
        "IndexError",
        "NameError",
        "UnboundLocalError",
        "ZeroDivisionError",
        "RecursionError",
        "NotImplementedError",
        "DoesNotExist",
        "ObjectDoesNotExist",
        "ValidationError",
        "JSONDecodeError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
        "OverflowError",
        "ProgrammingError",
    }
)
_TEST_CODE_ERRORS = frozenset(
    {"NameError", "SyntaxError", "ImportError", "ModuleNotFoundError", "FixtureLookupError"}
)
_GATEWAY = frozenset({502, 503, 504})


def _gate_unknown(ev: FailureEvidence) -> bool:
    return not ev.gate_known


def _loopback_refused(ev: FailureEvidence) -> str | None:
    found = _REFUSED(ev)
    if found is None or not ev.text or not _LOOPBACK.search(ev.text):
        return None
    return found


_HANDSHAKE = rx(
    r"rejected WebSocket connection|InvalidStatus|WebSocket.*(?:handshake|upgrade)",
    "WebSocket",
    "InvalidStatus",
)


@once_per_text  # websocket-rejected, then gateway-status
def _gateway_codes(ev: FailureEvidence) -> tuple[int, ...]:
    """The 502/503/504 statuses the failure reports receiving, sorted.

    A status is digits of the text, so a text without "502", "503" or "504" reports none
    of them: parsing its statuses (the costly part) can wait for a rule that needs them.
    """
    text = ev.text
    if "502" not in text and "503" not in text and "504" not in text:
        return ()
    return tuple(sorted(set(ev.statuses) & _GATEWAY))


def _websocket_rejected(ev: FailureEvidence) -> str | None:
    if not _gateway_codes(ev):
        return None
    return _HANDSHAKE(ev)


def _gateway_status(ev: FailureEvidence) -> str | None:
    codes = _gateway_codes(ev)
    return f"HTTP {', '.join(map(str, codes))} received" if codes else None


def _close_codes(*codes: int) -> Matcher:
    # A close code is digits of the text: without one of these, parsing codes finds none.
    digits = tuple(str(c) for c in codes)

    def match(ev: FailureEvidence) -> str | None:
        text = ev.text
        for d in digits:
            if d in text:
                break
        else:
            return None
        hit = [c for c in ev.close_codes if c in codes]
        return f"WebSocket closed with code {hit[0]}" if hit else None

    return match


# Where a web framework's own frames live: a traceback through one is the server's.
_SERVER_FRAMEWORKS = (
    "django/core/handlers",
    "flask/app.py",
    "werkzeug/",
    "starlette/",
    "fastapi/",
    "pyramid",
    "aspen/",
    "tornado/web.py",
    "aiohttp/web",
    "falcon/",
    "bottle.py",
    "uvicorn/",
)
_SERVER_TRACEBACK_RE = re.compile(
    r"Internal Server Error|^\s*\w+(?:Error|Exception|DoesNotExist) at /\S*|Exception Location:|"
    rf"File \"[^\"]*(?:{'|'.join(map(re.escape, _SERVER_FRAMEWORKS))})",
    re.M,
)


def _server_traceback(ev: FailureEvidence) -> str | None:
    """The server's error page or a traceback through a web framework.

    The search is slow (an alternative starts with ^), and most tracebacks hold 'File "'
    without a framework: look for the literals each alternative needs first.
    """
    text = ev.text
    if not (
        "Internal Server Error" in text
        or " at /" in text
        or "Exception Location:" in text
        or ('File "' in text and any(f in text for f in _SERVER_FRAMEWORKS))
    ):
        return None
    m = _SERVER_TRACEBACK_RE.search(text)
    return excerpt(text, m.start(), m.end()) if m else None


def _server_error_status(ev: FailureEvidence) -> str | None:
    others = [e for e in ev.exc_types if e not in ("AssertionError", "Failed", "HTTPError")]
    if not ev.probes_green and not others:
        return None  # whatever the status (checked second: parsing statuses costs more)
    codes = [s for s in ev.statuses if s >= 500 and s not in _GATEWAY]
    if not codes:
        return None
    if ev.probes_green:
        return f"HTTP {codes[0]} while every probe was green"
    if others:
        return f"HTTP {codes[0]} with server exception {others[-1]}"
    return None


def _status_mismatch(ev: FailureEvidence) -> str | None:
    if not ev.status_assertion:
        return None
    got = ", ".join(map(str, ev.statuses)) or "another"
    return f"test expected a different HTTP status (got {got})"


def _wrong_status_green(ev: FailureEvidence) -> str | None:
    if not ev.probes_green:
        return None
    return _status_mismatch(ev)


def _raised_in(kind: str, types: frozenset[str] | None = None) -> Matcher:
    def match(ev: FailureEvidence) -> str | None:
        exc = ev.exc_type
        if exc is None or (types is not None and exc not in types):
            return None
        frame = ev.raising_frame
        if frame is None or frame.kind != kind:
            return None
        return f"{exc} raised in {kind} code {frame.path}:{frame.line or '?'} in {frame.function}"

    return match


def _app_exception(ev: FailureEvidence) -> str | None:
    exc = ev.exc_type
    if exc not in _PROGRAMMING_ERRORS:
        return None
    frame = ev.raising_frame
    if frame is not None and frame.kind == "test":
        return None
    if exc == "KeyError" and frame is None:
        return None  # a bare KeyError could be a missing env var, a test dict or the app
    where = f" in {frame.path}:{frame.line or '?'}" if frame else ""
    return f"{exc}{where}: {ev.text.strip().splitlines()[-1][:160]}"


def _server_log_exception(ev: FailureEvidence) -> str | None:
    """The service logged an exception for this very request (matched by request id)."""
    if not ev.server_log:
        return None
    lines = ev.server_log.strip().splitlines()
    return f"service log for request {ev.request_id}: {lines[-1][:200]}"


def _server_rejected_credentials(ev: FailureEvidence) -> str | None:
    """The service answered this test's request with 401/403 (its log says so), no 5xx."""
    rejected = [r for r in ev.server_records if r.status is not None and r.status >= 400]
    if not rejected or rejected[-1].status not in (401, 403) or ev.server_error is not None:
        return None
    r = rejected[-1]
    said = f": {r.error}" if r.error else ""
    asked = r.endpoint or "the request"
    return f"service answered {r.status} to {asked}{said} (its log, {ev.server_match})"


_TIMEOUT = rx(
    # the timeout exception family: ReadTimeout, ConnectTimeout, TimeoutError, ...
    r"(?:Read|Connect|Pool|Write)?Timeout(?:Error|Exception)?\b|(?:Read |read )?timed out|"
    r"ETIMEDOUT|"
    r"(?i:deadline ?exceeded)",
    "Timeout",
    "timed out",
    "ETIMEDOUT",
    "eadline",
)


def _timeout_while_slow(ev: FailureEvidence) -> str | None:
    if not ev.slow:
        return None
    found = _TIMEOUT(ev)
    if found is None:
        return None
    s = ev.slow[0]
    return f"{found} (while {s.component} answered in {s.latency_ms:.0f} ms: {s.said})"


def _bare_keyerror(ev: FailureEvidence) -> str | None:
    if ev.exc_type == "KeyError" and ev.raising_frame is None:
        return "KeyError with no traceback: where it was raised decides its category"
    return None


def _app_frame_no_exception(ev: FailureEvidence) -> str | None:
    if ev.exc_types:
        return None
    frame = ev.raising_frame
    if frame is None or frame.kind != "app" or not ev.frames or ev.frames[-1].kind != "app":
        return None
    return (
        f"traceback ends in application code {frame.path}:{frame.line or '?'} in {frame.function}"
    )


def _assertion_green(ev: FailureEvidence) -> str | None:
    if not ev.probes_green:
        return None
    if "AssertionError" in ev.exc_types or "\nE   " in ev.text or ev.text.startswith("assert"):
        return f"assertion failed while every probe was green: {ev.message[:160]}"
    return None


def _component_down(ev: FailureEvidence) -> str | None:
    down = [p for p in ev.failing_probes if p.component in ev.test_components]
    if not down:
        return None
    p = down[0]
    return (
        f"test exercises {p.component}, whose probe {p.name!r} was failing at "
        f"{p.checked_at:%H:%M:%S}: {p.detail[:120]}"
    )


_ORDER_SIDES = re.compile(
    r"^(?:E\s+)?(?:AssertionError: )?(?:assert )?(?P<a>.{3,300}?) (?:!=|==) (?P<b>.{3,300})$", re.M
)
_TOKENS = re.compile(r"\w+")


def _ordering(ev: FailureEvidence) -> str | None:
    """Both sides hold the same items in a different order: set/dict ordering, not a bug."""
    if " == " not in ev.text and " != " not in ev.text:
        return None
    for m in _ORDER_SIDES.finditer(ev.text):
        a, b = m.group("a"), m.group("b")
        ta, tb = _TOKENS.findall(a), _TOKENS.findall(b)
        if len(ta) >= 2 and ta != tb and sorted(ta) == sorted(tb):
            return excerpt(ev.text, m.start(), m.end())
        # a repr of a set/dict on both sides, e.g. "{obj, module}" vs "{module, obj}"
        sa = re.findall(r"\{[^{}]*\}", a)
        sb = re.findall(r"\{[^{}]*\}", b)
        if (
            sa
            and sb
            and any(
                x != y and sorted(_TOKENS.findall(x)) == sorted(_TOKENS.findall(y))
                for x in sa
                for y in sb
            )
        ):
            return excerpt(ev.text, m.start(), m.end())
    return None


def _rerun(ev: FailureEvidence) -> str | None:
    return "failed, then passed on re-run" if ev.passed_on_rerun else None


def _history_flaky(ev: FailureEvidence) -> str | None:
    if ev.flips >= 2 and not ev.env_correlated:
        return f"{ev.flips} pass/fail flips in {ev.history_runs} runs of this revision"
    return None


def _history_env(ev: FailureEvidence) -> str | None:
    if ev.flips >= 2 and ev.env_correlated:
        return f"{ev.flips} flips in {ev.history_runs} runs, failures coincide with probe failures"
    return None


def _outcome(*outcomes: Outcome) -> Callable[[FailureEvidence], bool]:
    return lambda ev: ev.outcome in outcomes


def _has_failing(ev: FailureEvidence) -> bool:
    return bool(ev.failing_probes)


# --------------------------------------------------------------------------- kinds


def _raised_in_test(ev: FailureEvidence) -> bool:
    frame = ev.raising_frame
    return frame is not None and frame.kind == "test"


_TEST_API_MISUSE = once_per_text(
    rx("|".join(TEST_API_MISUSE), "valid assertion", "attribute", "Warning", "directly", "nose")
)

_FIXTURE_NOT_FOUND = re.compile(r"fixture '(?P<name>[^']+)' not found")
_AVAILABLE = re.compile(r"available fixtures: (?P<names>[^\n]*)")


def _plugin_fixture_missing(ev: FailureEvidence) -> str | None:
    """A fixture a pytest plugin provides is not found and not listed as available: the
    plugin is not installed where the tests run."""
    if "not found" not in ev.text:
        return None
    m = _FIXTURE_NOT_FOUND.search(ev.text)
    if m is None or m.group("name") not in PLUGIN_FIXTURES:
        return None
    available = _AVAILABLE.search(ev.text)
    if available and re.search(rf"\b{re.escape(m.group('name'))}\b", available.group("names")):
        return None  # provided, yet not found: the test's own fixture graph
    return f"{excerpt(ev.text, m.start(), m.end())} (a fixture the plugin provides)"


_NO_MODULE = re.compile(r"No module named '(?P<mod>[\w.]+)'")


def _missing_module(ev: FailureEvidence) -> tuple[str, str] | None:
    """(root module, excerpt) of a module that could not be imported."""
    if "No module named" not in ev.text:
        return None
    m = _NO_MODULE.search(ev.text)
    if m is None:
        return None
    return m.group("mod").split(".")[0], excerpt(ev.text, m.start(), m.end())


def _raised_in_library(ev: FailureEvidence) -> bool:
    """The traceback ends in an installed library, past any code of our own."""
    return bool(ev.frames) and ev.frames[-1].kind == "library" and not _raised_in_test(ev)


def _test_tree_import(ev: FailureEvidence) -> str | None:
    found = _missing_module(ev)
    if found and found[0] in TEST_TREE_MODULES:
        return f"{found[1]} (the test tree's own package)"
    return None


def _removed_module(where: str) -> Matcher:
    """A removed module imported by `where`: test code, a library or the code under test."""

    def match(ev: FailureEvidence) -> str | None:
        found = _missing_module(ev)
        if not found or found[0] not in REMOVED_MODULES:
            return None
        if _raised_in_test(ev) != (where == "test code"):
            return None
        if where != "test code" and _raised_in_library(ev) != (where == "a library"):
            return None
        return f"{found[1]} (a removed module, imported by {where})"

    return match


def _missing_dependency(ev: FailureEvidence) -> str | None:
    """A module imported by the code under test or a library is not installed. (A test
    file importing a module nobody has is left to the collection rule: most often a
    helper of the test tree.)"""
    found = _missing_module(ev)
    if not found or found[0] in REMOVED_MODULES or found[0] in TEST_TREE_MODULES:
        return None
    if _raised_in_test(ev):
        return None
    return f"{found[1]} (not installed where the tests run)"


_REMOVED_API = once_per_text(
    rx(
        r"was removed in (?:the )?\w+|module '[\w.]+' has no attribute '[A-Z]\w*'|"
        r"cannot import name '\w+' from '[\w.]+'",
        "removed",
        "has no attribute",
        "cannot import name",
    )
)


def _removed_api(in_test: bool) -> Matcher:
    def match(ev: FailureEvidence) -> str | None:
        found = _REMOVED_API(ev)
        if found is None or _raised_in_test(ev) != in_test:
            return None
        return found

    return match


_CERT_EXPIRED = once_per_text(rx(r"(?i:cert\w*[ _]?(?:has[ _])?expired)", "xpired", "XPIRED"))
_TEST_PATH = re.compile(r"(?:^|[\s/\"'(])tests?/")


def _fixture_certificate_expired(ev: FailureEvidence) -> str | None:
    """An expired certificate the test tree carries (a fixture), not a server's."""
    found = _CERT_EXPIRED(ev)
    if found is None:
        return None
    if _raised_in_test(ev) or _TEST_PATH.search(ev.text):
        return f"{found} (a certificate in the test tree)"
    return None


_SETUP_ERROR = re.compile(r"ERROR at setup of \S+")


def _setup_error_without_cause(ev: FailureEvidence) -> str | None:
    """pytest's setup phase failed and the text names no exception of the code under
    test: the fixture or harness itself."""
    if "ERROR at setup of" not in ev.text:
        return None
    others = [e for e in ev.exc_types if e not in ("Failed", "Exit")]
    if others:
        return None
    m = _SETUP_ERROR.search(ev.text)
    return excerpt(ev.text, m.start(), m.end()) if m else None


_UNAWAITED_AT = re.compile(r"(?P<path>[^\s:]+\.py):\d+: RuntimeWarning: coroutine")


def _unawaited_in_app(ev: FailureEvidence) -> str | None:
    if "never awaited" not in ev.text:
        return None
    m = _UNAWAITED_AT.search(ev.text)
    if m is None or frame_kind(m.group("path")) != "app":
        return None
    return f"{excerpt(ev.text, m.start(), m.end())} (in application code)"


_PREDICTION = once_per_text(learned.predict)


def _model_says(category: str) -> Matcher:
    """The learned model (model.py) names `category` with enough probability: asked only
    when every rule above abstained."""

    def match(ev: FailureEvidence) -> str | None:
        p = _PREDICTION(ev)
        if p is None or p.category != category or p.probability < learned.MIN_PROBABILITY:
            return None
        model = learned.shipped()
        trained = f"; trained on the {model.trained_on}" if model and model.trained_on else ""
        return (
            f"learned model: {category} with probability {p.probability:.2f} "
            f"(weighed most: {', '.join(p.words)}{trained})"
        )

    return match


# --------------------------------------------------------------------------- the table

INFRA, P, T, C, F, U = (
    Category.INFRASTRUCTURE,
    Category.PRODUCT,
    Category.TEST,
    Category.CONFIGURATION,
    Category.FLAKY,
    Category.UNKNOWN,
)

BUILTIN_RULES: tuple[Rule, ...] = (
    # -- environment facts that outweigh the text
    Rule(
        "rerun-during-outage",
        INFRA,
        "INTERMITTENT-INFRASTRUCTURE",
        0.85,
        "passed on re-run while a probe was failing: the environment flickered",
        when(_has_failing, _rerun, probes_note),
        failing_component,
    ),
    Rule(
        "passed-on-rerun",
        F,
        "FLAKY-RERUN",
        0.85,
        "failed, then passed on re-run with no probe failing",
        _rerun,
    ),
    Rule(
        "history-env-intermittent",
        INFRA,
        "INTERMITTENT-INFRASTRUCTURE",
        0.75,
        "flips between pass and fail on one revision, failures coincide with probe failures",
        _history_env,
    ),
    Rule(
        "history-flips",
        F,
        "FLAKY-HISTORY",
        0.75,
        "flips between pass and fail on one revision, probes green each time",
        _history_flaky,
    ),
    # -- unambiguous test and configuration faults
    Rule(
        "test-api-misuse",
        T,
        "TEST-API-MISUSE",
        0.9,
        "test code uses a testing API the way a removed or misspelt version allowed "
        "(mock assertions, unittest aliases, pytest.warns(None), nose setup, patch targets)",
        _TEST_API_MISUSE,
    ),
    Rule(
        "pytest-usage-error",
        C,
        "PLUGIN-MISSING",
        0.85,
        "pytest rejects options the configuration passes: the plugin providing them is missing",
        rx(
            r"error: unrecognized arguments: -|ERROR: usage: \S+ \[options\]",
            "unrecognized arguments",
            "usage:",
        ),
    ),
    Rule(
        "test-tree-import",
        T,
        "IMPORT-ERROR",
        0.85,
        "the test tree's own package cannot be imported: the test layout or import mode",
        _test_tree_import,
    ),
    Rule(
        "removed-module-in-test",
        T,
        "REMOVED-API",
        0.8,
        "test code imports a module the standard library or setuptools removed",
        _removed_module("test code"),
    ),
    Rule(
        "removed-module",
        P,
        "REMOVED-API",
        0.7,
        "the code under test imports a module the standard library or setuptools removed",
        _removed_module("the code under test"),
    ),
    Rule(
        "removed-module-in-library",
        C,
        "DEPENDENCY-MISSING",
        0.7,
        "an installed library imports a removed module: a dependency too old for the environment",
        _removed_module("a library"),
    ),
    Rule(
        "missing-dependency",
        C,
        "DEPENDENCY-MISSING",
        0.75,
        "a module the code needs is not installed where the tests run",
        _missing_dependency,
    ),
    Rule(
        "removed-api-in-test",
        T,
        "REMOVED-API",
        0.75,
        "test code uses a library API that a new release removed",
        _removed_api(in_test=True),
    ),
    Rule(
        "removed-api",
        P,
        "REMOVED-API",
        0.7,
        "the code under test uses a library API that a new release removed",
        _removed_api(in_test=False),
    ),
    Rule(
        "shared-library-missing",
        C,
        "SYSTEM-LIBRARY-MISSING",
        0.85,
        "a system library a binary module loads is missing from the environment",
        rx(
            r"cannot open shared object file|Library not loaded|DLL load failed",
            "shared object",
            "not loaded",
            "DLL load",
        ),
    ),
    Rule(
        "locale-codec",
        C,
        "LOCALE",
        0.7,
        "text decoded with the ASCII codec: the environment runs without a UTF-8 locale",
        rx(r"'ascii' codec can't (?:de|en)code", "'ascii' codec"),
    ),
    Rule(
        "collection-error",
        T,
        "IMPORT-ERROR",
        0.9,
        "the test module cannot be imported or collected",
        rx(
            r"ImportError while importing test module|ERROR collecting|"
            r"errors? during collection|CollectError|Test suite failed to run",
            "ImportError while",
            "ERROR collecting",
            "during collection",
            "CollectError",
            "Test suite failed to run",  # jest: the test file cannot load
        ),
    ),
    Rule(
        "plugin-fixture-missing",
        C,
        "PLUGIN-MISSING",
        0.85,
        "a fixture a pytest plugin provides is not found: the plugin is not installed",
        _plugin_fixture_missing,
    ),
    Rule(
        "missing-fixture",
        T,
        "MISSING-FIXTURE",
        0.95,
        "pytest cannot find a fixture",
        rx(r"fixture '[^']+' not found|FixtureLookupError", "fixture '", "FixtureLookupError"),
    ),
    Rule(
        "fixture-scope-mismatch",
        T,
        "FIXTURE-SCOPE-MISMATCH",
        0.95,
        "a fixture requests a narrower-scoped fixture",
        rx(r"ScopeMismatch", "ScopeMismatch"),
    ),
    Rule(
        "unawaited-in-app",
        P,
        "UNAWAITED-COROUTINE",
        0.7,
        "application code created a coroutine without awaiting it",
        _unawaited_in_app,
    ),
    Rule(
        "unawaited-coroutine",
        T,
        "UNAWAITED-COROUTINE",
        0.9,
        "test code called a coroutine without awaiting it",
        rx(r"coroutine '[^']+' was never awaited|was never awaited", "never awaited"),
    ),
    Rule(
        "missing-env-var",
        C,
        "MISSING-ENV",
        0.9,
        "an environment variable the code needs is not set",
        rx(
            r"os\.environ\[|os\.py\", line \d+, in __getitem__|"
            r"environment variable \S+ (?:is )?(?:not set|missing|undefined)|"
            r"set the \w+ environment variable|"
            r"Missing (?:required )?environment variable|"
            r"missing (?:required )?environment variable",
            "environ",
            "__getitem__",
            "nvironment variable",
        ),
    ),
    Rule(
        "setting-not-set",
        C,
        "MISSING-ENV",
        0.75,
        "the failure names an environment setting (ALL_CAPS) that is not set",
        rx(
            # one kind: an ALL_CAPS setting the text says to set, or says is not set
            r"(?:\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b[^\n]{0,60}\b(?:are|is) not set\b|"
            r"\bset [A-Z][A-Z0-9]*_[A-Z0-9_]+\b)",
            "not set",
            "set ",
        ),
    ),
    Rule(
        "improperly-configured",
        C,
        "MISCONFIGURED",
        0.9,
        "the application's settings are missing or invalid",
        rx(
            r"ImproperlyConfigured|settings are not configured|Missing required setting|"
            r"missing required setting",
            "ImproperlyConfigured",
            "not configured",
            "setting",
        ),
    ),
    Rule(
        "database-auth",
        C,
        "DATABASE-AUTH",
        0.9,
        "the database rejected the user or password the config supplies",
        rx(
            r"password authentication failed|role \"[^\"]+\" does not exist|"
            r"Access denied for user|NOAUTH|WRONGPASS|invalid username-password|"
            r"database \"[^\"]+\" does not exist",
            "password",
            'role "',
            "Access denied",
            "NOAUTH",
            "WRONGPASS",
            'database "',
        ),
    ),
    Rule(
        "auth-token-expired",
        T,
        "AUTH-TOKEN-EXPIRED",
        0.6,
        "a 401 for a token the test presented expired or undecodable: the test's token handling",
        both(
            rx(r"401(?<!\w401)\b|Unauthorized|Unauthenticated|unauthenticated", "401", "nauth"),
            rx(
                r"Token (?:has )?expired|token (?:has )?expired|Expired (?:token|signature)|"
                r"expired (?:token|signature)|ExpiredSignature|"
                r"jwt expired",
                "xpired",
                "decode",
            ),
        ),
    ),
    Rule(
        "auth-rejected",
        C,
        "AUTH-401",
        0.8,
        "credentials, API key or token from the config were rejected",
        rx(
            r"401(?<!\w401)\b.{0,40}(?:Unauthori[sz]ed|error)|Unauthori[sz]ed|"
            r"(?i:(?:invalid|incorrect)[_ ]api[_ ]key)|"
            r"Invalid (?:access )?token|invalid (?:access )?token|"
            r"AuthenticationError|authentication failed|403(?<!\w403) Forbidden",
            # Every alternative holds one: 'nvalid' the invalid key and token ones,
            # 'ncorrect' the incorrect keys (not 'api' or 'oken': most texts have those).
            "401",
            "nauthori",
            "credentials",
            "nvalid",
            "ncorrect",
            "uthentication",
            "403",
        ),
        auth_component,
    ),
    Rule(
        "server-rejected-credentials",
        C,
        "AUTH-401",
        0.75,
        "the service's log shows it answered the test's request with 401/403",
        _server_rejected_credentials,
        auth_component,
    ),
    Rule(
        "tls-hostname-mismatch",
        C,
        "TLS-HOSTNAME-MISMATCH",
        0.9,
        "the certificate is valid but not for the host name the config uses",
        rx(
            r"Hostname mismatch|hostname mismatch|doesn't match|not valid for|"
            r"ERR_TLS_CERT_ALTNAME_INVALID|CertificateError",
            "match",
            "not valid for",
            "ALTNAME",
            "CertificateError",
        ),
    ),
    Rule(
        "tls-untrusted-ca",
        C,
        "TLS-UNTRUSTED-CA",
        0.8,
        "a certificate chain ends in a CA the client was not configured to trust "
        "(a self-signed or corporate proxy CA)",
        rx(
            r"self[- ]signed certificate in certificate chain|"
            r"unable to get local issuer certificate",
            "self",
            "local issuer",
        ),
    ),
    Rule(
        "tls-fixture-expired",
        T,
        "TLS-FIXTURE-EXPIRED",
        0.75,
        "a certificate the test tree carries has expired",
        _fixture_certificate_expired,
    ),
    Rule(
        "tls-certificate",
        INFRA,
        "TLS-CERTIFICATE",
        0.8,
        "the server's certificate is not trusted (expired, self-signed, unknown CA)",
        rx(
            r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|certificate has expired|"
            r"self[- ]signed certificate|unable to get local issuer",
            "ertificate",
            "CERTIFICATE",
        ),
    ),
    # -- the environment is broken, whatever the test does
    Rule(
        "disk-full",
        INFRA,
        "DISK-FULL",
        0.95,
        "the machine ran out of disk space",
        rx(
            r"No space left on device|ENOSPC|Errno 28\]|Disk (?:is )?full|disk (?:is )?full",
            "space left",
            "ENOSPC",
            "Errno 28",
            "isk",
        ),
    ),
    Rule(
        "out-of-memory",
        INFRA,
        "OUT-OF-MEMORY",
        0.85,
        "a process was killed for memory",
        rx(
            r"exit code 137|OOMKilled|Out of memory|out of memory|Cannot allocate memory|"
            r"MemoryError|"
            r"signal 9|Killed process",
            "137",
            "OOM",
            "memory",
            "Memory",
            "signal 9",
            "Killed",
        ),
    ),
    Rule(
        "database-connections-exhausted",
        INFRA,
        "DATABASE-CONNECTIONS-EXHAUSTED",
        0.9,
        "the database refuses new connections",
        rx(
            r"too many clients|too many connections|remaining connection slots|max_connections|"
            r"max number of clients reached",
            "too many",
            "connection slots",
            "max_connections",
            "max number of clients",
        ),
        target_component,
    ),
    Rule(
        "service-starting",
        INFRA,
        "SERVICE-UNAVAILABILITY",
        0.8,
        "the service refused connections while still starting up",
        rx(r"system is starting up", "starting up"),
        target_component,
    ),
    Rule(
        "database-slow",
        INFRA,
        "DATABASE-SLOW",
        0.75,
        "database statements time out",
        rx(
            r"statement timeout|QueryCanceled|lock timeout|Database (?:is )?(?:too )?slow|"
            r"database (?:is )?(?:too )?slow",
            "timeout",
            "QueryCanceled",
            "slow",
        ),
        target_component,
    ),
    Rule(
        "timeout-while-slow",
        INFRA,
        "SLOW-DEPENDENCY",
        0.8,
        "a request timed out while a probe showed a component answering slowly",
        _timeout_while_slow,
        slow_component,
    ),
    Rule(
        "dns-failure",
        INFRA,
        "DNS-FAILURE",
        0.9,
        "a host name does not resolve",
        rx(
            r"gaierror|Name or service not known|Temporary failure in name resolution|"
            r"temporary failure in name resolution|nodename nor servname|"
            r"getaddrinfo (?:failed|ENOTFOUND)|ENOTFOUND|Could not resolve host|"
            r"could not resolve host|No address associated with hostname",
            "gaierror",
            "ame",
            "ENOTFOUND",
            "esolv",
            "address associated",
        ),
    ),
    Rule(
        "port-race",
        F,
        "PORT-RACE",
        0.7,
        "a port the test binds is taken: a race with another test or process",
        rx(
            r"Address already in use|EADDRINUSE|Errno 98\]|WinError 10048",
            "already in use",
            "EADDRINUSE",
            "Errno 98",
            "10048",
        ),
    ),
    Rule(
        "websocket-rejected",
        INFRA,
        "WEBSOCKET-503",
        0.85,
        "the WebSocket handshake was answered with 502/503/504",
        _websocket_rejected,
        target_component,
    ),
    Rule(
        "rate-limited",
        INFRA,
        "RATE-LIMITED",
        0.8,
        "a remote service throttled the run (429 / rate limit)",
        rx(
            r"(?i:too ?many ?requests|rate limit)",
            "oomanyrequests",
            "oo many",
            "OO MANY",
            "ate limit",
        ),
    ),
    Rule(
        "remote-status",
        INFRA,
        "GATEWAY-ERROR",
        0.75,
        "a remote service answered 502/503/504, as a client or monitor reports it",
        rx(
            r"(?:HTTP code|[Rr]esponse code|HTTP/[\d.]+):? 50[234]\b|"
            r"URL returned error: (?:429|5\d\d)\b",
            "HTTP code",
            "esponse code",
            "HTTP/",
            "returned error",
        ),
    ),
    Rule(
        "gateway-status",
        INFRA,
        "GATEWAY-ERROR",
        0.85,
        "a gateway answered 502/503/504: a service behind it is down",
        _gateway_status,
        target_component,
    ),
    Rule(
        "history-and-outage",
        INFRA,
        "SERVICE-UNAVAILABILITY",
        0.85,
        "connection refused while that component's probe was failing",
        when(_has_failing, _REFUSED, probes_note),
        target_component,
    ),
    Rule(
        "refused-probes-green",
        C,
        "WRONG-ADDRESS",
        0.6,
        "connection refused although every probe was green: the test points at the wrong "
        "host or port",
        when(lambda ev: ev.probes_green, _REFUSED, "every probe green"),
        target_component,
    ),
    Rule(
        "refused-loopback",
        C,
        "WRONG-ADDRESS",
        0.5,
        "connection refused on this machine with no probe data: nothing listens on the "
        "local address the test uses, most often a wrong host, port or IPv4/IPv6 binding",
        when(_gate_unknown, _loopback_refused),
        target_component,
    ),
    Rule(
        "connection-refused",
        INFRA,
        "SERVICE-UNAVAILABILITY",
        0.75,
        "a service refused or dropped the connection",
        _REFUSED,
        target_component,
    ),
    Rule(
        "connection-reset",
        INFRA,
        "CONNECTION-RESET",
        0.7,
        "the remote side reset the connection",
        rx(
            r"Connection reset|connection reset|ConnectionResetError|"
            r"forcibly closed|"
            r"RemoteDisconnected|Server disconnected|ECONNRESET|"
            r"EOF occurred in violation",
            "onnection",
            "forcibly",
            "Disconnected",
            "disconnected",
            "ECONNRESET",
            "EOF",
        ),
        target_component,
    ),
    Rule(
        "websocket-closed-abnormally",
        INFRA,
        "WEBSOCKET-CLOSED",
        0.7,
        "the WebSocket closed without a close frame or with 'try again later'",
        _close_codes(1001, 1006, 1012, 1013, 1014),
        target_component,
    ),
    Rule(
        "network-timeout",
        INFRA,
        "NETWORK-TIMEOUT",
        0.7,
        "a request to a service timed out",
        rx(
            r"ReadTimeout|ConnectTimeout|PoolTimeout|Read timed out|Connect(?:ion)? timed out|"
            r"connect(?:ion)? timed out|"
            r"ETIMEDOUT|timed out waiting for (?:a )?(?:response|connection)",
            "Timeout",
            "timed out",
            "ETIMEDOUT",
        ),
        target_component,
    ),
    Rule(
        "component-down",
        INFRA,
        "SERVICE-UNAVAILABILITY",
        0.7,
        "the test exercises a component whose probe was failing at the time",
        _component_down,
        failing_component,
    ),
    # -- the product misbehaves
    Rule(
        "data-integrity",
        P,
        "DATA-INTEGRITY",
        0.8,
        "the application violated a database constraint",
        rx(
            r"IntegrityError|duplicate key value violates|ForeignKeyViolation|"
            r"NotNullViolation|UNIQUE constraint failed",
            "Integrity",
            "Violation",
            "duplicate key",
            "constraint",
        ),
    ),
    Rule(
        "websocket-1011",
        P,
        "WEBSOCKET-1011",
        0.8,
        "the server closed the WebSocket with 1011 (internal error)",
        _close_codes(1011),
    ),
    Rule(
        "server-log-exception",
        P,
        "APP-500",
        0.9,
        "the service's log shows an exception for the test's own request (request id)",
        _server_log_exception,
    ),
    Rule(
        "server-traceback",
        P,
        "APP-500",
        0.85,
        "the server's own traceback or error page for the request",
        _server_traceback,
    ),
    Rule(
        "server-error-status",
        P,
        "APP-500",
        0.8,
        "HTTP 500 with a server exception, or while every probe was green",
        _server_error_status,
    ),
    Rule(
        "missing-event",
        P,
        "MISSING-EVENT",
        0.7,
        "an event the test waited for never arrived while the connection was up",
        rx(
            r"never (?:receive|arrive|get)[^\n]{0,40}(?:event|message)|"
            r"did not (?:receive|arrive|get)[^\n]{0,40}(?:event|message)|"
            r"didn't (?:receive|arrive|get)[^\n]{0,40}(?:event|message)|"
            r"event [^\n]{0,60}(?:never arrived|not received)|"
            r"message [^\n]{0,60}(?:never arrived|not received)|MissingEvent|"
            r"no [\w.'\"-]+ event (?:within|after)",
            "receive",
            "arrive",
            "MissingEvent",
            "event",
        ),
    ),
    Rule(
        "wrong-status-probes-green",
        P,
        "UNEXPECTED-STATUS",
        0.65,
        "unexpected HTTP status while every probe was green",
        _wrong_status_green,
    ),
    Rule(
        "unexpected-status",
        U,
        "UNEXPECTED-STATUS",
        0.3,
        "unexpected HTTP status and no probe data: product, test and environment all fit",
        _status_mismatch,
    ),
    Rule(
        "stale-call",
        T,
        "STALE-CALL",
        0.6,
        "a call with arguments the callee no longer accepts: test code out of date",
        rx(
            r"got an unexpected keyword argument|missing \d+ required (?:positional|keyword-only) "
            r"argument",
            "unexpected keyword",
            "required",
        ),
    ),
    Rule(
        "ordering",
        F,
        "FLAKY-ORDERING",
        0.6,
        "both sides hold the same items in a different order: set or dict ordering",
        _ordering,
    ),
    Rule(
        "wait-timeout",
        F,
        "FLAKY-TIMING",
        0.5,
        "a UI or async wait timed out with no probe failing: a timing assumption",
        rx(
            r"waiting for (?:selector|locator)|TimeoutError: page\.",
            "Timeout",
            "waiting for",
        ),
    ),
    Rule(
        "setup-error",
        T,
        "FIXTURE-ERROR",
        0.5,
        "pytest's setup phase failed and nothing names an error of the code under test",
        _setup_error_without_cause,
    ),
    Rule(
        "test-code-error",
        T,
        "TEST-CODE-ERROR",
        0.7,
        "an error raised in test code that only test code can cause",
        _raised_in("test", _TEST_CODE_ERRORS),
    ),
    Rule(
        "missing-field-in-test",
        P,
        "WRONG-RESPONSE",
        0.5,
        "test code found a field missing from a response",
        _raised_in("test", frozenset({"KeyError"})),
    ),
    Rule(
        "bare-keyerror",
        U,
        "INSUFFICIENT-EVIDENCE",
        0.3,
        "a KeyError without a traceback: where it was raised is unknown",
        _bare_keyerror,
    ),
    Rule(
        "app-exception",
        P,
        "APP-EXCEPTION",
        0.6,
        "a programming error raised in application code (or with no frame shown)",
        _app_exception,
    ),
    Rule(
        "app-frame",
        P,
        "APP-EXCEPTION",
        0.45,
        "the traceback ends in application code",
        _app_frame_no_exception,
    ),
    Rule(
        "assertion-probes-green",
        P,
        "WRONG-RESPONSE",
        0.6,
        "an assertion on the response while every probe was green",
        _assertion_green,
    ),
    # -- no rule decided: the learned model, when it is confident enough
    *(
        Rule(
            f"model-{category.value}",
            category,
            "MODEL-GUESS",
            0.5,
            f"the learned model names {category.value} (probability >= "
            f"{learned.MIN_PROBABILITY}); no rule decided",
            _model_says(category.value),
        )
        for category in (INFRA, P, T, C)
    ),
)

FALLBACK = Rule(
    "no-evidence",
    U,
    "INSUFFICIENT-EVIDENCE",
    0.2,
    "no rule matched: not enough evidence to name a category",
    lambda ev: "no rule matched the failure text and environment",
)


# --------------------------------------------------------------------------- user rules

_CATEGORIES = {c.value for c in Category}


def user_rules(configs: Sequence[RuleConfig], source: str = "greenloop.toml") -> tuple[Rule, ...]:
    """Compile `[[triage.rules]]`: a bad category or regex is a ConfigError naming the rule."""
    rules: list[Rule] = []
    for i, cfg in enumerate(configs):
        if cfg.category not in _CATEGORIES:
            raise ConfigError(
                source,
                f"triage.rules[{i}].category",
                f"expected one of {', '.join(sorted(_CATEGORIES))}, got {cfg.category!r}",
            )
        try:
            compiled = re.compile(cfg.pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(
                source, f"triage.rules[{i}].pattern", f"not a valid regular expression: {exc}"
            ) from None
        rules.append(
            Rule(
                name=cfg.name,
                category=Category(cfg.category),
                reason=re.sub(r"[^A-Z0-9]+", "-", cfg.name.upper()).strip("-") or "USER-RULE",
                confidence=cfg.confidence,
                doc=f"user rule /{cfg.pattern}/",
                match=_pattern_matcher(compiled),
                component=_fixed(cfg.component) if cfg.component else target_component,
            )
        )
    return tuple(rules)


def _fixed(component: str) -> ComponentOf:
    def of(ev: FailureEvidence) -> str | None:
        return component

    return of


def _pattern_matcher(compiled: re.Pattern[str]) -> Matcher:
    def match(ev: FailureEvidence) -> str | None:
        m = compiled.search(ev.text)
        return excerpt(ev.text, m.start(), m.end()) if m else None

    return match
