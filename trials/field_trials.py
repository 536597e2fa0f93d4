#!/usr/bin/env python3
"""Field trials: greenloop on open-source test suites nobody here wrote, against real servers.

For each suite it downloads the sdist (tests included) into a cache folder, writes a
greenloop.toml as a new user would, starts a THROWAWAY server of its own (redis-server or
initdb + pg_ctl on a free loopback port; never the shared 5432 / 6379 ones) and runs
`greenloop run` in each state:

    healthy   the server is fine, the machine quiet
    loaded    the server is fine, both cores busy (a bounded CPU burner per core)
    down      the server is not running
    hung      the server is stopped with SIGSTOP
    auth      the server wants credentials the config does not have
    tls       the server only speaks TLS (Redis) / only accepts TLS (PostgreSQL)
    dns       the config names a host that does not resolve

and, for healthy and loaded, plain pytest over the same files for the wall time beside it.
Fault states run twice: as configured (the health gate probes first) and with
`--no-gate`-style phases (no `needs`), so the tests themselves meet the fault.

    python trials/field_trials.py                       # every suite, every state
    python trials/field_trials.py --suite dataset --state healthy --state down
    python trials/field_trials.py --json trials.json    # rows as JSON too

Needs: redis-server, /usr/lib/postgresql/*/bin, openssl, pip (PyPI). Nothing of the
suites is committed: they live in --cache (default ~/.cache/greenloop-trials).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATES = ("healthy", "loaded", "down", "hung", "auth", "tls", "dns")
FAULTS = ("down", "hung", "auth", "tls", "dns")
PASSWORD = "trial-pw"
BAD_HOST = "greenloop-trial.invalid"  # .invalid never resolves (RFC 6761)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1."""
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


@dataclass
class Server:
    """A throwaway server this script started (and the only one it ever signals)."""

    kind: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.pid is not None:
            for _ in range(200):
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        self.pid = None
        self.proc = None

    def sigstop(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)


