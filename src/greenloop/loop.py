"""The loop: deploy -> probe -> gate -> execute -> verify -> triage -> report -> file -> remediate.

`run` goes round until green or out of budget; `run_iteration` is one pass and
reads as the flat list of stage calls. Each stage lives in its own module, takes
records and returns records; what a stage asks for instead of doing it (wait for
health, re-gate, roll back, flag issues as needing a person) the loop carries out
through `carry.Carrier`, and every record of the run is written through one
`recorder.Recorder`. This file only orders the stages and carries their records along.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from greenloop import interrupt
from greenloop.carry import Carrier
from greenloop.config import Config, PhaseConfig, SelectConfig
from greenloop.deploy import deploy_if_due
from greenloop.execute import Reporter, Selection, blocked_phase, run_phase, select_tests
from greenloop.execute.runners import runner_for
from greenloop.execute.runners.base import cut_short
from greenloop.execute.runners.shared import SharedSession
from greenloop.execute.selection import risk_history, without_files
from greenloop.gate import (
    check_gate,
    describe_gate,
    phase_blocker,
    should_expand,
)
from greenloop.recorder import Recorder
from greenloop.records import (
    Action,
    DeployResult,
    ExitCode,
    FlagNeedsPerson,
    GateResult,
    IndexEntry,
    IssueRef,
    IterationResult,
    PhaseResult,
    PhaseStatus,
    RunResult,
    Verdict,
    WaitForHealth,
    utcnow,
)
from greenloop.redact import Redactor
from greenloop.remediate import remediate
from greenloop.report import ReportContext, RunFacts, run_facts, run_trend, write_reports
from greenloop.store import Store
from greenloop.trackers.filing import file_issues, mark_needs_person
from greenloop.triage import TriageResult, triage
from greenloop.verdict import is_stuck, iteration_verdict, run_verdict
from greenloop.verify import check_authenticity, strong, weak

log = logging.getLogger(__name__)

DEFAULT_PHASE = PhaseConfig(name="all", select=SelectConfig())


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked for."""

    focus: str | None = None
    out_dir: Path = Path("greenloop-out")
    json_path: Path | None = None
    until_green: bool = False
    max_iterations: int | None = None
    max_time_s: float | None = None
    allow_remediation: bool = False
    approve: bool = False
    force_deploy: bool = False
    resume: bool = False
    workers: int | None = None
    output_format: str = "text"
    command_line: str = ""
    # When the command started (its process, from the kernel): the run's reported start,
    # so its duration includes start-up and the early gate check. None: when run() starts.
    started_at: datetime | None = None


@dataclass
class LoopState:
    """What one run accumulates; turned into a RunResult at every report."""

    run_id: str
    started_at: datetime
    recorder: Recorder  # every record of this run goes through it
    iterations: list[IterationResult] = field(default_factory=list)
    selections: dict[str, Selection] = field(default_factory=dict)
    triaged: list[TriageResult] = field(default_factory=list)
    revision: str | None = None
    interrupted: bool = False
    resumed: dict[str, PhaseResult] = field(default_factory=dict)  # phases kept by --resume
    resumed_from: str | None = None
    error: str = ""  # what stopped the run early (see finish_after_error)
    error_code: ExitCode | None = None
    facts: RunFacts | None = None  # for the reports, gathered once per run


@dataclass(frozen=True)
class Loop:
    """Everything the stages share during one run."""

    config: Config
    options: RunOptions
    store: Store
    index: tuple[IndexEntry, ...]
    reporter: Reporter
    say: Callable[[str], None]
    # Applied to test output as soon as it is read, so no later stage, the store included,
    # ever holds a secret a test printed.
    redactor: Redactor = field(default_factory=Redactor)


# --------------------------------------------------------------------------- the run


