"""Typed, immutable records that the loop's stages hand to each other.

Every stage takes records and returns records; no stage passes raw dicts.
The JSON report (CONTRACT.md) and the store are both built from these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (every timestamp we keep is)."""
    return datetime.now(UTC)


class ExitCode(enum.IntEnum):
    """Process exit codes of run, demo, probe and triage (CONTRACT.md)."""

    GREEN = 0
    FAILING = 1
    USAGE = 2
    BLOCKED = 3
    NOT_REAL = 4
    INTERNAL = 70
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: the run stopped before it could conclude


class Verdict(enum.StrEnum):
    """What one iteration or run concluded, worst first when combined."""

    GREEN = "green"
    FAILING = "failing"
    BLOCKED = "blocked"
    NOT_REAL = "not_real"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Verdict.GREEN: ExitCode.GREEN,
            Verdict.FAILING: ExitCode.FAILING,
            Verdict.BLOCKED: ExitCode.BLOCKED,
            Verdict.NOT_REAL: ExitCode.NOT_REAL,
        }[self]


class Outcome(enum.StrEnum):
    """How one test ended."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    TIMEOUT = "timeout"
    CRASHED = "crashed"

    @property
    def is_failure(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASHED)


class Category(enum.StrEnum):
    """Why a test did not pass (triage's answer)."""

    INFRASTRUCTURE = "infrastructure"
    PRODUCT = "product"
    TEST = "test"
    CONFIGURATION = "configuration"
    FLAKY = "flaky"
    BLOCKED = "blocked"
    SKIPPED_ENV = "skipped_env"
    UNKNOWN = "unknown"


class FailureMode(enum.StrEnum):
    """How a component failed, as its probes saw it: what tells look-alike faults apart.

    A database that is down (`refused`), hung (`timeout`) or rejecting the password
    (`credentials`) all block the same tests; the mode says which one it is.
    """

    REFUSED = "refused"  # nothing listens: the process is down
    TIMEOUT = "timeout"  # the connection opens (or not) but nothing answers: hung
    CREDENTIALS = "credentials"  # up, but the configured password or token is rejected
    CONNECTION_LIMIT = "connection_limit"  # up, but refuses new connections (too many clients)
    EXPIRED_CERTIFICATE = "expired_certificate"
    UNTRUSTED_CERTIFICATE = "untrusted_certificate"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    DNS = "dns"  # the host name does not resolve
    RESET = "reset"  # the peer closed the connection mid-way
    SLOW = "slow"  # answers, but slower than its conditions allow
    SERVER_ERROR = "server_error"  # answers with an error (HTTP 5xx, WebSocket 1011)
    UNHEALTHY = "unhealthy"  # fails a condition; nothing says more


class PhaseStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


class ActionStatus(enum.StrEnum):
    DONE = "done"
    DRY_RUN = "dry_run"
    REFUSED = "refused"
    FAILED = "failed"


class IssueAction(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    REOPENED = "reopened"
    CLOSED = "closed"
    QUEUED = "queued"


# --------------------------------------------------------------------------- probes


@dataclass(frozen=True, slots=True)
class DependencyLatency:
    """A dependency's answer time as a health body reported it (`"database":{"ok":true,
    "latency_ms":3004.9}`): its name there, the milliseconds, and those words of the body."""

    name: str
    latency_ms: float
    said: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's check of one target at one moment."""

    component: str
    name: str
    kind: str
    target: str
    ok: bool
    latency_ms: float | None
    detail: str
    checked_at: datetime = field(default_factory=utcnow)
    failed_conditions: tuple[str, ...] = ()
    attempts: int = 1
    mode: FailureMode | None = None  # how it failed; None when it passed
    # Slow or failed answers only: each dependency latency the health body reported.
    dependencies: tuple[DependencyLatency, ...] = ()


@dataclass(frozen=True, slots=True)
class ComponentState:
    """A component's health as the gate sees it, with the probes that decided it."""

    name: str
    healthy: bool
    depends_on: tuple[str, ...] = ()
    probes: tuple[ProbeResult, ...] = ()
    # True when the component itself is fine but something it depends on is not.
    degraded_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GateResult:
    """The health gate's verdict: which components are healthy, and the deepest failure."""

    healthy: bool
    components: tuple[ComponentState, ...]
    probes: tuple[ProbeResult, ...]
    deepest_failure: str | None = None
    duration_s: float = 0.0

    def component(self, name: str) -> ComponentState | None:
        return next((c for c in self.components if c.name == name), None)

    def unhealthy(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components if not c.healthy)


# --------------------------------------------------------------------------- tests


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One file of the test index: its priority and the money it guards."""

    path: str
    priority: int = 3
    category: str = "general"
    mrr_at_risk_usd: float = 0.0
    components: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_duration_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Connection:
    """A network connection a test opened (recorded by the pytest plugin)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SharedFixture:
    """A module/class/session-scoped fixture whose set-up talked to the network.

    A test that asserts on such a fixture's result really ran against the
    target even when its own call sent nothing: the work was done once, in
    the fixture, and shared.
    """

    name: str
    scope: str
    connections: tuple[Connection, ...]
    setup_s: float


@dataclass(frozen=True, slots=True)
class SentRequest:
    """An HTTP request (or WebSocket handshake) a test sent, with the id headers it carried.

    `ids` are (header, value) pairs, header lower-cased: x-request-id, x-correlation-id,
    request-id, x-trace-id, traceparent. They tie the request to the service's log lines.
    """

    method: str
    path: str
    at: datetime | None = None
    ids: tuple[tuple[str, str], ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Every value a service may log for this request: each id, and for W3C trace
        context (`00-<trace id>-<span id>-01`) the trace id too."""
        out: list[str] = []
        for header, value in self.ids:
            out.append(value)
            if header == "traceparent":
                parts = value.split("-")
                if len(parts) == 4 and len(parts[1]) == 32:
                    out.append(parts[1])
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test's outcome with everything later stages judge it by."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    duration_s: float = 0.0
    phase: str = ""
    file: str = ""
    line: int | None = None
    markers: tuple[str, ...] = ()
    message: str = ""  # one-line failure or skip reason
    longrepr: str = ""  # trimmed traceback / failure representation
    stdout: str = ""
    stderr: str = ""
    log: str = ""
    skip_reason: str = ""
    when: str = "call"  # setup | call | teardown: where it ended
    connections: tuple[Connection, ...] = ()
    # Endpoints of TCP connections on this machine that closed while the test ran, seen
    # only when the test itself showed none (a client in C); not attributable: weak.
    ended_connections: tuple[Connection, ...] = ()
    mocks: tuple[str, ...] = ()  # network clients found patched during the test
    reruns: tuple[Outcome, ...] = ()  # outcomes of re-runs after a failure, in order
    request_id: str | None = None
    blocked_by: str | None = None  # component, when outcome is BLOCKED
    started_at: datetime | None = None
    warnings: tuple[str, ...] = ()
    shared_fixtures: tuple[SharedFixture, ...] = ()
    # pytest's xfail marker: "xfailed" (failed as expected) or "xpassed" (passed anyway, not
    # strict). Either way the outcome is PASSED: neither is a skip. xfail_reason is the
    # reason the marker gave ("" when it gave none), never a traceback.
    xfail: str = ""
    xfail_reason: str = ""

    sent_requests: tuple[SentRequest, ...] = ()  # what the test asked the service, in order

    @property
    def request_keys(self) -> tuple[str, ...]:
        """Every id this test's requests carried (its own request id first)."""
        keys = [self.request_id] if self.request_id else []
        keys += [k for r in self.sent_requests for k in r.keys]
        return tuple(dict.fromkeys(keys))

    @property
    def passed_on_rerun(self) -> bool:
        return self.outcome.is_failure and Outcome.PASSED in self.reruns

    @property
    def xfailed(self) -> bool:
        """It ran and failed, as its xfail marker said it would."""
        return self.xfail == "xfailed"


class Strength(enum.StrEnum):
    """How much an authenticity finding weighs (the ladder in docs/execution.md)."""

    STRONG = "strong"  # a reviewer would accept it: the verdict becomes not_real (exit 4)
    WEAK = "weak"  # worth a look, proves nothing alone: a warning, the verdict stands


@dataclass(frozen=True, slots=True)
class AuthenticityFinding:
    """Evidence that a test did not really run against the target."""

    nodeid: str
    # nothing_collected | collection_error | skipped_env | too_fast | no_connection | mocked
    # | unawaited_coroutine | no_duration
    check: str
    evidence: str
    strength: Strength = Strength.STRONG


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """One progressive phase (smoke, critical, ...) and the tests it ran."""

    name: str
    status: PhaseStatus
    duration_s: float
    tests: tuple[TestResult, ...] = ()
    command: str = ""
    blocked_by: str | None = None
    note: str = ""  # why it was skipped or blocked, in words
    collection_errors: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Tests per outcome: the one count every report shows (JSON `counts`, the worklog,
        the console table, JUnit). Each test counts once, under its own outcome (a timeout
        is `timeout`, never `error`), except `xfailed` (failed as its marker said) and
        `flaky` (failed, then passed on re-run). The values add up to len(tests)."""
        c = {
            "passed": 0,
            "failed": 0,
            "error": 0,
            "timeout": 0,
            "crashed": 0,
            "skipped": 0,
            "blocked": 0,
            "flaky": 0,
            "xfailed": 0,
        }
        for t in self.tests:
            if t.xfailed:
                c["xfailed"] += 1
            elif t.passed_on_rerun:
                c["flaky"] += 1
            else:
                c[t.outcome.value] += 1
        return c


# --------------------------------------------------------------------------- triage


@dataclass(frozen=True, slots=True)
class Classification:
    """Triage's category for one test, with the rule and evidence that decided it."""

    nodeid: str
    category: Category
    confidence: float
    rule: str
    evidence: str
    component: str | None = None


@dataclass(frozen=True, slots=True)
class Why:
    """One step of a five-whys chain; verified only when its evidence is shown."""

    why: str
    evidence: str
    verified: bool


@dataclass(frozen=True, slots=True)
class RootCause:
    summary: str
    component: str | None
    whys: tuple[Why, ...] = ()
    # For a blocked cluster: how the deepest failing component failed, and what kind of
    # problem that is (infrastructure or configuration); the cluster itself stays blocked.
    mode: FailureMode | None = None
    category: Category | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """Failures sharing one fingerprint: one real problem."""

    id: str
    fingerprint: str
    category: Category
    confidence: float
    tests: tuple[str, ...]
    title: str
    reason: str  # short skimmable name, e.g. SERVICE-UNAVAILABILITY
    root_cause: RootCause
    impact_usd: float = 0.0
    excerpt: str = ""  # a representative (redacted) error excerpt

    @property
    def count(self) -> int:
        return len(self.tests)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class IssueRef:
    """What the tracker did for one cluster."""

    key: str
    title: str
    action: IssueAction
    location: str
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    """A deploy or remediation step: done, dry-run, refused or failed."""

    name: str
    kind: str
    status: ActionStatus
    detail: str
    started_at: datetime = field(default_factory=utcnow)
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DeployResult:
    """What the deploy stage found and did."""

    revision_before: str | None
    revision_after: str | None
    deployed: bool
    ok: bool
    detail: str
    output: str = ""
    duration_s: float = 0.0


# --------------------------------------------------------------------------- requests
# What a stage asks the loop to do rather than doing it itself (loop.py carries them out
# through carry.py): a stage never calls another stage.


@dataclass(frozen=True, slots=True)
class WaitForHealth:
    """Wait until the gate passes, until `deadline` (a time.monotonic() value) at the latest."""

    deadline: float


@dataclass(frozen=True, slots=True)
class FlagNeedsPerson:
    """The loop is stuck on these problems: flag their issues and say so on them."""

    clusters: tuple[Cluster, ...]


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class IterationResult:
    """One pass round the loop."""

    number: int
    verdict: Verdict
    duration_s: float
    started_at: datetime
    gate: GateResult | None = None
    deploy: DeployResult | None = None
    phases: tuple[PhaseResult, ...] = ()
    authenticity: tuple[AuthenticityFinding, ...] = ()  # strong: they made it not_real
    authenticity_warnings: tuple[AuthenticityFinding, ...] = ()  # weak: shown, verdict stands
    classifications: tuple[Classification, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    issues: tuple[IssueRef, ...] = ()
    actions: tuple[Action, ...] = ()
    interrupted: bool = False

    @property
    def tests(self) -> tuple[TestResult, ...]:
        return tuple(t for p in self.phases for t in p.tests)


@dataclass(frozen=True, slots=True)
class RunResult:
    """A whole run: one or more iterations and where its outputs went."""

    run_id: str
    verdict: Verdict
    started_at: datetime
    finished_at: datetime
    environment: str
    revision: str | None
    iterations: tuple[IterationResult, ...]
    focus: str = "all"
    command_line: str = ""
    worklog: Path | None = None
    json_report: Path | None = None
    interrupted: bool = False
    # What stopped the run after it started (a user's mistake or a bug), in one line, and
    # the exit code that goes with it (2 or 70); empty when the run ended normally.
    error: str = ""
    error_code: ExitCode | None = None

    @property
    def exit_code(self) -> ExitCode:
        # An interrupted run did not run everything it selected: it cannot be green, and
        # what it did see is in the report; 130 is the shell's convention for Ctrl-C.
        if self.error_code is not None:
            return self.error_code
        return ExitCode.INTERRUPTED if self.interrupted else self.verdict.exit_code

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def last(self) -> IterationResult | None:
        return self.iterations[-1] if self.iterations else None
