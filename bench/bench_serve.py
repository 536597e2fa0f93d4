"""Dashboard: does a page cost the same on 10,000 runs as on 100? Ratios measured in one run.

Seeds two SQLite stores with the synthetic history of tests/serve/dashboard_seed.py
(100 and 10,000 runs; 5 tests, 2 probes a run, clusters, issues), serves each with
the real app on a loopback port, and times each page and API call (median of
--repeat requests, after one warm-up) on both, printing the ratio 10,000 / 100.
Also the deepest page of the runs list (offset 9,950) against the first.

Run: .venv/bin/python bench/bench_serve.py [--repeat N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "serve"))

from conftest import running_dashboard  # noqa: E402
from dashboard_seed import seed_history  # noqa: E402

from greenloop.store import Store  # noqa: E402


def _time(client: httpx.Client, url: str, repeat: int) -> float:
    assert client.get(url).status_code == 200, url  # warm-up, and a check
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, url
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    small, large = 100, args.runs
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for n in (small, large):
            store = Store.open(f"sqlite:///{Path(tmp) / f'{n}.db'}")
            start = time.perf_counter()
            ids = seed_history(store, n)
            print(f"seeded {n:>6} runs in {time.perf_counter() - start:5.1f} s")
            stores[n] = (store, ids)
        paths = [
            "/",
            "/runs/{mid}",
            "/clusters",
            "/flaky",
            "/probes",
            "/api/runs",
            "/api/runs?limit=100",  # 100 items on both stores
            "/api/runs/{mid}",
            "/api/clusters",
            "/api/issues",
            "/api/flaky",
            "/api/probes",
            "/api/trend",
        ]
        results: dict[str, dict[int, float]] = {p: {} for p in paths}
        deep: dict[str, float] = {}
        for n, (store, ids) in stores.items():
            with running_dashboard(store) as base:
                client = httpx.Client(base_url=base, timeout=60)
                for path in paths:
                    url = path.format(mid=ids[len(ids) // 2])
                    results[path][n] = _time(client, url, args.repeat)
                if n == large:
                    deep["first"] = results["/"][n]
                    deep["deepest"] = _time(client, f"/?offset={n - 50}", args.repeat)
                client.close()
            store.close()
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'request':24} {small:>8} runs {large:>8} runs   ratio")
    for path in paths:
        a, b = results[path][small], results[path][large]
        print(f"{path:24} {a * 1000:8.1f} ms  {b * 1000:8.1f} ms  {b / a:6.2f}")
    print(
        f"\nruns page at {large} runs: first {deep['first'] * 1000:.1f} ms, "
        f"deepest (offset {large - 50}) {deep['deepest'] * 1000:.1f} ms, "
        f"ratio {deep['deepest'] / deep['first']:.2f}"
    )


if __name__ == "__main__":
    main()
