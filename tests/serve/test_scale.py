"""10,000 runs: every page of the API is reachable, in order, each run exactly once.

No timing here: bench/bench_serve.py measures the pages on a full history of
10,000 runs. This checks that paging is correct and complete at that size and
that the deepest page still renders, on runs alone (the lean seed) to stay quick.
"""

from __future__ import annotations

import httpx
import pytest
from dashboard_helpers import get_json, running_dashboard
from dashboard_seed import seed_history

from greenloop.store import Store

RUNS = 10_000


@pytest.mark.slow
def test_ten_thousand_runs_paginate_completely(store: Store) -> None:
    ids = seed_history(store, RUNS, lean=True)
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
        failing = get_json(f"{base}/api/runs?verdict=failing&limit=500&offset=500")
        assert {r["verdict"] for r in failing["items"]} == {"failing"}
        assert failing["previous"] is not None and failing["total"] > 1000
