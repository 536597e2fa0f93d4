"""Triage: turn test results into a short, ranked list of problems.

`triage()` is the loop's stage function; `triage_junit()` serves
`greenloop triage FILE.xml...`. Each non-passing test gets one
`Classification`; failures sharing a fingerprint form one `Cluster` with a
REASON, a root-cause chain and the money it puts at risk. Log sources
(`[[triage.logs]]`) add server log lines to the chains and Drain3 templates
to the worklog. docs/triage.md explains the rules and the numbers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from greenloop.config import Config
from greenloop.records import (
    Category,
    Classification,
    Cluster,
    GateResult,
    IndexEntry,
    IterationResult,
    Outcome,
    PhaseResult,
    PhaseStatus,
    ProbeResult,
    RunResult,
    TestResult,
    Verdict,
    utcnow,
)
from greenloop.redact import redactor_for
from greenloop.store import Store, aware
from greenloop.triage.classify import Decision, needs_triage
from greenloop.triage.cluster import build_clusters
from greenloop.triage.evidence import FailureEvidence, gather_evidence, index_components
from greenloop.triage.flaky import ProbeTimeline, histories_facts, shows_flips
from greenloop.triage.impact import test_file, total_impact_usd
from greenloop.triage.labels import Label, labels_from_rows, team_rules
from greenloop.triage.logs import LogRecord, read_logs
from greenloop.triage.logs.base import normalize_path
from greenloop.triage.logs.templates import LogTemplate, mine_templates
from greenloop.triage.parallel import classify_batch
from greenloop.triage.rootcause import ChangeFacts
from greenloop.triage.rules import BUILTIN_RULES, Rule, user_rules

__all__ = ["TriageResult", "triage", "triage_junit", "triage_report"]

# Probe rows stored up to this long after a test ended still describe its moment.
PROBE_SLACK_S = 5.0


@dataclass(frozen=True, slots=True)
class TriageResult:
    """What triage hands to report, file and remediate."""

    classifications: tuple[Classification, ...] = ()
    clusters: tuple[Cluster, ...] = ()  # ranked: money at risk, then size
    mrr_at_risk_usd: float = 0.0
    log_templates: tuple[LogTemplate, ...] = ()  # top Drain3 templates of the window's logs
    log_errors: int = 0  # error lines in the log window around the failures
    log_malformed: int = 0  # log lines that could not be parsed (skipped)
    warnings: tuple[str, ...] = ()  # e.g. a log source that failed
    tests: tuple[TestResult, ...] = ()

    @property
    def failing(self) -> bool:
        return any(c.category is not Category.SKIPPED_ENV for c in self.clusters)


def rules_for(config: Config | None, labels: Sequence[Label] = ()) -> tuple[Rule, ...]:
    """User rules first, then the team's labels (nearest labelled failure), then the
    built-in table."""
    team = team_rules(labels)
    if config is None or not config.triage.rules:
        return team + BUILTIN_RULES
    return user_rules(config.triage.rules, str(config.source)) + team + BUILTIN_RULES


def triage(
    tests: Sequence[TestResult],
    *,
    gate: GateResult | None,
    index: Sequence[IndexEntry] = (),
    config: Config | None = None,
    store: Store | None = None,
    revision: str | None = None,
    previous_revision: str | None = None,
    logs: Sequence[LogRecord] | None = None,
    workers: int | None = None,
    labels: Sequence[Label] | None = None,
) -> TriageResult:
    """Classify every non-passing test, cluster the failures, explain and price each cluster.

    `workers` caps the processes that classify a large batch (default: one per CPU; 1 keeps
    everything in this process); see parallel.py. The result does not depend on it.
    """
    if labels is None:
        labels = labels_from_rows(store.triage.labels()) if store else ()
    rules = rules_for(config, labels)
    tests_dir = Path(config.execution.tests_dir).name if config else "tests"
    tests_dirs = tuple(dict.fromkeys((tests_dir, "tests", "test")))
    window = config.triage.flaky_window if config else 20
    todo = [t for t in tests if needs_triage(t.outcome)]
    warnings: list[str] = []
    malformed = 0
    if logs is None and config is not None and config.triage.logs and todo:
        start, end = _log_window(todo, config.triage.log_window_s)
        logs = []
        for batch in read_logs(
            config.triage.logs, start, end, base_dir=config.base_dir, file=str(config.source)
        ):
            logs.extend(batch.records)
            malformed += batch.malformed
            if batch.error:
                warnings.append(f"log source {batch.source}: {batch.error}")
    # Secrets leave log lines here, before evidence, root causes or log templates (drain3
    # would otherwise mask a token's digits first and keep the rest) ever see them.
    redactor = redactor_for(config)
    records = [redactor.redact_obj(record) for record in logs or ()]
    warnings = [redactor.redact(w) for w in warnings]
    by_request = _errors_by_request(records)
    rejections = _rejections_by_request(records)
    timed = _TimedRejections(records)

    components_by_file: dict[str, tuple[str, ...]] = {}  # the index, looked up once per file
    # The store is read once per kind for every failure: histories, then probes. Flips
    # count on this run's known revision in its environment only; a test that timed out
    # or never started now is no flip, whatever its past (flaky.py).
    failing_ids = [t.nodeid for t in todo if shows_flips(t.outcome)]
    environment = config.environment.name if config else None
    history = (
        histories_facts(store, failing_ids, window, revision=revision, environment=environment)
        if store and failing_ids and revision is not None
        else {}
    )
    moments = [m for t in todo if (m := _moment(t)) is not None]
    probes = ProbeTimeline.read(store, moments) if store else None
    evidences: list[FailureEvidence] = []
    for test in todo:
        file = test_file(test.nodeid)
        if file not in components_by_file:
            components_by_file[file] = index_components(test.nodeid, index)
        facts = history.get(test.nodeid)
        request_keys = test.request_keys if by_request or rejections else ()
        evidence = gather_evidence(
            test,
            gate=gate,
            probe_history=_probes_during(probes, test) if probes else (),
            index=index,
            tests_dirs=tests_dirs,
            flips=facts.flips if facts else 0,
            history_runs=facts.runs if facts else 0,
            env_correlated=bool(facts and facts.verdict == "environment"),
            revision=revision,
            previous_revision=previous_revision,
            server_log="\n".join(by_request[k] for k in request_keys if k in by_request),
            test_components=components_by_file[file],
            server_records=(
                matched := tuple(
                    dict.fromkeys(r for k in request_keys for r in rejections.get(k, ()))
                )
                if request_keys
                else ()
            ),
            server_match="matched by request id" if matched else "",
        )
        if not matched and timed and test.outcome.is_failure:
            evidence = timed.match(evidence, test)
        evidences.append(evidence)
    # Every store read and log match is done: classifying is pure, per record.
    decisions, keys = classify_batch(evidences, rules, workers)

    errors = [r for r in records if r.is_error]
    templates = mine_templates(errors or records, top=10) if records else ()

    if previous_revision is None and store is not None and revision:
        # No deploy in this run: the revision the failing tests last passed on, if any.
        previous_revision = _last_green_revision(store, decisions, revision, environment)
    change = ChangeFacts(
        revision,
        previous_revision,
        _previous_green(store, decisions, previous_revision, environment),
    )
    clusters = build_clusters(
        decisions, index=index, gate=gate, logs=records, change=change, keys=keys
    )
    return TriageResult(
        classifications=tuple(d.classification for d in decisions),
        clusters=clusters,
        mrr_at_risk_usd=total_impact_usd((c.tests for c in clusters), index),
        log_templates=templates,
        log_errors=len(errors),
        log_malformed=malformed,
        warnings=tuple(warnings),
        tests=tuple(tests),
    )


def _errors_by_request(records: Sequence[LogRecord]) -> dict[str, str]:
    """Error lines (and their tracebacks) per request id."""
    out: dict[str, str] = {}
    for r in records:
        if r.is_error:
            for key in r.keys:
                out[key] = f"{out.get(key, '')}{r.message}\n{r.traceback}".strip()
    return out


def _rejections_by_request(records: Sequence[LogRecord]) -> dict[str, tuple[LogRecord, ...]]:
    """Per request id, the lines where the service failed or refused it (4xx/5xx, errors)."""
    out: dict[str, list[LogRecord]] = {}
    for r in records:
        if r.is_rejection:
            for key in r.keys:
                out.setdefault(key, []).append(r)
    return {k: tuple(v) for k, v in out.items()}


class _TimedRejections:
    """4xx/5xx log lines by time, for failures no request id ties to the log (a request
    made by a shared fixture, a client that sends no id)."""

    SLACK = timedelta(milliseconds=100)  # log and test clocks round differently

    def __init__(self, records: Sequence[LogRecord]) -> None:
        timed = [
            (r.ts, r)
            for r in records
            if r.ts is not None and r.status is not None and r.status >= 400
        ]
        timed.sort(key=lambda pair: pair[0])
        self.records = [r for _, r in timed]
        self.times = [ts for ts, _ in timed]

    def __bool__(self) -> bool:
        return bool(self.records)

    def match(self, ev: FailureEvidence, test: TestResult) -> FailureEvidence:
        """The evidence with the service's lines for the status the test reports receiving,
        logged while the test ran; unchanged unless they all name one error."""
        start = aware(test.started_at)
        statuses = [s for s in ev.statuses if s >= 400] if start is not None else []
        if not statuses or start is None:
            return ev
        lo = bisect_left(self.times, start - self.SLACK)
        end = start + timedelta(seconds=test.duration_s) + self.SLACK
        hi = bisect_right(self.times, end)
        found = [r for r in self.records[lo:hi] if r.status in statuses]
        # The requests the test sent narrow it further: a line for another endpoint, logged
        # at the same moment by a concurrent test, is not this test's.
        asked = {(q.method, normalize_path(q.path)) for q in test.sent_requests}
        if asked:
            found = [r for r in found if not r.path or (r.method, normalize_path(r.path)) in asked]
            how = "matched by time, method, path and status"
        else:
            how = "matched by time and status"
        if not found or len({(r.status, r.error) for r in found}) != 1:
            return ev  # nothing, or several different errors: no single line to cite
        return replace(ev, server_records=tuple(found), server_match=how)


def _moment(test: TestResult) -> tuple[datetime, datetime] | None:
    """While the test ran, plus PROBE_SLACK_S after (None when its start is unknown)."""
    start = aware(test.started_at)
    if start is None:
        return None
    return start, start + timedelta(seconds=test.duration_s + PROBE_SLACK_S)


def _probes_during(probes: ProbeTimeline, test: TestResult) -> list[ProbeResult]:
    """Probe results stored while the test ran (the gate checked only before the phase)."""
    moment = _moment(test)
    if moment is None:
        return []
    return [
        ProbeResult(
            r.component,
            r.name,
            r.kind,
            r.target,
            r.ok,
            r.latency_ms,
            r.detail,
            aware(r.checked_at) or utcnow(),
        )
        for r in probes.between(*moment)
    ]


def _log_window(tests: Sequence[TestResult], window_s: float) -> tuple[datetime, datetime]:
    """From window_s before the first failure to window_s after the last one."""
    starts = [s for t in tests if (s := aware(t.started_at)) is not None]
    if not starts:
        now = utcnow()
        return now - timedelta(seconds=window_s), now
    ends = [
        s + timedelta(seconds=t.duration_s) for t in tests if (s := aware(t.started_at)) is not None
    ]
    margin = timedelta(seconds=window_s)
    return min(starts) - margin, max(ends) + margin


def _previous_green(
    store: Store | None,
    decisions: Sequence[Decision],
    previous_revision: str | None,
    environment: str | None = None,
) -> bool | None:
    """Did the failing tests pass on the previous revision, in this environment? None when
    nobody can say."""
    if store is None or not previous_revision:
        return None
    failing = [d.classification.nodeid for d in decisions if d.evidence.outcome.is_failure]
    histories = store.triage.test_histories(failing[:50], limit=10, environment=environment)
    seen = False
    for nodeid in failing[:50]:
        rows = [r for r in histories[nodeid] if r.revision == previous_revision]
        if rows:
            seen = True
            if rows[0].outcome != Outcome.PASSED.value:
                return False
    return True if seen else None


def _last_green_revision(
    store: Store, decisions: Sequence[Decision], revision: str, environment: str | None = None
) -> str | None:
    """The other known revision every failing test last ran on in this environment, when
    they all passed there."""
    failing = [d.classification.nodeid for d in decisions if d.evidence.outcome.is_failure]
    histories = store.triage.test_histories(failing[:50], limit=10, environment=environment)
    found: set[str] = set()
    for nodeid in failing[:50]:
        rows = [r for r in histories[nodeid] if r.revision != revision]
        if not rows or rows[0].outcome != Outcome.PASSED.value or rows[0].revision is None:
            return None
        found.add(rows[0].revision)
    return found.pop() if len(found) == 1 else None


# --------------------------------------------------------------------------- JUnit


def triage_junit(paths: Sequence[str | Path], config: Config | None = None) -> TriageResult:
    """`greenloop triage FILE.xml...`: classify and cluster JUnit failures; runs nothing."""
    from greenloop.index import load_index
    from greenloop.junit import parse_junit

    tests: list[TestResult] = []
    for path in paths:
        tests.extend(parse_junit(path, phase="junit"))
    index = load_index(config) if config else ()
    return triage(tests, gate=None, index=index, config=config, labels=_stored_labels(config))


def _stored_labels(config: Config | None) -> tuple[Label, ...]:
    """The team's labels from the config's store, when it has one (`greenloop label`);
    nothing when no store was ever created beside the config."""
    import os

    from greenloop.store import STORE_URL_ENV, store_url

    if config is None:
        return ()
    configured = os.environ.get(STORE_URL_ENV) or config.store.url
    if not configured and not (config.base_dir / ".greenloop" / "store.db").exists():
        return ()
    store = Store.open(store_url(config.store.url, config.base_dir))
    try:
        return labels_from_rows(store.triage.labels())
    finally:
        store.close()


def triage_report(
    result: TriageResult, files: Sequence[str | Path], config: Config | None = None
) -> dict[str, Any]:
    """The contract's JSON object for `greenloop triage --json`: tests and clusters filled."""
    from greenloop.report.json_report import build_json_report

    now = utcnow()
    verdict = Verdict.FAILING if result.failing else Verdict.GREEN
    phase = PhaseResult(
        name="junit",
        status=PhaseStatus.FAILED if result.failing else PhaseStatus.PASSED,
        duration_s=sum(t.duration_s for t in result.tests),
        tests=result.tests,
        command=" ".join(str(f) for f in files),
    )
    iteration = IterationResult(
        number=1,
        verdict=verdict,
        duration_s=0.0,
        started_at=now,
        phases=(phase,),
        classifications=result.classifications,
        clusters=result.clusters,
    )
    run = RunResult(
        run_id=f"triage-{now:%Y%m%d-%H%M%S}",
        verdict=verdict,
        started_at=now,
        finished_at=now,
        environment=config.environment.name if config else "junit",
        revision=None,
        iterations=(iteration,),
        command_line="greenloop triage " + " ".join(str(f) for f in files),
    )
    return build_json_report(run, mrr_at_risk_usd=result.mrr_at_risk_usd, triage_only=True)
