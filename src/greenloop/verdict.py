"""Pure decisions about verdicts: what an iteration concluded, and when looping is pointless."""

from __future__ import annotations

from collections.abc import Sequence

from greenloop.records import (
    ActionStatus,
    AuthenticityFinding,
    IterationResult,
    PhaseResult,
    PhaseStatus,
    Verdict,
)


def iteration_verdict(
    phases: Sequence[PhaseResult], findings: Sequence[AuthenticityFinding]
) -> Verdict:
    """Worst first: not real, then failing, then blocked; green only when all ran and passed."""
    if findings:
        return Verdict.NOT_REAL
    tests = [t for p in phases for t in p.tests]
    if any(t.outcome.is_failure for t in tests):
        return Verdict.FAILING
    if any(p.status is PhaseStatus.BLOCKED for p in phases):
        return Verdict.BLOCKED
    if any(p.status is PhaseStatus.FAILED for p in phases):
        return Verdict.FAILING
    return Verdict.GREEN


def run_verdict(iterations: Sequence[IterationResult]) -> Verdict:
    """A run ends with its last iteration's verdict; a run with none ran nothing real."""
    return iterations[-1].verdict if iterations else Verdict.NOT_REAL


def is_stuck(iterations: Sequence[IterationResult]) -> bool:
    """Two iterations in a row with the same failing fingerprints and no action done."""
    if len(iterations) < 2:
        return False
    last, before = iterations[-1], iterations[-2]
    same = {c.fingerprint for c in last.clusters} == {c.fingerprint for c in before.clusters}
    acted = any(a.status is ActionStatus.DONE for a in last.actions)
    return bool(last.clusters) and same and not acted
