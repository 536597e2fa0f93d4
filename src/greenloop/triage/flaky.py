"""Flakiness: which tests flip between pass and fail on one revision, and why.

A test that fails and passes on the *same* code is nondeterministic, unless
its failures line up with probe failures: then the environment flickered and
the test is innocent. Only the former is `flaky`. The scoring is pure
(`score_history`); `flaky_report` and `history_facts` read the store.

"The same code" is a *known* revision: runs whose revision is unknown (no
`[deploy] version_url`) are never compared, with each other or with anything,
since nothing says they ran the same code. History is read for one test id in
one environment (`[environment] name`). Only a test's own verdict is evidence:
a pass, a failure or an error. A timeout or a crash is the runner stopping pytest
(a hung server, a phase deadline), and a test that never started says nothing.
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
# The outcomes that are a test's own verdict, and so may show a flip.
VERDICTS = frozenset({Outcome.PASSED, Outcome.FAILED, Outcome.ERROR})
_FAILED = frozenset(o.value for o in VERDICTS if o is not Outcome.PASSED)


def shows_flips(outcome: Outcome) -> bool:
    """Whether a result with this outcome is evidence for or against flakiness: a pass,
    a failure or an error; not a timeout, a crash, a skip or a block."""
    return outcome in VERDICTS


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


def score_history(
    nodeid: str, points: Sequence[HistoryPoint], revision: str | None = None
) -> FlakyTest:
    """Score a test's history, newest first.

    Only runs on one known revision count: `revision`, else the newest point's known
    one. A fix between two runs is a flip too, but not flakiness. Points of an unknown
    revision (None) never count, so a history with no known revision is `stable` with
    0 runs. A pass on retry counts as a flip inside one run.
    """
    if revision is None:
        revision = next((p.revision for p in points if p.revision is not None), None)
    same = [p for p in points if revision is not None and p.revision == revision]
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
    store: Store, nodeids: Sequence[str], window: int, *, environment: str | None = None
) -> dict[str, list[HistoryPoint]]:
    """Each test's last `window` results as history points, newest first: one history
    query per batch of tests and one probe query for every failed run's moment.

    `environment`: only runs of that environment (None: every environment in the store).
    Results of an unknown revision and outcomes that are no verdict (`shows_flips`) are
    left out."""
    histories = store.triage.test_histories(nodeids, limit=window, environment=environment)
    moments = [
        moment
        for rows in histories.values()
        for row in rows
        if row.outcome in _FAILED
        and row.revision is not None
        and (moment := _run_window(row.finished_at, row.duration_s or 0.0)) is not None
    ]
    failing_probes = ProbeTimeline.read(store, moments, failed_only=True)
    out: dict[str, list[HistoryPoint]] = {}
    for nodeid, rows in histories.items():
        points = out[nodeid] = []
        for row in rows:
            reruns = tuple(row.reruns or ())
            passed = row.outcome == Outcome.PASSED.value
            failed = row.outcome in _FAILED
            if (not passed and not failed) or row.revision is None:
                continue  # skipped, blocked, timed out, crashed, or code unknown: no evidence
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


def load_history(
    store: Store, nodeid: str, window: int, *, environment: str | None = None
) -> list[HistoryPoint]:
    """The test's last `window` results as history points, newest first."""
    return load_histories(store, [nodeid], window, environment=environment)[nodeid]


def history_facts(
    store: Store,
    nodeid: str,
    window: int,
    *,
    revision: str | None = None,
    environment: str | None = None,
) -> FlakyTest:
    """What triage asks per failing test: flips on `revision` (None: the newest known one)
    in `environment`, environment-correlated or not."""
    points = load_history(store, nodeid, window, environment=environment)
    return score_history(nodeid, points, revision)


def histories_facts(
    store: Store,
    nodeids: Sequence[str],
    window: int,
    *,
    revision: str | None = None,
    environment: str | None = None,
) -> dict[str, FlakyTest]:
    """`history_facts` of many tests, read in a few queries (`load_histories`)."""
    histories = load_histories(store, nodeids, window, environment=environment)
    return {n: score_history(n, points, revision) for n, points in histories.items()}


def flaky_report(store: Store, window: int, *, environment: str | None = None) -> list[FlakyTest]:
    """`greenloop flaky`: every recently seen test that flips, flakiest first, each on its
    newest known revision in `environment` (None: every environment in the store).

    Tests whose flips coincide with probe failures are listed too, with verdict
    `environment`, so nobody quarantines a test for an outage.
    """
    recent = list(store.results.recent_outcomes(per_test=1))
    facts = histories_facts(store, recent, window, environment=environment)
    out = [scored for scored in facts.values() if scored.flips]
    return sorted(out, key=lambda f: (f.verdict != "flaky", -f.score, -f.flips, f.nodeid))
