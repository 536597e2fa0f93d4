"""The whole `greenloop run` process beside plain pytest, healthy and in outages.

    .venv/bin/python bench/bench_overhead.py [--rounds N] [--minute] [--states a,b]

Generates a small E2E subject in a temporary folder and runs, interleaved,
median of N rounds, in each state:

- plain `python -m pytest tests` (what a person runs by hand), and
- `python -m greenloop.cli run -c run.toml` as a whole process
  (start-up, gate, three progressive phases, verify, triage, reports), the
  probes' `timeout_s` set per state (`--probe-timeout` in outages: what a hung
  dependency costs the gate; `--healthy-probe-timeout`, which costs nothing
  unless the machine is so busy that a healthy probe needs it).

The subject: an ASGI app under uvicorn on 127.0.0.1 whose requests use a
THROWAWAY redis-server this script starts on a free port (never the shared
6379), and a pytest suite of HTTP tests whose conftest.py connects to that
redis at session start, like suites that check their fixtures' backends.
Files are priorities 1, 2 and 3: the config's smoke, critical and full phases.

States: `healthy`; `app-down` (uvicorn stopped); `redis-down` (redis-server
stopped); `redis-hung` (redis-server SIGSTOPped: connections are accepted by
the kernel and never answered). Also `greenloop --help` beside `python -c pass`.

`--minute` adds a suite of about a minute (healthy only). Prints the load
average before and after. Copy the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

APP = """
import asyncio, os
from urllib.parse import parse_qs

import redis.asyncio as aioredis

REDIS = aioredis.Redis(
    port=int(os.environ["BENCH_REDIS_PORT"]), socket_timeout=2, socket_connect_timeout=2
)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    status, body = 200, b"ok"
    try:
        if scope["path"].startswith("/item/"):
            query = parse_qs(scope["query_string"].decode())
            await asyncio.sleep(float(query.get("delay", ["0"])[0]))
            await REDIS.incr("hits")
        else:
            await REDIS.ping()
    except Exception as exc:
        status, body = 503, repr(exc).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

CONFTEST = """
import os

import pytest
import redis

# Like many real suites: the backend the fixtures use is checked once, at session start.
CLIENT = redis.Redis(port=int(os.environ["BENCH_REDIS_PORT"]), socket_timeout=5)


@pytest.fixture(scope="session", autouse=True)
def backend():
    CLIENT.ping()
    return CLIENT
"""

TEST_FILE = """
import os

import httpx
import pytest

URL = os.environ["GREENLOOP_BASE_URL"]


@pytest.mark.parametrize("n", range({tests}))
def test_item(n):
    r = httpx.get(f"{{URL}}/item/{{n}}?delay={delay}", timeout=5)
    assert r.status_code == 200, r.text
"""

