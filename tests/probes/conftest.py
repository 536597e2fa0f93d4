"""Real servers for the probe tests, all on 127.0.0.1 free ports.

One background event loop (a thread) hosts a FastAPI app under uvicorn (plain
and TLS), three WebSocket servers (pong, 503 rejection, close 1011), raw TLS
servers with good, wrong-host and expired certificates, and a blackhole port.
Throwaway redis-server and PostgreSQL processes are started here too, so the
tests can stop, pause (SIGSTOP) and misconfigure them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Response
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request
from websockets.http11 import Response as WsResponse

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVING: list[asyncio.Task[None]] = []  # uvicorn serve() tasks, awaited at shutdown


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable(message: str) -> None:
    """Skip, or fail under GREENLOOP_REQUIRE_SERVICES=1, when a tool is missing."""
    if os.environ.get("GREENLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (GREENLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(message)


class LoopThread:
    """An asyncio loop in a daemon thread; `run` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# --------------------------------------------------------------------------- the app


def make_app() -> FastAPI:
    app = FastAPI()
    hits: dict[str, int] = {}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "checks": [{"name": "db", "ok": True}]}

    @app.get("/sick")
    async def sick() -> Response:
        return Response('{"status": "down"}', status_code=503, media_type="application/json")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(10)
        return {"status": "late"}

    @app.get("/redirect")
    async def redirect(to: str) -> Response:
        return Response(status_code=307, headers={"location": to})

    @app.get("/text")
    async def text() -> Response:
        return Response("all good here", media_type="text/plain")

    @app.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return {"got": payload}

    @app.get("/flaky/{key}/{failures}")
    async def flaky(key: str, failures: int) -> Response:
        # Fails `failures` times per key, then passes: a service coming back.
        hits[key] = hits.get(key, 0) + 1
        if hits[key] <= failures:
            return Response("starting", status_code=503)
        return Response('{"status": "healthy"}', media_type="application/json")

    arrived: dict[str, int] = {}
    gates: dict[str, asyncio.Event] = {}

    @app.get("/barrier/{key}/{count}")
    async def barrier(key: str, count: int) -> Response:
        # Answers only once `count` requests are waiting at once: proof of concurrency.
        gate = gates.setdefault(key, asyncio.Event())
        arrived[key] = arrived.get(key, 0) + 1
        if arrived[key] >= count:
            gate.set()
        await gate.wait()
        return Response("together")

    return app


