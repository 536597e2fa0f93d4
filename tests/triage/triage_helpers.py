"""Small builders shared by the triage tests (records only, no fakes)."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from pathlib import Path

from greenloop.records import ComponentState, GateResult, Outcome, ProbeResult, TestResult

LABELLED = Path(__file__).resolve().parents[1] / "data" / "triage_labelled.jsonl"
T0 = datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC)


def labelled_text(item_id: str, split: str | None = None) -> str:
    """One real failure text from the labelled set (the rules never see ids); with `split`,
    the item must belong to that part (unit tests pin development items only)."""
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        if raw["id"] == item_id:
            if split is not None and raw.get("split") != split:
                raise KeyError(f"{item_id} is not in the {split} part")
            return str(raw["text"])
    raise KeyError(item_id)


def failed(text: str, nodeid: str = "tests/test_api.py::test_x", **kw: object) -> TestResult:
    lines = text.strip().splitlines()
    return TestResult(
        nodeid=nodeid,
        outcome=kw.pop("outcome", Outcome.FAILED),  # type: ignore[arg-type]
        message=lines[-1] if lines else "",
        longrepr=text,
        **kw,  # type: ignore[arg-type]
    )


def exc_text(exc: BaseException) -> str:
    """The real traceback text of an exception that was really raised."""
    return "".join(traceback.format_exception(exc))


def probe(
    component: str,
    ok: bool,
    detail: str,
    target: str = "",
    kind: str = "tcp",
    name: str | None = None,
) -> ProbeResult:
    return ProbeResult(
        component, name or f"{component}-{kind}", kind, target, ok, 2.0, detail, checked_at=T0
    )


def gate(*probes: ProbeResult, depends: dict[str, tuple[str, ...]] | None = None) -> GateResult:
    depends = depends or {}
    comps = {}
    for p in probes:
        comps.setdefault(p.component, []).append(p)
    unhealthy = {c for c, ps in comps.items() if not all(p.ok for p in ps)}
    states = tuple(
        ComponentState(
            c,
            c not in unhealthy,
            depends.get(c, ()),
            tuple(ps),
            tuple(d for d in depends.get(c, ()) if d in unhealthy),
        )
        for c, ps in comps.items()
    )
    return GateResult(not unhealthy, states, tuple(probes))
