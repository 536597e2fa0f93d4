"""The whole `greenloop run` process beside plain pytest, healthy and in every outage.

    .venv/bin/python bench/bench_overhead.py [--rounds N] [--minute] [--states a,b] [--busy]

Generates a small E2E subject in a temporary folder and runs, interleaved,
median of N rounds, in each state:

- plain `python -m pytest tests` (what a person runs by hand), and
- `python -m greenloop.cli run -c run.toml` as a whole process
  (start-up, gate, three progressive phases, verify, triage, reports), the
  probes' `timeout_s` set per state (`--probe-timeout` in outages: what a hung
  dependency costs the gate; `--healthy-probe-timeout`, which costs nothing
  unless the machine is so busy that a healthy probe needs it).

Each figure is wall time and CPU time (user + sys of the process and what it
waited for), with the 1-minute load average when the state was measured.

The subject: an ASGI app under uvicorn over HTTPS (certificates from a CA of its
own) whose requests use a THROWAWAY PostgreSQL cluster and redis-server this
script starts on free ports (never the shared 5432/6379), and a pytest suite of
HTTP tests whose conftest.py connects to both at session start, like suites
that check their fixtures' backends (2 s timeouts). Files are priorities 1, 2
and 3: the config's smoke, critical and full phases; `app` depends on
`database` and `cache`.

States, the faults of the fault lab (docs/fault-lab.md) and of the field trials
(trials/field_trials.py), made on the real processes: `healthy`; `app-down`
(uvicorn stopped); `pg-down` (stopped), `pg-hung` (SIGSTOP), `pg-password`
(rotated on the server), `pg-connections` (every slot held), `pg-dns` (a host
under `.invalid`, for the probe and the tests); `redis-down`, `redis-hung`,
`redis-requirepass`; `tls-expired`, `tls-untrusted`, `tls-wrong-host` (the app
presents that certificate). Also `greenloop --help` beside `python -c pass`.

Targets (issue 16): every outage <= 2 s and never slower than plain pytest;
healthy <= plain + 1.0 s (~2 s suite) and <= 1.05x (`--minute`, a suite of
about a minute); `--help` < 0.3 s. Copy the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenloop.demo.realdeps import (
    DemoCertificates,
    PostgresServer,
    RedisServer,
    free_port,
)

APP = """
import asyncio, os
from urllib.parse import parse_qs

import psycopg
import redis.asyncio as aioredis

REDIS = aioredis.Redis.from_url(
    os.environ["BENCH_REDIS_URL"], socket_timeout=2, socket_connect_timeout=2
)
DSN = os.environ["BENCH_APP_DSN"]


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
            async with await psycopg.AsyncConnection.connect(DSN, connect_timeout=2) as conn:
                await conn.execute("SELECT 1")
    except Exception as exc:
        status, body = 503, repr(exc).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

CONFTEST = """
import os

import psycopg
import pytest
import redis

# Like many real suites: the backends the fixtures use are checked once, at session start.
CLIENT = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], socket_timeout=2)


@pytest.fixture(scope="session", autouse=True)
def backends():
    CLIENT.ping()
    with psycopg.connect(os.environ["BENCH_DSN"], connect_timeout=2) as conn:
        conn.execute("SELECT 1")
    return CLIENT
"""

TEST_FILE = """
import os

import httpx
import pytest

URL = os.environ["GREENLOOP_BASE_URL"]
CA = os.environ["BENCH_CA"]


@pytest.mark.parametrize("n", range({tests}))
def test_item(n):
    r = httpx.get(f"{{URL}}/item/{{n}}?delay={delay}", timeout=5, verify=CA)
    assert r.status_code == 200, r.text
"""

