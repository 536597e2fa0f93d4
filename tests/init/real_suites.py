"""Helpers for the real-suite tests: greenloop pip-installed, sdists, venvs, servers.

From `pip install` to a trusted first run, on two real open-source suites (slow).

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

from greenloop.index import load_index
from greenloop.load import load_config

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


def venv(name: str, requirements: list[str], key: str | None = None) -> Path:
    """A cached virtualenv with `requirements` (cached by `key`, else by them); its python."""
    key = key or hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
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


def install_greenloop() -> Path:
    """greenloop pip-installed from this checkout into a virtualenv of its own."""
    # Dependencies once per pyproject.toml; this checkout's own code every session.
    deps = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:8]
    python = venv("greenloop", [str(REPO)], key=deps)  # any checkout with this pyproject
    with Locked("venv-greenloop"):
        got = run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
             str(REPO)],
            timeout=600,
        )  # fmt: skip
    assert got.returncode == 0, got.stderr
    return python.parent / "greenloop"


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
    """pytest's own count for one file, independently of greenloop.

    The suite's addopts may hold -v: -qqq still leaves pytest's "file: count" line.
    """
    argv = [str(python), "-m", "pytest", "--collect-only", "-qqq", "-p", "no:cacheprovider"]
    done = run([*argv, "--rootdir", str(tests_dir), file], cwd=tests_dir, env=env, timeout=300)
    counts = [line.rsplit(": ", 1) for line in done.stdout.splitlines() if line.startswith(file)]
    return sum(int(n) for _, n in counts if n.isdigit())


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