CONFIG = """
[environment]
name = "bench"
base_url = "{base_url}"
env = {{ BENCH_REDIS_PORT = "{redis_port}" }}

[execution]
tests_dir = "tests"
workers = 1
reruns = 0

[[components]]
name = "redis"

[[components]]
name = "app"
depends_on = ["redis"]

[[probes]]
name = "redis"
component = "redis"
kind = "redis"
url = "redis://127.0.0.1:{redis_port}/0"
timeout_s = {probe_timeout}

[[probes]]
name = "health"
component = "app"
kind = "http"
url = "{base_url}/health"
conditions = ["status == 200"]
timeout_s = {probe_timeout}

[[phases]]
name = "smoke"
needs = ["app", "redis"]
select = {{ priorities = [1] }}
min_pass_rate = 1.0

[[phases]]
name = "critical"
needs = ["app", "redis"]
select = {{ priorities = [2] }}

[[phases]]
name = "full"
needs = ["app", "redis"]
select = {{ priorities = [3] }}

[report]
out_dir = "out"

{index}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Subject:
    """The generated app, suite and config, and the processes this script started."""

    root: Path
    redis_port: int
    app_port: int
    redis: subprocess.Popen[bytes] | None = None
    app: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BENCH_REDIS_PORT": str(self.redis_port),
            "GREENLOOP_BASE_URL": self.base_url,
        }

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _connects(self.redis_port))

    def start_app(self) -> None:
        self.app = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "app:app"),
                *("--port", str(self.app_port), "--log-level", "warning"),
            ],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _healthy(self.base_url))

    def stop(self, which: str) -> None:
        proc = getattr(self, which)
        if proc is not None:
            if which == "redis":
                proc.send_signal(signal.SIGCONT)  # in case it was stopped
            proc.terminate()
            proc.wait(timeout=10)
            setattr(self, which, None)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_for(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("bench: a server did not start")
        time.sleep(0.05)


def write_subject(root: Path, tests: int, delay: float, redis_port: int, app_port: int) -> None:
    """The app, a suite of `tests` HTTP tests of `delay` s in 6 files, and the config."""
    (root / "app.py").write_text(APP, encoding="utf-8")
    suite = root / "tests"
    suite.mkdir()
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST), encoding="utf-8")
    files = 6
    index = []
    for i in range(files):
        name = f"test_area{i}.py"
        count = tests // files + (1 if i < tests % files else 0)
        text = TEST_FILE.format(tests=count, delay=delay)
        (suite / name).write_text(textwrap.dedent(text), encoding="utf-8")
        priority = 1 if i == 0 else 2 if i < 3 else 3
        index.append(f'[[index.files]]\npath = "tests/{name}"\npriority = {priority}\n')
    base_url = f"http://127.0.0.1:{app_port}"
    (root / "greenloop.toml").write_text(
        CONFIG.format(
            base_url=base_url,
            redis_port=redis_port,
            index="\n".join(index),
            probe_timeout="{probe_timeout}",  # set per state by `compare`
        ),
        encoding="utf-8",
    )


@contextmanager
def subject(tests: int, delay: float) -> Iterator[Subject]:
    with tempfile.TemporaryDirectory(prefix="greenloop-bench-") as tmp:
        s = Subject(Path(tmp), redis_port=free_port(), app_port=free_port())
        write_subject(s.root, tests, delay, s.redis_port, s.app_port)
        try:
            s.start_redis()
            s.start_app()
            yield s
        finally:
            s.stop("app")
            s.stop("redis")


@contextmanager
def state(s: Subject, name: str) -> Iterator[None]:
    """Put the subject in an outage state, and back."""
    if name == "app-down":
        s.stop("app")
    elif name == "redis-down":
        s.stop("redis")
    elif name == "redis-hung":
        assert s.redis is not None
        s.redis.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        if name == "app-down":
            s.start_app()
        elif name == "redis-down":
            s.start_redis()
        elif name == "redis-hung" and s.redis is not None:
            s.redis.send_signal(signal.SIGCONT)


def timed(argv: list[str], s: Subject, expect: set[int]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=s.root, env=s.env(), capture_output=True, timeout=900)
    took = time.perf_counter() - start
    if proc.returncode not in expect:
        sys.stderr.write(proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:])
        raise SystemExit(f"bench: {argv[2:4]} exited {proc.returncode}, expected {expect}")
    return took


def compare(
    s: Subject, name: str, rounds: int, expect: set[int], probe_timeout: float
) -> tuple[float, float]:
    plain = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    loop = [sys.executable, "-m", "greenloop.cli", "run", "-c", "run.toml"]
    template = (s.root / "greenloop.toml").read_text(encoding="utf-8")
    text = template.replace("{probe_timeout}", f"{probe_timeout:g}")
    (s.root / "run.toml").write_text(text, encoding="utf-8")
    times: dict[str, list[float]] = {"plain": [], "loop": []}
    with state(s, name):
        for _ in range(rounds):
            times["plain"].append(timed(plain, s, {0, 1}))
            times["loop"].append(timed(loop, s, expect))
    p, g = statistics.median(times["plain"]), statistics.median(times["loop"])
    return p, g


def cli_start(rounds: int) -> tuple[float, float]:
    def best(argv: list[str]) -> float:
        runs = []
        for _ in range(rounds):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            runs.append(time.perf_counter() - start)
        return statistics.median(runs)

    bare = best([sys.executable, "-c", "pass"])
    helped = best([sys.executable, "-m", "greenloop.cli", "--help"])
    return bare, helped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--states", default="healthy,app-down,redis-down,redis-hung")
    parser.add_argument("--minute", action="store_true", help="add the ~1 minute suite")
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=1.0,
        help="probes' timeout_s in outage states (what a hung dependency costs the gate)",
    )
    parser.add_argument(
        "--healthy-probe-timeout",
        type=float,
        default=3.0,
        help="probes' timeout_s when healthy (costs nothing unless a busy machine needs it)",
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    bare, helped = cli_start(max(5, args.rounds))
    print(
        f"{'greenloop --help':34} {helped:6.2f} s   (python -c pass {bare:.2f} s; target < 0.30 s)"
    )
    expect = {"healthy": {0}, "app-down": {3}, "redis-down": {3}, "redis-hung": {3}}
    print(
        f"probes' timeout_s: {args.healthy_probe_timeout:g} s healthy, "
        f"{args.probe_timeout:g} s in outages"
    )
    print(f"{'state':22} {'plain pytest':>12} {'greenloop run':>14} {'diff':>8} {'ratio':>7}")
    with subject(tests=24, delay=0.04) as s:
        for name in args.states.split(","):
            limit = args.healthy_probe_timeout if name == "healthy" else args.probe_timeout
            p, g = compare(s, name, args.rounds, expect[name], limit)
            print(
                f"{'~2 s suite, ' + name:22} {p:10.2f} s {g:12.2f} s {g - p:+7.2f}s {g / p:6.2f}x"
            )
    if args.minute:
        with subject(tests=240, delay=0.2) as s:
            p, g = compare(s, "healthy", max(1, args.rounds // 2), {0}, args.healthy_probe_timeout)
            print(
                f"{'~1 min suite, healthy':22} {p:10.2f} s {g:12.2f} s {g - p:+7.2f}s {g / p:6.2f}x"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
