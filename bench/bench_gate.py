"""Health gate: time to verdict, greenloop's gate vs plain pytest, side by side in one run.

The issue's target (demo variant): greenloop's demo service, staged by its own
scenarios with a fault that makes the backend answer 503, probed with the
demo's own greenloop.toml (templates/greenloop.toml.j2 via write_demo_config):

* lb-503: the load balancer answers 503 for every endpoint;
* outage: dependency-down (cache): /health is 503, every call needing the cache 503.

Against each it times, with the same server:

* the gate in process: `check_gate(config, None)`, in a fresh child process
  (config loaded first, not counted), its first check and the best of 5 more;
* the CLI: `greenloop probe -c <demo config>`, the whole process (start-up,
  imports, store, probes, table), which is what a person waits for;
* plain `python -m pytest <demo suite> -q` with GREENLOOP_BASE_URL set, the
  whole process.

Generic variants (not the demo): a raw server whose every endpoint answers 503
(503) and a port that accepts and never answers (blackhole, a hung load
balancer), probed by an http + websocket + tcp gate and tested by a 10-test
suite whose helper uses a 5 s timeout and retries once, as E2E helpers do.
The blackhole run takes about two minutes: that is the cost the gate avoids.

Each timing is the median of --repeat runs (default 3).

Run: .venv/bin/python bench/bench_gate.py [--variant demo|503|blackhole|all] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from greenloop.config import Config
from greenloop.gate import check_gate
from greenloop.load import config_from_dict, load_config
from greenloop.store import Store

T = TypeVar("T")
Timed = tuple[float, str]  # seconds, and what the run concluded

ROOT = Path(__file__).resolve().parents[1]
PROBE_TIMEOUT_S = 1.0

E2E_HELPER = '''
import os, time
import httpx

BASE = os.environ["GREENLOOP_BASE_URL"]
TIMEOUT = 5.0      # a realistic client timeout
ATTEMPTS = 2       # retry once, like most E2E helpers
BACKOFF_S = 1.0


def call(method, path, **kwargs):
    """Request with retry on 5xx and transport errors; returns the last response."""
    last = None
    for attempt in range(ATTEMPTS):
        try:
            last = httpx.request(method, BASE + path, timeout=TIMEOUT, **kwargs)
            if last.status_code < 500:
                return last
        except httpx.TransportError as exc:
            last = exc
        if attempt + 1 < ATTEMPTS:
            time.sleep(BACKOFF_S)
    if isinstance(last, Exception):
        raise last
    return last
'''

E2E_TEST = """
from helpers import call


def test_{name}():
    response = call("{method}", "{path}")
    assert response.status_code == 200, response.text
"""

ENDPOINTS = [
    ("health", "GET", "/health"),
    ("login", "POST", "/auth/login"),
    ("me", "GET", "/me"),
    ("threads", "GET", "/threads"),
    ("create_thread", "POST", "/threads"),
    ("messages", "GET", "/threads/1/messages"),
    ("send_message", "POST", "/threads/1/messages"),
    ("search", "GET", "/search?q=x"),
    ("settings", "GET", "/settings"),
    ("version", "GET", "/version"),
]


# --------------------------------------------------------------------------- the broken servers


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)


async def start_503_server() -> asyncio.Server:
    """Every request, including a WebSocket upgrade, gets 503 immediately."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                body = b'{"status": "unavailable"}'
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def blackhole() -> socket.socket:
    """A listening socket nobody accepts from: connects succeed, nothing ever answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


# --------------------------------------------------------------------------- the two sides


def gate_config(port: int) -> Config:
    probes: list[dict[str, Any]] = [
        {"name": "lb-port", "component": "load_balancer", "kind": "tcp",
         "host": "127.0.0.1", "port": port},
        {"name": "health", "component": "backend", "kind": "http",
         "url": f"http://127.0.0.1:{port}/health", "conditions": ["status == 200"]},
        {"name": "agent-ws", "component": "backend", "kind": "websocket",
         "url": f"ws://127.0.0.1:{port}/ws"},
    ]  # fmt: skip
    for probe in probes:
        probe["timeout_s"] = PROBE_TIMEOUT_S
    raw = {
        "components": [
            {"name": "load_balancer", "depends_on": ["backend"]},
            {"name": "backend"},
        ],
        "probes": probes,
    }
    return config_from_dict(raw, ROOT / "greenloop.toml")


def time_gate(port: int, store: Store) -> Timed:
    """check_gate alone, recording into `store`; building the config is not counted."""
    config = gate_config(port)
    started = time.perf_counter()
    gate = check_gate(config, store)
    elapsed = time.perf_counter() - started
    verdict = "healthy" if gate.healthy else f"blocked by {gate.deepest_failure}"
    return elapsed, verdict


def write_suite(folder: Path, count: int) -> None:
    (folder / "helpers.py").write_text(textwrap.dedent(E2E_HELPER))
    (folder / "conftest.py").write_text("")
    for name, method, path in (ENDPOINTS * (count // len(ENDPOINTS) + 1))[:count]:
        test = E2E_TEST.format(name=name, method=method, path=path)
        (folder / f"test_{name}.py").write_text(textwrap.dedent(test))


def time_pytest(suite: Path, base_url: str, extra_env: dict[str, str] | None = None) -> Timed:
    """The whole `python -m pytest <suite> -q` process against `base_url`."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "GREENLOOP_BASE_URL": base_url,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=suite, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return elapsed, summary.strip("= ")


