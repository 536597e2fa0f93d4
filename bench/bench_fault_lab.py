"""Time to verdict for every fault of the fault lab; prints the table of docs/fault-lab.md.

    .venv/bin/python bench/bench_fault_lab.py            # the gate + triage of each fault
    .venv/bin/python bench/bench_fault_lab.py --demo     # plus whole demo --real-deps runs

1. gate + triage: one throwaway PostgreSQL cluster and one redis-server, each fault made
   on them as in production, then one real gate check and the triage of the tests it
   blocked (what the loop does after deploying). Time: from the check's start to the
   verdict, wall clock, median of `--repeat` runs.
2. `--demo`: `greenloop demo --real-deps --scenario X --json` for every real-deps
   scenario, each a full run (deploy, gate with its waits, phases, triage, report);
   the verdict and cause are read from its JSON report.

Figures are wall clock on a shared machine: print `uptime` beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from greenloop.config import PhaseConfig
from greenloop.demo import control
from greenloop.demo.realdeps import DemoCertificates, PostgresServer, RedisServer, wait_refused
from greenloop.demo.scenarios import REAL_DEPS_SCENARIOS, SCENARIOS
from greenloop.gate import check_gate, phase_blocker
from greenloop.load import config_from_dict
from greenloop.records import Outcome, TestResult
from greenloop.triage import triage

COMPONENTS: list[dict[str, Any]] = [
    {"name": "database"},
    {"name": "cache"},
    {"name": "backend", "depends_on": ["database", "cache"]},
]


def verdict(
    probes: list[dict[str, Any]], components: list[dict[str, Any]] = COMPONENTS
) -> tuple[str, float]:
    """(component / mode / category, seconds) of one gate check and its triage."""
    config = config_from_dict({"components": components, "probes": probes}, Path("bench.toml"))
    started = time.perf_counter()
    gate = check_gate(config, None)
    blocker = phase_blocker(PhaseConfig(name="smoke", needs=["backend"]), gate)
    if blocker is None:
        return "not blocked", time.perf_counter() - started
    tests = [TestResult(f"t.py::test_{i}", Outcome.BLOCKED, blocked_by=blocker) for i in range(2)]
    (cluster,) = triage(tests, gate=gate).clusters
    seconds = time.perf_counter() - started
    cause = cluster.root_cause
    mode = cause.mode.value if cause.mode else "-"
    category = cause.category.value if cause.category else "-"
    return f"{cause.component} / {mode} / {category}", seconds


@contextmanager
def undo(make: Callable[[], None], restore: Callable[[], None]) -> Iterator[None]:
    make()
    try:
        yield
    finally:
        restore()


def lab(repeat: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gl-bench-lab-"))
    folder.chmod(0o755)
    pg = PostgresServer(folder / "pg", max_connections=6).start()
    cache = RedisServer().start()
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY)", database="app")
    pg.sql("ALTER TABLE orders OWNER TO app", database="app")
    held: list[Any] = []

    def db(**dsn: Any) -> list[dict[str, Any]]:
        return [{"name": "db", "component": "database", "kind": "postgres",
                 "dsn": pg.dsn(**dsn), "query": "SELECT count(*) FROM orders",
                 "timeout_s": 1.5}]  # fmt: skip

    redis_probe = [{"name": "cache", "component": "cache", "kind": "redis", "url": cache.url,
                    "timeout_s": 1}]  # fmt: skip

    def lock() -> None:
        import psycopg

        conn = psycopg.connect(pg.dsn())
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        held.append(conn)

    def release() -> None:
        for conn in held:
            conn.close()
        held.clear()

    faults: list[tuple[str, Callable[[], AbstractContextManager[None]], list[dict[str, Any]]]] = [
        ("PostgreSQL down (stopped)", lambda: undo(pg.stop, pg.start), db()),
        ("PostgreSQL hung (SIGSTOP)", lambda: undo(pg.pause, pg.resume), db()),
        ("PostgreSQL password rotated", lambda: undo(
            lambda: pg.rotate_password("rotated"), lambda: pg.rotate_password(pg.password)), db()),
        ("PostgreSQL connection slots taken", lambda: undo(
            lambda: held.extend(pg.take_all_connections()), release), db()),
        ("PostgreSQL query behind a lock", lambda: undo(lock, release), db()),
        ("PostgreSQL host under .invalid", lambda: undo(lambda: None, lambda: None),
         db(host="db.greenloop.invalid")),
        ("Redis down (stopped)", lambda: undo(cache.stop, cache.start), redis_probe),
        ("Redis hung (SIGSTOP)", lambda: undo(cache.pause, cache.resume), redis_probe),
        ("Redis requirepass set", lambda: undo(
            lambda: cache.require_password("ops"), lambda: cache.require_password(None)),
         redis_probe),
    ]  # fmt: skip
    try:
        print(f"{'fault':36} {'component / mode / category':48} {'s (median)':>10}")
        for name, fault, probes in faults:
            times, said = [], ""
            for _ in range(repeat):
                with fault():
                    said, seconds = verdict(probes)
                times.append(seconds)
            print(f"{name:36} {said:48} {statistics.median(times):10.2f}")
    finally:
        release()
        cache.stop()
        pg.remove()
        shutil.rmtree(folder, ignore_errors=True)


def _tls_server(chain: Path, key: Path, stop: threading.Event) -> int:
    """A TLS endpoint presenting `chain`: handshakes each connection, then closes it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def run() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
                    pass

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