CONFIG = """
[environment]
name = "bench"
base_url = "{base_url}"
env = {{ BENCH_REDIS_URL = "{redis_url}", BENCH_DSN = "{dsn}", BENCH_CA = "{ca}" }}

[execution]
tests_dir = "tests"
workers = 1
reruns = 0

[[components]]
name = "database"

[[components]]
name = "cache"

[[components]]
name = "app"
depends_on = ["database", "cache"]

[[probes]]
name = "database"
component = "database"
kind = "postgres"
dsn = "{dsn}"
timeout_s = {probe_timeout}

[[probes]]
name = "cache"
component = "cache"
kind = "redis"
url = "{redis_url}"
timeout_s = {probe_timeout}

[[probes]]
name = "health"
component = "app"
kind = "http"
url = "{base_url}/health"
ca_file = "{ca}"
conditions = ["status == 200"]
timeout_s = {probe_timeout}

[[phases]]
name = "smoke"
needs = ["app"]
select = {{ priorities = [1] }}
min_pass_rate = 1.0

[[phases]]
name = "critical"
needs = ["app"]
select = {{ priorities = [2] }}

[[phases]]
name = "full"
needs = ["app"]
select = {{ priorities = [3] }}

[report]
out_dir = "out"

{index}
"""

STATES = (
    "healthy",
    "app-down",
    "pg-down",
    "pg-hung",
    "pg-password",
    "pg-connections",
    "pg-dns",
    "redis-down",
    "redis-hung",
    "redis-requirepass",
    "tls-expired",
    "tls-untrusted",
    "tls-wrong-host",
)


@dataclass
class Subject:
    """The generated app, suite and config, and the servers this script started."""

    root: Path
    postgres: PostgresServer
    redis: RedisServer
    certs: DemoCertificates
    app_port: int = field(default_factory=free_port)
    app: subprocess.Popen[bytes] | None = None
    db_host: str = "127.0.0.1"  # what the probe and the tests connect to (pg-dns changes it)
    held: list[Any] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.app_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BENCH_REDIS_URL": self.redis.url,
            "BENCH_DSN": self.postgres.dsn(host=self.db_host),
            "BENCH_APP_DSN": self.postgres.dsn(password=self.postgres.password),
            "BENCH_CA": str(self.certs.ca_file),
            "GREENLOOP_BASE_URL": self.base_url,
        }

    def start_app(self, certificate: str = "good") -> None:
        chain, key = self.certs.paths(certificate)
        self.app = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "app:app"),
                *("--port", str(self.app_port), "--log-level", "warning"),
                *("--ssl-certfile", str(chain), "--ssl-keyfile", str(key)),
            ],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _connects(self.app_port))

    def stop_app(self) -> None:
        if self.app is not None:
            self.app.terminate()
            self.app.wait(timeout=10)
            self.app = None

    def write_config(self, probe_timeout: float) -> None:
        template = (self.root / "greenloop.toml").read_text(encoding="utf-8")
        text = template.replace("{probe_timeout}", f"{probe_timeout:g}")
        text = text.replace("{dsn}", self.postgres.dsn(host=self.db_host))
        (self.root / "run.toml").write_text(text, encoding="utf-8")


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait_for(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("bench: a server did not start")
        time.sleep(0.05)


def write_subject(s: Subject, tests: int, delay: float) -> None:
    """The app, a suite of `tests` HTTP tests of `delay` s in 6 files, and the config."""
    root = s.root
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
    (root / "greenloop.toml").write_text(
        CONFIG.format(
            base_url=s.base_url,
            redis_url=s.redis.url,
            ca=s.certs.ca_file,
            index="\n".join(index),
            probe_timeout="{probe_timeout}",  # set per state by `compare`
            dsn="{dsn}",  # the host changes in pg-dns
        ),
        encoding="utf-8",
    )


@contextmanager
def subject(tests: int, delay: float) -> Iterator[Subject]:
    with tempfile.TemporaryDirectory(prefix="greenloop-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # PostgreSQL's own user must reach its folder inside
        s = Subject(
            root,
            postgres=PostgresServer(root / "postgres"),
            redis=RedisServer(),
            certs=DemoCertificates(root / "tls"),
        )
        write_subject(s, tests, delay)
        try:
            s.postgres.start()
            s.redis.start()
            s.start_app()
            yield s
        finally:
            s.stop_app()
            s.redis.stop()
            s.postgres.remove()


@contextmanager
def state(s: Subject, name: str) -> Iterator[None]:
    """Put the subject in an outage state, and back."""
    pg, cache = s.postgres, s.redis
    password = pg.password
    make: dict[str, Callable[[], None]] = {
        "healthy": lambda: None,
        "app-down": s.stop_app,
        "pg-down": pg.stop,
        "pg-hung": pg.pause,
        "pg-password": lambda: pg.rotate_password("rotated-by-the-bench"),
        "pg-connections": lambda: s.held.extend(pg.take_all_connections()),
        "pg-dns": lambda: setattr(s, "db_host", "db.bench.invalid"),
        "redis-down": cache.stop,
        "redis-hung": cache.pause,
        "redis-requirepass": lambda: cache.require_password("set-by-the-bench"),
        "tls-expired": lambda: (s.stop_app(), s.start_app("expired")),
        "tls-untrusted": lambda: (s.stop_app(), s.start_app("untrusted")),
        "tls-wrong-host": lambda: (s.stop_app(), s.start_app("wrong-host")),
    }
    undo: dict[str, Callable[[], None]] = {
        "app-down": s.start_app,
        "pg-down": lambda: (pg.start(), None)[1],
        "pg-hung": pg.resume,
        "pg-password": lambda: pg.sql(f"ALTER ROLE app PASSWORD '{password}'"),
        "pg-connections": lambda: [conn.close() for conn in s.held] and s.held.clear(),
        "pg-dns": lambda: setattr(s, "db_host", "127.0.0.1"),
        "redis-down": lambda: (cache.start(), None)[1],
        "redis-hung": cache.resume,
        "redis-requirepass": lambda: cache.require_password(None),
        "tls-expired": lambda: (s.stop_app(), s.start_app()),
        "tls-untrusted": lambda: (s.stop_app(), s.start_app()),
        "tls-wrong-host": lambda: (s.stop_app(), s.start_app()),
    }
    make[name]()
    try:
        yield
    finally:
        undo.get(name, lambda: None)()


@dataclass(frozen=True)
class Took:
    wall_s: float
    cpu_s: float  # user + sys of the process and the children it waited for


def timed(argv: list[str], s: Subject, expect: set[int]) -> Took:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=s.root, env=s.env(), capture_output=True, timeout=900)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in expect:
        sys.stderr.write(proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:])
        raise SystemExit(f"bench: {argv[2:4]} exited {proc.returncode}, expected {expect}")
    return Took(took, cpu)


