"""Stage 4, verify: did each test really run against the target? (pure)

A green run means nothing if the tests never touched staging; a "not real"
verdict means nothing if a reviewer would not accept its evidence. So the
evidence is a ladder (`LADDER`, the table in docs/execution.md):

1. Traffic to a target host, by the test or by a shared fixture it uses, is
   the strongest evidence that a test ran for real. Nothing weaker overrides
   it: a test that reached the target gets no duration finding at all, and a
   mock or an unawaited coroutine beside it is only a warning.
2. Strong findings (`Strength.STRONG`) make the iteration not_real (exit 4):
   nothing collected, a collection error, a skip whose reason says the
   environment was missing, and, where traffic was expected but none seen, a
   pass without it, a mocked network client, a coroutine that never ran, a
   pass far faster than the test's own robust history. Traffic is expected
   unless other tests of the phase reached a target (or failed) and the index
   lists no components for the test's file: real suites mix unit tests in.
3. Weak findings (`Strength.WEAK`) are warnings in the report and worklog:
   a configured `min_duration_ms` floor, 0.000 s passes in a command phase's
   JUnit, and the strong signals above when traffic vouches for the test.

Duration is judged only against the test's own history: the median of at
least `HISTORY_MIN_RUNS` real passing runs, never one run, with a generous
factor and an absolute floor, so a busy machine cannot make a real test "too
fast". Blocked tests and xfailed tests are not findings.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from greenloop.config import Config
from greenloop.envskip import is_env_skip
from greenloop.execute.runners import runner_for
from greenloop.ports import DEFAULT_PORT
from greenloop.records import (
    AuthenticityFinding,
    Connection,
    IndexEntry,
    Outcome,
    PhaseResult,
    PhaseStatus,
    Strength,
    TestResult,
)

STRONG, WEAK = Strength.STRONG, Strength.WEAK


@dataclass(frozen=True, slots=True)
class Rung:
    """One kind of evidence: its check name, its weight, and when it applies, in words."""

    check: str
    strength: Strength
    when: str


# The documented table (docs/execution.md renders the same rows). Order: strongest first.
LADDER: tuple[Rung, ...] = (
    Rung(
        "traffic",
        STRONG,
        "the test (or a shared fixture it uses) sent to or received from a target host: "
        "it ran for real, and no duration rule overrides that",
    ),
    Rung("nothing_collected", STRONG, "a phase that ran collected no test"),
    Rung("collection_error", STRONG, "a test file could not be imported or collected"),
    Rung("skipped_env", STRONG, "skipped with a reason that says the environment was missing"),
    Rung(
        "no_connection",
        STRONG,
        "passed without traffic to any target host where traffic was expected: nothing else in"
        " its phase reached a target, or its index entry lists components (pytest runner)",
    ),
    Rung("mocked", STRONG, "passed with a network client replaced, where traffic was expected"),
    Rung(
        "unawaited_coroutine",
        STRONG,
        "a coroutine was never awaited, so its checks never ran, where traffic was expected",
    ),
    Rung(
        "too_fast",
        STRONG,
        "passed in under 1/20 of the median of its last 5+ real passing runs (median >= 0.2 s),"
        " where traffic was expected and none was seen, or none is observable (command runner)",
    ),
    Rung(
        "mocked",
        WEAK,
        "a network client was replaced, but the test reached a target, or is a unit test among"
        " E2E tests (its phase-mates reached a target, its index entry lists no components)",
    ),
    Rung(
        "unawaited_coroutine",
        WEAK,
        "a coroutine was never awaited, but the test reached a target or is a unit test",
    ),
    Rung(
        "too_fast",
        WEAK,
        "passed faster than a configured min_duration_ms (index file or execution), "
        "where no traffic to a target was seen",
    ),
    Rung(
        "no_duration",
        WEAK,
        "a command phase's JUnit reports 0.000 s for passing tests: nothing shows they ran",
    ),
)
UNAWAITED = re.compile(r"coroutine .* was never awaited")
HISTORY_MIN_RUNS = 5  # a usual duration is learned from this many real passing runs, never one
HISTORY_FACTOR = 1 / 20  # passing 20x faster than usual is suspicious...
HISTORY_MIN_USUAL_S = 0.2  # ...when the usual time is long enough for that to mean something
HISTORY_RUNS = 20  # the most recent runs the median is taken over
LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def check_authenticity(
    phases: Sequence[PhaseResult],
    *,
    config: Config,
    index: Sequence[IndexEntry],
    history: Mapping[str, Sequence[float]],
) -> list[AuthenticityFinding]:
    """Every finding, strong and weak, in phase order (see the module docstring).

    `history` maps node ids to the durations (seconds) of their recent real passing
    runs, newest first (`Store.pass_durations`). Split with `strong` / `weak`.
    """
    targets = target_hosts(config)
    endpoints = target_endpoints(config)
    command_phases = {p.name for p in config.phases if not runner_for(p.runner).runs_pytest}
    findings: list[AuthenticityFinding] = []
    for phase in phases:
        if phase.status in (PhaseStatus.BLOCKED, PhaseStatus.SKIPPED):
            continue
        if not phase.tests and not phase.collection_errors:
            findings.append(
                AuthenticityFinding(
                    nodeid=phase.name,
                    check="nothing_collected",
                    evidence=f"phase {phase.name!r} collected no tests"
                    + (f" ({phase.note})" if phase.note else ""),
                )
            )
        for error in phase.collection_errors:
            nodeid, _, text = error.partition(": ")
            findings.append(
                AuthenticityFinding(
                    nodeid=nodeid,
                    check="collection_error",
                    evidence=f"could not be collected: {_first_line(text) or 'no detail'}",
                )
            )
        observable = phase.name not in command_phases  # JUnit from a command has no socket record
        # Did anything in this phase reach a target? If so, a test that did not is most
        # likely a unit test among E2E tests: only the index (components listed for its
        # file) can say it was meant to reach the target. If tests failed, the failures are
        # the verdict: a pass without traffic beside them proves nothing more.
        phase_reached = observable and any(
            reached_target(t, targets) or t.outcome.is_failure for t in phase.tests
        )
        for test in phase.tests:
            entry = index_entry(test.nodeid, test.file, index)
            findings += judge_test(
                test,
                targets=targets,
                endpoints=endpoints,
                observable=observable,
                expects_traffic=not phase_reached or bool(entry and entry.components),
                min_ms=min_duration_ms(test.nodeid, test.file, index, config),
                usual_s=usual_duration(history.get(test.nodeid, ())),
            )
        if not observable:
            findings += _zero_duration_passes(phase)
    ran_or_blocked = any(p.tests or p.status is PhaseStatus.BLOCKED for p in phases)
    if not ran_or_blocked and not findings:
        notes = "; ".join(p.note for p in phases if p.note) or "no phase is configured"
        findings.append(
            AuthenticityFinding(
                nodeid="",
                check="nothing_collected",
                evidence=f"no phase selected or ran any test ({notes})",
            )
        )
    return findings


def strong(findings: Sequence[AuthenticityFinding]) -> list[AuthenticityFinding]:
    """The findings that change the verdict (not_real)."""
    return [f for f in findings if f.strength is STRONG]


def weak(findings: Sequence[AuthenticityFinding]) -> list[AuthenticityFinding]:
    """The findings shown as warnings only."""
    return [f for f in findings if f.strength is WEAK]


def judge_test(
    test: TestResult,
    *,
    targets: Sequence[str],
    observable: bool,
    min_ms: float | None,
    usual_s: float | None,
    expects_traffic: bool = True,
    endpoints: Sequence[tuple[str, int]] = (),
) -> list[AuthenticityFinding]:
    """The findings about one test.

    `observable` is False where no socket record exists (command runners); `min_ms` is a
    configured floor (None: none); `usual_s` its robust usual duration (`usual_duration`).
    `expects_traffic` is False for a test whose phase-mates reached the target (or failed)
    while its index entry names no component (a unit test among E2E tests): its lack of
    traffic is no finding, and what else is seen about it is only a warning. `endpoints`
    are the targets' (host, port): a connection to one that the kernel saw close while the
    test ran (`TestResult.ended_connections`) turns "no connection" into a warning.
    """
    out: list[AuthenticityFinding] = []

    def found(check: str, evidence: str, strength: Strength) -> None:
        out.append(AuthenticityFinding(test.nodeid, check, evidence, strength))

    if test.outcome is Outcome.BLOCKED or test.xfailed:
        return out
    if test.outcome is Outcome.SKIPPED:
        reason = test.skip_reason or test.message
        if reason and env_skip(reason):
            found("skipped_env", f"skipped because the environment was missing: {reason!r}", STRONG)
        return out
    # A test that asserts on a shared (module/session) fixture's result rests on the work that
    # fixture did against the target: its time and traffic count for the test.
    reached = observable and reached_target(test, targets)
    # Rung 1: traffic to a target vouches for the test; what else we saw is only a warning.
    # So does being a unit test among E2E tests (see expects_traffic).
    vouched = WEAK if reached or not expects_traffic else STRONG
    for warning in test.warnings:
        if UNAWAITED.search(warning):
            found("unawaited_coroutine", f"{_first_line(warning)}: its checks never ran", vouched)
    if test.outcome is not Outcome.PASSED:
        return out
    if observable:
        for mock in test.mocks:
            also = " (the test also reached a target)" if reached else ""
            found("mocked", mock + also, vouched)
        if targets and not reached and expects_traffic:
            seen = ", ".join(f"{c.host}:{c.port}" for c in test.connections) or "none"
            evidence = f"opened no connection to {', '.join(targets)}; connections: {seen}"
            closed = ended_at(test.ended_connections, endpoints)
            if closed:
                # Absence of evidence is not evidence when the kernel saw a connection to the
                # target close meanwhile (a client in C, whose socket lived inside the test).
                evidence += (
                    f"; but the kernel saw {len(closed)} connection(s) to {closed[0]} close"
                    " while it ran (not attributable to this test's process)"
                )
            found("no_connection", evidence, WEAK if closed else STRONG)
    if reached:
        return out
    shared_s = sum(f.setup_s for f in test.shared_fixtures)
    ms = (test.duration_s + shared_s) * 1000
    usual_ms = (usual_s or 0.0) * 1000
    if usual_ms >= HISTORY_MIN_USUAL_S * 1000 and ms < usual_ms * HISTORY_FACTOR:
        found(
            "too_fast",
            f"passed in {_ms(ms)}; the median of its last real passing runs is {_ms(usual_ms)}",
            vouched,
        )
    elif min_ms and ms < min_ms and (observable or test.duration_s > 0):
        found("too_fast", f"passed in {_ms(ms)}; the configured minimum is {min_ms:g} ms", WEAK)
    return out


def reached_target(test: TestResult, targets: Sequence[str]) -> bool:
    """Traffic to a target by the test itself or by a shared fixture it uses."""
    if any(talked_to(f.connections, targets) for f in test.shared_fixtures):
        return True
    return talked_to(test.connections, targets)


def index_entry(nodeid: str, file: str, index: Sequence[IndexEntry]) -> IndexEntry | None:
    """The index entry of the test's file."""
    path = PurePosixPath(file or nodeid.split("::", 1)[0])
    return next((e for e in index if PurePosixPath(e.path) == path), None)


