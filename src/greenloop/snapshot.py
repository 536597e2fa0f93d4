"""Phase results to plain JSON and back: what `--resume` keeps of an interrupted run."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from greenloop.records import (
    Connection,
    Outcome,
    PhaseResult,
    PhaseStatus,
    SharedFixture,
    TestResult,
)


def phase_to_json(phase: PhaseResult) -> dict[str, Any]:
    """A JSON-able copy of a phase and its tests (enums as values, times as ISO 8601)."""
    return _plain(asdict(phase))


def phase_from_json(data: dict[str, Any]) -> PhaseResult:
    """The phase `phase_to_json` wrote."""
    return PhaseResult(
        name=data["name"],
        status=PhaseStatus(data["status"]),
        duration_s=float(data["duration_s"]),
        tests=tuple(_test(t) for t in data.get("tests", ())),
        command=data.get("command", ""),
        blocked_by=data.get("blocked_by"),
        note=data.get("note", ""),
        collection_errors=tuple(data.get("collection_errors", ())),
    )


def _test(data: dict[str, Any]) -> TestResult:
    fields = dict(data)
    fields["outcome"] = Outcome(fields["outcome"])
    fields["reruns"] = tuple(Outcome(o) for o in fields.get("reruns", ()))
    fields["connections"] = tuple(Connection(**c) for c in fields.get("connections", ()))
    fields["shared_fixtures"] = tuple(
        SharedFixture(
            name=f["name"],
            scope=f["scope"],
            connections=tuple(Connection(**c) for c in f["connections"]),
            setup_s=f["setup_s"],
        )
        for f in fields.get("shared_fixtures", ())
    )
    for key in ("markers", "mocks", "warnings"):
        fields[key] = tuple(fields.get(key, ()))
    if fields.get("started_at"):
        fields["started_at"] = datetime.fromisoformat(fields["started_at"])
    return TestResult(**fields)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, int | float | str | bool):
        return value.value  # enums
    return value
