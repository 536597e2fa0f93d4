"""Root-cause chains: five whys from the symptom down to where the evidence stops.

Every step cites what it stands on: a probe result with its time, a log line
with its timestamp, an error excerpt, a deploy (revision change), history.
A step is `verified` only when that evidence is shown; otherwise it is a
hypothesis (verified=False), and the chain ends there instead of inventing
deeper causes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from greenloop.gate import RootFailure, root_failure
from greenloop.probes.modes import DOES, probe_mode
from greenloop.records import Category, FailureMode, GateResult, ProbeResult, RootCause, Why
from greenloop.triage.classify import Decision
from greenloop.triage.evidence import Frame, Slowness, parse_frames
from greenloop.triage.fingerprint import exception_line
from greenloop.triage.logs.base import LogRecord
from greenloop.triage.names import phrase

MAX_WHYS = 5
# Modes that say no more than "the probe failed": no why of their own.
_GENERIC = (FailureMode.UNHEALTHY, FailureMode.SERVER_ERROR)


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
        f"{p.checked_at:%Y-%m-%d %H:%M:%S}Z{latency}: {p.detail[:400]}"
    )


def log_line(r: LogRecord) -> str:
    """One log line as cited evidence: time, level, request id, request, status, error."""
    ts = f"{r.ts:%Y-%m-%d %H:%M:%S}Z " if r.ts else ""
    rid = f" [{r.request_id}]" if r.request_id else ""
    request = f" {r.method} {r.path}".rstrip() if r.path else ""
    status = f" -> {r.status}" if r.status is not None else ""
    error = r.error_line
    extra = f" | {error[:160]}" if error else ""
    return f"{ts}{r.level}{rid} {r.message[:200]}{request}{status}{extra}"


def _verb(category: Category) -> str:
    return {Category.BLOCKED: "blocked", Category.SKIPPED_ENV: "skipped"}.get(category, "failed")


def _where(frame: Frame) -> str:
    name = frame.path.replace("\\", "/").rsplit("/", 1)[-1]
    func = f" in {frame.function}" if frame.function else ""
    return f"{name}:{frame.line or '?'}{func}"


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
                failure = root_failure(gate, dep)
                p = failure.probe if failure and failure.probe else dep_failing[0]
                mode = failure.mode if failure else probe_mode(p) or FailureMode.UNHEALTHY
                whys.append(Why(f"{dep} {DOES[mode]}", probe_line(p), True))
                break
        else:
            break
    return whys


def _deepest_unhealthy(component: str, gate: GateResult) -> str:
    """Follow unhealthy dependencies from `component` to the last one."""
    seen: set[str] = set()
    current = component
    while current not in seen:
        seen.add(current)
        state = gate.component(current)
        if state is None:
            break
        deps = [
            d
            for d in dict.fromkeys((*state.degraded_by, *state.depends_on))
            if d not in seen and (c := gate.component(d)) and not c.healthy
        ]
        if not deps:
            break
        current = deps[0]
    return current


_BODY = re.compile(r"; body: (?P<body>.*?)(?:; failed: |$)", re.S)
_BODY_ERROR = re.compile(r'"(?:error|message|detail)":"(?P<error>(?:[^"\\]|\\.)+)')
_HTTP_STATUS = re.compile(r"\bHTTP (?P<status>[1-5]\d\d)\b")


def _probe_finding(component: str, gate: GateResult) -> Why | None:
    """What the failing probe of `component` itself says, in words: the error its health
    body names, the body of an error answer, the certificate problem. None when the
    probe says nothing more than pass/fail."""
    state = gate.component(component)
    failing = [p for p in state.probes if not p.ok] if state else []
    for p in failing:
        if p.kind == "tls":
            said = p.detail.split("; failed: ", 1)[0]
            return Why(
                f"{component}'s TLS certificate is rejected: {said[:200]}", probe_line(p), True
            )
    for p in failing:
        m = _BODY.search(p.detail)
        if m is None:
            continue
        body = m.group("body")
        errors = [e.group("error") for e in _BODY_ERROR.finditer(body)]
        named = [e for e in errors if component.lower() in e.lower()] or errors
        if named:
            error = named[0].replace('\\"', '"')[:200]
            low = error.lower()
            what = (
                "does not accept connections"
                if "refused" in low or "could not connect" in low
                else "reports an error"
            )
            shown = f"{probe_line(p).split('; body: ', 1)[0]}; its body says: {error}"
            return Why(f"{component} {what}: {error}", shown, True)
        status = _HTTP_STATUS.search(p.detail)
        if status and not body.startswith(("{", "[")):
            return Why(
                f"{component} answers HTTP {status.group('status')}: {body[:200]}",
                probe_line(p),
                True,
            )
    return None


def _logged_errors(component: str, logs: Sequence[LogRecord]) -> Why | None:
    """The service's own error lines naming the component: they corroborate the probe."""
    name = component.lower()
    named = [
        r for r in logs if r.is_error and name in f"{r.message} {r.error} {r.error_line}".lower()
    ]
    if not named:
        return None
    cited = log_line(named[0]) + (f"; ... {log_line(named[-1])}" if len(named) > 1 else "")
    return Why(
        f"the service logged {len(named)} error line(s) naming {component}", cited[:600], True
    )