def usual_duration(durations: Sequence[float]) -> float | None:
    """The median of a test's recent real passing durations; None with too few to trust."""
    recent = list(durations)[:HISTORY_RUNS]
    if len(recent) < HISTORY_MIN_RUNS:
        return None
    return statistics.median(recent)


def _zero_duration_passes(phase: PhaseResult) -> list[AuthenticityFinding]:
    """One warning per command phase whose JUnit gives passing tests no duration at all."""
    passed = [t for t in phase.tests if t.outcome is Outcome.PASSED and not t.xfailed]
    zero = [t for t in passed if t.duration_s <= 0]
    if not zero:
        return []
    names = ", ".join(t.nodeid for t in zero[:3]) + (" ..." if len(zero) > 3 else "")
    return [
        AuthenticityFinding(
            nodeid=phase.name,
            check="no_duration",
            evidence=f"{len(zero)} of {len(passed)} passing tests report 0.000 s in the "
            f"command's JUnit and no traffic is observable ({names})",
            strength=WEAK,
        )
    ]


def env_skip(reason: str) -> bool:
    """Does a skip reason say the environment was not there? (greenloop.envskip)"""
    return is_env_skip(reason)


def target_hosts(config: Config) -> tuple[str, ...]:
    """host[:port] of base_url and urls, plus execution.target_hosts, for evidence and matching."""
    hosts: list[str] = []
    for url in (config.environment.base_url, *config.environment.urls.values()):
        if url:
            parts = urlsplit(url if "://" in url else f"//{url}")
            if parts.hostname:
                hosts.append(f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname)
    hosts += config.execution.target_hosts
    return tuple(dict.fromkeys(hosts))


