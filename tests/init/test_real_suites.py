"""From `pip install` to a trusted first run, on two real open-source suites (slow).

As a new user would: greenloop is pip-installed from this checkout into a virtualenv
of its own; each suite gets its own virtualenv with its own dependencies (so
`execution.python` is what runs it), its sdist from PyPI, a tests/INDEX.md written
here, and its own throwaway server:

- dogpile.cache 1.5.0, a caching library whose Redis and Valkey backend tests read
  DOGPILE_REDIS_PORT / DOGPILE_VALKEY_PORT (a redis-server of our own);
- pg8000 1.31.6, a pure-Python PostgreSQL driver whose conftest reads PGHOST / PGPORT
  (a PostgreSQL cluster of our own, initdb on a free port).

"Trusted" is checked independently of greenloop: every test a run calls not real
must still pass with the server stopped (it never needed it), and the tests it
trusted must not.

Downloads and virtualenvs are cached under $GREENLOOP_TEST_CACHE (default
~/.cache/greenloop-tests); no third-party code is committed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenloop.config import load_config
from greenloop.index import load_index

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("GREENLOOP_TEST_CACHE", "~/.cache/greenloop-tests")).expanduser()
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/nonexistent"))


def unavailable(why: str) -> None:
    if os.environ.get("GREENLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(why)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload, no-any-return]


class Locked:
    """One process at a time builds a cached thing (xdist workers share the cache)."""

    def __init__(self, name: str) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        self.file = (CACHE / f"{name}.lock").open("w")

    def __enter__(self) -> None:
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def sdist(name: str, version: str, into: Path) -> Path:
    """The project's source distribution from PyPI, unpacked under `into`."""
    folder = CACHE / "sdists"
    with Locked("sdists"):
        found = list(folder.glob(f"{name.replace('.', '_')}-{version}.tar.gz")) + list(
            folder.glob(f"{name}-{version}.tar.gz")
        )
        if not found:
            got = run(
                [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                 "-q", "-d", str(folder), f"{name}=={version}"],
                timeout=300,
            )  # fmt: skip
            found = list(folder.glob(f"*-{version}.tar.gz"))
            found = [f for f in found if f.name.lower().startswith(name.lower().replace(".", "_"))]
            if got.returncode != 0 or not found:
                unavailable(f"cannot download {name} {version}: {got.stderr.strip()[-300:]}")
    with tarfile.open(found[0]) as archive:
        archive.extractall(into, filter="data")
    return next(p for p in into.iterdir() if p.is_dir())


def venv(name: str, requirements: list[str]) -> Path:
    """A cached virtualenv with `requirements`; returns its python."""
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    folder = CACHE / "venvs" / f"{name}-{key}"
    python = folder / "bin" / "python"
    with Locked(f"venv-{name}"):
        if not (folder / "ready").exists():
            shutil.rmtree(folder, ignore_errors=True)
            made = run([sys.executable, "-m", "venv", str(folder)], timeout=120)
            got = run([str(python), "-m", "pip", "install", "-q", *requirements], timeout=900)
            if made.returncode or got.returncode:
                unavailable(f"cannot install {requirements}: {got.stderr.strip()[-300:]}")
            (folder / "ready").write_text("")
    return python


@pytest.fixture(scope="module")
def greenloop_cli() -> Path:
    """greenloop pip-installed from this checkout into a virtualenv of its own."""
    # Dependencies once per pyproject.toml; this checkout's own code every session.
    deps = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:8]
    python = venv(f"greenloop-{deps}", [str(REPO)])
    with Locked(f"venv-greenloop-{deps}"):
        got = run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
             str(REPO)],
            timeout=600,
        )  # fmt: skip
    assert got.returncode == 0, got.stderr
    return python.parent / "greenloop"


@pytest.fixture
def redis_server() -> Iterator[int]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="gl-suite-redis-"))
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port)
    yield port
    server.terminate()
    server.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


