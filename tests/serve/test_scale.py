"""10,000 runs: every page of the API is reachable, in order, each run exactly once.

No timing here (bench/bench_serve.py measures); this checks that pagination is
correct and complete at that size and that the deepest page still renders.
"""

from __future__ import annotations

import httpx
import pytest
from conftest import get_json, running_dashboard
from dashboard_seed import seed_history

from greenloop.store import Store

RUNS = 10_000


@pytest.mark.slow
def test_ten_thousand_runs_paginate_completely(store: Store) -> None:
    ids = seed_history(store, RUNS)
    with running_dashboard(store) as base:
        seen: list[str] = []
        url: str | None = f"{base}/api/runs?limit=500"
        while url:
            page = get_json(url)
            assert page["total"] == RUNS and len(page["items"]) <= 500
            seen += [r["run_id"] for r in page["items"]]
            url = page["next"]
        assert seen == ids[::-1]

        last = httpx.get(f"{base}/?offset={RUNS - 50}", timeout=60)
        assert last.status_code == 200
        assert f'href="/runs/{ids[0]}"' in last.text and 'rel="next"' not in last.text
        assert f"{RUNS - 49}\u2013{RUNS} of {RUNS}" in last.text
        clusters = get_json(f"{base}/api/clusters")
        assert clusters["total"] == 2
        assert sum(c["occurrences"] for c in clusters["items"]) > RUNS // 7
        probes = get_json(f"{base}/api/probes?runs=500")
        assert {c["total"] for c in probes["items"]} == {500}