def median(runs: list[Timed]) -> Timed:
    """The median time, with the last run's summary; every time is printed too."""
    return statistics.median(t for t, _ in runs), runs[-1][1]


def repeat(times: int, measure: Callable[[], Timed]) -> tuple[Timed, list[float]]:
    runs = [measure() for _ in range(times)]
    return median(runs), [t for t, _ in runs]


# --------------------------------------------------------------------------- the demo (issue 4)


def gate_child(config_path: str) -> None:
    """In a fresh process: load the config (not timed), then time check_gate cold and warm."""
    config = load_config(Path(config_path))
    started = time.perf_counter()
    gate = check_gate(config, None)
    first = time.perf_counter() - started
    warm = []
    for _ in range(5):
        started = time.perf_counter()
        check_gate(config, None)
        warm.append(time.perf_counter() - started)
    verdict = "healthy" if gate.healthy else f"blocked by {gate.deepest_failure}"
    print(json.dumps({"first": first, "warm": min(warm), "verdict": verdict}))


def time_gate_in_process(config_path: Path) -> tuple[float, float, str]:
    argv = [sys.executable, __file__, "--gate-child", str(config_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return data["first"], data["warm"], data["verdict"]


def cli_argv() -> list[str]:
    script = Path(sys.executable).with_name("greenloop")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "greenloop.cli"]


def time_cli(config_path: Path) -> Timed:
    """The whole `greenloop probe -c <config>` process; exit 3 is the blocked verdict."""
    started = time.perf_counter()
    done = subprocess.run(
        [*cli_argv(), "probe", "-c", str(config_path)], capture_output=True, text=True, timeout=120
    )
    elapsed = time.perf_counter() - started
    verdict = {0: "healthy", 3: "blocked"}.get(done.returncode, f"exit {done.returncode}")
    deepest = [line for line in done.stdout.splitlines() if "deepest failing" in line]
    return elapsed, deepest[-1].strip() if deepest else verdict


def bench_demo(scenario_name: str, folder: Path, times: int) -> None:
    from greenloop.demo import control
    from greenloop.demo.runner import write_demo_config
    from greenloop.demo.scenarios import SCENARIOS, prepare

    scenario = SCENARIOS[scenario_name]
    out_dir = folder / f"demo-{scenario_name}"
    out_dir.mkdir()
    state_dir = out_dir / "service"
    base_url = prepare(scenario, state_dir)
    try:
        config_path = write_demo_config(scenario, out_dir, state_dir, base_url)
        in_process = [time_gate_in_process(config_path) for _ in range(times)]
        first = statistics.median(r[0] for r in in_process)
        warm = statistics.median(r[1] for r in in_process)
        verdict = in_process[-1][2]
        cli, cli_runs = repeat(times, lambda: time_cli(config_path))
        tests, test_runs = repeat(times, lambda: time_pytest(scenario.suite_path, base_url))
    finally:
        control.stop(state_dir)
    print(f"\n## demo, scenario {scenario_name} ({', '.join(scenario.faults)}): {base_url}")
    print(f"  {scenario.description}")
    print(
        f"  gate in process, first check      {first:8.3f} s   {verdict}"
        f"   (runs {fmt(r[0] for r in in_process)}; warm re-check {warm * 1000:.0f} ms)"
    )
    print(
        f"  greenloop probe CLI, whole process {cli[0]:7.2f} s   {cli[1]}   (runs {fmt(cli_runs)})"
    )
    print(
        f"  plain pytest, demo suite           {tests[0]:7.2f} s   {tests[1]}   "
        f"(runs {fmt(test_runs)})"
    )
    print(
        f"    -> in-process gate is {tests[0] / first:,.0f}x faster to a verdict "
        f"(target >= 20x: {'met' if tests[0] / first >= 20 else 'NOT MET'})"
    )
    print(
        f"    -> CLI is {tests[0] / cli[0]:,.1f}x faster "
        f"(target >= 20x: {'met' if tests[0] / cli[0] >= 20 else 'NOT MET'})"
    )
    print(f"  verdict within 2 s: in process {'met' if first <= 2 else 'MISSED'}, "
          f"CLI {'met' if cli[0] <= 2 else 'MISSED'}")  # fmt: skip


def fmt(values: Iterable[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# --------------------------------------------------------------------------- generic variants


def report(label: str, gate: Timed, runs: list[tuple[str, float, str]]) -> None:
    gate_s, verdict = gate
    print(f"\n## generic: {label}")
    print(f"  greenloop gate (http+ws+tcp probes)   {gate_s:8.2f} s   {verdict}")
    for name, seconds, summary in runs:
        print(f"  plain pytest, {name:<24} {seconds:8.2f} s   {summary}")
        print(f"    -> gate is {seconds / gate_s:,.0f}x faster to a verdict")
    target = "met" if gate_s <= 2.0 else "MISSED"
    bound = PROBE_TIMEOUT_S + 0.5
    print(f"  verdict within 2 s: {target}; within largest probe timeout + 0.5 s "
          f"({bound:.1f} s): {'yes' if gate_s <= bound else 'NO'}")  # fmt: skip


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variant", choices=["demo", "503", "blackhole", "all"], default="all")
    parser.add_argument("--tests", type=int, default=10, help="tests in the generic E2E suite")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--gate-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gate_child:
        gate_child(args.gate_child)
        return

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {load()}")
    with tempfile.TemporaryDirectory(prefix="gl-bench-") as tmp:
        folder = Path(tmp)
        # Generic first: its gate is timed in this process, whose first check
        # must not find httpx already imported by the demo's control module.
        if args.variant in ("503", "blackhole", "all"):
            bench_generic(folder, args)
        if args.variant in ("demo", "all"):
            for scenario in ("lb-503", "outage"):
                bench_demo(scenario, folder, args.repeat)
    print(f"\n{load()}")


def bench_generic(folder: Path, args: argparse.Namespace) -> None:
    print(f"\ngeneric variants: probe timeout {PROBE_TIMEOUT_S:g} s, "
          "E2E client timeout 5 s with 1 retry, one run each")  # fmt: skip
    suite = folder / "e2e"
    suite.mkdir()
    write_suite(suite, args.tests)
    started = time.perf_counter()
    store = Store.open(f"sqlite:///{folder / 'store.db'}")
    print(f"store open (once per run, not part of the verdict): "
          f"{time.perf_counter() - started:.2f} s")  # fmt: skip
    loop = Loop()
    extra = {"GREENLOOP_CLIENT_TIMEOUT": "5"}
    if args.variant in ("503", "all"):
        server = loop.run(start_503_server())
        port = server.sockets[0].getsockname()[1]
        gate = time_gate(port, store)
        url = f"http://127.0.0.1:{port}"
        runs = [(f"{args.tests}-test E2E suite", *time_pytest(suite, url, extra))]
        report("every endpoint answers 503", gate, runs)
        server.close()
    if args.variant in ("blackhole", "all"):
        hole = blackhole()
        port = hole.getsockname()[1]
        gate = time_gate(port, store)
        url = f"http://127.0.0.1:{port}"
        runs = [(f"{args.tests}-test E2E suite", *time_pytest(suite, url, extra))]
        report("blackholed port (accepts, never answers)", gate, runs)
        hole.close()
    store.close()


if __name__ == "__main__":
    main()
