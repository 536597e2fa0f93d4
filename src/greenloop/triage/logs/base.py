"""Log sources: the interface every kind implements, and the record they all return.

A source reads the service's log lines in a time window. Parsing is shared:
JSON lines with keys ts/level/request_id/message/traceback (common aliases
accepted) or text lines starting with a timestamp. A line that cannot be
parsed is counted and skipped, never fatal: one torn line must not hide the
traceback next to it.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from greenloop.kinds import KindOptions

ERROR_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL", "ALERT", "EMERGENCY"})


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One service log line (with the traceback that followed it, if any)."""

    ts: datetime | None
    level: str
    message: str
    source: str = ""
    request_id: str | None = None
    traceback: str = ""
    # Structured request fields, when the line has them (JSON logs): what was asked, the
    # status answered and the error the service named ("KeyError: 'author_id'").
    method: str = ""
    path: str = ""
    status: int | None = None
    error: str = ""
    trace_id: str | None = None  # W3C trace id, when the line has one beside its request id

    @property
    def keys(self) -> tuple[str, ...]:
        """The ids that tie this line to a request: its request id and its trace id."""
        return tuple(k for k in dict.fromkeys((self.request_id, self.trace_id)) if k)

    @property
    def is_error(self) -> bool:
        """An error-level line. Its level decides, not a traceback: services log handled
        exceptions at WARNING and INFO too, and those are not the failure."""
        return self.level in ERROR_LEVELS

    @property
    def is_rejection(self) -> bool:
        """An error line, or a request the service answered with a 4xx/5xx."""
        return self.is_error or (self.status is not None and self.status >= 400)

    @property
    def error_line(self) -> str:
        """The exception that ended the request: the traceback's last line, else the error."""
        if self.traceback:
            lines = self.traceback.strip().splitlines()
            if lines:
                return lines[-1].strip()
        return self.error

    @property
    def endpoint(self) -> str:
        """`POST /threads/<id>/messages`: the request with its IDs masked ('' when unknown)."""
        if not self.path:
            return ""
        return f"{self.method} {normalize_path(self.path)}".strip()


@dataclass(frozen=True, slots=True)
class LogBatch:
    """What one source returned for one window."""

    source: str
    records: tuple[LogRecord, ...] = ()
    malformed: int = 0
    error: str = ""  # the source itself failed (command exit, HTTP error): said, not raised
    extra: dict[str, Any] = field(default_factory=dict)


class SourceOptions(KindOptions):
    """Base of each log source kind's options model: unknown keys are mistakes."""


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


class LogSource(ABC, Generic[OptionsT]):
    """A place logs come from, typed by its options. Subclasses set `Options`.

    `build` (the registry's way in) makes one from validated options; relative
    paths in them are relative to `base_dir`, the config file's folder.
    """

    Options: ClassVar[type[SourceOptions]]

    def __init__(self, name: str, options: OptionsT, base_dir: Path) -> None:
        self.name = name
        self.options = options
        self.base_dir = base_dir

    @classmethod
    def build(cls, options: Any, *, name: str, base_dir: Path) -> LogSource[Any]:
        return cls(name, options, base_dir)

    @abstractmethod
    def read(self, start: datetime, end: datetime) -> LogBatch:
        """The source's records between start and end (inclusive)."""


# --------------------------------------------------------------------------- parsing

_METHOD_KEYS = ("method", "http_method", "request_method", "requestMethod")
_PATH_KEYS = ("path", "route", "http_path", "url_path", "uri", "url", "requestUrl")
_STATUS_KEYS = ("status", "status_code", "http_status", "statusCode")
_ERROR_TYPE_KEYS = ("error_type", "exc_type", "exception_type", "errorType")
_ERROR_KEYS = ("error", "error_message", "exception", "err")
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|"
    r"[0-9a-fA-F]{16,}|[A-Za-z0-9_-]{20,})$"
)


