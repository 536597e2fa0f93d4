"""should_go_round decides only: it returns a Round (again, why, what to ask for) and files
nothing; flag_needs_person is the separate step the loop takes on a stuck round."""

from __future__ import annotations

import time
from pathlib import Path

from greenloop.config import Config
from greenloop.execute.progress import NullReporter
from greenloop.loop import Loop, LoopState, RunOptions, flag_needs_person, should_go_round
from greenloop.recorder import Recorder
from greenloop.records import (
    Category,
    Cluster,
    FlagNeedsPerson,
    IterationResult,
    RootCause,
    Verdict,
    utcnow,
)
from greenloop.store import Store
from greenloop.store.issues import IssueChange


def _cluster() -> Cluster:
    return Cluster(
        id="C1",
        fingerprint="fp-cache-down",
        category=Category.INFRASTRUCTURE,
        confidence=0.9,
        tests=("tests/test_cache.py::test_get",),
        title="cache refuses connections",
        reason="CACHE-REFUSED",
        root_cause=RootCause("the cache is down", "cache", ()),
    )


def _iteration(
    number: int, verdict: Verdict, clusters: tuple[Cluster, ...] = ()
) -> IterationResult:
    return IterationResult(
        number=number, verdict=verdict, duration_s=0.0, started_at=utcnow(), clusters=clusters
    )


def _loop(tmp_path: Path, store: Store, **options: object) -> Loop:
    config = Config.model_validate(
        {"tracker": {"kind": "local"}, "source": tmp_path / "greenloop.toml"}
    )
    return Loop(
        config=config,
        options=RunOptions(out_dir=tmp_path / "out", **options),  # type: ignore[arg-type]
        store=store,
        index=(),
        reporter=NullReporter(),
        say=lambda _text: None,
    )


def _state(store: Store, *iterations: IterationResult) -> LoopState:
    state = LoopState(run_id="run-1", started_at=utcnow(), recorder=Recorder(store, "run-1"))
    state.iterations.extend(iterations)
    return state


def test_green_or_a_single_iteration_stops_without_a_word(tmp_path: Path, store: Store) -> None:
    later = time.monotonic() + 60
    green = _state(store, _iteration(1, Verdict.GREEN))
    assert should_go_round(_loop(tmp_path, store, until_green=True), green, later).again is False
    failing = _state(store, _iteration(1, Verdict.FAILING, (_cluster(),)))
    decided = should_go_round(_loop(tmp_path, store), failing, later)
    assert (decided.again, decided.why, decided.flag) == (False, "", None)
    decided = should_go_round(_loop(tmp_path, store, until_green=True), failing, later)
    assert (decided.again, decided.flag) == (True, None)


def test_out_of_budget_stops_with_its_reason(tmp_path: Path, store: Store) -> None:
    state = _state(store, _iteration(1, Verdict.FAILING, (_cluster(),)))
    decided = should_go_round(_loop(tmp_path, store, until_green=True), state, time.monotonic())
    assert decided.again is False and decided.why.startswith("out of budget")
    assert decided.flag is None


def test_stuck_asks_to_flag_and_files_nothing_itself(tmp_path: Path, store: Store) -> None:
    cluster = _cluster()
    loop = _loop(tmp_path, store, until_green=True)
    state = _state(
        store,
        _iteration(1, Verdict.FAILING, (cluster,)),
        _iteration(2, Verdict.FAILING, (cluster,)),
    )
    decided = should_go_round(loop, state, time.monotonic() + 60)
    assert decided.again is False and "same failures" in decided.why
    assert decided.flag == FlagNeedsPerson((cluster,))
    assert store.issues.outbox("local", pending=False) == []  # deciding queued no comment

    # The loop's own step: the issue filed earlier gets flagged, and its comment queued.
    store.issues.record(
        "local",
        cluster.fingerprint,
        title=cluster.title,
        category=cluster.category.value,
        decide=lambda _row: IssueChange("open", 2, 0, "run-1"),
    )
    flag_needs_person(loop, state, decided.flag)
    issue = store.issues.get("local", cluster.fingerprint)
    assert issue is not None and issue.needs_person
    [comment] = store.issues.outbox("local", pending=False)
    assert comment.op == "comment" and "run-1" in (comment.payload.body or "")