class PostgresCluster:
    """A throwaway PostgreSQL with trust auth on a free port (initdb + pg_ctl as postgres)."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            unavailable("PostgreSQL binaries or runuser are not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="gl-suite-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        made = self.as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                "--no-sync", "-E", "UTF8")  # fmt: skip
        if made.returncode:
            unavailable(f"initdb failed: {made.stderr.strip()[:200]}")

    def as_postgres(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run(["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args], timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.as_postgres("pg_ctl", "-D", str(self.data), "-o", options,
                         "-l", str(self.folder / "log"), "-w", "start")  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        self.as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def postgres_server() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.folder, ignore_errors=True)


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def collected(python: Path, tests_dir: Path, file: str, env: dict[str, str]) -> int:
    """pytest's own count for one file, independently of greenloop."""
    argv = [str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = run([*argv, "--rootdir", str(tests_dir), file], cwd=tests_dir, env=env, timeout=300)
    return sum(1 for line in done.stdout.splitlines() if line.startswith(file + "::"))


def passes_alone(python: Path, tests_dir: Path, nodeids: list[str], env: dict[str, str]) -> bool:
    argv = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
    done = run([*argv, "--rootdir", str(tests_dir), *nodeids], cwd=tests_dir, env=env, timeout=600)
    return done.returncode == 0


def greenloop_init(cli: Path, project: Path, tests: str, python: Path, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    done = run([str(cli), "init", tests, "--python", str(python)], cwd=project, env=env,
               timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return tomllib.loads((project / "greenloop.toml").read_text())


def greenloop_run(cli: Path, project: Path, out: str, env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    done = run([str(cli), "run", "--out", out, "--json", f"{out}/report.json", *args],
               cwd=project, env=env, timeout=1200)  # fmt: skip
    assert done.returncode in (0, 1, 4), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((project / out / "report.json").read_text())
    assert report["exit_code"] == done.returncode
    assert (project / out / "junit.xml").is_file()  # every output under --out
    return report


def check_index(project: Path, env: dict[str, str], expected: dict[str, tuple[int, float]]) -> None:
    """The config's index says what INDEX.md says."""
    old = dict(os.environ)
    os.environ.update(env)
    try:
        config = load_config(project / "greenloop.toml")
        entries = {e.path: (e.priority, e.mrr_at_risk_usd) for e in load_index(config)}
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert entries == expected


def not_real(report: dict) -> list[str]:  # type: ignore[type-arg]
    """Node ids the run judged not real (`authenticity_warnings` decide nothing)."""
    return sorted(f["nodeid"] for f in report["authenticity"])


# --------------------------------------------------------------------------- the suites


DOGPILE_INDEX = """\
# What our cache tests guard

| File | Priority | Revenue at risk | Area |
|------|----------|-----------------|------|
| cache/test_redis_backend.py | P1 | $12,000/mo | cache |
| cache/test_valkey_backend.py | P2 | 3k | cache |
"""


def test_dogpile_cache_redis_suite_from_install_to_green(
    tmp_path: Path, greenloop_cli: Path, redis_server: int
) -> None:
    project = sdist("dogpile.cache", "1.5.0", tmp_path)
    (project / "tests" / "INDEX.md").write_text(DOGPILE_INDEX)
    python = venv("dogpile", ["dogpile.cache==1.5.0", "redis>=5", "valkey", "pytest",
                              "pytest-xdist"])  # fmt: skip
    env = {**os.environ, "DOGPILE_REDIS_PORT": str(redis_server),
           "DOGPILE_VALKEY_PORT": str(redis_server)}  # fmt: skip

    raw = greenloop_init(greenloop_cli, project, "tests", python, env)
    text = (project / "greenloop.toml").read_text()
    assert [p["kind"] for p in raw["probes"]] == ["redis"]
    active = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any("example.com" in line or "min_duration_ms" in line for line in active)
    assert raw["execution"]["python"].endswith("/bin/python")
    check_index(project, env, {"cache/test_redis_backend.py": (1, 12000.0),
                               "cache/test_valkey_backend.py": (2, 3000.0)})  # fmt: skip
    smoke = collected(python, project / "tests", "cache/test_redis_backend.py", env)
    assert f"P1: 1 files, {smoke} tests" in text and smoke > 50

    # The first run, as init wrote the config (P1 only, to keep this test short; the
    # suite shares one Redis database between tests, so it runs in one worker).
    first = greenloop_run(greenloop_cli, project, "out", env, "--focus", "p1")
    flagged = not_real(first)
    failed = [t["nodeid"] for t in first["tests"] if t["outcome"] not in ("passed", "skipped")]
    assert not failed, failed
    # Each test it calls not real is in the class init named as patching a client with a
    # mock, with a ready keyword to leave it out (docs/getting-started.md uses it).
    assert flagged and {n.split("::")[1] for n in flagged} == {"RedisConnectionTest"}
    assert first["exit_code"] == 4 and first["verdict"] == "not_real"
    assert '# select = { priorities = [1], keyword = "not RedisConnectionTest" }' in text
    checks = {f["check"] for f in first["authenticity"]}
    assert checks == {"no_connection"}, checks

    # Trusted, checked without greenloop: what it flagged passes with no Redis there,
    # what it trusted does not.
    gone = {**env, "DOGPILE_REDIS_PORT": str(free_port())}
    tests_dir = project / "tests"
    assert passes_alone(python, tests_dir, flagged, gone)
    trusted = [t["nodeid"] for t in first["tests"] if "::RedisTest::" in t["nodeid"]][:3]
    assert len(trusted) == 3 and not passes_alone(python, tests_dir, trusted, gone)


PG8000_INDEX = """\
| Test file | Priority | MRR at risk | Category |
|-----------|----------|-------------|----------|
| native/test_copy.py | P1 | $20,000/mo | copy |
| native/test_prepared_statement.py | P1 | $4,000/mo | statements |
| dbapi/test_copy.py | P2 | $5k/mo | dbapi |
| legacy/test_prepared_statement.py | P3 | 1.5k | legacy |
"""


def test_pg8000_suite_first_run_is_trusted(
    tmp_path: Path, greenloop_cli: Path, postgres_server: PostgresCluster
) -> None:
    project = sdist("pg8000", "1.31.6", tmp_path)
    (project / "test" / "INDEX.md").write_text(PG8000_INDEX)
    python = venv("pg8000", ["pg8000==1.31.6", "pytest", "pytest-mock", "pytz"])
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(postgres_server.port)}

    raw = greenloop_init(greenloop_cli, project, "test", python, env)
    text = (project / "greenloop.toml").read_text()
    assert [p["kind"] for p in raw["probes"]] == ["postgres"]
    assert raw["environment"]["env"] == {"PGHOST": "${PGHOST:-127.0.0.1}",
                                         "PGPORT": "${PGPORT:-5432}"}  # fmt: skip
    check_index(project, env, {
        "native/test_copy.py": (1, 20000.0),
        "native/test_prepared_statement.py": (1, 4000.0),
        "dbapi/test_copy.py": (2, 5000.0),
        "legacy/test_prepared_statement.py": (3, 1500.0),
    })  # fmt: skip
    assert [p["select"] for p in raw["phases"]] == [{"priorities": [1]}, {"priorities": [2, 3]}]
    p1 = sum(collected(python, project / "test", f, env)
             for f in ("native/test_copy.py", "native/test_prepared_statement.py"))  # fmt: skip
    assert f"P1: 2 files, {p1} tests" in text

    first = greenloop_run(greenloop_cli, project, "out", env)
    assert first["exit_code"] == 0 and first["verdict"] == "green", not_real(first)
    ran = {t["nodeid"].split("::")[0] for t in first["tests"]}
    # The P3 phase did not sweep in the 40-odd files the index does not list.
    assert ran == {"native/test_copy.py", "native/test_prepared_statement.py",
                   "dbapi/test_copy.py", "legacy/test_prepared_statement.py"}  # fmt: skip

    # Trusted, checked without greenloop: with PostgreSQL stopped these tests fail.
    postgres_server.stop()
    sample = [t["nodeid"] for t in first["tests"] if t["outcome"] == "passed"][:3]
    assert not passes_alone(python, project / "test", sample, env)
    postgres_server.start()  # the fixture stops it again