@dataclass(frozen=True)
class Row:
    label: str
    plain: Took
    loop: Took
    load: float

    def verdict(self, healthy: bool, minute: bool) -> str:
        p, g = self.plain.wall_s, self.loop.wall_s
        if minute:
            return "met" if g <= 1.05 * p else "MISSED (<= 1.05x)"
        if healthy:
            return "met" if g <= p + 1.0 else "MISSED (<= plain + 1.0 s)"
        return "met" if g <= 2.0 and g <= p else "MISSED (<= 2 s and <= plain)"


def median_took(runs: list[Took]) -> Took:
    return Took(statistics.median(r.wall_s for r in runs), statistics.median(r.cpu_s for r in runs))


def compare(
    s: Subject, label: str, name: str, rounds: int, expect: set[int], probe_timeout: float
) -> Row:
    plain = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    loop = [sys.executable, "-m", "greenloop.cli", "run", "-c", "run.toml"]
    runs: dict[str, list[Took]] = {"plain": [], "loop": []}
    with state(s, name):
        s.write_config(probe_timeout)
        load = os.getloadavg()[0]
        for _ in range(rounds):
            runs["plain"].append(timed(plain, s, {0, 1}))
            runs["loop"].append(timed(loop, s, expect))
    return Row(label, median_took(runs["plain"]), median_took(runs["loop"]), load)


def cli_start(rounds: int) -> tuple[Took, Took]:
    def best(argv: list[str]) -> Took:
        runs = []
        for _ in range(rounds):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            runs.append(Took(time.perf_counter() - start, cpu))
        return median_took(runs)

    return best([sys.executable, "-c", "pass"]), best(
        [sys.executable, "-m", "greenloop.cli", "--help"]
    )


