"""Stable fingerprints: the same fault in any run gives the same hex string.

A cluster is one problem. A fingerprint hashes what tells problems apart and masks what
varies between occurrences of one problem (docs/triage.md, "Cluster keys"):

- kept: the exception type; the failing statement with its values (pytest's `E` line,
  `assert 500 == 200`, else the exception line); the failing source expression (pytest's
  `>` line, a JS code frame's `>` line); the in-app and test helper frames (file and
  function, not line numbers, which move with every edit), and the test file when the
  test's own code raised.
- masked: timestamps, clock times, UUIDs, memory addresses, IPs, ports, temp paths, long
  hex, tokens, short random ids (letters and digits mixed), numbers of four digits or more,
  decimals and durations, numbers in URL paths and after `id`/`#`. Small whole numbers
  stay: they are the values an assertion compared.

Library, stdlib and pytest frames are dropped, and so is the test function's own name, so
twelve tests hitting one fault form one cluster. Environment faults (infrastructure,
configuration) hash the exception line with every number masked: the environment is the
fault, whatever each test asserted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from greenloop.records import Category, TestResult
from greenloop.triage.evidence import FailureEvidence, gather_evidence, parse_frames
from greenloop.triage.logs.base import LogRecord, normalize_path


@dataclass(frozen=True, slots=True)
class _Mask:
    """One masking step: `pattern` matches are replaced by `replacement`.

    The step is skipped when none of `needles` (literal substrings) occurs in the text, or
    when `hint` does not match: both are cheap tests that every match of `pattern` passes
    (a colon, two digits and a colon in every clock time), so skipping changes nothing.
    """

    pattern: re.Pattern[str]
    replacement: str
    needles: tuple[str, ...] = ()
    hint: re.Pattern[str] | None = None

    def apply(self, text: str) -> str:
        if self.needles and not any(n in text for n in self.needles):
            return text
        if self.hint is not None and self.hint.search(text) is None:
            return text
        return self.pattern.sub(self.replacement, text)


# Masks apply in order, each to the previous one's output. The patterns start with a plain
# character where they can (see PLAIN_START in evidence.py): `\d(?<!\w\d)` is `\b\d`.
_MASKS: tuple[_Mask, ...] = (
    _Mask(
        re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"),
        "<TS>",
        ("-",),
        re.compile(r"-\d\d-"),
    ),
    _Mask(
        re.compile(r"\d(?<!\w\d)\d:\d\d:\d\d(?:[.,]\d+)?\b"),
        "<TIME>",
        (":",),
        re.compile(r":\d\d:"),
    ),
    _Mask(
        re.compile(
            r"[0-9a-fA-F](?<!\w.)[0-9a-fA-F]{7}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
            r"[0-9a-fA-F]{12}\b"
        ),
        "<UUID>",
        ("-",),
    ),
    _Mask(re.compile(r"0(?<!\w0)x[0-9a-fA-F]+\b"), "<ADDR>", ("0x",)),
    _Mask(re.compile(r"\d(?<!\w\d)\d{0,2}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<IP>", (".",)),
    # IPv6: at least two colons with only hex digits between them.
    _Mask(
        re.compile(r"\[?\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\]?(?::\d+)?"),
        "<IP>",
        (":",),
        re.compile(r":[0-9a-fA-F]{0,4}:"),
    ),
    _Mask(
        re.compile(
            r"(?:/tmp|/var/folders|/private/var|[A-Za-z]:\\Users\\[^\\]+\\AppData\\Local\\Temp)"
            r"[^\s'\",)]*"
        ),
        "<TMP>",
        ("/tmp", "/var/folders", "/private/var", "\\Users\\"),
    ),
    _Mask(re.compile(r"pytest-of-[^\s/]+/pytest-\d+[^\s'\",)]*"), "<TMP>", ("pytest-of-",)),
    _Mask(re.compile(r"[0-9a-fA-F](?<!\w.)[0-9a-fA-F]{11,}\b"), "<HEX>"),
    # a port: two or more digits after ':' or '=' or 'port '
    _Mask(
        re.compile(r"\d(?:(?<=[:=]\d)|(?<=port \d))\d{1,4}\b"),
        "<PORT>",
        (":", "=", "port "),
        re.compile(r":\d\d|=\d\d|port \d\d"),
    ),
    _Mask(re.compile(r"\d+(?:\.\d+)?"), "<N>"),
)

_WS = re.compile(r"\s+")

# What varies between occurrences of one problem but the full masks above leave apart from
# the final number mask; `normalize_values` applies these instead of masking every number.
_VALUE_MASKS: tuple[_Mask, ...] = (
    *_MASKS[:-1],
    # an id after a word that names one: `request id abc`, `session=k3J9x`, `token: ...`
    _Mask(
        re.compile(
            r"(?i)\b(\w*id|token|session|nonce|trace|request|order|user|cart|job)"
            r"(\s*[=:#]\s*|\s+(?:id\s+)?)(['\"]?)[\w.-]*\d[\w.-]*"
        ),
        r"\1\2\3<ID>",
    ),
    # durations (`153ms`, `2.5 s`): before short ids, which `153ms` would look like
    _Mask(
        re.compile(r"\d+(?:[.,]\d+)?\s?(?:ms|us|µs|ns|s|secs?|seconds?|mins?|minutes?)\b"), "<DUR>"
    ),
    # long opaque tokens (JWT parts, base64url, API keys) with a digit in them
    _Mask(re.compile(r"(?<![\w-])(?=[\w-]*\d)[\w-]{16,}"), "<TOKEN>"),
    # short random ids: letters and digits mixed, four or more (`Xk3p9Q`, `7f3a`, `ab12cd`)
    _Mask(
        re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{4,}(?![A-Za-z0-9])"),
        "<ID>",
    ),
    _Mask(re.compile(r"(?<=/)\d+(?![\w.])|#\d+"), "<N>", ("/", "#")),
    _Mask(re.compile(r"\d+[.,]\d+|(?<![\w.])\d{4,}"), "<N>"),
)


# Failures of one fault share their exception line (ids and ports vary elsewhere, or are
# masked to the same result): mask each distinct line once.
@lru_cache(maxsize=8192)
def normalize(text: str) -> str:
    """Mask everything that changes between two occurrences of the same fault, every
    number included (environment faults, skip reasons, server errors)."""
    for mask in _MASKS:
        text = mask.apply(text)
    return _WS.sub(" ", text).strip()


@lru_cache(maxsize=8192)
def normalize_values(text: str) -> str:
    """`normalize`, but small whole numbers stay: `assert 500 == 200` and `assert 404 ==
    200` are two problems, `cart 4711` and `cart 9120` one."""
    for mask in _VALUE_MASKS:
        text = mask.apply(text)
    return _WS.sub(" ", text).strip()


def exception_line(ev: FailureEvidence) -> str:
    """The line stating the final exception (or the message when there is none)."""
    exc = ev.exc_type
    if exc:
        idx = ev.text.rfind(exc)
        if idx != -1:
            lo = ev.text.rfind("\n", 0, idx) + 1
            hi = ev.text.find("\n", idx)
            return ev.text[lo : hi if hi != -1 else len(ev.text)][:300]
    first = (ev.message or ev.text).strip().splitlines()
    return first[0][:300] if first else ""


# pytest: `E   assert 500 == 200` states the failure with its values; `>   assert x == 200`
# is the source line that failed (a JS code frame marks it `> 18 |   expect(...)`).
_E_LINE = re.compile(r"^E {2,}(\S.*)$", re.M)
_SOURCE_LINE = re.compile(r"^>\s*(?:\d+\s*\|)?\s*(\S.*)$", re.M)


def failure_statement(ev: FailureEvidence) -> str:
    """What failed, with its values: pytest's first `E` line, else the exception line."""
    found = _E_LINE.search(ev.text) if "\nE " in ev.text or ev.text.startswith("E ") else None
    return found.group(1)[:300] if found else exception_line(ev)


