"""Secret redaction, applied to everything greenloop writes or sends: the one redactor.

Worklogs, JSON reports, JUnit files, issue titles, bodies and comments and the
terminal rendering of reports all pass through one `Redactor` first. It knows
the common shapes of credentials (JWTs, bearer tokens, provider API keys,
passwords in URLs and DSNs, PEM private keys, AWS keys), the user's own
patterns (`report.redact_patterns`) and the literal values that came from
`${VAR}` in the config, which are secrets until proven otherwise. The maskers of one
known value live here too: `mask_url` and `mask_dsn` (a probe's target), `mask_argv`
(a command line shown in progress and reports).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from greenloop.errors import ConfigError

MASK = "***"
# Shorter literal secrets would wipe ordinary words out of every report.
MIN_SECRET_LENGTH = 4
# Known secrets (and their encoded forms) shorter than this are masked as whole words only.
WHOLE_WORD_BELOW = 8

T = TypeVar("T")

# Key names whose value is a secret, in `key=value`, `key: value` and JSON.
_SECRET_KEY = (
    r"[A-Za-z0-9_.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]*"
)
# Key names that merely *name* a secret (token_env = "GITHUB_TOKEN") stay readable.
_NAMING_SUFFIX = re.compile(r"(?:_env|_var|_file|_path|_name|_url|_count|_type)$", re.I)

# Token boundaries that also hold inside identifiers: `\b` does not fire after `_`, so
# `test_AKIA...` would hide a key from a `\b` pattern.
_START = r"(?<![A-Za-z0-9])"
_END = r"(?![A-Za-z0-9])"

# (pattern, replacement, needles) triples, applied in order; most specific first. A pattern
# runs only when one of its needles occurs in the text (in the lower-cased text for the
# case-blind patterns, marked by a lower-case first needle): most texts hold none, and a
# substring test costs far less than a regex scan. Each needle is a substring every match
# must contain, so the filter never changes what is masked.
_Replacement = str | Callable[[re.Match[str]], str]
_BUILTIN: tuple[tuple[re.Pattern[str], _Replacement, tuple[str, ...]], ...] = (
    # PEM private keys, also the \n-escaped form inside a GCP service-account JSON,
    # also a block cut short by a log line limit.
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
            re.S,
        ),
        "-----BEGIN PRIVATE KEY-----" + MASK + "-----END PRIVATE KEY-----",
        ("-----BEGIN ",),
    ),
    # JSON Web Tokens: base64url header and payload, both JSON objects ("eyJ").
    (
        re.compile(_START + r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
        MASK,
        ("eyJ",),
    ),
    # Provider tokens with a recognisable prefix, also inside identifiers (test_AKIA..._x).
    (re.compile(_START + r"gh[pousr]_[A-Za-z0-9]{20,}"), MASK, ("gh",)),
    (re.compile(_START + r"github_pat_[A-Za-z0-9_]{20,}"), MASK, ("github_pat_",)),
    (re.compile(_START + r"glpat-[A-Za-z0-9_-]{20,}"), MASK, ("glpat-",)),
    (re.compile(_START + r"xox[abposr]-[A-Za-z0-9-]{10,}"), MASK, ("xox",)),
    (re.compile(_START + r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"), MASK, ("k_live_", "k_test_")),
    (re.compile(_START + r"(?:AKIA|ASIA)[A-Z0-9]{16}" + _END), MASK, ("AKIA", "ASIA")),
    # Authorization headers and bearer tokens: keep the scheme, hide the credential.
    (
        re.compile(
            r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)(?:(bearer|basic|token|digest)\s+)?"""
            r"""[^\s"',;]+"""
        ),
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}",
        ("authorization",),
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK, ("bearer",)),
    (
        re.compile(r"""(?i)(\bprivate-token["']?\s*[:=]\s*["']?)[^\s"',;]+"""),
        r"\1" + MASK,
        ("private-token",),
    ),
    # user:password@host (or :password@host) in any URL or DSN.
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@'\"`]*):[^\s@/'\"`]+@", re.I),
        r"\1:" + MASK + "@",
        ("://",),
    ),
    # --password x, --token=x on command lines.
    (
        re.compile(r"(?i)(--(?:password|passwd|token|api-key|secret|private-token)[= ])(\S+)"),
        r"\1" + MASK,
        ("--",),
    ),
)
# Each with whether its needles are looked for in the lower-cased text.
_FILTERED = tuple((p, r, needles, needles[0].islower()) for p, r, needles in _BUILTIN)
# Substrings (lower case) one of which every secret key name of _SECRET_KEY holds.
_KEY_NEEDLES = ("passw", "pwd", "secret", "token", "key", "credential")

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

    def __init__(
        self,
        extra_patterns: Sequence[str] = (),
        *,
        secrets: Iterable[str] = (),
        source: str = "greenloop.toml",
    ) -> None:
        self.extra_patterns = tuple(extra_patterns)
        self.extra: list[re.Pattern[str]] = []
        for i, pattern in enumerate(extra_patterns):
            try:
                self.extra.append(re.compile(pattern))
            except (re.error, OverflowError, RecursionError) as exc:
                raise ConfigError(
                    source,
                    f"report.redact_patterns[{i}]",
                    f"not a valid regular expression: {exc}",
                ) from None
        literals: set[str] = set()
        known = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len)
        self.secrets = tuple(known)
        for secret in known:
            literals.update(_encoded_forms(secret))
        # Longest first, so a secret containing another is masked whole. A short one (a
        # word-sized password such as "wrong") is masked only where it stands alone:
        # inside a longer word ("out-wrongpw", a report's own path) it is that word's.
        ordered = sorted(literals, key=len, reverse=True)
        self.literals = [s for s in ordered if len(s) >= WHOLE_WORD_BELOW]
        short = [s for s in ordered if len(s) < WHOLE_WORD_BELOW]
        self.short = (
            re.compile(
                r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, short)) + r")(?![A-Za-z0-9])"
            )
            if short
            else None
        )
        # A secret wrapped onto the next line (a terminal or a log shipper cut it).
        self.wrapped = [
            (secret, re.compile(_WRAP.join(re.escape(c) for c in secret)))
            for secret in known
            if len(secret) >= 2 * MIN_SECRET_LENGTH
        ]
        # Base64 of any text holding a secret: the part of the encoding the secret alone
        # decides, for each of the three alignments it can have.
        cores = {core for secret in known for core in _base64_cores(secret)}
        self.base64_cores = sorted(cores, key=len, reverse=True)
        self._memo: dict[str, str] = {}
        self._runs: dict[str, bool] = {}  # base64 runs (paths, ids) seen: do they hide one?

    def redact(self, text: str) -> str:
        """The text with every recognised secret replaced by `***`."""
        if not text:
            return text
        # Reports repeat the same short strings (files, categories, messages) many times.
        if len(text) <= _MEMO_LENGTH:
            done = self._memo.get(text)
            if done is None:
                done = self._memo[text] = self._redact(text)
                if len(self._memo) > _MEMO_ENTRIES:
                    self._memo.clear()
            return done
        return self._redact(text)

    def _redact(self, text: str) -> str:
        text = self._plain(text)
        if len(text) >= _MIN_BASE64:
            text = _BASE64_RUN.sub(self._base64_run, text)
        return text

    def _plain(self, text: str) -> str:
        for literal in self.literals:
            text = text.replace(literal, MASK)
        if self.short is not None:
            text = self.short.sub(MASK, text)
        if "\n" in text:
            for secret, wrapped in self.wrapped:
                half = len(secret) // 2
                if secret[:half] in text or secret[half:] in text:
                    text = wrapped.sub(MASK, text)
        # The case-blind patterns also match a few non-ASCII letters (the Kelvin sign is a
        # `k`): lower-casing cannot stand in for them, so a non-ASCII text runs every pattern.
        low = text.lower() if text.isascii() else None
        for pattern, replacement, needles, blind in _FILTERED:
            if low is not None:
                hay = low if blind else text
                for needle in needles:  # a plain loop: any() costs more here
                    if needle in hay:
                        break
                else:
                    continue
            text = pattern.sub(replacement, text)
            if low is not None:
                low = text.lower()
        if low is not None and (":" in text or "=" in text):
            for needle in _KEY_NEEDLES:
                if needle in low:
                    text = _KEY_VALUE.sub(_key_value, text)
                    break
        elif low is None:
            text = _KEY_VALUE.sub(_key_value, text)
        for pattern in self.extra:
            text = pattern.sub(_mask_groups, text)
        return text

    def _base64_run(self, match: re.Match[str]) -> str:
        """A base64 run is masked whole when it encodes a secret (known or by shape)."""
        run = match.group(0)
        done = self._runs.get(run)
        if done is None:
            done = self._runs[run] = self._encodes_secret(run)
            if len(self._runs) > _MEMO_ENTRIES:
                self._runs.clear()
        return MASK if done else run

    def _encodes_secret(self, run: str) -> bool:
        if any(core in run for core in self.base64_cores):
            return True
        decoded = _decode_base64(run)
        return decoded is not None and self._plain(decoded) != decoded

    def redact_obj(self, obj: T, *, seen: dict[str, str] | None = None) -> T:
        """A copy of a nested structure (dicts, lists, tuples, dataclass records) redacted.

        Dict values under a secret-looking key are masked whole, whatever they look like.
        Each distinct string is redacted once per call, however often it occurs (a report
        names every test in its test list and again in its cluster); `seen` (string ->
        redacted) carries that across calls over structures that share strings.
        """
        return self._walk(obj, {} if seen is None else seen)  # type: ignore[no-any-return,unused-ignore]

    def _walk(self, obj: Any, seen: dict[str, str]) -> Any:
        # The common types first, by exact type: a report holds a million values.
        kind = type(obj)
        if kind is str:
            done = seen.get(obj)
            if done is None:
                done = seen[obj] = self.redact(obj)
            return done
        if kind is dict:
            return self._dict(obj, seen)
        if kind is list:
            return self._list(obj, seen)
        if kind in _ATOMS:
            return obj
        if isinstance(obj, enum.Enum):
            return obj  # StrEnum members are strings, but never secrets
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self._value(k, v, seen) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v, seen) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(v, seen) for v in obj)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            changes = {}
            for name in _init_fields(type(obj)):
                value = getattr(obj, name)
                done = self._walk(value, seen)
                if done is not value and done != value:
                    changes[name] = done
            # Nothing to mask (the common case): the record itself, not a rebuilt copy.
            return dataclasses.replace(obj, **changes) if changes else obj
        return obj

    def _dict(self, obj: dict[Any, Any], seen: dict[str, str]) -> dict[Any, Any]:
        """`{k: self._value(k, v, seen)}`, with the common cases inline (a report's tests
        are a hundred thousand dicts of short strings)."""
        out = {}
        for key, value in obj.items():
            kind = type(value)
            if kind is str:
                if value and isinstance(key, str) and _secret_key(key):
                    out[key] = MASK
                else:
                    done = seen.get(value)
                    if done is None:
                        done = seen[value] = self.redact(value)
                    out[key] = done
            elif kind in _ATOMS:
                out[key] = value
            else:
                out[key] = self._value(key, value, seen)
        return out

    def _list(self, obj: list[Any], seen: dict[str, str]) -> list[Any]:
        """`[self._walk(v, seen)]`, strings inline (a cluster's list of test ids)."""
        out = []
        for value in obj:
            if type(value) is str:
                done = seen.get(value)
                if done is None:
                    done = seen[value] = self.redact(value)
                out.append(done)
            else:
                out.append(self._walk(value, seen))
        return out

    def _value(self, key: Any, value: Any, seen: dict[str, str]) -> Any:
        if isinstance(key, str) and isinstance(value, str) and value and _secret_key(key):
            return MASK
        return self._walk(value, seen)


