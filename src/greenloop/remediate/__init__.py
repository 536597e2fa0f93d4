"""Remediation: run the runbooks' actions for the clusters triage found, within guardrails.

`remediate` is the stage the loop calls after triage and filing. Runbooks
(`remediation.runbooks`) are matched to clusters (`runbook.py`), each planned
action is ruled on (`guardrails.py`: dry-run, attempts, cooldown, approval),
run by its kind (one file per kind, registered in `kinds.py`), and recorded. After an
action succeeds the loop is asked to probe the gate again (`requests.regate()`):
better or worse goes into its detail, and when things got worse the loop is asked to
roll the environment back (`requests.roll_back()`, if a rollback command is
configured) and remediation stops for the rest of the run. It never calls the gate
or the deploy stage itself.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import typer

from greenloop.config import ActionConfig, Config
from greenloop.recorder import Recorder
from greenloop.records import (
    Action,
    ActionStatus,
    Cluster,
    DeployResult,
    GateResult,
    Verdict,
    utcnow,
)
from greenloop.redact import redactor_for
from greenloop.remediate.base import ActionContext, ActionKind, ActionOptions
from greenloop.remediate.guardrails import (
    ROLLBACK_NAME,
    STOP_KIND,
    STOP_NAME,
    Attempt,
    Change,
    Decision,
    Policy,
    judge_change,
    rule,
)
from greenloop.remediate.kinds import ACTIONS, validate_actions
from greenloop.remediate.runbook import Step, plan
from greenloop.store import Store, aware

__all__ = ["ACTIONS", "RemediationRequests", "remediate", "validate_actions"]


class RemediationRequests(Protocol):
    """What remediation asks the loop for while it runs (carry.Carrier carries it out)."""

    def regate(self) -> GateResult:
        """Probe every component once; the gate's verdict."""
        ...

    def roll_back(self) -> DeployResult:
        """Roll the environment back, wait for health; how it went."""
        ...


# --------------------------------------------------------------------------- the stage


def remediate(
    clusters: Sequence[Cluster],
    *,
    verdict: Verdict,
    config: Config,
    store: Store,
    run_id: str,
    iteration: int,
    allow: bool,
    requests: RemediationRequests,
    approve: bool = False,
    recorder: Recorder | None = None,
) -> list[Action]:
    """Plan, rule on, run and record the runbooks' actions for these clusters.

    Every step becomes an Action (done, dry_run, refused or failed), recorded
    with its cluster's fingerprint and returned for the worklog and JSON report.
    """
    runbooks = config.remediation.runbooks
    if not runbooks or not clusters:
        return []
    validate_actions(config)  # normally done at load; a bad action must never half-run
    steps = plan(clusters, runbooks, verdict, scope=_scope).steps
    if not steps:
        return []
    policy = Policy(
        allow=allow or config.remediation.enabled,
        approval=config.remediation.approval,
        approve=approve,
        interactive=sys.stdin is not None and sys.stdin.isatty(),
    )
    record = recorder or Recorder(store, run_id)
    shell = _Shell(config, store, run_id, iteration, requests, record)
    actions: list[Action] = []
    failed_runbooks: dict[int, str] = {}
    for step in steps:
        action = shell.take(step, policy, failed_runbooks.get(step.runbook_index))
        actions.append(action)
        record.actions(iteration, [action], step.fingerprint)
        if action.status is ActionStatus.FAILED:
            failed_runbooks.setdefault(step.runbook_index, step.name)
        if shell.worse is not None:
            actions.extend(shell.stop(step))
            break
    return actions


def _scope(action: ActionConfig, cluster: Cluster) -> str:
    kind = ACTIONS.get(action.kind)
    if kind is None:  # validate_actions refuses this at load; plan nothing for it
        return ""
    return kind.scope(kind.Options.model_validate(action.options()), cluster)


