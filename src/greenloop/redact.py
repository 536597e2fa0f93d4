"""Secret redaction, applied to everything greenloop writes or sends.

Worklogs, JSON reports, JUnit files, issue titles, bodies and comments and the
terminal rendering of reports all pass through one `Redactor` first. It knows
the common shapes of credentials (JWTs, bearer tokens, provider API keys,
passwords in URLs and DSNs, PEM private keys, AWS keys), the user's own
patterns (`report.redact_patterns`) and the literal values that came from
`${VAR}` in the config, which are secrets until proven otherwise.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from greenloop.errors import ConfigError

MASK = "***"
# Shorter literal secrets would wipe ordinary words out of every report.
MIN_SECRET_LENGTH = 4

T = TypeVar("T")

# Key names whose value is a secret, in `key=value`, `key: value` and JSON.
_SECRET_KEY = (
    r"[A-Za-z0-9_.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]*"
)
# Key names that merely *name* a secret (token_env = "GITHUB_TOKEN") stay readable.
_NAMING_SUFFIX = re.compile(r"(?:_env|_var|_file|_path|_name|_url|_count|_type)$", re.I)

# (pattern, replacement) pairs, applied in order; most specific first.
_BUILTIN: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # PEM private keys, also the \n-escaped form inside a GCP service-account JSON,
    # also a block cut short by a log line limit.
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
            re.S,
        ),
        "-----BEGIN PRIVATE KEY-----" + MASK + "-----END PRIVATE KEY-----",
    ),
    # JSON Web Tokens: base64url header and payload, both JSON objects ("eyJ").
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # Provider tokens with a recognisable prefix.
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), MASK),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), MASK),
    (re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    # Authorization headers and bearer tokens: keep the scheme, hide the credential.
    (
        re.compile(
            r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)(?:(bearer|basic|token|digest)\s+)?"""
            r"""[^\s"',;]+"""
        ),
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"""(?i)(\bprivate-token["']?\s*[:=]\s*["']?)[^\s"',;]+"""), r"\1" + MASK),
    # user:password@host in any URL or DSN.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@'\"`]+):[^\s@/'\"`]+@", re.I), r"\1:" + MASK + "@"),
    # --password x, --token=x on command lines.
    (
        re.compile(r"(?i)(--(?:password|passwd|token|api-key|secret|private-token)[= ])(\S+)"),
        r"\1" + MASK,
    ),
)

_KEY_VALUE = re.compile(
    r"""(?i)(?P<key>\b""" + _SECRET_KEY + r""")(?P<sep>["']?\s*[:=]\s*)"""
    r"""(?:(?P<q>["'])(?P<quoted>[^"'\n]*)(?P=q)|(?P<bare>[^\s"'`|&;,)}\]]+))"""
)


def _key_value(match: re.Match[str]) -> str:
    key = match.group("key")
    if _NAMING_SUFFIX.search(key) and not re.search(r"(?i)pass|secret$|pwd", key):
        return match.group(0)
    if match.group("q"):
        q = match.group("q")
        return f"{key}{match.group('sep')}{q}{MASK}{q}"
    value = match.group("bare")
    if value == MASK or value.lower() in ("none", "null", "true", "false"):
        return match.group(0)
    return f"{key}{match.group('sep')}{MASK}"


class Redactor:
    """Replaces every secret it recognises with `***`; safe to apply twice."""

    def __init__(self, extra_patterns: Sequence[str] = (), *, secrets: Iterable[str] = ()) -> None:
        self.extra: list[re.Pattern[str]] = []
        for i, pattern in enumerate(extra_patterns):
            try:
                self.extra.append(re.compile(pattern))
            except re.error as exc:
                raise ConfigError(
                    "greenloop.toml",
                    f"report.redact_patterns[{i}]",
                    f"not a valid regular expression: {exc}",
                ) from None
        literals: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                literals.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so a secret containing another is masked whole.
        self.literals = sorted(literals, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """The text with every recognised secret replaced by `***`."""
        if not text:
            return text
        for literal in self.literals:
            text = text.replace(literal, MASK)
        for pattern, replacement in _BUILTIN:
            text = pattern.sub(replacement, text)
        text = _KEY_VALUE.sub(_key_value, text)
        for pattern in self.extra:
            text = pattern.sub(_mask_groups, text)
        return text

    def redact_obj(self, obj: T) -> T:
        """A copy of a nested structure (dicts, lists, tuples, dataclass records) redacted.

        Dict values under a secret-looking key are masked whole, whatever they look like.
        """
        return self._walk(obj)  # type: ignore[no-any-return,unused-ignore]

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, enum.Enum):
            return obj  # StrEnum members are strings, but never secrets
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self._value(k, v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(v) for v in obj)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            changes = {
                f.name: self._walk(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init
            }
            return dataclasses.replace(obj, **changes)
        return obj

    def _value(self, key: Any, value: Any) -> Any:
        if (
            isinstance(key, str)
            and isinstance(value, str)
            and value
            and re.fullmatch(_SECRET_KEY, key, re.I)
            and not _NAMING_SUFFIX.search(key)
        ):
            return MASK
        return self._walk(value)


def _mask_groups(match: re.Match[str]) -> str:
    """A user pattern with groups masks only the groups; without, the whole match."""
    if not match.re.groups:
        return MASK
    text, start = match.group(0), match.start()
    out, last = [], 0
    for i in range(1, match.re.groups + 1):
        if match.start(i) < 0:
            continue
        out.append(text[last : match.start(i) - start])
        out.append(MASK)
        last = match.end(i) - start
    out.append(text[last:])
    return "".join(out)


def redactor_for(config: Any, secrets: Iterable[str] = ()) -> Redactor:
    """The redactor a config asks for: its patterns plus every ${VAR} value it used."""
    report = getattr(config, "report", None)
    patterns = list(getattr(report, "redact_patterns", []) or [])
    known = tuple(getattr(config, "secrets", ()) or ())
    return Redactor(patterns, secrets=(*known, *secrets))
