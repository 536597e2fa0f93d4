"""The health gate: can the environment be tested, and if not, what is the deepest failure?

Pure decisions first (component states, deepest failure, which phase is
blocked, flapping, progressive thresholds), all over plain records; then the
thin I/O shell that runs the probes and keeps their history in the store; then
the table and JSON the CLI shows.

Example: load_balancer -> backend -> (database, cache). If backend and cache
both fail, the deepest failure is cache: backend's failure is explained by it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from greenloop.config import Config, PhaseConfig, SelectConfig
from greenloop.errors import ConfigError
from greenloop.probes.modes import mode_category, probe_mode, strongest
from greenloop.probes.run import run_probes
from greenloop.records import (
    Category,
    ComponentState,
    FailureMode,
    GateResult,
    PhaseResult,
    PhaseStatus,
    ProbeResult,
    utcnow,
)
from greenloop.redact import redactor_for
from greenloop.retry import backoff, poll

if TYPE_CHECKING:
    from greenloop.earlygate import EarlyCheck

    # Only a type here: the store (SQLAlchemy, Alembic) costs ~0.5 s to import,
    # and a gate without one must not pay it.
    from greenloop.store import Store

# How many past checks per component the flapping rules replay.
HISTORY_CHECKS = 50


@dataclass(frozen=True, slots=True)
class ComponentHistory:
    """A component's recent raw checks, oldest first: True when all its probes passed."""

    checks: tuple[bool, ...] = ()


# --------------------------------------------------------------------------- graph


def _graph(config: Config) -> dict[str, tuple[str, ...]]:
    """Every component (declared, or only named by a probe) and its direct dependencies."""
    graph = {c.name: tuple(c.depends_on) for c in config.components}
    for probe in config.probes:
        graph.setdefault(probe.component, ())
    return graph


