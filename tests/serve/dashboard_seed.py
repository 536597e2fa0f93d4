"""A synthetic run history for dashboard tests and bench/bench_serve.py.

Rows are inserted in bulk (one executemany per table and batch), so 10,000 runs
take seconds. The history is deterministic for a seed and has what the pages
show: verdicts of every kind, a revision change every 50 runs, a test that
flips on one revision (flaky), one that fails only while the cache probe fails
(environment), clusters with five whys, an open and a closed issue, actions.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from greenloop.store import Store
from greenloop.store.schema import (
    ActionRow,
    ClusterRow,
    IssueRow,
    IterationRow,
    PhaseRow,
    ProbeResultRow,
    RunRow,
    TestResultRow,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
TESTS = (
    "tests/test_smoke.py::test_health",
    "tests/test_api.py::test_login",
    "tests/test_api.py::test_checkout",
    "tests/test_api.py::test_cart_cache",
    "tests/test_ws.py::test_stream",
)
FLAKY = "tests/test_api.py::test_checkout"
ENV_BOUND = "tests/test_api.py::test_cart_cache"
COMPONENTS = ("backend", "cache")
CACHE_FP = "f" * 16 + "cache"
FLAKY_FP = "f" * 16 + "flaky"
SECRET = "hunter2-very-secret-value"


def seed_history(
    store: Store, runs: int, *, seed: int = 7, batch: int = 2000, lean: bool = False
) -> list[str]:
    """Insert `runs` finished runs, 10 minutes apart from START; their ids, oldest first.

    `lean` keeps only the runs and their iterations: enough to test paging, a fifth
    of the rows.
    """
    rng = random.Random(seed)
    ids: list[str] = []
    tables: dict[Any, list[dict[str, Any]]] = {}
    for i in range(runs):
        run_id = f"{(START + timedelta(minutes=10 * i)):%Y%m%d-%H%M%S}-{i:06x}"
        ids.append(run_id)
        for table, row in _run_rows(rng, i, run_id):
            if not lean or table in (RunRow, IterationRow):
                tables.setdefault(table, []).append(row)
        if (i + 1) % batch == 0:
            _flush(store, tables)
    _flush(store, tables)
    _issues(store, ids)
    return ids


def _run_rows(rng: random.Random, i: int, run_id: str) -> list[tuple[Any, dict[str, Any]]]:
    started = START + timedelta(minutes=10 * i)
    revision = str(1 + i // 50)
    cache_down = i % 7 == 3
    duration = 20.0 + rng.random() * 40
    finished = started + timedelta(seconds=duration)
    rows: list[tuple[Any, dict[str, Any]]] = []
    for n, component in enumerate(COMPONENTS):
        ok = not (component == "cache" and cache_down)
        rows.append(
            (
                ProbeResultRow,
                dict(
                    run_id=run_id,
                    iteration=1,
                    component=component,
                    name=f"{component}-health",
                    kind="http",
                    target=f"http://127.0.0.1:8000/{component}",
                    ok=ok,
                    latency_ms=5.0 + n + rng.random() * 20,
                    detail="HTTP 200" if ok else "HTTP 503 Service Unavailable",
                    # During the tests: what flakiness reads to tell an outage from a flaky test.
                    checked_at=finished - timedelta(seconds=1),
                ),
            )
        )
    outcomes = {}
    for nodeid in TESTS:
        if nodeid == FLAKY:
            outcome = "failed" if rng.random() < 0.3 else "passed"
        elif nodeid == ENV_BOUND:
            outcome = "failed" if cache_down else "passed"
        else:
            outcome = "passed"
        outcomes[nodeid] = outcome
    failed = [n for n, o in outcomes.items() if o == "failed"]
    verdict = "failing" if failed else "green"
    if i % 23 == 11:
        verdict = "not_real"
    rows.append(
        (
            RunRow,
            dict(
                id=run_id,
                started_at=started,
                finished_at=finished,
                status="finished",
                verdict=verdict,
                exit_code={"green": 0, "failing": 1, "not_real": 4}[verdict],
                environment="staging",
                revision=revision,
                focus="all",
                command_line=f"greenloop run --token {SECRET}",
                config_path="greenloop.toml",
                host="test",
            ),
        )
    )
    rows.append(
        (
            IterationRow,
            dict(run_id=run_id, number=1, verdict=verdict, started_at=started, duration_s=duration),
        )
    )
    rows.append(
        (
            PhaseRow,
            dict(
                run_id=run_id,
                iteration=1,
                name="critical",
                status="failed" if failed else "passed",
                duration_s=duration - 2,
                command="python -m pytest tests",
                note="",
                completed_at=finished,
            ),
        )
    )
    for nodeid, outcome in outcomes.items():
        fp = None
        if outcome == "failed":
            fp = CACHE_FP if nodeid == ENV_BOUND else FLAKY_FP
        rows.append(
            (
                TestResultRow,
                dict(
                    run_id=run_id,
                    iteration=1,
                    phase="critical",
                    nodeid=nodeid,
                    outcome=outcome,
                    duration_s=0.5 + rng.random(),
                    category=None
                    if fp is None
                    else ("infrastructure" if fp == CACHE_FP else "flaky"),
                    cluster_id=None if fp is None else f"C-{fp[-5:]}",
                    fingerprint=fp,
                    message=""
                    if fp is None
                    else f"AssertionError: 503 from /cart (password={SECRET})",
                    revision=revision,
                    reruns=[],
                    real=True,
                    finished_at=finished,
                ),
            )
        )
    for fp in sorted({CACHE_FP if n == ENV_BOUND else FLAKY_FP for n in failed}):
        cache = fp == CACHE_FP
        rows.append(
            (
                ClusterRow,
                dict(
                    run_id=run_id,
                    iteration=1,
                    cluster_id=f"C-{fp[-5:]}",
                    fingerprint=fp,
                    category="infrastructure" if cache else "flaky",
                    confidence=0.9 if cache else 0.6,
                    title="cache refuses connections" if cache else "checkout flips",
                    reason="CACHE-DOWN" if cache else "FLAKY-CHECKOUT",
                    count=1,
                    impact_usd=12000.0 if cache else 3000.0,
                    root_cause={
                        "summary": "the cache is down" if cache else "a race in checkout",
                        "component": "cache" if cache else None,
                        "whys": [
                            {"why": "the test failed", "evidence": "HTTP 503", "verified": True},
                            {
                                "why": "the cache refused connections",
                                "evidence": "probe cache-health failed" if cache else "",
                                "verified": cache,
                            },
                        ],
                    },
                    tests=[ENV_BOUND if cache else FLAKY],
                ),
            )
        )
        if cache:
            rows.append(
                (
                    ActionRow,
                    dict(
                        run_id=run_id,
                        iteration=1,
                        name="restart-cache",
                        kind="command",
                        status="dry_run",
                        detail="would run restart-dependency cache",
                        started_at=finished,
                        duration_s=0.0,
                        fingerprint=fp,
                    ),
                )
            )
    return rows


def _flush(store: Store, tables: dict[Any, list[dict[str, Any]]]) -> None:
    # Parents first: the children's foreign keys point at runs.
    order = (RunRow, IterationRow, PhaseRow, TestResultRow, ProbeResultRow, ClusterRow, ActionRow)
    with store.session() as s:
        for table in order:
            if tables.get(table):
                s.execute(insert(table), tables[table])
    tables.clear()


def _issues(store: Store, ids: list[str]) -> None:
    if not ids:
        return
    first = START
    last = START + timedelta(minutes=10 * (len(ids) - 1))
    with store.session() as s:
        s.execute(
            insert(IssueRow),
            [
                dict(
                    tracker="github",
                    fingerprint=CACHE_FP,
                    key="acme/shop#41",
                    title="E2E-DEPLOY-BLOCKED-BY-CACHE",
                    state="closed",
                    location="https://github.com/acme/shop/issues/41",
                    category="infrastructure",
                    occurrences=3,
                    green_streak=3,
                    needs_person=False,
                    created_at=first,
                    updated_at=first + timedelta(hours=2),
                    last_run_id=ids[0],
                ),
                dict(
                    tracker="github",
                    fingerprint=FLAKY_FP,
                    key="acme/shop#42",
                    title="E2E-FLAKY-CHECKOUT",
                    state="open",
                    location="https://github.com/acme/shop/issues/42",
                    category="flaky",
                    occurrences=len(ids) // 3 + 1,
                    green_streak=0,
                    needs_person=False,
                    created_at=first,
                    updated_at=last,
                    last_run_id=ids[-1],
                ),
            ],
        )