def failing_expression(ev: FailureEvidence) -> str:
    """The source line that failed, as the runner marked it ('' when it did not)."""
    if ">" not in ev.text:
        return ""
    found = _SOURCE_LINE.search(ev.text)
    return found.group(1).strip()[:200] if found else ""


def test_function(nodeid: str) -> str:
    """The test function's name in a node id: `tests/t.py::C::test_x[1]` -> `test_x`."""
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def signature(ev: FailureEvidence, category: Category | None = None) -> str:
    """The normalised text a fingerprint hashes (kept readable for debugging)."""
    if category in (Category.INFRASTRUCTURE, Category.CONFIGURATION):
        # The environment is the fault: the path a test took to meet it does not matter.
        return f"{ev.exc_type or ''}|{normalize(exception_line(ev))}"
    stated = failure_statement(ev)
    statement = normalize_values(stated)
    expression = normalize_values(failing_expression(ev))
    function = test_function(ev.nodeid)
    frames = [
        f"{f.path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{f.function}"
        for f in ev.frames
        if f.kind == "app" or (f.kind == "test" and f.function != function)
    ]
    if not ev.exc_type and not frames and not expression:
        # No exception, no frame, no marked line: the message alone may be generic
        # ("Test failed"); the text's first line tells such failures apart.
        lines = (line.strip() for line in ev.text[:2000].splitlines())
        first = next((line for line in lines if line and line != stated.strip()), "")
        expression = normalize_values(first[:300])
    # One field a line (statements and expressions are single lines): `random_id_shapes`
    # reads the statement back as the second line.
    return f"{ev.exc_type or ''}\n{statement}\n{expression}\n{';'.join(frames[-8:])}"