def dependencies(name: str, graph: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """All transitive dependencies of a component, nearest first; cycles are cut."""
    seen: dict[str, None] = {}
    frontier = list(graph.get(name, ()))
    while frontier:
        dep = frontier.pop(0)
        if dep == name or dep in seen:
            continue
        seen[dep] = None
        frontier.extend(graph.get(dep, ()))
    return tuple(seen)


def validate_components(config: Config) -> None:
    """A dependency cycle has no deepest failure: refuse it at load time."""
    graph = _graph(config)
    for index, component in enumerate(config.components):
        path = _cycle(component.name, graph)
        if path:
            raise ConfigError(
                str(config.source),
                f"components[{index}].depends_on",
                f"dependency cycle {' -> '.join(path)}",
            )


def _cycle(start: str, graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency path from `start` back to itself, or None."""

    def walk(node: str, path: list[str]) -> list[str] | None:
        for dep in graph.get(node, ()):
            if dep == start:
                return [*path, dep]
            if dep not in path:
                found = walk(dep, [*path, dep])
                if found:
                    return found
        return None

    return walk(start, [start])


def _deepest(
    failing: Iterable[str], graph: Mapping[str, Sequence[str]], order: Sequence[str]
) -> str | None:
    """The failing component whose own dependencies are all fine.

    With several such roots, the one most other failures depend on explains the
    most; ties go to config order.
    """
    failing = set(failing)
    if not failing:
        return None
    roots = [n for n in order if n in failing and not failing & set(dependencies(n, graph))]
    if not roots:  # only possible with a cycle; still name something
        return next(n for n in order if n in failing)

    def explained(root: str) -> int:
        return sum(1 for n in failing if root in dependencies(n, graph))

    return max(roots, key=lambda r: (explained(r), -order.index(r)))


# --------------------------------------------------------------------------- flapping


def debounced_healthy(checks: Sequence[bool], fail_after: int, recover_after: int) -> bool:
    """Replay raw checks (oldest first) through the flapping rules.

    A component starts healthy, goes down after `fail_after` consecutive failed
    checks and comes back after `recover_after` consecutive passes; shorter
    runs leave its state as it was.
    """
    healthy = True
    streak = 0
    last: bool | None = None
    for passed in checks:
        streak = streak + 1 if passed == last else 1
        last = passed
        if healthy and not passed and streak >= fail_after:
            healthy = False
        elif not healthy and passed and streak >= recover_after:
            healthy = True
    return healthy


def histories_from_rows(rows: Iterable[Any]) -> dict[str, ComponentHistory]:
    """Group stored probe rows (newest first) into per-component check histories.

    Rows of one component with the same `checked_at` are one check (check_gate
    stamps a whole check with one time); the check passed when all of them did.
    """
    checks: dict[str, dict[datetime, bool]] = {}
    for row in rows:
        per = checks.setdefault(row.component, {})
        per[row.checked_at] = per.get(row.checked_at, True) and bool(row.ok)
    return {
        name: ComponentHistory(tuple(ok for _, ok in sorted(per.items())))
        for name, per in checks.items()
    }


# --------------------------------------------------------------------------- verdicts


def evaluate_gate(
    config: Config,
    results: Sequence[ProbeResult],
    previous: Mapping[str, ComponentHistory] | None = None,
) -> GateResult:
    """Every component's state and the deepest failure, from this check's probe results.

    A probed component is healthy when all its probes pass (after the flapping
    rules over `previous`); an unprobed one is healthy when its dependencies are.
    Probes not waited for (`waited` is False) count as no probe.
    """
    previous = previous or {}
    graph = _graph(config)
    order = list(graph)
    by_component: dict[str, list[ProbeResult]] = {}
    for result in results:
        by_component.setdefault(result.component, []).append(result)
        graph.setdefault(result.component, ())
        if result.component not in order:
            order.append(result.component)
    own_down, checked = set(), set()
    for name, probes in by_component.items():
        answered = [p for p in probes if waited(p)]
        if not answered:
            continue  # judged like an unprobed component
        checked.add(name)
        history = previous.get(name, ComponentHistory()).checks
        now = all(p.ok for p in answered)
        if not debounced_healthy(
            (*history, now), config.gate.fail_after, config.gate.recover_after
        ):
            own_down.add(name)
    unhealthy = set(own_down)
    for name in order:
        if name not in checked and own_down & set(dependencies(name, graph)):
            unhealthy.add(name)
    states = tuple(
        ComponentState(
            name=name,
            healthy=name not in unhealthy,
            depends_on=tuple(graph[name]),
            probes=tuple(by_component.get(name, ())),
            degraded_by=tuple(d for d in dependencies(name, graph) if d in unhealthy),
        )
        for name in order
    )
    return GateResult(
        healthy=not unhealthy,
        components=states,
        probes=tuple(results),
        deepest_failure=_deepest(unhealthy, graph, order),
    )


def phase_blocker(phase: PhaseConfig, gate: GateResult) -> str | None:
    """The component that keeps this phase from running, or None.

    A phase needs its `needs` and everything they depend on; a phase without a
    `needs` key needs the whole environment, and `needs = []` needs nothing.
    """
    graph = {c.name: c.depends_on for c in gate.components}
    order = [c.name for c in gate.components]
    needed = set(order if phase.needs is None else phase.needs)
    for name in list(needed):
        needed.update(dependencies(name, graph))
    failing = [c.name for c in gate.components if c.name in needed and not c.healthy]
    return _deepest(failing, graph, order)


def waited(probe: ProbeResult) -> bool:
    """False for a probe the gate stopped unanswered (`attempts == 0`, see `settled`)."""
    return probe.attempts > 0


# The phases a run has when the config names none: one that needs everything.
_ALL = PhaseConfig(name="all", select=SelectConfig())
# Pending components whose outcomes `settled` tries every combination of; beyond, it waits.
MAX_UNDECIDED = 6


def _verdict(config: Config, gate: GateResult) -> tuple[bool, str | None, tuple[str | None, ...]]:
    """What a run decides from a gate: healthy or not, the deepest failure, each phase's
    blocker (None: the phase runs)."""
    blockers = tuple(phase_blocker(p, gate) for p in config.phases or [_ALL])
    return gate.healthy, gate.deepest_failure, blockers


def settled(
    config: Config,
    answers: Sequence[ProbeResult | None],
    previous: Mapping[str, ComponentHistory] | None = None,
) -> dict[int, str] | None:
    """The probes still out (None in `answers`, config order) that need not be waited
    for, with the reason for each; None to keep waiting for all.

    A probe need not be waited for when its component depends on a component
    already down, and whatever the probes still out answer, the run's verdict is
    the same (healthy or not, the deepest failure, each phase's blocker) and every
    phase is blocked, so no test runs whose triage could read that component's
    state. Every combination of pass/fail of the components still out is evaluated
    (up to MAX_UNDECIDED of them). Typical case: the cache is down and every phase
    needs the app, which depends on it; the app's health check, hung behind the
    cache, then does not hold the verdict for its `timeout_s`. Probes of other
    components are waited for as usual.
    """
    probes = config.probes
    out = [i for i, a in enumerate(answers) if a is None]
    if not out:
        return None
    failed = {a.component for a in answers if a is not None and waited(a) and not a.ok}
    free = sorted({probes[i].component for i in out} - failed)
    if not failed or len(free) > MAX_UNDECIDED:
        return None
    verdicts = set()
    down: set[str] = set()
    for outcome in range(2 ** len(free)):
        passing = {c for bit, c in enumerate(free) if outcome >> bit & 1}
        results = [
            a
            if a is not None
            else ProbeResult(
                component=probes[i].component,
                name=probes[i].name,
                kind=probes[i].kind,
                target="",
                ok=probes[i].component in passing,
                latency_ms=None,
                detail="",
            )
            for i, a in enumerate(answers)
        ]
        gate = evaluate_gate(config, results, previous)
        verdict = _verdict(config, gate)
        healthy, _, blockers = verdict
        if healthy or None in blockers:
            return None
        verdicts.add(verdict)
        if len(verdicts) > 1:
            return None
        down = failed & set(gate.unhealthy())  # the same answers: the same in every outcome
    graph = _graph(config)
    reasons = {}
    for i in out:
        component = probes[i].component
        below = [d for d in dependencies(component, graph) if d in down]
        if below:
            reasons[i] = (
                f"not waited for: {component} depends on {below[0]}, which is down, and "
                "every phase is blocked whatever this probe answers"
            )
    return reasons or None


@dataclass(frozen=True, slots=True)
class RootFailure:
    """What blocks a component: the deepest unhealthy component below it, how its probes
    saw it fail, and whether that is an infrastructure or a configuration problem."""

    component: str
    mode: FailureMode
    category: Category
    probe: ProbeResult | None  # the failing probe whose mode was chosen


def root_failure(gate: GateResult, component: str) -> RootFailure | None:
    """Follow unhealthy dependencies from `component` to the last one and say how it
    failed; None when `component` is healthy or unknown to the gate."""
    state = gate.component(component)
    if state is None or state.healthy:
        return None
    seen: set[str] = set()
    current = state
    while current.name not in seen:
        seen.add(current.name)
        deps = [
            dep
            for name in dict.fromkeys((*current.degraded_by, *current.depends_on))
            if name not in seen and (dep := gate.component(name)) is not None and not dep.healthy
        ]
        if not deps:
            break
        current = deps[0]
    failing = [p for p in current.probes if not p.ok]
    modes = [m for p in failing if (m := probe_mode(p)) is not None]
    mode = strongest(modes) or FailureMode.UNHEALTHY
    probe = next((p for p in failing if probe_mode(p) is mode), None)
    return RootFailure(current.name, mode, mode_category(mode), probe)


def should_expand(previous_phase_result: PhaseResult, phase_cfg: PhaseConfig) -> tuple[bool, str]:
    """Whether the phases after this one should run, and why, in words.

    `phase_cfg` is the finished phase's config: below its `min_pass_rate` the
    environment is too broken for the longer phases to tell us more. A test
    that passed on re-run counts as passing here (it did work); verdicts
    still count it as a failure.
    """
    name = previous_phase_result.name
    if previous_phase_result.status == PhaseStatus.BLOCKED:
        blocker = previous_phase_result.blocked_by or "an unhealthy component"
        return False, f"{name} was blocked by {blocker}; later phases not run"
    if previous_phase_result.status == PhaseStatus.SKIPPED:
        # Nothing was selected: no evidence that the environment is too broken to go on.
        return True, f"{name} selected no tests; nothing to hold later phases back"
    counts = previous_phase_result.counts()
    passed = counts["passed"] + counts["flaky"]
    # A test file that could not be collected is a failure of its own: its tests never ran.
    broken = len(previous_phase_result.collection_errors)
    ran = passed + counts["failed"] + counts["error"] + counts["timeout"] + counts["crashed"]
    ran += broken
    if ran == 0:
        if previous_phase_result.status == PhaseStatus.FAILED and phase_cfg.min_pass_rate > 0:
            why = previous_phase_result.note or "it failed before any test ran"
            return False, f"nothing ran in {name} ({why}); later phases not run"
        return True, f"no tests ran in {name}; nothing to hold later phases back"
    rate = passed / ran
    summary = f"{name} passed {passed}/{ran} ({rate:.0%})"
    if broken:
        files = "test file" if broken == 1 else "test files"
        summary = f"{name} passed {passed}/{ran} ({rate:.0%}; {broken} {files} not collected)"
    if rate < phase_cfg.min_pass_rate:
        return False, (
            f"{summary}, below its min_pass_rate {phase_cfg.min_pass_rate:.0%}; "
            "later phases not run"
        )
    return True, f"{summary}, min_pass_rate {phase_cfg.min_pass_rate:.0%}"


# --------------------------------------------------------------------------- I/O shell


def check_gate(
    config: Config, store: Store | None, *, run_id: str | None = None, iteration: int | None = None
) -> GateResult:
    """Run every probe once, record the results, and judge the environment.

    With flapping rules (fail_after/recover_after > 1) the earlier checks come
    from the store. Synchronous: call it outside any running event loop. The
    first call for a config `start_early_check` was given takes that check's
    answers instead of probing again.
    """
    early = _claim_early(config)
    started = time.perf_counter()
    stamp = early.stamp if early else utcnow()
    previous: dict[str, ComponentHistory] = {}
    if store is not None and max(config.gate.fail_after, config.gate.recover_after) > 1:
        components = {p.component for p in config.probes}
        rows = store.probes.recent_probe_results(
            components, limit=HISTORY_CHECKS * len(config.probes)
        )
        previous = histories_from_rows(rows)
    if early:
        results = early.results()
    else:
        results = asyncio.run(
            run_probes(config.probes, file=str(config.source), redactor=redactor_for(config))
        )
    # One stamp per check, so the history can tell checks apart.
    results = [replace(r, checked_at=stamp) for r in results]
    if store is not None:
        # A probe not waited for made no check: it is not part of the flapping history.
        store.probes.record_probes(
            [r for r in results if waited(r)], run_id=run_id, iteration=iteration
        )
    gate = evaluate_gate(config, results, previous)
    # An early check's time is its probes' time, not how long its answers waited to be read.
    took = early.took if early else time.perf_counter() - started
    return replace(gate, duration_s=took)


_early: list[EarlyCheck] = []  # started (earlygate.py) and not yet taken by check_gate


def _claim_early(config: Config) -> EarlyCheck | None:
    for early in _early:
        if early.config is config or early.config == config:
            _early.remove(early)
            return early
    return None


ProgressCallback = Callable[[int, GateResult, float], None]


def wait_for_healthy(
    config: Config,
    store: Store | None,
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    run_id: str | None = None,
    rng: random.Random | None = None,
) -> GateResult:
    """Check the gate until it is healthy or `timeout_s` has passed; return the last verdict.

    Between checks it sleeps with exponential backoff and jitter
    (gate.wait_initial_s doubling up to gate.wait_max_s) and calls
    `on_progress(attempt, gate, next_delay_s)` so the CLI can show progress.
    """
    wait = backoff(config.gate.wait_initial_s, config.gate.wait_max_s, rng or random.Random())
    return poll(
        lambda: check_gate(config, store, run_id=run_id),
        done=lambda gate: gate.healthy,
        deadline=time.monotonic() + timeout_s,
        wait=wait,
        on_wait=on_progress,
    )


# --------------------------------------------------------------------------- presentation


def describe_gate(gate: GateResult) -> str:
    """The gate's verdict as one progress line, e.g. `gate: redis unhealthy (redis: timed out)`."""
    took = f"{gate.duration_s * 1000:.0f} ms"
    if gate.healthy:
        return f"gate: healthy ({len(gate.probes)} probe(s) in {took})"
    down = gate.deepest_failure or ", ".join(gate.unhealthy()) or "a component"
    failing = [p for p in gate.probes if not p.ok and p.component == down] or [
        p for p in gate.probes if not p.ok
    ]
    failing = [p for p in failing if waited(p)]
    why = "; ".join(f"{p.name}: {p.detail}" for p in failing[:2])
    skipped = [p.name for p in gate.probes if not waited(p)]
    unasked = f"; not waited for: {', '.join(skipped)} (could not change it)" if skipped else ""
    return f"gate: {down} unhealthy ({why}) in {took}; phases that need it are blocked{unasked}"


def probes_json(gate: GateResult) -> list[dict[str, Any]]:
    """The JSON report's `probes` entries (CONTRACT.md), plus when and how often each ran."""
    return [
        {
            "component": p.component,
            "name": p.name,
            "kind": p.kind,
            "target": p.target,
            "ok": p.ok,
            "latency_ms": p.latency_ms,
            "detail": p.detail,
            "checked_at": p.checked_at.isoformat(),
            "attempts": p.attempts,
            "failed_conditions": list(p.failed_conditions),
        }
        for p in gate.probes
    ]


def render_probe_table(gate: GateResult) -> Table:
    """Component, probe, status, latency and detail per probe; the deepest failure stands out."""
    table = Table(title="Health gate", title_justify="left", expand=False)
    for column in ("component", "probe", "kind", "status", "latency"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail")  # the only column that wraps
    for state in gate.components:
        deepest = state.name == gate.deepest_failure
        style = "bold red" if deepest else None
        label = Text(("▶ " if deepest else "") + state.name)
        for probe in state.probes:
            status = Text("ok", style="green") if probe.ok else Text("FAIL", style="red")
            if not waited(probe):
                status = Text("not waited", style="yellow")
            latency = "-" if probe.latency_ms is None else f"{probe.latency_ms:.0f} ms"
            # Names come from the config and details from the servers: text, never markup.
            table.add_row(
                label,
                Text(probe.name),
                Text(probe.kind),
                status,
                latency,
                Text(probe.detail),
                style=style,
            )
        if not state.probes and not state.healthy:
            status = Text("blocked", style="yellow")
            detail = Text(f"depends on {', '.join(state.degraded_by)}")
            table.add_row(label, "-", "-", status, "-", detail, style=style)
    if not gate.probes:
        table.caption = "no probes configured"
    elif gate.healthy:
        table.caption = f"healthy: {len(gate.components)} components, {len(gate.probes)} probes"
    else:
        down = ", ".join(gate.unhealthy())
        table.caption = Text(f"▶ deepest failure: {gate.deepest_failure} (unhealthy: {down})")
    return table