def target_endpoints(config: Config) -> tuple[tuple[str, int], ...]:
    """(host, port) of base_url and urls, the port defaulted from the scheme; loopback as IPs."""
    out: list[tuple[str, int]] = []
    for url in (config.environment.base_url, *config.environment.urls.values()):
        if not url or "://" not in url:
            continue
        parts = urlsplit(url)
        try:
            port = parts.port or DEFAULT_PORT.get(parts.scheme.split("+")[0].lower())
        except ValueError:
            continue
        if parts.hostname and port:
            host = parts.hostname.lower()
            hosts = (
                sorted(LOOPBACK - {"localhost", "ip6-localhost"}) if host in LOOPBACK else [host]
            )
            out += [(h, port) for h in hosts]
    return tuple(dict.fromkeys(out))


def ended_at(ended: Sequence[Connection], endpoints: Sequence[tuple[str, int]]) -> list[str]:
    """The target endpoints among connections the kernel saw close, as host:port."""
    wanted = set(endpoints)
    return sorted({f"{c.host}:{c.port}" for c in ended if (c.host.lower(), c.port) in wanted})


def talked_to(connections: Sequence[Connection], targets: Sequence[str]) -> bool:
    """Did any connection reach a target host? Hosts match; localhost matches loopback.

    With no target configured, any connection counts: there is nothing to tell them apart.
    """
    if not targets:
        return bool(connections)
    wanted = {_host(t) for t in targets}
    if wanted & LOOPBACK:
        wanted |= LOOPBACK
    return any(c.host.lower().strip("[]") in wanted for c in connections)


def min_duration_ms(
    nodeid: str, file: str, index: Sequence[IndexEntry], config: Config
) -> float | None:
    """The index file's min_duration_ms, else execution.min_duration_ms; None when unset."""
    path = file or nodeid.split("::", 1)[0]
    for entry in index:
        if entry.min_duration_ms is not None and PurePosixPath(entry.path) == PurePosixPath(path):
            return entry.min_duration_ms
    return config.execution.min_duration_ms


def _host(target: str) -> str:
    if target.startswith("["):
        return target[1:].split("]", 1)[0].lower()
    host = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
    return host.lower()


def _ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # pytest puts the exception last ("E   ModuleNotFoundError: ..."): prefer it.
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[-1][1:].strip() if errors else (lines[-1] if lines else ""))[:300]
