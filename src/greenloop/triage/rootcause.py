"""Root-cause chains: five whys from the symptom down to where the evidence stops.

Every step cites what it stands on: a probe result with its time, a log line
with its timestamp, an error excerpt, a deploy (revision change), history.
A step is `verified` only when that evidence is shown; otherwise it is a
hypothesis (verified=False), and the chain ends there instead of inventing
deeper causes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from greenloop.records import Category, GateResult, ProbeResult, RootCause, Why
from greenloop.triage.classify import Decision
from greenloop.triage.fingerprint import exception_line
from greenloop.triage.logs.base import LogRecord
from greenloop.triage.names import phrase

MAX_WHYS = 5


@dataclass(frozen=True, slots=True)
class ChangeFacts:
    """What the deploy stage and the store say about the revision under test."""

    revision: str | None = None
    previous_revision: str | None = None
    previous_green: bool | None = None  # the last runs on previous_revision passed these tests


def probe_line(p: ProbeResult) -> str:
    target = f" {p.target}" if p.target else ""
    latency = f" after {p.latency_ms:.0f} ms" if p.latency_ms is not None else ""
    return (
        f"probe {p.name!r} ({p.kind}{target}) {'ok' if p.ok else 'failed'} at "
        f"{p.checked_at:%Y-%m-%d %H:%M:%S}Z{latency}: {p.detail[:200]}"
    )


def log_line(r: LogRecord) -> str:
    ts = f"{r.ts:%Y-%m-%d %H:%M:%S}Z " if r.ts else ""
    rid = f" [{r.request_id}]" if r.request_id else ""
    tail = r.traceback.strip().splitlines()[-1:] if r.traceback else []
    extra = f" | {tail[0][:160]}" if tail else ""
    return f"{ts}{r.level}{rid} {r.message[:200]}{extra}"


def _verb(category: Category) -> str:
    return {Category.BLOCKED: "blocked", Category.SKIPPED_ENV: "skipped"}.get(category, "failed")


def _gate_chain(component: str, gate: GateResult) -> list[Why]:
    """Walk the gate's dependency graph from `component` to the deepest unhealthy one."""
    whys: list[Why] = []
    seen: set[str] = set()
    current: str | None = component
    first = True
    while current and current not in seen and len(whys) < MAX_WHYS - 1:
        seen.add(current)
        state = gate.component(current)
        if state is None or state.healthy:
            break
        failing = [p for p in state.probes if not p.ok]
        down_deps = [d for d in (*state.degraded_by, *state.depends_on) if d not in seen]
        down_deps = [
            d for d in dict.fromkeys(down_deps) if (c := gate.component(d)) and not c.healthy
        ]
        if first:
            evidence = "; ".join(probe_line(p) for p in failing[:2]) or (
                f"gate: {current} unhealthy because {', '.join(state.degraded_by)} is down"
            )
            whys.append(Why(f"the gate found {current} unhealthy", evidence, True))
            first = False
        if down_deps:
            dep = down_deps[0]
            mentions = [p for p in failing if dep in p.detail]
            evidence = (
                probe_line(mentions[0])
                if mentions
                else f"gate: {current} depends on {dep}, and {dep} is unhealthy"
            )
            whys.append(
                Why(f"{current} is unhealthy because its dependency {dep} is down", evidence, True)
            )
            current = dep
            dep_state = gate.component(dep)
            dep_failing = [p for p in dep_state.probes if not p.ok] if dep_state else []
            if dep_failing and not any(
                (c := gate.component(d)) and not c.healthy
                for d in (*(dep_state.depends_on if dep_state else ()),)
            ):
                p = dep_failing[0]
                what = (
                    "does not accept connections"
                    if "refused" in p.detail.lower() or "connect" in p.detail.lower()
                    else "fails its own probe"
                )
                whys.append(Why(f"{dep} {what}", probe_line(p), True))
                break
        else:
            break
    return whys