async def start_uvicorn(app: FastAPI, port: int, **ssl_args: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        timeout_graceful_shutdown=1,
        **ssl_args,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    SERVING.append(asyncio.get_running_loop().create_task(server.serve()))
    while not server.started:
        await asyncio.sleep(0.01)
    return server


# --------------------------------------------------------------------------- websockets


async def _pong(ws: ServerConnection) -> None:
    async for message in ws:
        if message == "ping" or '"ping"' in str(message):
            await ws.send('{"type": "pong"}')
        elif message == "silence":
            continue
        else:
            await ws.send('{"type": "echo"}')


async def _crash(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.close(1011, "internal error")


def _reject(_conn: ServerConnection, _request: Request) -> WsResponse:
    return _conn.respond(503, "service unavailable\n")


# --------------------------------------------------------------------------- certificates


def expired_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a localhost certificate it signed that expired 3 days ago: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "greenloop test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=90))
        .not_valid_after(now - dt.timedelta(days=3, hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "expired-ca.pem", folder / "expired.pem", folder / "expired-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def _tls_server(context: ssl.SSLContext) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.read(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


# --------------------------------------------------------------------------- the servers


@dataclass
class Servers:
    http: str  # http://127.0.0.1:PORT
    https: str
    ca_file: str  # trusts the https server and the good TLS server
    ws: str  # ws://.../ replies pong
    ws_reject: str  # handshake 503
    ws_crash: str  # closes 1011 after the first message
    tls_good: int
    tls_wrong_host: int
    tls_expired: int
    expired_ca_file: str
    blackhole: int  # accepts TCP in the kernel backlog, never answers
    closed: int  # nothing listens


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    loop = LoopThread()
    folder = Path(tempfile.mkdtemp(prefix="gl-probe-certs-"))
    ca = trustme.CA()
    good = ca.issue_cert("localhost", "127.0.0.1")
    wrong = ca.issue_cert("wrong.example.test")
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file, key_file = folder / "good.pem", folder / "good-key.pem"
    good.cert_chain_pems[0].write_to_path(str(cert_file))
    good.private_key_pem.write_to_path(str(key_file))
    expired_ca, expired_cert, expired_key = expired_certificate(folder)

    def context(issued: trustme.LeafCert | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if issued is None:
            ctx.load_cert_chain(expired_cert, expired_key)
        else:
            issued.configure_cert(ctx)
        return ctx

    http_port, https_port = _port(), _port()

    async def start() -> list[Any]:
        running: list[Any] = [
            await start_uvicorn(make_app(), http_port),
            await start_uvicorn(
                make_app(), https_port, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)
            ),
        ]
        running.append(await serve(_pong, "127.0.0.1", 0))
        running.append(await serve(_pong, "127.0.0.1", 0, process_request=_reject))
        running.append(await serve(_crash, "127.0.0.1", 0))
        for ctx in (context(good), context(wrong), context()):
            running.append((await _tls_server(ctx))[0])
        return running

    running = loop.run(start())
    ws_ports = [s.sockets[0].getsockname()[1] for s in running[2:5]]
    tls_ports = [s.sockets[0].getsockname()[1] for s in running[5:8]]
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)
    yield Servers(
        http=f"http://127.0.0.1:{http_port}",
        https=f"https://localhost:{https_port}",
        ca_file=str(ca_file),
        ws=f"ws://127.0.0.1:{ws_ports[0]}/",
        ws_reject=f"ws://127.0.0.1:{ws_ports[1]}/",
        ws_crash=f"ws://127.0.0.1:{ws_ports[2]}/",
        tls_good=tls_ports[0],
        tls_wrong_host=tls_ports[1],
        tls_expired=tls_ports[2],
        expired_ca_file=str(expired_ca),
        blackhole=blackhole.getsockname()[1],
        closed=_port(),
    )
    blackhole.close()

    async def stop() -> None:
        for server in running:
            if isinstance(server, uvicorn.Server):
                server.should_exit = True
            else:
                server.close()
        await asyncio.wait(SERVING, timeout=5)

    loop.run(stop())
    loop.stop()
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- throwaway redis


@dataclass
class RedisProcess:
    port: int
    password: str | None
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)


def start_redis(password: str | None = None) -> RedisProcess:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    port = _port()
    argv = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no"]
    if password:
        argv += ["--requirepass", password]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return RedisProcess(port, password, process)
        except OSError:
            time.sleep(0.025)
    process.kill()
    unavailable(f"redis-server did not start on port {port}")
    raise AssertionError("unreachable")


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    proc = start_redis()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisProcess]:
    proc = start_redis(password="s3cret-redis-pw")
    yield proc
    proc.stop()


# --------------------------------------------------------------------------- throwaway postgres


@dataclass
class PostgresCluster:
    port: int
    data: Path
    password: str

    def dsn(self, password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://postgres:{pw}@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                *args,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1"
        self.ctl("-o", options, "-l", str(self.data.parent / "log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")

    @property
    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL 15 cluster with SCRAM password auth on a free port."""
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        unavailable("PostgreSQL 15 binaries or runuser are not installed")
    folder = Path(tempfile.mkdtemp(prefix="gl-probe-pg-"))
    password = "pg-s3cret-pw"
    (folder / "pwfile").write_text(password + "\n")
    shutil.chown(folder, "postgres", "postgres")
    shutil.chown(folder / "pwfile", "postgres", "postgres")
    data = folder / "data"
    init = subprocess.run(
        [
            "runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data),
            "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
            f"--pwfile={folder / 'pwfile'}", "--no-sync",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        unavailable(f"initdb failed: {init.stderr.strip()[:200]}")
    cluster = PostgresCluster(_port(), data, password)
    cluster.start()
    yield cluster
    try:
        os.kill(cluster.postmaster_pid, signal.SIGCONT)
        cluster.ctl("-m", "immediate", "-w", "stop")
    except (OSError, subprocess.CalledProcessError):
        pass
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- running one probe


@pytest.fixture
def check() -> Any:
    """check(kind, conditions=(), timeout_s=2, retries=0, **options) -> ProbeResult."""
    from greenloop.config import ProbeConfig
    from greenloop.probes.run import run_probes

    def run(kind: str, conditions: tuple[str, ...] = (), **fields: Any) -> Any:
        cfg = ProbeConfig.model_validate(
            {"name": f"{kind}-probe", "component": "svc", "kind": kind,
             "conditions": list(conditions), **fields}
        )  # fmt: skip
        return asyncio.run(run_probes([cfg]))[0]

    return run