def normalize_path(path: str) -> str:
    """A URL path with its ID segments masked and no query: `/threads/<id>/messages`."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return "/".join("<id>" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


def _status_of(value: object) -> int | None:
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) == 3:
        return int(value)
    return None


_TS_KEYS = ("ts", "timestamp", "time", "@timestamp", "receiveTimestamp")
_LEVEL_KEYS = ("level", "severity", "levelname", "lvl")
_MESSAGE_KEYS = ("message", "msg", "textPayload", "event")
_TRACE_KEYS = ("trace_id", "traceId", "trace", "otelTraceID")
_RID_KEYS = ("request_id", "requestId", "rid", "trace_id", "x_request_id")
_TEXT_LINE = re.compile(
    r"^\[?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?\s+"
    r"(?:\[?(?P<level>DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL)\]?:?\s+)?"
    r"(?P<message>.*)$"
)
_LEVELS = {"WARN": "WARNING"}
_RID_IN_TEXT = re.compile(r"\b(?:request_id|rid|req)[=:]\s?([\w-]+)")


def parse_ts(value: object) -> datetime | None:
    """ISO 8601 strings, epoch seconds/ms/ns; naive times are taken as UTC."""
    if isinstance(value, int | float):
        number = float(value)
        while number > 1e11:  # ms, us, ns -> s
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    if isinstance(value, str) and value:
        text = value.strip().replace(",", ".")
        if text.isdigit():
            return parse_ts(int(text))
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Python < 3.11 cannot read more than 6 fractional digits; Loki/gcloud send 9.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        stamp = datetime.fromisoformat(text)
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return None


def _first(raw: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in raw and raw[key] not in (None, ""):
            return raw[key]
    return None


def record_from_json(raw: dict[str, Any], source: str) -> LogRecord:
    """A record from one JSON object (our keys, or gcloud/structlog aliases)."""
    payload: dict[str, Any] = raw["jsonPayload"] if isinstance(raw.get("jsonPayload"), dict) else {}
    merged = {**raw, **payload}
    message = _first(merged, _MESSAGE_KEYS)
    if message is None:
        raise ValueError("no message")
    level = str(_first(merged, _LEVEL_KEYS) or "INFO").upper()
    rid = _first(merged, _RID_KEYS)
    labels: dict[str, Any] = raw["labels"] if isinstance(raw.get("labels"), dict) else {}
    rid = rid or _first(labels, _RID_KEYS)
    http: dict[str, Any] = (
        merged["httpRequest"] if isinstance(merged.get("httpRequest"), dict) else merged
    )
    error_type = _first(merged, _ERROR_TYPE_KEYS)
    error = _first(merged, _ERROR_KEYS)
    if isinstance(error, dict | list):
        error = json.dumps(error, separators=(",", ":"))[:300]
    named = f"{error_type}: {error}" if error_type and error else str(error_type or error or "")
    path = _first(http, _PATH_KEYS)
    method = _first(http, _METHOD_KEYS)
    return LogRecord(
        ts=parse_ts(_first(merged, _TS_KEYS)),
        level="WARNING" if level == "WARN" else level,
        message=str(message),
        source=source,
        request_id=str(rid) if rid is not None else None,
        traceback=str(merged.get("traceback") or merged.get("exc_info") or ""),
        method=str(method).upper() if isinstance(method, str) else "",
        path=path if isinstance(path, str) else "",
        status=_status_of(_first(http, _STATUS_KEYS)),
        error=named,
        trace_id=str(trace) if (trace := _first(merged, _TRACE_KEYS)) is not None else None,
    )


def parse_lines(lines: Iterable[str], source: str) -> tuple[list[LogRecord], int]:
    """Parse JSON or text lines; returns the records and how many lines were malformed.

    Text lines without a timestamp continue the previous record (a traceback).
    """
    records: list[LogRecord] = []
    malformed = 0
    for raw_line in lines:
        line = raw_line.rstrip("\r\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
                records.append(record_from_json(obj, source))
            except (ValueError, TypeError):
                malformed += 1
            continue
        m = _TEXT_LINE.match(line)
        if m:
            try:
                ts = parse_ts(m.group("ts"))
            except ValueError:
                malformed += 1
                continue
            message = m.group("message")
            rid = _RID_IN_TEXT.search(message)
            records.append(
                LogRecord(
                    ts=ts,
                    level=(m.group("level") or "INFO")
                    .replace("WARN", "WARNING")
                    .replace("WARNINGING", "WARNING"),
                    message=message,
                    source=source,
                    request_id=rid.group(1) if rid else None,
                )
            )
        elif _LEVEL_PREFIX.match(line):
            # `INFO:     Uvicorn running on ...`: a line of its own with no time, not the
            # continuation of the line before.
            records.append(record_from_line(line, None, source))
        elif records:
            last = records[-1]
            tb = f"{last.traceback}\n{line}" if last.traceback else line
            records[-1] = LogRecord(last.ts, last.level, last.message, source, last.request_id, tb)
        else:
            malformed += 1
    return records, malformed


# A level at the very start (Python logging's default format, uvicorn, gunicorn).
_LEVEL_PREFIX = re.compile(r"^\[?(?:DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\]?[:\s]")
_LEVEL_WORD = re.compile(r"\b(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b")


def record_from_line(line: str, ts: datetime | None, source: str, level: str = "") -> LogRecord:
    """A bare line whose time comes from elsewhere (Loki, journald): level and id from the text."""
    word = _LEVEL_WORD.search(line)
    found = word.group(1) if word else (level or "INFO")
    rid = _RID_IN_TEXT.search(line)
    return LogRecord(
        ts, _LEVELS.get(found.upper(), found.upper()), line, source, rid.group(1) if rid else None
    )


def in_window(
    records: Iterable[LogRecord], start: datetime, end: datetime
) -> tuple[LogRecord, ...]:
    """Records inside the window; undated records are kept (they may be the evidence)."""
    return tuple(r for r in records if r.ts is None or start <= r.ts <= end)
