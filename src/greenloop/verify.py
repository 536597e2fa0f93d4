"""Stage 4, verify: did each test really run against the target? (pure)

A green run means nothing if the tests never touched staging. These checks
read the records the execute stage produced and return evidence, in words,
for every test that did not really run:

- nothing_collected: a phase that ran collected no tests
- collection_error: a file or module could not be imported or collected
- skipped_env: skipped because the environment was "unavailable" (ENV_SKIP_PATTERNS)
- too_fast: passed faster than the index file's min_duration_ms, or
  execution.min_duration_ms, or a tenth of its historical duration
- no_connection: passed without talking to any target host
  (environment.base_url, environment.urls, execution.target_hosts)
- mocked: passed with a network client replaced by a mock
- unawaited_coroutine: a coroutine was created and never awaited, so its
  checks never ran

Blocked tests are not findings: the gate said why they did not run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from greenloop.config import Config
from greenloop.records import (
    AuthenticityFinding,
    Connection,
    IndexEntry,
    Outcome,
    PhaseResult,
    PhaseStatus,
    SharedFixture,
    TestResult,
)

# Skip reasons that mean "the environment was not there", so the test never ran.
ENV_SKIP_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bunavailable\b",
        r"\bnot\s+(available|reachable|running|up|responding|set|configured|deployed)\b",
        r"\bunreachable\b",
        r"\b(service|server|staging|environment|backend|api|host|database|db)\b.{0,30}"
        r"\b(down|offline|missing)\b",
        r"\bconnection\s+(refused|reset|error|failed)\b",
        r"\b(could\s+not|cannot|can't|unable\s+to)\s+(connect|reach|resolve)\b",
        r"\bno\s+(staging|environment|server|network|connection|base[_ ]url)\b",
        r"\boffline\b",
        r"\btimed?\s*out\s+(connecting|waiting for)\b",
        r"\b[A-Z_]*(URL|HOST|ENDPOINT)\b.{0,20}\b(not set|missing|unset|empty)\b",
    )
)
UNAWAITED = re.compile(r"coroutine .* was never awaited")
HISTORY_FRACTION = 0.1  # passing in under a tenth of the usual time is suspicious
HISTORY_MIN_S = 0.05  # ...when the usual time is long enough to mean something
LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def check_authenticity(
    phases: Sequence[PhaseResult],
    *,
    config: Config,
    index: Sequence[IndexEntry],
    durations: Mapping[str, float],
) -> list[AuthenticityFinding]:
    """Every piece of evidence that a test did not really run, in phase order."""
    targets = target_hosts(config)
    command_phases = {p.name for p in config.phases if p.runner == "command"}
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
        network = phase.name not in command_phases  # JUnit from a command has no socket record
        for test in phase.tests:
            findings += judge_test(
                test,
                targets=targets if network else (),
                check_network=network,
                min_ms=min_duration_ms(test.nodeid, test.file, index, config),
                usual_s=durations.get(test.nodeid),
            )
    ran_or_blocked = any(p.tests or p.status is PhaseStatus.BLOCKED for p in phases)
    if not ran_or_blocked and not any(f.check == "nothing_collected" for f in findings):
        notes = "; ".join(p.note for p in phases if p.note) or "no phase is configured"
        findings.append(
            AuthenticityFinding(
                nodeid="",
                check="nothing_collected",
                evidence=f"no phase selected or ran any test ({notes})",
            )
        )
    return findings


def judge_test(
    test: TestResult,
    *,
    targets: Sequence[str],
    check_network: bool,
    min_ms: float,
    usual_s: float | None,
) -> list[AuthenticityFinding]:
    """The findings about one test."""
    out: list[AuthenticityFinding] = []

    def found(check: str, evidence: str) -> None:
        out.append(AuthenticityFinding(nodeid=test.nodeid, check=check, evidence=evidence))

    if test.outcome is Outcome.BLOCKED:
        return out
    if test.outcome is Outcome.SKIPPED:
        reason = test.skip_reason or test.message
        if reason and env_skip(reason):
            found("skipped_env", f"skipped because the environment was missing: {reason!r}")
        return out
    for warning in test.warnings:
        if UNAWAITED.search(warning):
            found("unawaited_coroutine", f"{_first_line(warning)}: its checks never ran")
    if test.outcome is not Outcome.PASSED:
        return out
    # A test that asserts on a shared (module/session) fixture's result rests on the work that
    # fixture did against the target: its time and traffic count for the test.
    shared = [f for f in test.shared_fixtures if talked_to(f.connections, targets)]
    shared_s = sum(f.setup_s for f in shared)
    ms = (test.duration_s + shared_s) * 1000
    if ms < min_ms and (check_network or test.duration_s > 0):
        via = f" (with shared fixtures {_names(shared)})" if shared else ""
        found("too_fast", f"passed in {_ms(ms)}{via}; minimum for an E2E test is {min_ms:g} ms")
    elif (
        usual_s is not None
        and usual_s >= HISTORY_MIN_S
        and test.duration_s < usual_s * HISTORY_FRACTION
    ):
        found(
            "too_fast",
            f"passed in {_ms(ms)}; it usually takes {_ms(usual_s * 1000)} (past passing runs)",
        )
    if check_network:
        for mock in test.mocks:
            found("mocked", mock)
        if targets and not shared and not talked_to(test.connections, targets):
            seen = ", ".join(f"{c.host}:{c.port}" for c in test.connections) or "none"
            found(
                "no_connection",
                f"opened no connection to {', '.join(targets)}; connections: {seen}",
            )
    return out


def _names(fixtures: Sequence[SharedFixture]) -> str:
    return ", ".join(f"{f.name} ({f.scope})" for f in fixtures)


def env_skip(reason: str) -> bool:
    """Does a skip reason say the environment was not there?"""
    return any(p.search(reason) for p in ENV_SKIP_PATTERNS)


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


def talked_to(connections: Sequence[Connection], targets: Sequence[str]) -> bool:
    """Did any connection reach a target host? Hosts match; localhost matches loopback."""
    wanted = {_host(t) for t in targets}
    if wanted & LOOPBACK:
        wanted |= LOOPBACK
    return any(c.host.lower().strip("[]") in wanted for c in connections)


def min_duration_ms(nodeid: str, file: str, index: Sequence[IndexEntry], config: Config) -> float:
    """The index file's min_duration_ms, else execution.min_duration_ms."""
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