def start_redis(folder: Path, *, password: str | None = None, tls: bool = False) -> Server:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(folder), "--daemonize", "no"]
    if tls:
        cert, key = self_signed(folder)
        argv += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert)]
        argv += ["--tls-key-file", str(key), "--tls-auth-clients", "no"]
    else:
        argv += ["--port", str(port)]
    if password:
        argv += ["--requirepass", password]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_listening(port)
    return Server("redis", port, folder, proc=proc, pid=proc.pid)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise SystemExit("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def _pg_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        for p in [path, *path.rglob("*")]:
            shutil.chown(p, "postgres", "postgres")


def pg_cluster(folder: Path) -> Path:
    """An initdb'd cluster (superuser postgres, password auth), made once and copied per state."""
    template = folder / "template"
    if not (template / "PG_VERSION").exists():
        shutil.rmtree(template, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix="trial-initdb-"))
        (scratch / "pw.txt").write_text(PASSWORD + "\n")
        _own(scratch)
        subprocess.run(
            _pg_user(
                [
                    str(_pg_bin() / "initdb"),
                    "-D",
                    str(scratch / "data"),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={scratch / 'pw.txt'}",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(scratch / "data", template)
        shutil.rmtree(scratch, ignore_errors=True)
    return template


def start_postgres(folder: Path, template: Path, *, tls: bool = False) -> Server:
    data = folder / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(template, data)
    data.chmod(0o700)
    port = free_port()
    conf = [
        "listen_addresses = '127.0.0.1'",
        f"port = {port}",
        f"unix_socket_directories = '{folder}'",
        "fsync = off",
        "max_connections = 60",
    ]
    hba = "host all all 127.0.0.1/32 scram-sha-256\n"
    if tls:
        cert, key = self_signed(data)
        conf += ["ssl = on", f"ssl_cert_file = '{cert}'", f"ssl_key_file = '{key}'"]
        hba = "hostssl all all 127.0.0.1/32 scram-sha-256\n"  # plain connections refused
    with (data / "postgresql.conf").open("a") as f:
        f.write("\n".join(conf) + "\n")
    (data / "pg_hba.conf").write_text("local all all scram-sha-256\n" + hba)
    _own(folder)
    subprocess.run(
        _pg_user(
            [
                str(_pg_bin() / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "pg.log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    _wait_listening(port)
    return Server("postgres", port, folder, pid=pid)


def _wait_listening(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"throwaway server on port {port} did not start")


# --------------------------------------------------------------------------- suites


@dataclass(frozen=True)
class Target:
    """Where the suite's tests are told to go, and how."""

    host: str
    port: int
    password: str
    tls: bool = False


@dataclass(frozen=True)
class Suite:
    name: str
    requirement: str  # pip requirement of the sdist
    server: str  # redis | postgres
    files: tuple[str, ...]  # select.files, relative to the unpacked sdist
    index: tuple[str, ...] = ()  # test modules not named test_*.py (listed in the index)
    deps: tuple[str, ...] = ()  # test-time packages greenloop's environment lacks
    install: bool = False  # a src layout whose tests need the package installed (metadata)
    pytest_args: tuple[str, ...] = ()
    env: Callable[[Target], dict[str, str]] = field(default=lambda t: {})
    count_hint: str = ""

    @property
    def folder(self) -> str:
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_')}-{version}"


def _walrus_env(t: Target) -> dict[str, str]:
    return {"WALRUS_REDIS_HOST": t.host, "WALRUS_REDIS_PORT": str(t.port)}


def _pg8000_env(t: Target) -> dict[str, str]:
    return {"PGHOST": t.host, "PGPORT": str(t.port), "PGPASSWORD": t.password}


def _dataset_env(t: Target) -> dict[str, str]:
    url = f"postgresql+psycopg://postgres:{t.password}@{t.host}:{t.port}/postgres"
    return {"DATABASE_URL": url}


WALRUS_MODULES = (
    "autocomplete",
    "cache",
    "containers",
    "counter",
    "database",
    "fts",
    "graph",
    "lock",
    "models",
    "rate_limit",
    "streams",
)

SUITES = {
    s.name: s
    for s in (
        Suite(
            name="dataset",
            requirement="dataset==2.0.0",
            server="postgres",
            files=("test",),
            env=_dataset_env,
        ),
        Suite(
            name="walrus",
            requirement="walrus==0.9.8",
            server="redis",
            files=tuple(f"walrus/tests/{m}.py" for m in WALRUS_MODULES),
            index=tuple(f"walrus/tests/{m}.py" for m in WALRUS_MODULES),
            env=_walrus_env,
        ),
        Suite(
            name="pg8000",
            requirement="pg8000==1.31.6",
            server="postgres",
            # The auth/ folders need users and pg_hba rules set up for each auth method.
            files=("test/dbapi/test_*.py", "test/native/test_*.py", "test/legacy/test_*.py"),
            # Its own dependencies, and its tests' (pytz, pytest-mock's `mocker`,
            # pytest-benchmark's `benchmark`), without a second pytest beside greenloop's.
            deps=(
                "scramp==1.5.0",
                "asn1crypto",
                "python-dateutil",
                "six",
                "pytz",
                "pytest-mock",
                "pytest-benchmark",
                "py-cpuinfo",
            ),
            pytest_args=("--benchmark-disable",),  # run each benchmark once, as a test
            install=True,
            env=_pg8000_env,
        ),
    )
}


def fetch(suite: Suite, cache: Path) -> Path:
    """The unpacked sdist (downloaded once with pip)."""
    src = cache / "src" / suite.folder
    if src.is_dir():
        return src
    downloads = cache / "sdists"
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-binary",
            ":all:",
            "--no-deps",
            suite.requirement,
            "-d",
            str(downloads),
        ],
        check=True,
    )
    archive = next(downloads.glob(f"{suite.folder}.tar.gz"), None) or next(
        downloads.glob(f"{suite.requirement.split('==')[0]}-*.tar.gz")
    )
    with tarfile.open(archive) as tar:
        tar.extractall(cache / "src", filter="data")
    return src


def site_packages(suite: Suite, cache: Path) -> Path | None:
    """The suite's extra test-time packages, installed once into their own folder."""
    if not suite.deps and not suite.install:
        return None
    site = cache / "site" / suite.name
    packages = [*suite.deps, *([str(fetch(suite, cache))] if suite.install else [])]
    done = site / ".done"
    if not done.exists() or done.read_text() != "\n".join(packages):
        shutil.rmtree(site, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(site),
                *packages,
            ],
            check=True,
        )
        done.write_text("\n".join(packages))
    return site


def python_path(suite: Suite, src: Path, site: Path | None) -> dict[str, str]:
    """PYTHONPATH for the suite's extra packages (and itself, installed), if it needs one."""
    return {"PYTHONPATH": str(site)} if site else {}


# --------------------------------------------------------------------------- config


def toml_str(value: str) -> str:
    return json.dumps(value)


def write_config(
    run_dir: Path,
    suite: Suite,
    src: Path,
    target: Target,
    site: Path | None,
    gate: bool,
    state: str,
) -> Path:
    """greenloop.toml as a new user writes it for this suite (docs/configuration.md)."""
    env = suite.env(target)
    env.update(python_path(suite, src, site))
    env_line = ", ".join(f"{k} = {toml_str(v)}" for k, v in env.items())
    if suite.server == "redis":
        scheme = "rediss" if target.tls else "redis"
        probe = f'kind = "redis"\nurl = "{scheme}://{target.host}:{target.port}/0"\n' + (
            f'password = "{target.password}"\n' if target.password else ""
        )
    else:
        dsn = f"postgresql://postgres:{target.password}@{target.host}:{target.port}/postgres"
        probe = f'kind = "postgres"\ndsn = "{dsn}"\n'
    files = ", ".join(toml_str(f) for f in suite.files)
    index = "".join(
        f"\n[[index.files]]\npath = {toml_str(str(src / p))}\npriority = 2\n"
        f'category = "{suite.name}"\n'
        for p in suite.index
    )
    # Without the gate (to see the tests meet the fault) there is nothing to probe first.
    gate_tables = f"""[gate]
wait_timeout_s = 5

[[components]]
name = "{suite.server}"

[[probes]]
name = "{suite.server}"
component = "{suite.server}"
{probe}timeout_s = 2
"""
    needs = f'needs = ["{suite.server}"]\n' if gate else ""
    text = f"""# greenloop.toml for {suite.name}'s own test suite ({suite.requirement}), trial run.
[environment]
name = "trial-{suite.name}"
env = {{ {env_line} }}

[execution]
tests_dir = {toml_str(str(src))}
target_hosts = ["{target.host}:{target.port}"]
test_timeout_s = 60
phase_timeout_s = {90 if state == "hung" and not gate else 300}
reruns = 1
pytest_args = [{", ".join(toml_str(a) for a in suite.pytest_args)}]

{gate_tables if gate else ""}
[[phases]]
name = "suite"
{needs}select = {{ files = [{files}] }}
{index}
[tracker]
kind = "local"
"""
    config = run_dir / "greenloop.toml"
    config.write_text(text)
    return config


# --------------------------------------------------------------------------- running


def burn(stop_at: float) -> None:
    """Keep one core busy until stop_at (monotonic); bounded so it cannot outlive the trial."""
    x = 0
    while time.monotonic() < stop_at:
        x += 1


@contextmanager
def cpu_burners(n: int, limit_s: float) -> Iterator[None]:
    stop_at = time.monotonic() + limit_s
    procs = [multiprocessing.Process(target=burn, args=(stop_at,), daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


@dataclass
class Row:
    suite: str
    state: str
    gate: bool
    exit_code: int
    verdict: str
    outcomes: dict[str, int]
    clusters: list[str]  # "category/component (n)"
    strong: int  # authenticity findings that changed the verdict
    weak: int  # authenticity warnings
    checks: list[str]
    wall_s: float
    pytest_wall_s: float | None = None
    pytest_exit: int | None = None


def run_greenloop(config: Path, run_dir: Path) -> tuple[int, dict[str, object], float]:
    report = run_dir / "report.json"
    report.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GREENLOOP_"))}
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "greenloop.cli",
            "run",
            "-c",
            str(config),
            "--json",
            str(report),
            "--out",
            str(run_dir / "out"),
        ],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.monotonic() - started
    (run_dir / "greenloop.log").write_text(proc.stdout + proc.stderr)
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, data, wall


def run_plain_pytest(
    suite: Suite, src: Path, target: Target, site: Path | None
) -> tuple[int, float]:
    """The same files with plain pytest, for the wall time beside greenloop's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GREENLOOP_"))}
    env.update(suite.env(target))
    env.update(python_path(suite, src, site))
    files = sorted({str(p.relative_to(src)) for f in suite.files for p in src.glob(f)})
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *suite.pytest_args,
            *files,
        ],
        cwd=src,
        env=env,
        capture_output=True,
        timeout=900,
    )
    return proc.returncode, time.monotonic() - started


def summarize(suite: str, state: str, gate: bool, code: int, report: dict, wall: float) -> Row:
    tests = report.get("tests", []) if report else []
    outcomes = Counter(str(t.get("outcome")) for t in tests)  # type: ignore[union-attr]
    clusters = [
        f"{c['category']}/{c['root_cause']['component'] or '-'} ({c['count']})"  # type: ignore[index]
        for c in report.get("clusters", [])  # type: ignore[union-attr]
    ]
    strong = report.get("authenticity", []) if report else []
    weak = report.get("authenticity_warnings", []) if report else []
    checks = sorted({f"{f['check']}" for f in [*strong, *weak]})  # type: ignore[index]
    return Row(
        suite=suite,
        state=state,
        gate=gate,
        exit_code=code,
        verdict=str(report.get("verdict", "?")) if report else "?",
        outcomes=dict(outcomes),
        clusters=clusters,
        strong=len(strong),  # type: ignore[arg-type]
        weak=len(weak),  # type: ignore[arg-type]
        checks=checks,
        wall_s=round(wall, 1),
    )


def run_state(suite: Suite, state: str, cache: Path, work: Path, *, gate: bool, plain: bool) -> Row:
    src = fetch(suite, cache)
    site = site_packages(suite, cache)
    run_dir = work / suite.name / (state if gate else f"{state}-nogate")
    run_dir.mkdir(parents=True, exist_ok=True)
    server_dir = Path(tempfile.mkdtemp(prefix=f"trial-{suite.name}-{state}-"))
    server: Server | None = None
    try:
        host, password = "127.0.0.1", PASSWORD
        if suite.server == "redis":
            required = PASSWORD if state == "auth" else None
            server = start_redis(server_dir / "redis", password=required, tls=state == "tls")
            password = ""  # the user's suite and probe are written for a server without AUTH
        else:
            template = pg_cluster(cache / "pg")
            server = start_postgres(server_dir, template, tls=state == "tls")
            if state == "auth":
                password = "not-the-password"
        port = server.port
        if state == "down":
            server.stop()
        elif state == "hung":
            server.sigstop()
        elif state == "dns":
            host = BAD_HOST
        target = Target(host, port, password, tls=False)
        config = write_config(run_dir, suite, src, target, site, gate, state)
        if state == "loaded":
            with cpu_burners(os.cpu_count() or 2, limit_s=900):
                code, report, wall = run_greenloop(config, run_dir)
                pytest_result = run_plain_pytest(suite, src, target, site) if plain else None
        else:
            code, report, wall = run_greenloop(config, run_dir)
            pytest_result = run_plain_pytest(suite, src, target, site) if plain else None
        row = summarize(suite.name, state, gate, code, report, wall)
        if pytest_result is not None:
            row.pytest_exit, pytest_wall = pytest_result
            row.pytest_wall_s = round(pytest_wall, 1)
        return row
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(server_dir, ignore_errors=True)


def markdown(rows: list[Row]) -> str:
    head = (
        "| suite | state | gate | exit | verdict | tests | clusters (category/component) "
        "| not-real findings | warnings | greenloop s | pytest s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in rows:
        tests = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())) or "none"
        checks = f" ({', '.join(r.checks)})" if r.checks else ""
        lines.append(
            f"| {r.suite} | {r.state} | {'yes' if r.gate else 'no'} | {r.exit_code} | {r.verdict} "
            f"| {tests} | {'; '.join(r.clusters) or '-'} | {r.strong}{checks if r.strong else ''} "
            f"| {r.weak}{checks if r.weak and not r.strong else ''} | {r.wall_s} "
            f"| {'' if r.pytest_wall_s is None else r.pytest_wall_s} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append", choices=sorted(SUITES))
    parser.add_argument("--state", action="append", choices=STATES)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "greenloop-trials")
    parser.add_argument("--work", type=Path, default=None, help="run folders (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--no-pytest", action="store_true", help="skip the plain pytest runs")
    parser.add_argument(
        "--gate-only", action="store_true", help="fault states only as configured (with the gate)"
    )
    args = parser.parse_args(argv)
    suites = [SUITES[s] for s in (args.suite or SUITES)]
    states = args.state or list(STATES)
    work = args.work or Path(tempfile.mkdtemp(prefix="greenloop-trials-"))
    print(f"# load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}; work: {work}", flush=True)
    rows: list[Row] = []
    for suite in suites:
        for state in states:
            variants = [True] if state not in FAULTS or args.gate_only else [True, False]
            for gate in variants:
                plain = state in ("healthy", "loaded") and not args.no_pytest
                row = run_state(suite, state, args.cache, work, gate=gate, plain=plain)
                rows.append(row)
                print(markdown([row]).splitlines()[-1], flush=True)
    print()
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    false_alarms = [r for r in rows if r.state in ("healthy", "loaded") and (r.strong or r.weak)]
    return 1 if false_alarms else 0


if __name__ == "__main__":
    sys.exit(main())
