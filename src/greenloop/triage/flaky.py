"""Flakiness: which tests flip between pass and fail on one revision, and why.

A test that fails and passes on the *same* code is nondeterministic, unless
its failures line up with probe failures: then the environment flickered and
the test is innocent. Only the former is `flaky`. The scoring is pure
(`score_history`); `flaky_report` and `history_facts` read the store.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from greenloop.records import Outcome
from greenloop.store import Store, aware
from greenloop.store.stored import StoredProbe

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


class ProbeTimeline:
    """The stored probe results of one time span, read in one query, then asked about
    windows inside it (a failing test's moment, a past run's): not one query a window."""

    def __init__(self, rows: Sequence[StoredProbe]) -> None:
        self.rows = list(rows)  # oldest first, as probes_between returns them
        self.times = [aware(r.checked_at) or r.checked_at for r in self.rows]

    @classmethod
    def read(
        cls,
        store: Store,
        windows: Sequence[tuple[datetime, datetime]],
        *,
        failed_only: bool = False,
    ) -> ProbeTimeline:
        """The results from the earliest window's start to the latest one's end."""
        if not windows:
            return cls(())
        start, end = min(w[0] for w in windows), max(w[1] for w in windows)
        return cls(store.triage.probes_between(start, end, failed_only=failed_only))

    def between(self, start: datetime, end: datetime) -> list[StoredProbe]:
        """The results checked in [start, end], oldest first."""
        return self.rows[bisect_left(self.times, start) : bisect_right(self.times, end)]


def _run_window(finished: datetime | None, duration_s: float) -> tuple[datetime, datetime] | None:
    """A past run's moment: from its duration plus PROBE_MARGIN_S before its end, to its end."""
    end = aware(finished)
    if end is None:
        return None
    return end - timedelta(seconds=duration_s + PROBE_MARGIN_S), end


def load_histories(
    store: Store, nodeids: Sequence[str], window: int
) -> dict[str, list[HistoryPoint]]:
    """Each test's last `window` results as history points, newest first: one history
    query per batch of tests and one probe query for every failed run's moment."""
    histories = store.triage.test_histories(nodeids, limit=window)
    failure = {o.value for o in Outcome if o.is_failure}
    moments = [
        moment
        for rows in histories.values()
        for row in rows
        if row.outcome in failure
        and (moment := _run_window(row.finished_at, row.duration_s or 0.0)) is not None
    ]
    failing_probes = ProbeTimeline.read(store, moments, failed_only=True)
    out: dict[str, list[HistoryPoint]] = {}
    for nodeid, rows in histories.items():
        points = out[nodeid] = []
        for row in rows:
            reruns = tuple(row.reruns or ())
            passed = row.outcome == Outcome.PASSED.value
            failed = row.outcome in failure
            if not passed and not failed:
                continue  # skipped or blocked runs say nothing about flakiness
            moment = _run_window(row.finished_at, row.duration_s or 0.0) if failed else None
            points.append(
                HistoryPoint(
                    passed=passed,
                    revision=row.revision,
                    finished_at=aware(row.finished_at),
                    passed_on_retry=failed and Outcome.PASSED.value in reruns,
                    env_failing=moment is not None and bool(failing_probes.between(*moment)),
                )
            )
    return out


def load_history(store: Store, nodeid: str, window: int) -> list[HistoryPoint]:
    """The test's last `window` results as history points, newest first."""
    return load_histories(store, [nodeid], window)[nodeid]


def history_facts(store: Store, nodeid: str, window: int) -> FlakyTest:
    """What triage asks per failing test: flips on this revision, environment-correlated or not."""
    return score_history(nodeid, load_history(store, nodeid, window))


def histories_facts(store: Store, nodeids: Sequence[str], window: int) -> dict[str, FlakyTest]:
    """`history_facts` of many tests, read in a few queries (`load_histories`)."""
    return {
        n: score_history(n, points) for n, points in load_histories(store, nodeids, window).items()
    }


def flaky_report(store: Store, window: int) -> list[FlakyTest]:
    """`greenloop flaky`: every recently seen test that flips, flakiest first.

    Tests whose flips coincide with probe failures are listed too, with verdict
    `environment`, so nobody quarantines a test for an outage.
    """
    recent = list(store.results.recent_outcomes(per_test=1))
    out = [scored for scored in histories_facts(store, recent, window).values() if scored.flips]
    return sorted(out, key=lambda f: (f.verdict != "flaky", -f.score, -f.flips, f.nodeid))