def run(loop: Loop) -> RunResult:
    """Iterate until green, out of budget, stuck, or interrupted; always leave a report."""
    options, config = loop.options, loop.config
    for dead in loop.store.runs.mark_dead_runs():
        loop.say(f"run {dead} was killed without finishing; marked crashed")
    started = options.started_at if options.started_at is not None else utcnow()
    run_id = new_run_id(started)  # its time is the run's start, as in the worklog's name
    state = LoopState(run_id=run_id, started_at=started, recorder=Recorder(loop.store, run_id))
    first = resume_from(loop, state) if options.resume else 1
    state.recorder.started(
        environment=config.environment.name,
        focus=options.focus or "all",
        command_line=options.command_line,
        config_path=str(config.source.resolve()),
    )
    state.facts = run_facts(loop.store, run_id, config.base_dir)
    max_iterations = options.max_iterations or (
        config.loop.max_iterations if options.until_green else 1
    )
    deadline = time.monotonic() + (options.max_time_s or config.loop.max_time_s)
    try:
        with interrupt.handling_signals():
            for number in range(first, first + max_iterations):
                iteration = run_iteration(loop, state, number)
                state.iterations.append(iteration)
                state.recorder.iteration(iteration)
                if iteration.interrupted:
                    break
                round_ = should_go_round(loop, state, deadline)
                if round_.why:
                    loop.say(round_.why)
                if round_.flag is not None:
                    flag_needs_person(loop, state, round_.flag)
                if not round_.again:
                    break
                # The reports so far, before waiting and going round: a run killed outright
                # (SIGKILL) later still leaves them. The last iteration's are written below.
                report(loop, state)
                wait = min(config.gate.wait_timeout_s, _left(deadline))
                Carrier(config, loop.store, None).wait_for_health(
                    WaitForHealth(time.monotonic() + wait),
                    on_progress=lambda attempt, gate, delay: _waiting(loop, attempt, gate, delay),
                )
    except interrupt.Interrupted:
        loop.say("stopped by a second signal: writing the partial worklog")
    except (Exception, KeyboardInterrupt) as exc:
        # Whatever fails after the start, the run still leaves its worklog, its JSON and a
        # finished store row; then the error goes on to the CLI (exit 2, or 70 for a bug).
        finish_after_error(loop, state, exc)
        raise
    state.interrupted = state.interrupted or interrupt.requested()
    if state.interrupted:
        loop.say(f"run {state.run_id} interrupted; continue it with `greenloop run --resume`")
    result = report(loop, state)
    state.recorder.finished(result)
    return result


def finish_after_error(loop: Loop, state: LoopState, exc: BaseException) -> RunResult | None:
    """Write the partial reports and close the store row of a run an exception stopped.

    Best effort by design: a failure here is logged and must not hide the original error.
    """
    code = getattr(exc, "exit_code", None)
    state.error = loop.redactor.redact(_one_line(exc))
    state.error_code = ExitCode.USAGE if code == ExitCode.USAGE else ExitCode.INTERNAL
    if isinstance(exc, KeyboardInterrupt):
        state.interrupted, state.error, state.error_code = True, "", None
    result = _result(loop, state)
    try:
        result = report(loop, state)
    except Exception:
        log.exception("could not write the reports of run %s after an error", state.run_id)
    try:
        state.recorder.finished(result, status="interrupted" if state.interrupted else "crashed")
    except Exception:
        log.exception("could not close run %s in the store after an error", state.run_id)
    where = f"; partial worklog: {result.worklog}" if result.worklog else ""
    loop.say(f"run {state.run_id} stopped by an error{where}")
    return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class Round:
    """After an iteration: go round again or stop; what to say, and what to ask for."""

    again: bool
    why: str = ""  # said to the user when stopping for a reason
    flag: FlagNeedsPerson | None = None


def should_go_round(loop: Loop, state: LoopState, deadline: float) -> Round:
    """Another iteration, or stop (green, stuck, or out of budget)? Decides only."""
    options, last = loop.options, state.iterations[-1]
    if not options.until_green or last.verdict is Verdict.GREEN:
        return Round(again=False)
    if is_stuck(state.iterations):
        return Round(
            again=False,
            why="two iterations ended with the same failures and nothing left to try",
            flag=FlagNeedsPerson(last.clusters),
        )
    max_iterations = options.max_iterations or loop.config.loop.max_iterations
    if len(state.iterations) >= max_iterations or time.monotonic() >= deadline:
        return Round(again=False, why="out of budget: stopping with the last verdict")
    return Round(again=True)


def flag_needs_person(loop: Loop, state: LoopState, request: FlagNeedsPerson) -> None:
    """The loop is stuck: flag these problems' issues and say so on them (trackers/)."""
    mark_needs_person(
        request.clusters,
        config=loop.config,
        store=loop.store,
        out_dir=loop.options.out_dir,
        run_id=state.run_id,
    )