# A token no mask recognised that may still be a random id: letters with an upper-case
# letter after the first (`XkpQzm`, `qTwRbn`); words and Capitalised words never match.
_MIXED_CASE = re.compile(r"(?<![\w<])[A-Za-z][a-z]*[A-Z][A-Za-z]*(?![\w>])")
# Occurrences, each with its own token, before a varying mixed-case token counts as an id.
RANDOM_ID_MIN = 4


def random_id_shapes(counts: Mapping[str, int]) -> dict[str, str]:
    """Signatures whose statements differ only in one mixed-case token that is different
    in every occurrence -> one shared signature with the token masked as `<ID>`.

    `counts` holds each signature and how many failures have it. A random id made of
    letters alone looks like a word to any one mask; across occurrences it shows itself: a
    word repeats, an id does not. A slot counts as an id when every token seen in it is
    different and, with the failures whose id there was masked already, at least
    RANDOM_ID_MIN failures share the slot.
    """
    shapes: dict[str, dict[str, str]] = {}  # shape -> {signature: the token it masks}
    for sig in counts:
        exc, _, rest = sig.partition("\n")
        statement, _, tail = rest.partition("\n")
        for m in _MIXED_CASE.finditer(statement):
            shape = f"{exc}\n{statement[: m.start()]}<ID>{statement[m.end() :]}\n{tail}"
            shapes.setdefault(shape, {})[sig] = m.group()
    merged: dict[str, str] = {}
    for shape, members in shapes.items():
        tokens = set(members.values())
        seen = sum(counts[sig] for sig in members) + counts.get(shape, 0)
        if len(tokens) == sum(counts[sig] for sig in members) and seen >= RANDOM_ID_MIN:
            for sig in members:
                merged.setdefault(sig, shape)
    return merged


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:16]


def fingerprint_evidence(ev: FailureEvidence, category: Category | None = None) -> str:
    return digest(signature(ev, category))


def fingerprint(result: TestResult) -> str:
    """A stable 16-hex fingerprint of one failure (text only, no environment)."""
    return fingerprint_evidence(gather_evidence(result))


def server_signature(record: LogRecord) -> str:
    """What identifies the service's own failure: status, exception line, in-app frames.

    Two tests that met the same server-side exception share it, whatever each test
    asserted (an `assert 500 == 201` in one, a fixture's message in another).
    """
    frames = [
        f"{f.path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{f.function}"
        for f in parse_frames(record.traceback)
        if f.kind == "app"
    ]
    return f"{record.status or ''}|{normalize(record.error_line)}|{';'.join(frames[-8:])}"


# `POST /threads/1/messages` or httpx's "... for url 'http://host/threads/1/messages'"
_REQUEST = re.compile(
    r"(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?:https?://[^/\s'\"]+)?(?P<path>/[^\s'\"]*)"
    r"|for url '(?:https?://[^/\s']+)?(?P<url>/[^\s']*)'"
)
# A literal every _REQUEST match holds: a text with none names no request, and its
# statuses (costly to parse) need not be looked at.
_REQUEST_NEEDLES = ("GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS ", "for url '")


def request_signature(ev: FailureEvidence) -> str | None:
    """`POST /threads/<id>/messages -> 500` when the failure text names the request and an
    error status; None otherwise."""
    if not any(n in ev.text for n in _REQUEST_NEEDLES):
        return None
    codes = [s for s in ev.statuses if s >= 400]
    if not codes or ("/" not in ev.text):
        return None
    m = _REQUEST.search(ev.text)
    if m is None:
        return None
    path = m.group("path") or m.group("url") or ""
    return f"{m.group('method') or ''} {normalize_path(path)} -> {codes[0]}".strip()


def environment_fingerprint(category: Category, reason: str, component: str | None) -> str:
    """Infrastructure and configuration faults: one problem per reason and component."""
    return digest(f"env|{category.value}|{reason}|{component or ''}")


def blocked_fingerprint(component: str, root: str | None = None, mode: str | None = None) -> str:
    """One problem per blocked component and, when the gate said, per deepest failing
    component and failure mode: a database down, hung or rejecting the password blocks
    the same tests but is three different problems."""
    if mode is None:
        return digest(f"blocked:{component}")
    return digest(f"blocked:{component}:{root or component}:{mode}")


def skipped_fingerprint(reason: str) -> str:
    return digest(f"skipped:{normalize(reason)}")


def cluster_id(fp: str) -> str:
    return f"C-{fp[:8]}"