def _slow_why(slow: Slowness) -> Why:
    p = slow.probe
    seen = (
        f"{p.target or p.name} reports it taking"
        if slow.said.startswith('"')
        else f"probe {p.name!r} saw it take"
    )
    return Why(
        f"{slow.component} is slow: {seen} {slow.latency_ms:.0f} ms, longer than the "
        "requests that timed out waited",
        f"{probe_line(p)} ({slow.said})",
        True,
    )


def _server_records(decisions: Sequence[Decision]) -> list[tuple[LogRecord, str]]:
    return [(r, d.evidence.server_match) for d in decisions for r in d.evidence.server_records]


def _log_whys(
    decisions: Sequence[Decision], logs: Sequence[LogRecord], *, unmatched: bool = True
) -> list[Why]:
    """The service's failure for the failing requests (request id, else time and status),
    where its own code raised it; else, as a hypothesis, the window's error lines."""
    matched = [(r, how) for r, how in _server_records(decisions) if r.is_error]
    if not matched:
        ids = {d.evidence.request_id for d in decisions if d.evidence.request_id}
        matched = [
            (r, "matched by request id")
            for r in logs
            if r.request_id and r.request_id in ids and r.is_error
        ]
    if matched:
        # The line with the traceback says most; any line of the request says what was asked.
        r, how = next(((r, h) for r, h in matched if r.traceback), matched[0])
        asked = next((m.endpoint for m, _ in matched if m.endpoint), "")
        status = next((m.status for m, _ in matched if m.status), None)
        what = (r.error_line or r.message)[:160]
        if asked and r.traceback:
            why = f"the service raised {what} handling {asked}" + (
                f" (HTTP {status})" if status else ""
            )
        elif asked and status:
            why = f"the service answered {asked} with HTTP {status}: {what}"
        else:
            why = f"the service failed the request: {what}"
        whys = [Why(why, f"{log_line(r)} ({how})", True)]
        frames = [f for f in parse_frames(r.traceback) if f.kind == "app"]
        if frames:
            whys.append(
                Why(
                    f"the service's own code raises it at {_where(frames[-1])}",
                    f"traceback in the service log: {frames[-1].path}:{frames[-1].line or '?'}"
                    f" in {frames[-1].function}",
                    True,
                )
            )
        return whys
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


_ISSUER = re.compile(r"login|token|auth|session|sign-?in|oauth", re.I)


def _rejection_whys(decisions: Sequence[Decision], logs: Sequence[LogRecord]) -> list[Why]:
    """A 401/403 the service logged for the failing requests, and, when the log shows the
    credentials being issued just before, that they were fresh: the service rejects what
    it issued itself."""
    rejected = [(r, how) for r, how in _server_records(decisions) if r.status in (401, 403)]
    if not rejected:
        return []
    r, how = rejected[0]
    said = f" ({r.error})" if r.error else ""
    asked = f"answered {r.endpoint} with" if r.endpoint else "rejected the credentials with"
    whys = [Why(f"the service {asked} {r.status}{said}", f"{log_line(r)} ({how})", True)]
    if r.ts is not None:
        issued = [
            x
            for x in logs
            if x.ts is not None
            and x.ts <= r.ts
            and x.status is not None
            and 200 <= x.status < 300
            and x.method in ("POST", "PUT")
            and _ISSUER.search(x.path)
        ]
        if issued:
            x = issued[-1]
            assert x.ts is not None
            seconds = (r.ts - x.ts).total_seconds()
            when = "moments" if seconds < 1 else f"{seconds:.0f} s"
            whys.append(
                Why(
                    f"valid credentials are rejected with {r.status}{said}: the same service "
                    f"issued them from {x.endpoint} ({x.status}) {when} earlier",
                    f"{log_line(x)}; then {log_line(r)}",
                    True,
                )
            )
    return whys


