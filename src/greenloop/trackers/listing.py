"""The issue index as people read it: `greenloop issues list` and `greenloop issues show`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import RenderableType

from greenloop.errors import UserError
from greenloop.redact import redactor_for
from greenloop.store import Store
from greenloop.trackers import tracker_name

if TYPE_CHECKING:
    from greenloop.config import Config, TrackerConfig

__all__ = ["IssueSummary", "list_issues", "show_issue"]


@dataclass(frozen=True)
class IssueSummary:
    """One row of `greenloop issues list`."""

    key: str | None
    title: str
    state: str
    fingerprint: str
    category: str
    occurrences: int
    green_streak: int
    needs_person: bool
    location: str
    updated_at: datetime
    pending_ops: int
    tracker: str


def list_issues(store: Store, tracker: TrackerConfig | str | None = None) -> list[IssueSummary]:
    """The issue index for one tracker (or all), open first, with queued operation counts."""
    name = tracker if tracker is None or isinstance(tracker, str) else tracker_name(tracker)
    rows = store.issues.index(name)
    pending = store.issues.pending_counts()
    return [
        IssueSummary(
            key=r.key,
            title=r.title,
            state=r.state,
            fingerprint=r.fingerprint,
            category=r.category,
            occurrences=r.occurrences,
            green_streak=r.green_streak,
            needs_person=r.needs_person,
            location=r.location,
            updated_at=r.updated_at,
            pending_ops=pending.get((r.tracker, r.fingerprint), 0),
            tracker=r.tracker,
        )
        for r in rows
    ]


def show_issue(store: Store, config: Config, key: str, *, out_dir: Path) -> RenderableType:
    """One issue: the local file itself, or the index row and its queued operations."""
    name = tracker_name(config.tracker)
    rows = [
        r
        for r in store.issues.index(name)
        if r.key == key or r.fingerprint == key or (len(key) >= 6 and r.fingerprint.startswith(key))
    ]
    if not rows:
        raise UserError(f"issue {key}: not in the {name} index (see `greenloop issues list`)")
    row = rows[0]
    redactor = redactor_for(config)
    if config.tracker.kind == "local" and row.location and Path(row.location).is_file():
        from rich.markdown import Markdown  # markdown-it: only for the terminal

        return Markdown(redactor.redact(Path(row.location).read_text(encoding="utf-8")))
    ops = store.issues.outbox(name, pending=False, fingerprint=row.fingerprint)
    lines = [
        f"# {row.key or '(not yet created)'}: {row.title}",
        "",
        f"- State: {row.state}; seen {row.occurrences} time(s); green streak {row.green_streak}",
        f"- Category: {row.category}; needs a person: {'yes' if row.needs_person else 'no'}",
        f"- Where: {row.location or 'not created yet'}",
        f"- Fingerprint: `{row.fingerprint}`",
        "",
        "| op | queued | delivered | attempts | last error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for op in ops:
        delivered = op.delivered_at.isoformat() if op.delivered_at else "pending"
        lines.append(
            f"| {op.op} | {op.created_at:%Y-%m-%d %H:%M} | {delivered} | {op.attempts} "
            f"| {op.last_error} |"
        )
    from rich.markdown import Markdown  # markdown-it: only for the terminal

    return Markdown(redactor.redact("\n".join(lines)))