HEADER = (
    f"{'state':26} {'plain wall':>10} {'cpu':>6} {'greenloop wall':>14} {'cpu':>6} "
    f"{'diff':>7} {'ratio':>6} {'load':>5}  target"
)


def print_row(row: Row, *, healthy: bool = False, minute: bool = False) -> None:
    p, g = row.plain, row.loop
    print(
        f"{row.label:26} {p.wall_s:8.2f} s {p.cpu_s:5.2f}s {g.wall_s:12.2f} s {g.cpu_s:5.2f}s "
        f"{g.wall_s - p.wall_s:+6.2f}s {g.wall_s / p.wall_s:5.2f}x {row.load:5.1f}  "
        f"{row.verdict(healthy, minute)}",
        flush=True,
    )


def bytecode_note() -> str:
    """Whether greenloop's own modules start from compiled bytecode, as after a wheel
    install or `make` (which runs compileall); else every run compiles them again."""
    import importlib.util

    import greenloop

    sources = list(Path(greenloop.__file__).parent.rglob("*.py"))
    missing = sum(
        1
        for src in sources
        if not Path(importlib.util.cache_from_source(str(src))).is_file()
        or Path(importlib.util.cache_from_source(str(src))).stat().st_mtime < src.stat().st_mtime
    )
    if not missing:
        return f"greenloop bytecode: all {len(sources)} modules compiled"
    unwritten = " (PYTHONDONTWRITEBYTECODE: never written)" if sys.dont_write_bytecode else ""
    return (
        f"greenloop bytecode: {missing} of {len(sources)} modules not compiled{unwritten}; "
        "run `python -m compileall -q src` for the figures a wheel install gets"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--states", default=",".join(STATES), help="comma-separated; see above")
    parser.add_argument("--minute", action="store_true", help="add the ~1 minute suite")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="a CPU burner per core runs during every measurement (a loaded machine)",
    )
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
    names = [n for n in args.states.split(",") if n]
    unknown = sorted(set(names) - set(STATES))
    if unknown:
        raise SystemExit(
            f"bench: unknown state(s) {', '.join(unknown)} (known: {', '.join(STATES)})"
        )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
    print(bytecode_note())
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    bare, helped = cli_start(max(5, args.rounds))
    print(
        f"{'greenloop --help':26} {helped.wall_s:6.2f} s wall {helped.cpu_s:.2f} s cpu   "
        f"(python -c pass {bare.wall_s:.2f} s; target < 0.30 s: "
        f"{'met' if helped.wall_s < 0.3 else 'MISSED'})"
    )
    print(
        f"probes' timeout_s: {args.healthy_probe_timeout:g} s healthy, "
        f"{args.probe_timeout:g} s in outages; median of {args.rounds} round(s), "
        "wall and CPU (user+sys) time"
    )
    print(HEADER)
    with contextlib.ExitStack() as busy:
        if args.busy:
            busy.enter_context(cpu_burners(os.cpu_count() or 2))
            print(f"busy: {os.cpu_count() or 2} CPU burner(s) running throughout")
        measure(args, names)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def measure(args: argparse.Namespace, names: list[str]) -> None:
    with subject(tests=24, delay=0.04) as s:
        for name in names:
            healthy = name == "healthy"
            limit = args.healthy_probe_timeout if healthy else args.probe_timeout
            expect = {0} if healthy else {3}
            row = compare(s, f"~2 s suite, {name}", name, args.rounds, expect, limit)
            print_row(row, healthy=healthy)
    if args.minute:
        with subject(tests=240, delay=0.2) as s:
            rounds = max(1, args.rounds // 2)
            row = compare(
                s, "~1 min suite, healthy", "healthy", rounds, {0}, args.healthy_probe_timeout
            )
            print_row(row, minute=True)


def _burn(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


@contextmanager
def cpu_burners(n: int, limit_s: float = 3600.0) -> Iterator[None]:
    """`n` processes spinning on the CPU (bounded by `limit_s`, in case this one dies)."""
    import multiprocessing

    stop_at = time.monotonic() + limit_s
    procs = [multiprocessing.Process(target=_burn, args=(stop_at,), daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


if __name__ == "__main__":
    main()