def tls_and_app(repeat: int) -> None:
    """Certificate faults on TLS endpoints, and the demo service killed."""
    folder = Path(tempfile.mkdtemp(prefix="gl-bench-tls-"))
    certs = DemoCertificates(folder / "tls")
    stop = threading.Event()
    edge: list[dict[str, Any]] = [
        {"name": "load_balancer"},
        {"name": "backend", "depends_on": ["load_balancer"]},
    ]
    try:
        for name in ("expired", "untrusted", "wrong-host"):
            chain, key = certs.paths(name)
            port = _tls_server(chain, key, stop)
            probe = [{"name": "tls", "component": "load_balancer", "kind": "tls",
                      "host": "localhost", "port": port,
                      "ca_file": str(certs.ca_file)}]  # fmt: skip
            times = []
            for _ in range(repeat):
                said, seconds = verdict(probe, edge)
                times.append(seconds)
            print(f"{'TLS certificate ' + name:36} {said:48} {statistics.median(times):10.2f}")
        state = folder / "service"
        times = []
        for _ in range(repeat):
            revision = control.deploy(state)
            pid = control.status(state).pid
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)
            wait_refused(revision.port)
            probes = [{"name": "edge", "component": "load_balancer", "kind": "tcp",
                       "host": "127.0.0.1", "port": revision.port},
                      {"name": "health", "component": "backend", "kind": "http",
                       "url": revision.base_url + "/health"}]  # fmt: skip
            said, seconds = verdict(probes, edge)
            times.append(seconds)
        print(f"{'App killed (SIGKILL)':36} {said:48} {statistics.median(times):10.2f}")
    finally:
        stop.set()
        control.stop(folder / "service")
        shutil.rmtree(folder, ignore_errors=True)


def demo() -> None:
    names = [n for n in REAL_DEPS_SCENARIOS if n not in SCENARIOS]
    print(f"\n{'scenario':18} {'exit':>4} {'verdict':8} {'cluster':10} {'cause':48} {'s':>6}")
    for name in names:
        out = Path(tempfile.mkdtemp(prefix=f"gl-bench-{name}-"))
        report = out / "report.json"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "greenloop.cli", "demo", "--real-deps", "--scenario", name,
             "--out", str(out), "--json", str(report)],
            capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        seconds = time.perf_counter() - started
        data = json.loads(report.read_text()) if report.exists() else {}
        clusters = data.get("clusters") or [{}]
        first = clusters[0]
        cause = first.get("root_cause") or {}
        said = " / ".join(str(cause.get(k) or "-") for k in ("component", "mode", "category"))
        print(
            f"{name:18} {done.returncode:>4} {data.get('verdict', '?'):8} "
            f"{first.get('category', '-'):10} {said:48} {seconds:6.1f}"
        )
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    lab(args.repeat)
    tls_and_app(args.repeat)
    if args.demo:
        demo()


if __name__ == "__main__":
    main()