def _change_why(change: ChangeFacts) -> Why | None:
    # An unknown revision (None) on either side says nothing about a change.
    if not change.previous_revision or not change.revision:
        return None
    if change.revision == change.previous_revision:
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
    corroborating: list[Why] = []  # evidence for the cause above them, not a deeper cause

    blocking: RootFailure | None = None
    if category is Category.BLOCKED and component and gate:
        blocking = root_failure(gate, component)
    if category in (Category.BLOCKED, Category.INFRASTRUCTURE) and component and gate:
        chain = _gate_chain(component, gate)
        whys += chain
        if (
            len(chain) == 1
            and blocking is not None
            and blocking.probe is not None
            and blocking.mode not in _GENERIC
            and _probe_finding(component, gate) is None
        ):
            # No deeper component and no body to quote: how this one failed, in the
            # probe's own words, is the cause the gate shows.
            whys.append(Why(f"{component} {DOES[blocking.mode]}", probe_line(blocking.probe), True))
        if chain:
            deepest = _deepest_unhealthy(component, gate)
            finding = _probe_finding(deepest, gate)
            if finding is not None and finding.why != whys[-1].why:
                whys.append(finding)
            logged = _logged_errors(deepest, logs)
            if logged is not None:
                whys.append(logged)
                corroborating.append(logged)
    elif category is Category.INFRASTRUCTURE and lead.evidence.failing_probes:
        whys.append(
            Why(
                "a probe was failing at the time", probe_line(lead.evidence.failing_probes[0]), True
            )
        )
    if category is Category.INFRASTRUCTURE and lead.evidence.slow and len(whys) == 1:
        slow = next((s for s in lead.evidence.slow if s.component == component), None)
        if slow is not None:
            whys.append(_slow_why(slow))
    server_whys: list[Why] = []
    if category in (Category.PRODUCT, Category.UNKNOWN, Category.INFRASTRUCTURE):
        server_whys = _log_whys(decisions, logs, unmatched=category is not Category.INFRASTRUCTURE)
    elif category is Category.FLAKY:
        # What the failing run met; only a line tied to it (request id, time) says so.
        server_whys = _log_whys(decisions, (), unmatched=False)
    elif category is Category.CONFIGURATION:
        server_whys = _rejection_whys(decisions, logs)
    whys += server_whys
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
    frame = lead.evidence.raising_frame
    # Where a test failed is a cause only when the test's own code is at fault, or when
    # application code raised in-process; a product failure the test merely observed
    # (an assertion on a 500) was not caused where the test noticed it.
    if (
        frame is not None
        and not any(w.verified for w in server_whys)
        and (
            category is Category.TEST
            or (category in (Category.CONFIGURATION, Category.PRODUCT) and frame.kind == "app")
        )
    ):
        whys.append(
            Why(
                f"it is raised in {'test' if frame.kind == 'test' else 'application'} "
                f"code at {_where(frame)}",
                f"{frame.path}:{frame.line or '?'} in {frame.function or '?'}",
                True,
            )
        )
    change_why = _change_why(change) if category in (Category.PRODUCT, Category.UNKNOWN) else None
    if change_why:
        whys.append(change_why)
    if len(whys) == 1 and lead.rule is not None:
        whys.append(Why(f"hypothesis: {lead.rule.doc}", f"rule {lead.rule.name}", False))
    whys = _stop_at_hypothesis(whys)[:MAX_WHYS]
    if category is Category.FLAKY and server_whys and whys[-1].verified and len(whys) > 2:
        # The re-run is the cause; what the failing run met describes it.
        summary = f"{whys[-1].why} (the failing run: {server_whys[0].why})"
        return RootCause(summary=sentence(summary), component=component, whys=tuple(whys))
    if blocking is not None:
        summary = _summary(whys, corroborating, change_why, change).rstrip(".")
        return RootCause(
            summary=sentence(
                f"{summary}; {_article(blocking.category.value)} {blocking.category.value} "
                f"problem (mode: {blocking.mode.value})"
            ),
            component=blocking.component,
            whys=tuple(whys),
            mode=blocking.mode,
            category=blocking.category,
        )
    return RootCause(
        summary=(
            # A skip's reason is all there is to say; no chain is expected below it.
            sentence(f"{whys[0].why} ({lead.classification.evidence[:160]})")
            if category is Category.SKIPPED_ENV
            else _summary(whys, corroborating, change_why, change)
        ),
        component=component,
        whys=tuple(whys),
    )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _summary(
    whys: Sequence[Why],
    corroborating: Sequence[Why],
    change_why: Why | None,
    change: ChangeFacts,
) -> str:
    """The deepest verified cause as a sentence, with the revision that brought it when
    that is verified; the symptom alone says that nothing deeper is shown."""
    causes = [w for w in whys if w.verified and w not in corroborating and w is not change_why]
    # A location step ("... raises it at routes.py:88 in f") adds to the cause above it.
    text = causes[-1].why if causes else whys[0].why
    if len(causes) >= 2 and causes[-1].why.startswith("the service's own code raises it at"):
        text = f"{causes[-2].why}, at {causes[-1].why.rsplit(' at ', 1)[-1]}"
    elif len(causes) >= 2 and causes[-1].why.startswith("it is raised in "):
        text = f"{causes[-2].why}; {causes[-1].why}"
    if len(causes) <= 1:
        text += " (the evidence shows no deeper cause)"
    if change_why is not None and change_why in whys and change_why.verified:
        text += (
            f"; introduced by revision {change.revision} "
            f"(the same tests passed on revision {change.previous_revision})"
        )
    return sentence(text)


def sentence(text: str) -> str:
    """Capitalised like a sentence, unless it starts with an identifier (load_balancer, httpx)."""
    first = text.split(" ", 1)[0]
    if "_" in first or "." in first.rstrip(".:,"):
        return text
    return text[:1].upper() + text[1:]


def _stop_at_hypothesis(whys: list[Why]) -> list[Why]:
    """Nothing follows the first unverified step: deeper steps would stand on a guess."""
    for i, why in enumerate(whys):
        if not why.verified:
            return whys[: i + 1]
    return whys
