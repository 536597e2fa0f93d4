"""The one place a run's own records are written: the loop hands each one here as it happens.

`Recorder` wraps the store's repositories for one run (its id fixed), so the loop reads
as stage calls and `recorder.<what>(record)`: a run started and finished, a deploy, a
phase and the resume progress after it, triage's categories and clusters, an iteration.
Remediation records its actions through it too (and a rollback it asked for), one at a
time, because its guardrails read them back while it runs. (The gate records its probe
results as it checks, execute its collection cache and trackers their issue index and
outbox: those are the stages' own state, written through their store repositories.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from greenloop.records import (
    Action,
    AuthenticityFinding,
    DeployResult,
    IterationResult,
    PhaseResult,
    RunResult,
)
from greenloop.store import Store
from greenloop.store.stored import ResumeProgress

if TYPE_CHECKING:
    from greenloop.triage import TriageResult


class Recorder:
    """Writes one run's records to the store, each in its own short transaction."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def started(self, *, environment: str, focus: str, command_line: str, config_path: str) -> None:
        self.store.runs.start_run(
            self.run_id,
            environment=environment,
            focus=focus,
            command_line=command_line,
            config_path=config_path,
        )

    def deploy(self, result: DeployResult) -> None:
        self.store.remediation.record_deploy(self.run_id, result)

    def phase(
        self,
        iteration: int,
        phase: PhaseResult,
        *,
        revision: str | None,
        completed: Sequence[PhaseResult] | None = None,
    ) -> None:
        """A phase as it ended; with `completed` (the iteration's phases so far, this one
        included) also what --resume keeps."""
        self.store.results.record_phase(self.run_id, iteration, phase, revision=revision)
        if completed is not None:
            self.store.runs.save_progress(
                self.run_id, ResumeProgress(iteration=iteration, phases=tuple(completed))
            )

    def triage(
        self, iteration: int, triaged: TriageResult, findings: Iterable[AuthenticityFinding]
    ) -> None:
        """Categories, clusters, and which tests did not really run."""
        self.store.triage.record_triage(
            self.run_id,
            iteration,
            triaged.classifications,
            triaged.clusters,
            {f.nodeid: False for f in findings},
        )

    def actions(
        self, iteration: int, actions: Iterable[Action], fingerprint: str | None = None
    ) -> None:
        self.store.remediation.record_actions(self.run_id, iteration, actions, fingerprint)

    def iteration(self, result: IterationResult) -> None:
        self.store.runs.record_iteration(self.run_id, result)

    def finished(self, result: RunResult, *, status: str | None = None) -> None:
        """Close the run's row; `status` overrides finished/interrupted (e.g. "crashed")."""
        self.store.runs.finish_run(result, status=status)