def resume_from(loop: Loop, state: LoopState) -> int:
    """Take over the phases the last interrupted or crashed run completed; its iteration."""
    previous = loop.store.runs.latest_resumable(str(loop.config.source.resolve()))
    if previous is None or not previous.progress:
        loop.say("nothing to resume: starting a fresh run")
        return 1
    progress = previous.progress
    state.resumed = {p.name: p for p in progress.phases}
    state.resumed_from = previous.id
    loop.store.runs.mark_resumed(previous.id, by=state.run_id)
    names = ", ".join(state.resumed) or "none"
    loop.say(f"resuming run {previous.id}: completed phases kept ({names})")
    return progress.iteration


def run_iteration(loop: Loop, state: LoopState, number: int) -> IterationResult:
    """One pass round the loop: the stages in order, their requests carried out."""
    config, store, run_id, record = loop.config, loop.store, state.run_id, state.recorder
    carrier = Carrier(config, store, run_id, number, recorder=record)
    started, clock = utcnow(), time.monotonic()
    force = loop.options.force_deploy and number == 1
    deploy = carrier.deployed(deploy_if_due(config, force=force))
    record.deploy(deploy)
    state.revision = deploy.revision_after or state.revision
    if not deploy.ok:
        return IterationResult(
            number=number,
            verdict=Verdict.BLOCKED,
            duration_s=time.monotonic() - clock,
            started_at=started,
            deploy=deploy,
        )
    # Selecting reads the index, the tests folder and the store's history, none of which
    # the gate changes: done first, while the first check's probes are still out.
    selected = select_phases(loop, state)
    gate = check_gate(config, store, run_id=run_id, iteration=number)
    loop.say(describe_gate(gate))
    phases = execute_phases(loop, state, gate, number, selected)
    evidence = check_authenticity(
        phases, config=config, index=loop.index, history=store.results.pass_durations()
    )
    findings, warnings = strong(evidence), weak(evidence)
    triaged = triage(
        [t for p in phases for t in p.tests],
        gate=gate,
        index=loop.index,
        config=config,
        store=store,
        revision=state.revision,
        previous_revision=_previous_revision(state, deploy),
    )
    state.triaged.append(triaged)
    verdict = iteration_verdict(phases, findings)
    record.triage(number, triaged, findings)
    issues: list[IssueRef] = []
    actions: list[Action] = []
    if interrupt.requested():
        # A partial iteration proves nothing about what it did not run: file nothing,
        # change nothing; the next run (or --resume) carries on.
        state.interrupted = True
    else:
        issues = file_issues(
            triaged.clusters,
            config=config,
            store=store,
            run_id=run_id,
            verdict=verdict,
            out_dir=loop.options.out_dir,
            command_line=loop.options.command_line,
            revision=state.revision,
            index=loop.index,
            environment=config.environment.name,
            tests=[t for p in phases for t in p.tests],
        )
        actions = remediate(
            triaged.clusters,
            verdict=verdict,
            config=config,
            store=store,
            run_id=run_id,
            iteration=number,
            allow=loop.options.allow_remediation,
            approve=loop.options.approve,
            requests=carrier,
            recorder=record,
        )
    return IterationResult(
        number=number,
        verdict=verdict,
        duration_s=time.monotonic() - clock,
        started_at=started,
        gate=gate,
        deploy=deploy,
        phases=phases,
        authenticity=tuple(findings),
        authenticity_warnings=tuple(warnings),
        classifications=triaged.classifications,
        clusters=triaged.clusters,
        issues=tuple(issues),
        actions=tuple(actions),
        interrupted=state.interrupted,
    )


