"""Health gate: time to verdict, greenloop's gate vs plain pytest, side by side in one run.

Two broken environments, both on 127.0.0.1:

* 503: a server whose every endpoint (/health, the WebSocket upgrade, all
  of it) answers 503 Service Unavailable at once;
* blackhole: a port that accepts TCP connections into the kernel backlog and
  never answers (a hung load balancer), which exercises the timeout path.

For each, it times `check_gate` (an http, a websocket and a tcp probe) and
plain `pytest` running E2E suites against the same server: a 10-test suite
written to a temp dir whose helper uses a 5 s timeout and retries once, as
real E2E helpers do, and (503 only) greenloop's demo staging suite via
GREENLOOP_BASE_URL. The blackhole variant of the temp suite takes about two
minutes: that is the cost the gate avoids.

Run: .venv/bin/python bench/bench_gate.py [--variant 503|blackhole|both] [--tests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from greenloop.config import Config, config_from_dict
from greenloop.gate import check_gate
from greenloop.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEMO_SUITE = ROOT / "src" / "greenloop" / "demo" / "suite"
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

    def run(self, coro):  # type: ignore[no-untyped-def]
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
    probes = [
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


def time_gate(port: int, store: Store) -> tuple[float, str]:
    started = time.perf_counter()
    gate = check_gate(gate_config(port), store)
    elapsed = time.perf_counter() - started
    verdict = "healthy" if gate.healthy else f"blocked by {gate.deepest_failure}"
    return elapsed, verdict


def write_suite(folder: Path, count: int) -> None:
    (folder / "helpers.py").write_text(textwrap.dedent(E2E_HELPER))
    (folder / "conftest.py").write_text("")
    for name, method, path in (ENDPOINTS * (count // len(ENDPOINTS) + 1))[:count]:
        test = E2E_TEST.format(name=name, method=method, path=path)
        (folder / f"test_{name}.py").write_text(textwrap.dedent(test))


def time_pytest(suite: Path, port: int) -> tuple[float, str]:
    env = {
        **os.environ,
        "GREENLOOP_BASE_URL": f"http://127.0.0.1:{port}",
        "GREENLOOP_CLIENT_TIMEOUT": "5",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    started = time.perf_counter()
    done = subprocess.run(
        [*argv, str(suite)], cwd=suite, env=env, capture_output=True, text=True, timeout=1800
    )
    elapsed = time.perf_counter() - started
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return elapsed, summary.strip("= ")


# --------------------------------------------------------------------------- report


def report(label: str, gate: tuple[float, str], runs: list[tuple[str, float, str]]) -> None:
    gate_s, verdict = gate
    print(f"\n## {label}")
    print(f"  greenloop gate (http+ws+tcp probes)   {gate_s:8.2f} s   {verdict}")
    for name, seconds, summary in runs:
        print(f"  plain pytest, {name:<24} {seconds:8.2f} s   {summary}")
        print(f"    -> gate is {seconds / gate_s:,.0f}x faster to a verdict")
    target = "met" if gate_s <= 2.0 else "MISSED"
    bound = PROBE_TIMEOUT_S + 0.5
    print(f"  verdict within 2 s: {target}; within largest probe timeout + 0.5 s "
          f"({bound:.1f} s): {'yes' if gate_s <= bound else 'NO'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["503", "blackhole", "both"], default="both")
    parser.add_argument("--tests", type=int, default=10, help="tests in the temp E2E suite")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, probe timeout "
          f"{PROBE_TIMEOUT_S:g} s, E2E client timeout 5 s with 1 retry")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gl-bench-") as tmp:
        folder = Path(tmp)
        suite = folder / "e2e"
        suite.mkdir()
        write_suite(suite, args.tests)
        started = time.perf_counter()
        store = Store.open(f"sqlite:///{folder / 'store.db'}")
        print(f"store open (once per run, not part of the verdict): "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip
        loop = Loop()
        if args.variant in ("503", "both"):
            server = loop.run(start_503_server())
            port = server.sockets[0].getsockname()[1]
            gate = time_gate(port, store)
            runs = [(f"{args.tests}-test E2E suite", *time_pytest(suite, port))]
            if DEMO_SUITE.is_dir():
                runs.append(("demo staging suite", *time_pytest(DEMO_SUITE, port)))
            report("backend returning 503", gate, runs)
            server.close()
        if args.variant in ("blackhole", "both"):
            hole = blackhole()
            port = hole.getsockname()[1]
            gate = time_gate(port, store)
            runs = [(f"{args.tests}-test E2E suite", *time_pytest(suite, port))]
            report("blackholed port (accepts, never answers)", gate, runs)
            hole.close()
        store.close()


if __name__ == "__main__":
    main()