def _log_whys(
    decisions: Sequence[Decision], logs: Sequence[LogRecord], *, unmatched: bool = True
) -> list[Why]:
    """Server log lines that belong to the failing requests (by request id), else error bursts."""
    ids = {d.evidence.request_id for d in decisions if d.evidence.request_id}
    matched = [r for r in logs if r.request_id and r.request_id in ids and r.is_error]
    if matched:
        r = matched[0]
        what = r.traceback.strip().splitlines()[-1] if r.traceback else r.message
        return [Why(f"the service failed the request: {what[:160]}", log_line(r), True)]
    errors = [r for r in logs if r.is_error]
    if errors and unmatched:
        # Shown, but not tied to these tests by request id: a lead, not a proven link.
        return [
            Why(
                f"hypothesis: related to the {len(errors)} error line(s) the service logged "
                "in the window",
                "; ".join(log_line(r) for r in errors[:2]),
                False,
            )
        ]
    return []


def _change_why(change: ChangeFacts) -> Why | None:
    if not change.previous_revision or change.revision == change.previous_revision:
        return None
    deploy = f"deploy: revision {change.previous_revision} -> {change.revision}"
    if change.previous_green:
        return Why(
            f"it appeared with revision {change.revision}",
            f"{deploy}; the same tests passed on {change.previous_revision}",
            True,
        )
    return Why(
        f"hypothesis: it may have come with revision {change.revision}",
        f"{deploy}; no passing history on {change.previous_revision} to confirm",
        False,
    )


def build_root_cause(
    decisions: Sequence[Decision],
    *,
    category: Category,
    reason: str,
    component: str | None,
    gate: GateResult | None,
    logs: Sequence[LogRecord] = (),
    change: ChangeFacts = ChangeFacts(),
) -> RootCause:
    """The chain for one cluster (all decisions share a fingerprint)."""
    lead = decisions[0]
    n = len(decisions)
    excerpt = (
        lead.classification.evidence
        if category in (Category.BLOCKED, Category.SKIPPED_ENV)
        else exception_line(lead.evidence).strip() or lead.classification.evidence
    )
    symptom = f"{n} test{'s' if n != 1 else ''} {_verb(category)}: {phrase(reason).lower()}"
    whys = [Why(symptom, f"{lead.evidence.nodeid}: {excerpt}"[:400], True)]

    if category in (Category.BLOCKED, Category.INFRASTRUCTURE) and component and gate:
        whys += _gate_chain(component, gate)
    elif category is Category.INFRASTRUCTURE and lead.evidence.failing_probes:
        whys.append(
            Why(
                "a probe was failing at the time", probe_line(lead.evidence.failing_probes[0]), True
            )
        )
    if category in (Category.PRODUCT, Category.UNKNOWN, Category.INFRASTRUCTURE):
        whys += _log_whys(decisions, logs, unmatched=category is not Category.INFRASTRUCTURE)
    if category is Category.FLAKY:
        ev = lead.evidence
        if ev.passed_on_rerun:
            whys.append(
                Why(
                    "it is nondeterministic: the same code passed on re-run",
                    f"{ev.nodeid}: failed, then passed on re-run",
                    True,
                )
            )
        elif ev.flips:
            whys.append(
                Why(
                    "it flips between pass and fail on one revision",
                    f"{ev.flips} flips in {ev.history_runs} runs of {ev.revision}",
                    True,
                )
            )
    if category in (Category.TEST, Category.CONFIGURATION, Category.PRODUCT):
        frame = lead.evidence.raising_frame
        if frame is not None:
            whys.append(
                Why(
                    f"it is raised in {frame.kind} code",
                    f"{frame.path}:{frame.line or '?'} in {frame.function}",
                    True,
                )
            )
    if category in (Category.PRODUCT, Category.UNKNOWN):
        change_why = _change_why(change)
        if change_why:
            whys.append(change_why)
    if len(whys) == 1 and lead.rule is not None:
        whys.append(Why(f"hypothesis: {lead.rule.doc}", f"rule {lead.rule.name}", False))
    whys = _stop_at_hypothesis(whys)[:MAX_WHYS]
    verified = [w for w in whys if w.verified]
    deepest = verified[-1].why if verified else whys[-1].why
    return RootCause(
        summary=deepest[:1].upper() + deepest[1:], component=component, whys=tuple(whys)
    )


def _stop_at_hypothesis(whys: list[Why]) -> list[Why]:
    """Nothing follows the first unverified step: deeper steps would stand on a guess."""
    for i, why in enumerate(whys):
        if not why.verified:
            return whys[: i + 1]
    return whys
