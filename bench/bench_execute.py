"""Benchmarks of the execution engine, measured side by side in one run; prints ratios.

    .venv/bin/python bench/bench_execute.py [--quick]

1. overhead: greenloop's run_phase vs plain pytest on the same 40 HTTP tests
2. parallel: 200 IO-bound tests (each waits ~200 ms on a loopback server),
   run_phase with workers="auto" vs serial plain pytest
3. streaming: 10,000 results through the plugin's events into Store.record_phase

The target is a ThreadingHTTPServer on 127.0.0.1 in this process; the suites
are generated into a temporary folder. Copy the printed figures into
docs/benchmarks.md ("Execution engine").
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from greenloop.config import PhaseConfig
from greenloop.execute import run_phase, select_tests
from greenloop.load import config_from_dict
from greenloop.records import Outcome
from greenloop.store import Store


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(0.2)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve() -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


HTTP_TEST = """
import os, httpx, pytest
URL = os.environ["GREENLOOP_BASE_URL"]

@pytest.mark.parametrize("n", range({n}))
def test_endpoint(n):
    r = httpx.get(URL + "{path}?n=" + str(n), timeout=10)
    assert r.status_code == 200 and r.json()["ok"]
"""


def suite(root: Path, files: int, per_file: int, path: str) -> Path:
    tests = root / "tests"
    tests.mkdir(parents=True)
    for i in range(files):
        (tests / f"test_gen_{i:02}.py").write_text(HTTP_TEST.format(n=per_file, path=path))
    return tests


def config(root: Path, base_url: str, **execution: Any) -> Any:
    raw = {
        "environment": {"base_url": base_url},
        "execution": {"tests_dir": "tests", "reruns": 0, **execution},
    }
    return config_from_dict(raw, root / "greenloop.toml")


def plain_pytest(tests: Path, base_url: str, *args: str) -> float:
    env = {**os.environ, "GREENLOOP_BASE_URL": base_url}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tests)],
        cwd=tests,
        env=env,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"plain pytest failed:\n{proc.stdout.decode()[-2000:]}")
    return elapsed


def greenloop_phase(root: Path, base_url: str, **execution: Any) -> tuple[float, Any]:
    cfg = config(root, base_url, **execution)
    phase = PhaseConfig(name="bench")
    start = time.perf_counter()
    result = run_phase(cfg, phase, select_tests(cfg, phase, []))
    elapsed = time.perf_counter() - start
    bad = [t for t in result.tests if t.outcome is not Outcome.PASSED]
    if bad:
        raise SystemExit(f"greenloop run had failures: {bad[0].nodeid}: {bad[0].message}")
    return elapsed, result


def bench_overhead(base_url: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tests = suite(root, files=8, per_file=5, path="/api")
        plain, ours = [], []
        for _ in range(rounds):  # interleaved, so both see the same machine load
            plain.append(plain_pytest(tests, base_url))
            ours.append(greenloop_phase(root, base_url)[0])
        p, g = statistics.median(plain), statistics.median(ours)
        print(f"1. overhead, 40 HTTP tests, median of {rounds} interleaved runs")
        print(f"   plain pytest      {p:6.2f} s")
        print(f"   greenloop         {g:6.2f} s")
        print(f"   ratio             {g / p:6.3f}x   (target <= 1.10x)")


def bench_parallel(base_url: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tests = suite(root, files=count // 20, per_file=20, path="/slow")
        serial = plain_pytest(tests, base_url)
        elapsed, result = greenloop_phase(root, base_url, workers="auto")
        workers = result.command.split(" -n ")[1].split()[0]
        print(f"2. parallel, {count} IO-bound tests (~200 ms each)")
        print(f"   serial plain pytest          {serial:6.2f} s")
        print(f"   greenloop workers=auto ({workers}) {elapsed:6.2f} s")
        print(f"   speed-up                     {serial / elapsed:6.2f}x   (target >= 6x)")


TRIVIAL = """
import pytest

@pytest.mark.parametrize("n", range({n}))
def test_many(n):
    assert n >= 0
"""


def bench_streaming(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tests").mkdir()
        (root / "tests" / "test_many.py").write_text(TRIVIAL.format(n=count))
        plain = plain_pytest(root / "tests", "http://127.0.0.1:9")
        ours, result = greenloop_phase(root, "http://127.0.0.1:9")
        store = Store.open(f"sqlite:///{root / 'store.db'}")
        store.start_run("bench", environment="bench", focus="all", command_line="", config_path="")
        start = time.perf_counter()
        store.record_phase("bench", 1, result)
        stored = time.perf_counter() - start
        store.close()
        n = len(result.tests)
        print(f"3. streaming {n} results (trivial tests) through the plugin and into the store")
        print(f"   plain pytest                 {plain:6.2f} s  ({n / plain:8.0f} tests/s)")
        print(f"   greenloop run_phase          {ours:6.2f} s  ({n / ours:8.0f} results/s)")
        print(f"   Store.record_phase (SQLite)  {stored:6.2f} s  ({n / stored:8.0f} results/s)")
        total = ours + stored
        print(f"   end to end                   {total:6.2f} s  ({n / total:8.0f} results/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and tests")
    args = parser.parse_args()
    base_url = serve()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), target {base_url}")
    bench_overhead(base_url, rounds=3 if args.quick else 5)
    bench_parallel(base_url, count=100 if args.quick else 200)
    bench_streaming(2000 if args.quick else 10000)


if __name__ == "__main__":
    main()
