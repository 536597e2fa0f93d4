"""Throwaway PostgreSQL and Redis servers for `greenloop demo --real-deps` and the fault lab.

Each server runs from the machine's own binaries (PostgreSQL's `initdb`/`pg_ctl` from
/usr/lib/postgresql/*/bin or PATH, `redis-server` from PATH) in a folder of its own, on
a free loopback port, and only the process started here is ever stopped, paused or
reconfigured: a shared server on 5432/6379 is never touched. Faults are made the way they
happen in production: a stopped process (refused), a stopped-but-not-dead one (SIGSTOP:
connections open, nothing answers), a rotated password, `requirepass`, every connection
slot taken, a lock held on a table. `missing()` says in one line which binary is absent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 20.0
_PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class RealDepsError(Exception):
    """A throwaway server could not be started; the message says what is missing."""


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest PostgreSQL bin folder with initdb and pg_ctl, or None."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

    found = [Path(p) for p in sorted(Path("/").glob(_PG_BIN_GLOB.lstrip("/")))]
    found = [p for p in found if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    if found:
        return max(found, key=version)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def redis_bin() -> Path | None:
    """redis-server from PATH, or None."""
    found = shutil.which("redis-server")
    return Path(found) if found else None


def missing() -> list[str]:
    """What is missing to run real dependencies here, one sentence each (empty: nothing)."""
    out = []
    if postgres_bin() is None:
        out.append(f"PostgreSQL binaries (initdb, pg_ctl) not found in {_PG_BIN_GLOB} or PATH")
    elif os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
        out.append("running as root, and PostgreSQL refuses root: need runuser and a postgres user")
    if redis_bin() is None:
        out.append("redis-server not found in PATH")
    return out


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_port(port: int, process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RealDepsError(f"{what} exited with code {process.returncode} at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RealDepsError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S} s")


def wait_refused(port: int, timeout_s: float = 5.0) -> None:
    """Return once connections to 127.0.0.1:`port` are refused: a killed process's
    listening socket can outlive it by a few milliseconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except ConnectionRefusedError:
            return
        except OSError:
            pass
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (PostgreSQL's backends of its postmaster), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of its own: SCRAM password auth over TCP, trust on its socket.

    `app` (password `password`) owns database `app`: what a service connects as. The
    superuser `postgres` is used only over the cluster's own Unix socket, to make faults.
    """

    folder: Path
    port: int = field(default_factory=free_port)
    password: str = "app-pw-throwaway"
    max_connections: int = 8
    bin_dir: Path | None = None
    pid: int = 0

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def dsn(self, *, password: str | None = None, host: str = "127.0.0.1") -> str:
        """The app's URL; `password`/`host` override what the app is configured with."""
        pw = self.password if password is None else password
        return f"postgresql://app:{pw}@{host}:{self.port}/app"

    def _as_owner(self, argv: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root: run its tools as the postgres user then.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _tool(self, name: str) -> str:
        bin_dir = self.bin_dir or postgres_bin()
        if bin_dir is None:
            raise RealDepsError(f"PostgreSQL binaries not found in {_PG_BIN_GLOB} or PATH")
        return str(bin_dir / name)

    def _run(self, *argv: str) -> None:
        done = subprocess.run(self._as_owner(list(argv)), capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RealDepsError(f"{Path(argv[0]).name} failed: {tail[0][:200]}")

    def start(self) -> PostgresServer:
        """initdb on first start, then pg_ctl start; returns once it accepts connections."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.data.exists():
            if os.geteuid() == 0:
                shutil.chown(self.folder, "postgres", "postgres")
            self._run(
                self._tool("initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
                "--no-instructions",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={self.max_connections} -c fsync=off "
            "-c superuser_reserved_connections=2"
        )
        self._run(
            self._tool("pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "postgres.log"), "-w", "start",
        )  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        if not self._has_app():
            self.sql(f"CREATE ROLE app LOGIN PASSWORD '{self.password}'")
            self.sql("CREATE DATABASE app OWNER app")
        return self

    def _has_app(self) -> bool:
        with self.superuser() as conn:
            found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'app'").fetchone()
        return found is not None

    @contextlib.contextmanager
    def superuser(self, database: str = "postgres") -> Iterator[Any]:
        """A superuser connection over the cluster's own Unix socket (trust auth)."""
        import psycopg

        with psycopg.connect(
            host=str(self.folder), port=self.port, user="postgres", dbname=database,
            autocommit=True, connect_timeout=5,
        ) as conn:  # fmt: skip
            yield conn

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement as superuser."""
        with self.superuser(database) as conn:
            conn.execute(statement.encode())

    def stop(self) -> None:
        """Stop the cluster (fast shutdown): connections to its port are then refused."""
        if self.running:
            self.resume()
            self._run(self._tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def pause(self) -> None:
        """SIGSTOP the postmaster and every backend: a hung database host. The kernel
        still completes TCP handshakes, but nothing answers."""
        for pid in (self.pid, *_children(self.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in (self.pid, *_children(self.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def rotate_password(self, new: str) -> None:
        """Change the app role's password on the server only: the app's is now wrong."""
        self.sql(f"ALTER ROLE app PASSWORD '{new}'")

    def take_all_connections(self) -> list[Any]:
        """Open app connections until the server refuses more; the caller closes them."""
        import psycopg

        held: list[Any] = []
        for _ in range(self.max_connections):
            try:
                held.append(psycopg.connect(self.dsn(), connect_timeout=5))
            except psycopg.OperationalError:
                break
        return held

    def remove(self) -> None:
        """Stop (immediately) and delete the folder."""
        if self.running:
            self.resume()
            with contextlib.suppress(RealDepsError):
                self._run(
                    self._tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------- Redis


@dataclass
class RedisServer:
    """A redis-server of its own on a free port, no persistence."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    password: str | None = None  # requirepass, when set

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = redis_bin()
        if binary is None:
            raise RealDepsError("redis-server not found in PATH")
        argv = [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--protected-mode", "no"]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait_port(self.port, self.process, "redis-server")
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Terminate it: connections to its port are then refused."""
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: a hung cache. Connections open (kernel backlog), nothing answers."""
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGCONT)

    def require_password(self, password: str | None) -> None:
        """Set (or with None, clear) `requirepass` on this server, as an operator would."""
        import redis

        client = redis.Redis(port=self.port, password=self.password, socket_timeout=5)
        try:
            client.config_set("requirepass", password or "")
        finally:
            client.close()
        self.password = password


# --------------------------------------------------------------------------- TLS


CERTIFICATES = ("good", "expired", "untrusted", "wrong-host")


@dataclass
class DemoCertificates:
    """A CA of the demo's own (its PEM is what clients trust) and the service certificates
    each TLS scenario presents: good, expired, untrusted (another CA), wrong-host."""

    folder: Path

    def __post_init__(self) -> None:
        import datetime as dt

        import trustme

        self.folder.mkdir(parents=True, exist_ok=True)
        ca, stranger = trustme.CA(), trustme.CA()
        now = dt.datetime.now(dt.UTC)
        ca.cert_pem.write_to_path(str(self.ca_file))
        leaves = {
            "good": ca.issue_cert("localhost", "127.0.0.1"),
            "expired": ca.issue_cert(
                "localhost", "127.0.0.1", not_before=now - dt.timedelta(days=90),
                not_after=now - dt.timedelta(days=3),
            ),
            "untrusted": stranger.issue_cert("localhost", "127.0.0.1"),
            "wrong-host": ca.issue_cert("wrong.example.test"),
        }  # fmt: skip
        for name, leaf in leaves.items():
            chain, key = self.paths(name)
            chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
            leaf.private_key_pem.write_to_path(str(key))
            key.chmod(0o600)

    @property
    def ca_file(self) -> Path:
        return self.folder / "demo-ca.pem"

    def paths(self, name: str) -> tuple[Path, Path]:
        """(chain, key) of one certificate."""
        return self.folder / f"{name}.pem", self.folder / f"{name}-key.pem"


# --------------------------------------------------------------------------- both


@dataclass
class RealDeps:
    """A throwaway PostgreSQL and Redis, started together, removed together."""

    postgres: PostgresServer
    redis: RedisServer

    @classmethod
    def start(cls, folder: Path | None = None) -> RealDeps:
        """Start both, or raise RealDepsError naming what is missing."""
        absent = missing()
        if absent:
            raise RealDepsError("; ".join(absent))
        base = folder or Path(tempfile.mkdtemp(prefix="greenloop-realdeps-"))
        base.chmod(0o755)  # PostgreSQL's own user must reach its folder inside
        postgres = PostgresServer(base / "postgres")
        redis = RedisServer()
        try:
            postgres.start()
            redis.start()
        except BaseException:
            redis.stop()
            postgres.remove()
            raise
        return cls(postgres, redis)

    def remove(self) -> None:
        self.redis.stop()
        self.postgres.remove()


# --------------------------------------------------------------------------- the demo's use

REAL_FAULTS = (
    "postgres-stop", "postgres-pause", "postgres-password", "postgres-connections",
    "postgres-lock", "redis-stop", "redis-pause", "redis-requirepass", "app-kill",
)  # fmt: skip


@dataclass
class RealEnvironment:
    """What `greenloop demo --real-deps` runs the service on: a throwaway PostgreSQL and
    Redis, and a CA of its own whose certificates the service presents over HTTPS."""

    deps: RealDeps
    certs: DemoCertificates
    folder: Path
    held: list[Any] = field(default_factory=list)  # connections a fault keeps open

    @classmethod
    def start(cls, folder: Path) -> RealEnvironment:
        deps = RealDeps.start()
        try:
            certs = DemoCertificates(folder / "tls")
            env = cls(deps, certs, folder)
            env.migrate()
        except BaseException:
            deps.remove()
            raise
        return env

    def database_url(self, host: str = "127.0.0.1") -> str:
        """The URL the service is configured with (a short connect timeout, as in prod)."""
        return self.deps.postgres.dsn(host=host) + "?connect_timeout=2"

    @property
    def database_password(self) -> str:
        return self.deps.postgres.password

    def migrate(self) -> None:
        """Create the service's tables, as a deploy's migration step would."""
        import sqlalchemy as sa

        from greenloop.demo.service.deps import metadata, sqlalchemy_url

        engine = sa.create_engine(sqlalchemy_url(self.deps.postgres.dsn()))
        try:
            metadata.create_all(engine)
        finally:
            engine.dispose()

    def break_it(self, fault: str | None, state_dir: Path) -> None:
        """Make `fault` on the real processes, after the service was deployed."""
        pg, cache = self.deps.postgres, self.deps.redis
        match fault:
            case None:
                return
            case "postgres-stop":
                pg.stop()
            case "postgres-pause":
                pg.pause()
            case "postgres-password":
                pg.rotate_password("rotated-by-ops-" + os.urandom(4).hex())
            case "postgres-connections":
                self.held.extend(pg.take_all_connections())
            case "postgres-lock":
                import psycopg

                conn = psycopg.connect(pg.dsn(), connect_timeout=5)
                conn.execute("BEGIN")
                conn.execute("LOCK TABLE demo_messages IN ACCESS EXCLUSIVE MODE")
                self.held.append(conn)
            case "redis-stop":
                cache.stop()
            case "redis-pause":
                cache.pause()
            case "redis-requirepass":
                cache.require_password("set-by-ops-" + os.urandom(4).hex())
            case "app-kill":
                from greenloop.demo import control

                status = control.status(state_dir)  # only ever the service started there
                if status.pid:
                    os.killpg(status.pid, signal.SIGKILL)
                    if status.port:
                        wait_refused(int(status.port))
            case _:
                raise RealDepsError(
                    f"unknown real fault {fault!r} (known: {', '.join(REAL_FAULTS)})"
                )

    def close(self) -> None:
        """Release what faults hold, stop both servers, delete the certificates."""
        for conn in self.held:
            with contextlib.suppress(Exception):
                conn.close()
        self.held.clear()
        self.deps.remove()
        shutil.rmtree(self.certs.folder, ignore_errors=True)