def execute_phases(
    loop: Loop,
    state: LoopState,
    gate: GateResult,
    number: int,
    selected: list[tuple[PhaseConfig, Selection]],
) -> tuple[PhaseResult, ...]:
    """Progressive phases (`select_phases`): each runs only when its components are healthy
    and the last passed."""
    config, results = loop.config, []
    plan = [(phase, selection, phase_blocker(phase, gate)) for phase, selection in selected]
    shared = SharedSession.plan(
        config,
        [(p, s) for p, s, blocker in plan if not blocker and p.name not in state.resumed],
        loop.store.results.durations(),
    )
    stop_reason = ""
    try:
        for phase, selection, blocker in plan:
            if interrupt.requested():
                break
            if phase.name in state.resumed:
                result = replace(
                    state.resumed.pop(phase.name),
                    note=f"kept from interrupted run {state.resumed_from}",
                )
            elif stop_reason:
                result = PhaseResult(
                    name=phase.name, status=PhaseStatus.SKIPPED, duration_s=0.0, note=stop_reason
                )
            elif blocker:
                note = f"not run: {blocker} is unhealthy"
                result = blocked_phase(config, phase, selection, blocker, note, store=loop.store)
                loop.reporter.on_phase_end(result)
            else:
                result = run_phase(
                    config,
                    phase,
                    selection,
                    store=loop.store,
                    reporter=loop.reporter,
                    shared=shared,
                )
                expand, why = should_expand(result, phase)
                if not expand:
                    stop_reason = why
            result = loop.redactor.redact_obj(result)
            results.append(result)
            # A phase that ended on its own is completed even if a stop request came right
            # after (it was printed as such); one the request cut short is re-run by --resume.
            state.recorder.phase(
                number,
                result,
                revision=state.revision,
                completed=None if cut_short(result) else results,
            )
    finally:
        if shared is not None:
            shared.close()
    return tuple(results)


def select_phases(loop: Loop, state: LoopState) -> list[tuple[PhaseConfig, Selection]]:
    """Every phase with its selection, in order (what runs; the gate decides whether)."""
    chosen = []
    ran_whole: set[str] = set()  # files an earlier phase runs without -m/-k filters
    risk = risk_history(loop.store) if loop.config.execution.order == "risk" else None
    for phase in loop.config.phases or [DEFAULT_PHASE]:
        phase = _with_cli_overrides(phase, loop.options)
        selection = select_tests(
            loop.config, phase, loop.index, focus=loop.options.focus, store=loop.store, risk=risk
        )
        selection = without_files(selection, ran_whole)
        if runner_for(phase.runner).runs_pytest and not selection.pytest_args:
            ran_whole.update(selection.files)
        state.selections[phase.name] = selection
        chosen.append((phase, selection))
    return chosen


def new_run_id(started: datetime | None = None) -> str:
    """Sortable and unique: the start time (default now, UTC) first, then randomness."""
    return (started or utcnow()).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


# --------------------------------------------------------------------------- edges


def report(loop: Loop, state: LoopState) -> RunResult:
    """Render the worklog and JSON report for what has happened so far."""
    result = _result(loop, state)
    context = ReportContext(
        config=loop.config,
        selections=dict(state.selections),
        index=loop.index,
        mrr_at_risk_usd=state.triaged[-1].mrr_at_risk_usd if state.triaged else 0.0,
        log_templates=state.triaged[-1].log_templates if state.triaged else (),
        secrets=loop.config.secrets,
        previous=state.facts.previous if state.facts else None,
        trend=run_trend(loop.store, state.run_id),
        commit=state.facts.commit if state.facts else None,
    )
    paths = write_reports(
        result,
        context,
        out_dir=loop.options.out_dir,
        json_path=loop.options.json_path,
        output_format=loop.options.output_format,
    )
    return replace(result, worklog=paths.worklog, json_report=paths.json_report)


def _result(loop: Loop, state: LoopState) -> RunResult:
    return RunResult(
        run_id=state.run_id,
        verdict=run_verdict(state.iterations),
        started_at=state.started_at,
        finished_at=utcnow(),
        environment=loop.config.environment.name,
        revision=state.revision,
        iterations=tuple(state.iterations),
        focus=loop.options.focus or "all",
        command_line=loop.options.command_line,
        interrupted=state.interrupted,
        error=state.error,
        error_code=state.error_code,
    )


def _waiting(loop: Loop, attempt: int, gate: GateResult, delay_s: float) -> None:
    """Progress while waiting for health between iterations; a stop request ends the wait."""
    if interrupt.requested():
        raise interrupt.Interrupted()
    down = gate.deepest_failure or ", ".join(gate.unhealthy()) or "the environment"
    loop.say(
        f"waiting for health: {down} still unhealthy (check {attempt}), next in {delay_s:.1f}s"
    )


def _previous_revision(state: LoopState, deploy: DeployResult) -> str | None:
    """The revision before this one, when it changed during this run."""
    if deploy.deployed and deploy.revision_before != deploy.revision_after:
        return deploy.revision_before
    return None


def _with_cli_overrides(phase: PhaseConfig, options: RunOptions) -> PhaseConfig:
    if options.workers is None:
        return phase
    return phase.model_copy(update={"workers": options.workers})


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