class _Shell:
    """The I/O around the pure rules: store history, asking, running, re-probing, recording."""

    def __init__(
        self,
        config: Config,
        store: Store,
        run_id: str,
        iteration: int,
        requests: RemediationRequests,
        record: Recorder,
    ) -> None:
        self.config, self.store, self.run_id, self.iteration = config, store, run_id, iteration
        self.requests, self.record = requests, record
        self.baseline: GateResult | None = None
        self.worse: str | None = None

    def take(self, step: Step, policy: Policy, earlier_failure: str | None) -> Action:
        """One step as an Action: refused, dry-run, or run and judged against the gate."""
        started, clock = utcnow(), time.monotonic()
        kind = ACTIONS.get(step.action.kind)
        if kind is None:  # validate_actions refuses this at load time
            status, detail = ActionStatus.REFUSED, f"unknown action kind {step.action.kind!r}"
            secrets: tuple[str, ...] = ()
        else:
            options = kind.Options.model_validate(step.action.options())
            secrets = kind.secrets(options)
            status, detail = self._take(step, kind, options, policy, earlier_failure)
        detail = redactor_for(self.config, secrets).redact(f"{detail} [{step.for_clusters()}]")
        return Action(
            step.name, step.action.kind, status, detail, started, time.monotonic() - clock
        )

    def _take(
        self,
        step: Step,
        kind: ActionKind,
        options: ActionOptions,
        policy: Policy,
        earlier_failure: str | None,
    ) -> tuple[ActionStatus, str]:
        if step.refusal:
            return ActionStatus.REFUSED, step.refusal
        missing = kind.unavailable(options, step.scope)
        if missing:
            return ActionStatus.REFUSED, missing
        context = ActionContext(
            config=self.config,
            store=self.store,
            run_id=self.run_id,
            timeout_s=step.action.timeout_s,
            timeout_explicit="timeout_s" in step.action.model_fields_set,
            scope=step.scope,
        )
        what = kind.describe(options, context)
        if earlier_failure:
            reason = f"not run: earlier action {earlier_failure} of this runbook failed"
            return ActionStatus.REFUSED, f"{reason}; would have run {what}"
        ruling = rule(
            step.name,
            step.action,
            policy=policy,
            history=self._history(),
            last_attempt_at=self._last_attempt_at(step.name),
            now=utcnow(),
        )
        if ruling.decision is Decision.DRY_RUN:
            return ActionStatus.DRY_RUN, f"{ruling.reason}; would run {what}"
        if ruling.decision is Decision.REFUSED:
            return ActionStatus.REFUSED, f"{ruling.reason}; would have run {what}"
        if ruling.decision is Decision.ASK:
            question = redactor_for(self.config, kind.secrets(options)).redact(
                f"greenloop: run remediation {step.name}: {what}?"
            )
            if not typer.confirm(question, default=False):
                return ActionStatus.REFUSED, f"declined at the prompt; would have run {what}"
        if self.baseline is None:
            self.baseline = self._gate()
        outcome = kind.run(options, context)
        if not outcome.ok:
            return ActionStatus.FAILED, outcome.detail
        after = self._gate()
        change, words = judge_change(self.baseline, after)
        if change is Change.WORSE:
            self.worse = f"{step.name} made things worse ({words})"
        self.baseline = after
        return ActionStatus.DONE, f"{outcome.detail}; gate after: {change.value}, {words}"

    def stop(self, step: Step) -> list[Action]:
        """Things got worse: roll back if we can, and stop remediating for this run."""
        out: list[Action] = []
        reason = self.worse or "an action made things worse"
        redact = redactor_for(self.config).redact
        if self.config.deploy.rollback_command:
            started, clock = utcnow(), time.monotonic()
            result = self.requests.roll_back()
            status = ActionStatus.DONE if result.ok else ActionStatus.FAILED
            detail = redact(f"{reason}: {result.detail}")
            out.append(
                Action(ROLLBACK_NAME, "rollback", status, detail, started, time.monotonic() - clock)
            )
            reason += "; rolled back" if result.ok else "; the rollback failed"
        else:
            reason += "; no deploy.rollback_command to roll back with"
        out.append(Action(STOP_NAME, STOP_KIND, ActionStatus.REFUSED, redact(reason)))
        self.record.actions(self.iteration, out, step.fingerprint)
        return out

    def _gate(self) -> GateResult:
        return self.requests.regate()

    def _history(self) -> list[Attempt]:
        return [
            Attempt(r.name, r.status, aware(r.started_at) or r.started_at, r.detail)
            for r in self.store.remediation.run_actions(self.run_id)
        ]

    def _last_attempt_at(self, name: str) -> datetime | None:
        row = self.store.remediation.last_action_attempt(name)
        return aware(row.started_at) if row is not None else None
