"""The predicates the rule table names: pure questions about one failure's evidence.

Each returns the excerpt that shows the answer (or None); table.py refers to them by the
names in `PREDICATES` (fixed ones), `FACTORIES` (made with arguments from the table) and
`CONDITIONS` (environment facts a `when` entry requires).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from greenloop.records import Outcome
from greenloop.triage import model as learned
from greenloop.triage.evidence import FailureEvidence, frame_kind
from greenloop.triage.rules.combinators import Matcher, excerpt, once_per_text, rx
from greenloop.triage.rules.components import probed_ports, probes_note, refused_ports
from greenloop.triage.vocab import (
    PLUGIN_FIXTURES,
    REMOVED_MODULES,
    TEST_API_MISUSE,
    TEST_TREE_MODULES,
)

# Three rules ask whether the connection was refused: history-and-outage, then (when no
# probe was failing) refused-probes-green, and connection-refused.
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
_GATEWAY = frozenset({502, 503, 504})
_STOPPED = frozenset({Outcome.TIMEOUT, Outcome.CRASHED})


def _gate_unknown(ev: FailureEvidence) -> bool:
    return not ev.gate_known


def _refused_unprobed_port(ev: FailureEvidence) -> str | None:
    """Refused at a port no probe checks, while the probes name theirs: the test points
    at another address than the config. A refusal that names no port, or the port a probe
    checks, is no evidence of a wrong address (the server is down: connection-refused)."""
    found = _REFUSED(ev)
    probed = probed_ports(ev) if found is not None else ()
    if not probed:
        return None
    ports = refused_ports(ev.text)
    if not ports or any(port in probed for port in ports):
        return None
    return f"{found} (refused at port {', '.join(ports)}; the probes check {', '.join(probed)})"


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


def _stopped_by_runner(ev: FailureEvidence) -> str | None:
    """Timed out or crashed with no error of its own: a deadline, pytest-timeout's stack
    dump, pytest dying or never reaching the test. What the runner wrote is no evidence."""
    if ev.outcome not in _STOPPED or ev.exc_types:
        return None
    return (ev.message or ev.outcome.value)[:240]


def _history_flaky(ev: FailureEvidence) -> str | None:
    if ev.flips >= 2 and not ev.env_correlated:
        return f"{ev.flips} pass/fail flips in {ev.history_runs} runs of this revision"
    return None


def _history_env(ev: FailureEvidence) -> str | None:
    if ev.flips >= 2 and ev.env_correlated:
        return f"{ev.flips} flips in {ev.history_runs} runs, failures coincide with probe failures"
    return None


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


def _probes_green(ev: FailureEvidence) -> bool:
    return ev.probes_green


def _raised_in_any(kind: str, types: tuple[str, ...] | None = None) -> Matcher:
    return _raised_in(kind, None if types is None else frozenset(types))


# --------------------------------------------------------------------------- names

# The names table.py uses for them.
PREDICATES: dict[str, Matcher] = {
    "rerun": _rerun,
    "history-env": _history_env,
    "history-flaky": _history_flaky,
    "stopped-by-runner": _stopped_by_runner,
    "test-api-misuse": _TEST_API_MISUSE,
    "test-tree-import": _test_tree_import,
    "missing-dependency": _missing_dependency,
    "plugin-fixture-missing": _plugin_fixture_missing,
    "unawaited-in-app": _unawaited_in_app,
    "server-rejected-credentials": _server_rejected_credentials,
    "fixture-certificate-expired": _fixture_certificate_expired,
    "timeout-while-slow": _timeout_while_slow,
    "websocket-rejected": _websocket_rejected,
    "gateway-status": _gateway_status,
    "connection-refused": _REFUSED,
    "refused-unprobed-port": _refused_unprobed_port,
    "component-down": _component_down,
    "server-log-exception": _server_log_exception,
    "server-traceback": _server_traceback,
    "server-error-status": _server_error_status,
    "wrong-status-green": _wrong_status_green,
    "status-mismatch": _status_mismatch,
    "ordering": _ordering,
    "setup-error-without-cause": _setup_error_without_cause,
    "bare-keyerror": _bare_keyerror,
    "app-exception": _app_exception,
    "app-frame-no-exception": _app_frame_no_exception,
    "assertion-green": _assertion_green,
}
# Predicates made from the table's arguments (plain strings, numbers, booleans, lists).
FACTORIES: dict[str, Callable[..., Matcher]] = {
    "removed-module": _removed_module,  # where: "test code", "the code under test", ...
    "removed-api": _removed_api,  # in_test: bool
    "close-codes": _close_codes,  # WebSocket close codes
    "raised-in": _raised_in_any,  # frame kind, exception names (None: any)
    "model-says": _model_says,  # category
}
CONDITIONS: dict[str, Callable[[FailureEvidence], bool]] = {
    "probe-failing": _has_failing,
    "probes-green": _probes_green,
    "gate-unknown": _gate_unknown,
}
NOTES: dict[str, Callable[[FailureEvidence], str]] = {"probes": probes_note}
