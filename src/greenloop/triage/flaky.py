"""Flakiness: which tests flip between pass and fail on one revision, and why.

A test that fails and passes on the *same* code is nondeterministic, unless
its failures line up with probe failures: then the environment flickered and
the test is innocent. Only the former is `flaky`. The scoring is pure
(`score_history`); `flaky_report` and `history_facts` read the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from greenloop.records import Outcome
from greenloop.store import Store, aware

# How far before a failed test's end its probe window opens, beyond its duration.
PROBE_MARGIN_S = 5.0


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One past run of a test, as flakiness sees it."""

    passed: bool
    revision: str | None
    finished_at: datetime | None
    passed_on_retry: bool = False
    env_failing: bool = False  # a probe failed while it ran


@dataclass(frozen=True, slots=True)
class FlakyTest:
    """One test's flakiness over the window."""

    nodeid: str
    runs: int
    failures: int
    flips: int
    passed_on_retry: int
    score: float  # flips / (runs - 1), 0..1
    revision: str | None
    env_failures: int  # failures that coincided with a probe failure
    verdict: str  # flaky | environment | failing | stable

    @property
    def is_flaky(self) -> bool:
        return self.verdict == "flaky"


def flips(passed: Sequence[bool]) -> int:
    """How often consecutive runs disagree: P F P F -> 3."""
    return sum(1 for a, b in pairwise(passed) if a != b)


def score_history(nodeid: str, points: Sequence[HistoryPoint]) -> FlakyTest:
    """Score a test's history (newest first or oldest first: flips do not care).

    Only runs on the most recent revision count: a fix between two runs is a
    flip too, but not flakiness. A pass on retry counts as a flip inside one run.
    """
    revision = points[0].revision if points else None
    same = [p for p in points if p.revision == revision]
    # A run that passed on retry ended green; its one internal flip is counted apart.
    passed = [p.passed or p.passed_on_retry for p in same]
    retry = sum(1 for p in same if p.passed_on_retry)
    n_flips = flips(passed) + retry
    failures = [p for p in same if not p.passed or p.passed_on_retry]
    env = sum(1 for p in failures if p.env_failing)
    runs = len(same)
    score = min(1.0, n_flips / (runs - 1)) if runs > 1 else (1.0 if retry else 0.0)
    if n_flips == 0:
        verdict = "failing" if failures and len(failures) == runs else "stable"
    elif failures and env * 2 >= len(failures) and env > 0:
        verdict = "environment"
    else:
        verdict = "flaky"
    return FlakyTest(
        nodeid, runs, len(failures), n_flips, retry, round(score, 3), revision, env, verdict
    )


# --------------------------------------------------------------------------- store I/O


def _probe_failed(store: Store) -> Callable[[datetime | None, float], bool]:
    def check(finished: datetime | None, duration_s: float) -> bool:
        if finished is None:
            return False
        end = aware(finished)
        assert end is not None
        start = end - timedelta(seconds=duration_s + PROBE_MARGIN_S)
        return any(not row.ok for row in store.triage.probes_between(start, end))

    return check


def load_history(store: Store, nodeid: str, window: int) -> list[HistoryPoint]:
    """The test's last `window` results as history points, newest first."""
    probe_failed = _probe_failed(store)
    points = []
    for row in store.triage.test_history(nodeid, limit=window):
        reruns = tuple(row.reruns or ())
        passed = row.outcome == Outcome.PASSED.value
        failed = row.outcome in (o.value for o in Outcome if o.is_failure)
        if not passed and not failed:
            continue  # skipped or blocked runs say nothing about flakiness
        points.append(
            HistoryPoint(
                passed=passed,
                revision=row.revision,
                finished_at=aware(row.finished_at),
                passed_on_retry=failed and Outcome.PASSED.value in reruns,
                env_failing=failed and probe_failed(row.finished_at, row.duration_s or 0.0),
            )
        )
    return points


def history_facts(store: Store, nodeid: str, window: int) -> FlakyTest:
    """What triage asks per failing test: flips on this revision, environment-correlated or not."""
    return score_history(nodeid, load_history(store, nodeid, window))


def flaky_report(store: Store, window: int) -> list[FlakyTest]:
    """`greenloop flaky`: every recently seen test that flips, flakiest first.

    Tests whose flips coincide with probe failures are listed too, with verdict
    `environment`, so nobody quarantines a test for an outage.
    """
    out = []
    for nodeid in store.results.recent_outcomes(per_test=1):
        scored = history_facts(store, nodeid, window)
        if scored.flips:
            out.append(scored)
    return sorted(out, key=lambda f: (f.verdict != "flaky", -f.score, -f.flips, f.nodeid))