@functools.lru_cache(maxsize=4096)
@functools.cache
def _init_fields(kind: Any) -> tuple[str, ...]:
    """A dataclass's fields set by its constructor (what `dataclasses.replace` takes)."""
    return tuple(f.name for f in dataclasses.fields(kind) if f.init)


def _secret_key(key: str) -> bool:
    """Does a dict key name a secret (`password`, `api_token`), not a naming (`token_name`)?"""
    return bool(re.fullmatch(_SECRET_KEY, key, re.I)) and not _NAMING_SUFFIX.search(key)


_ATOMS = frozenset({int, float, bool, type(None)})
_MEMO_LENGTH, _MEMO_ENTRIES = 512, 50_000  # strings remembered, and how many at most
_WRAP = r"(?:\r?\n[ \t>|#*/-]*)?"
_MIN_BASE64 = 16
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")


def _encoded_forms(secret: str) -> set[str]:
    """The secret as written, URL-encoded (every common way) and JSON-escaped."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    forms |= {_lower_percent(f) for f in list(forms) if "%" in f}
    forms.add(json.dumps(secret)[1:-1])
    return {f for f in forms if f}


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _base64_cores(secret: str) -> set[str]:
    """For each byte alignment, the base64 characters decided by the secret's bytes alone.

    Any base64 text that encodes something holding the secret contains one of these
    (standard or URL-safe alphabet).
    """
    data = secret.encode("utf-8")
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        start = (8 * offset + 5) // 6
        end = (8 * (offset + len(data))) // 6
        core = encoded[start:end]
        if len(core) >= 2 * MIN_SECRET_LENGTH:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def _decode_base64(run: str) -> str | None:
    """The text a base64 run encodes, or None when it is not base64 of readable text."""
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
        text = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if not text or sum(c.isprintable() or c in "\r\n\t" for c in text) < len(text):
        return None
    return text


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


# --------------------------------------------------------------------------- one value

# An option whose name says its value is a secret (`--api-key`, `-password=`).
SECRET_OPTION = re.compile(r"(token|secret|password|passwd|api[-_]?key|credential)", re.I)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***: what a probe shows as its target."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_dsn(dsn: str) -> str:
    """A PostgreSQL DSN (URL or key=value form) with its password masked."""
    if "://" in dsn:
        return mask_url(dsn)
    return _KV_PASSWORD.sub(r"\1" + MASK, dsn)


def mask_argv(argv: Sequence[str]) -> list[str]:
    """A command's arguments with the values of secret-looking options (SECRET_OPTION)
    masked: `--token=x` -> `--token=***`, `--password x` -> `--password ***`."""
    shown: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            shown.append(MASK)
            mask_next = False
            continue
        if arg.startswith("-") and SECRET_OPTION.search(arg):
            if "=" in arg:
                shown.append(arg.split("=", 1)[0] + "=" + MASK)
            else:
                shown.append(arg)
                mask_next = True
            continue
        shown.append(arg)
    return shown


def redactor_for(config: Any, secrets: Iterable[str] = ()) -> Redactor:
    """The redactor a config asks for: its patterns plus every ${VAR} value it used."""
    report = getattr(config, "report", None)
    patterns = list(getattr(report, "redact_patterns", []) or [])
    known = tuple(getattr(config, "secrets", ()) or ())
    source = str(getattr(config, "source", "greenloop.toml"))
    return Redactor(patterns, secrets=(*known, *secrets), source=source)
