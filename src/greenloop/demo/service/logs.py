"""Structured JSON logs: one line per request and one per error, for root-cause analysis.

Handlers note what went wrong on the current request's ``RequestContext``; the gateway writes
the lines when the request ends, so each 5xx line carries the exception and the fault name.
"""

from __future__ import annotations

import contextvars
import json
import threading
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class RequestContext:
    """What the service learned about one request while handling it (mutable on purpose)."""

    request_id: str
    method: str
    path: str
    fault: str | None = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def record_exception(self, exc: BaseException, fault: str | None = None) -> None:
        """Remember ``exc`` (type, message, full traceback with causes) for the log."""
        self.error_type = type(exc).__name__
        self.error = str(exc)
        self.traceback = "".join(traceback.format_exception(exc))
        if fault:
            self.fault = fault


current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "current_request", default=None
)


def level_for(status: int) -> str:
    """Log level for an HTTP status: error for 5xx, warning for 4xx."""
    if status >= 500:
        return "error"
    return "warning" if status >= 400 else "info"


def now_iso() -> str:
    """The current time in ISO 8601 with milliseconds, UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLog:
    """Appends JSON lines to the service log; safe to call from threads."""

    def __init__(self, path: Path, revision: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.revision = revision
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8", buffering=1)

    def write(self, level: str, event: str, **fields: object) -> None:
        """Write one line with the timestamp, level, event, revision and ``fields``."""
        record = {"ts": now_iso(), "level": level, "event": event, "revision": self.revision}
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, default=str, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")

    def request(self, ctx: RequestContext, status: int, duration_ms: float) -> None:
        """The access line for a finished request, and an error line with traceback for 5xx."""
        level = "error" if ctx.extra.get("close_code") == 1011 else level_for(status)
        fields = {
            "request_id": ctx.request_id,
            "method": ctx.method,
            "path": ctx.path,
            "status": status,
            "duration_ms": round(duration_ms, 1),
            "fault": ctx.fault,
            "error_type": ctx.error_type,
            "error": ctx.error,
            **ctx.extra,
        }
        self.write(level, "request", **fields)
        if ctx.traceback:
            self.write(
                level,
                "error",
                request_id=ctx.request_id,
                method=ctx.method,
                path=ctx.path,
                status=status,
                fault=ctx.fault,
                error_type=ctx.error_type,
                error=ctx.error,
                traceback=ctx.traceback,
                trace_id=ctx.extra.get("trace_id"),
            )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()
