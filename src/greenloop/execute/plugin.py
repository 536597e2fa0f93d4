"""greenloop's pytest plugin: one JSON event per line about everything the run did.

Loaded in the test subprocess with ``-p greenloop.execute.plugin``. It writes to
the file named by ``--greenloop-events`` or GREENLOOP_EVENTS (a file, never
stdout, so test output cannot corrupt the stream) and judges nothing: the
events are folded into records by `greenloop.execute.events` and judged by
`greenloop.verify`, where they can be tested without pytest.

What it records beside pytest's own reports: the (host, port) of every socket a
test connects or talks to, the HTTP requests (and WebSocket handshakes) it sends
with the request-id and trace-context headers they carry, whatever the client
(httpx, requests, urllib3, aiohttp, websockets: it reads the bytes each socket
sends), network clients replaced by mocks while it ran, its warnings, and the
request id of the opt-in `greenloop_request_id` fixture.

Under pytest-xdist the controller is the one writer of test events (workers
attach their extra data to the report, which xdist ships to the controller);
workers only write their collected items and, just before pytest-timeout ends a
worker, which test timed out.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Generator
from typing import Any
from unittest import mock

import pytest

from greenloop.execute.wire import EVENTS_ENV, ORDER_ENV, PARENT_ENV

TRIM_TEXT = 8000  # characters kept of a traceback
TRIM_OUTPUT = 4000  # characters kept of captured stdout / stderr / log

# Attributes whose replacement during a test means the test did not talk to the network.
NETWORK_ATTRIBUTES = (
    ("httpx", "Client.send"),
    ("httpx", "Client.request"),
    ("httpx", "Client.get"),
    ("httpx", "Client.post"),
    ("httpx", "AsyncClient.send"),
    ("httpx", "AsyncClient.request"),
    ("httpx", "AsyncClient.get"),
    ("httpx", "AsyncClient.post"),
    ("httpx", "HTTPTransport.handle_request"),  # pytest-httpx, respx
    ("httpx", "AsyncHTTPTransport.handle_async_request"),
    ("httpx", "get"),
    ("httpx", "post"),
    ("httpx", "request"),
    ("httpcore", "ConnectionPool.handle_request"),  # respx
    ("httpcore", "AsyncConnectionPool.handle_async_request"),
    ("requests", "Session.request"),
    ("requests", "Session.send"),
    ("requests", "get"),
    ("requests", "post"),
    ("requests.adapters", "HTTPAdapter.send"),  # responses
    ("urllib3", "PoolManager.urlopen"),
    ("urllib3.connectionpool", "HTTPConnectionPool.urlopen"),
    ("aiohttp", "ClientSession._request"),
    ("websockets", "connect"),
    ("websockets.client", "connect"),
    ("websockets.asyncio.client", "connect"),
    ("websockets.sync.client", "connect"),
    ("socket", "socket.connect"),
    ("socket", "socket.connect_ex"),
    ("socket", "create_connection"),
    ("http.client", "HTTPConnection.request"),
    ("asyncio", "open_connection"),
)
NETWORK_MODULES = tuple(sorted({m.split(".")[0] for m, _ in NETWORK_ATTRIBUTES} | {"aiohttp"}))


# --------------------------------------------------------------------------- event sink


class EventSink:
    """Appends one JSON line per event; each line is one write() so writers never interleave."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        line = json.dumps(fields, default=str, ensure_ascii=False) + "\n"
        with self.lock:
            os.write(self.fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        os.close(self.fd)


# --------------------------------------------------------------------------- per-test state


class TestRecord:
    """What the plugin learns about the running test beyond pytest's report."""

    __test__ = False

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.connections: set[tuple[str, int]] = set()
        self.mocks: set[str] = set()
        self.request_id: str | None = None
        self.tcp_before: TcpCounters = {}
        self.sent: list[dict[str, Any]] = []  # HTTP requests the test sent (see _note_request)
        self.started = time.monotonic()
        self.opens_before = active_opens()
        self.ended: set[tuple[str, int]] = set()  # see ended_connections

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": sorted([h, p] for h, p in self.connections),
            "ended": sorted([h, p] for h, p in self.ended),
            "mocks": sorted(self.mocks),
            "request_id": self.request_id,
            "sent": self.sent,
        }


class FixtureActivity:
    """The traffic and set-up time of one fixture's last set-up."""

    def __init__(self, name: str, scope: str) -> None:
        self.name = name
        self.scope = scope
        self.connections: set[tuple[str, int]] = set()
        self.setup_s = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "connections": sorted([h, p] for h, p in self.connections),
            "setup_s": self.setup_s,
        }


_current: TestRecord | None = None
# Fixtures being set up right now (innermost last); their traffic is theirs too.
_fixture_stack: list[FixtureActivity] = []
# Peer address of each client socket we saw connect, so pooled keep-alive
# connections opened by an earlier test still count for the test using them.
_peers: weakref.WeakKeyDictionary[socket.socket, tuple[str, int]] = weakref.WeakKeyDictionary()
_names: dict[str, str] = {}  # resolved address -> the host name asked for
_sending = threading.local()  # inside a wrapped send: inner sends are the same bytes


def _address(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return str(address[0]), address[1]
    return None


def _note(peer: tuple[str, int]) -> None:
    record = _current
    if record is None:
        return
    peers = [peer]
    name = _names.get(peer[0])
    if name and name != peer[0]:
        peers.append((name, peer[1]))
    record.connections.update(peers)
    for fixture in _fixture_stack:
        fixture.connections.update(peers)


# Headers that tie a request to the service's own log lines: request ids and W3C trace context.
ID_HEADERS = frozenset(
    {"x-request-id", "x-correlation-id", "request-id", "x-trace-id", "traceparent"}
)
_REQUEST_STARTS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ")
MAX_SENT = 50  # requests kept per test: the first ones say what it asked for
_HEAD_BYTES = 8192  # request line and headers are read from this much of a send


def parse_request_head(data: bytes) -> dict[str, Any] | None:
    """Method, path and id headers of an HTTP/1.x request head; None when `data` is not one."""
    if not data.startswith(_REQUEST_STARTS):
        return None
    lines = data.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    target = parts[1].decode("latin-1")
    if "://" in target:  # a proxy-form target: keep the path only
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    ids: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(b":")
        header = name.strip().decode("latin-1").lower()
        if sep and header in ID_HEADERS:
            ids[header] = value.strip().decode("latin-1")[:200]
    return {"method": parts[0].decode("latin-1"), "path": target[:500], "ids": ids}


def _note_request(data: Any) -> None:
    """Remember an HTTP request the running test sends (any client: these are its bytes)."""
    record = _current
    if record is None or len(record.sent) >= MAX_SENT:
        return
    try:
        head = bytes(memoryview(data)[:_HEAD_BYTES])
    except TypeError:
        return
    request = parse_request_head(head)
    if request is not None:
        request["time"] = time.time()
        record.sent.append(request)


# --------------------------------------------------------------------------- network wrappers


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any, *args: Any) -> Any:
        peer = _address(address)
        if peer is not None:
            _peers[self] = peer
            _note(peer)
        return original(self, address, *args)

    connect.__wrapped__ = original  # type: ignore[attr-defined]
    connect._greenloop = True  # type: ignore[attr-defined]
    return connect


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if _current is not None:
            peer = _peers.get(self)
            if peer is None and isinstance(self, ssl.SSLSocket) and not self.server_side:
                try:
                    peer = _address(self.getpeername())
                except OSError:
                    peer = None
                if peer is not None:
                    _peers[self] = peer
            if peer is not None:
                _note(peer)
        if _current is None or getattr(_sending, "active", False):
            return original(self, *args, **kwargs)
        # SSLSocket.sendall calls send: note the request once, in the outer call.
        if args:
            _note_request(args[0])
        _sending.active = True
        try:
            return original(self, *args, **kwargs)
        finally:
            _sending.active = False

    send.__wrapped__ = original  # type: ignore[attr-defined]
    send._greenloop = True  # type: ignore[attr-defined]
    return send


def _wrap_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(host, *args, **kwargs)
        if isinstance(host, str | bytes):
            name = host.decode() if isinstance(host, bytes) else host
            for *_, sockaddr in result:
                if sockaddr:
                    _names[str(sockaddr[0])] = name
        return result

    getaddrinfo._greenloop = True  # type: ignore[attr-defined]
    return getaddrinfo


def _wrap_create_connection(original: Callable[..., Any]) -> Callable[..., Any]:
    async def create_connection(
        self: asyncio.AbstractEventLoop,
        protocol_factory: Any,
        host: Any = None,
        port: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if isinstance(host, str) and isinstance(port, int):
            _note((host, port))
        return await original(self, protocol_factory, host, port, *args, **kwargs)

    create_connection._greenloop = True  # type: ignore[attr-defined]
    return create_connection


def _wrap_sock_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    async def sock_connect(self: asyncio.AbstractEventLoop, sock: Any, address: Any) -> Any:
        peer = _address(address)
        if peer is not None:
            _note(peer)
        return await original(self, sock, address)

    sock_connect._greenloop = True  # type: ignore[attr-defined]
    return sock_connect


def _wrap_tls_write(original: Callable[..., Any]) -> Callable[..., Any]:
    """asyncio's TLS (httpx async, aiohttp, websockets over wss) writes plaintext here."""

    def write(self: ssl.SSLObject, data: Any) -> Any:
        if _current is not None and not self.server_side:
            _note_request(data)
        return original(self, data)

    write._greenloop = True  # type: ignore[attr-defined]
    return write


def _patch(owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
    original = inspect.getattr_static(owner, name)
    if getattr(original, "_greenloop", False):
        return
    setattr(owner, name, wrapper(original))


def install_network_recorder() -> None:
    """Wrap connect / send so each test's peers are known; behaviour is unchanged."""
    for name in ("connect", "connect_ex"):
        _patch(socket.socket, name, _wrap_connect)
    for name in ("send", "sendall", "sendmsg"):
        _patch(socket.socket, name, _wrap_send)
    for name in ("send", "sendall"):
        _patch(ssl.SSLSocket, name, _wrap_send)
    _patch(ssl.SSLObject, "write", _wrap_tls_write)
    _patch(socket, "getaddrinfo", _wrap_getaddrinfo)
    base = asyncio.base_events.BaseEventLoop
    _patch(base, "create_connection", _wrap_create_connection)
    _patch(base, "sock_connect", _wrap_sock_connect)


# --------------------------------------------------------------------------- TCP counters

# Clients written in C (libpq under psycopg, hiredis, ...) never call Python's socket
# methods, so the wrappers above cannot see them. The kernel can: every TCP socket this
# process holds has byte counters (TCP_INFO). A socket whose counters moved while a test
# ran carried that test's traffic, whoever opened it.
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_INFO_LEN = 136  # through tcpi_bytes_received
_BYTES = struct.Struct("=QQ")  # tcpi_bytes_acked, tcpi_bytes_received (linux/tcp.h)
_BYTES_AT = 120

TcpCounters = dict[str, tuple[tuple[str, int], int]]  # socket inode -> (peer, bytes moved)


def tcp_counters() -> TcpCounters:
    """This process's connected TCP sockets: peer and bytes sent (acked) plus received."""
    if _TCP_INFO is None:
        return {}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return {}
    out: TcpCounters = {}
    for name in fds:
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if not link.startswith("socket:") or link in out:
            continue
        try:
            dup = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if dup.type != socket.SOCK_STREAM or dup.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            peer = _address(dup.getpeername())
            info = dup.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_LEN)
        except OSError:
            continue
        finally:
            dup.close()
        if peer is not None and len(info) >= _BYTES_AT + _BYTES.size:
            sent, received = _BYTES.unpack_from(info, _BYTES_AT)
            out[link] = (peer, sent + received)
    return out


def tcp_traffic(before: TcpCounters, after: TcpCounters) -> set[tuple[str, int]]:
    """Peers of sockets whose counters moved between two snapshots."""
    return {
        peer
        for key, (peer, moved) in after.items()
        if moved > (before[key][1] if key in before and before[key][0] == peer else 0)
    }


# A client in C that opens and closes its socket inside one test (psycopg2 in a unittest
# setUp / tearDown) holds it at neither snapshot above. The kernel still saw it: the side
# that closed first keeps the connection in TIME_WAIT for 60 s, with the time left. Those
# entries are not attributable to a process, so they are weak evidence: enough to not call
# a test fake, never enough to call it real (verify.py).
_TIME_WAIT, _TIME_WAIT_S = "06", 60.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def active_opens() -> int:
    """The kernel's count of outgoing TCP connections in this network namespace (-1: unknown)."""
    try:
        with open("/proc/self/net/snmp", encoding="ascii") as handle:
            rows = [line.split() for line in handle if line.startswith("Tcp:")]
        return int(rows[1][rows[0].index("ActiveOpens")])
    except (OSError, ValueError, IndexError):
        return -1


def _endpoint(text: str) -> tuple[str, int]:
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    # /proc prints each 32-bit word of the address in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    host = socket.inet_ntop(family, words)
    return host.removeprefix("::ffff:"), int(port, 16)


def ended_connections(within_s: float) -> set[tuple[str, int]]:
    """Both endpoints of TCP connections on this machine closed in the last `within_s` s."""
    out: set[tuple[str, int]] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 6 or fields[3] != _TIME_WAIT:
                continue
            try:
                left_s = int(fields[5].split(":")[1], 16) / _CLOCK_TICKS
                # `left_s` is truncated to clock ticks: allow two.
                if _TIME_WAIT_S - left_s <= within_s + 2 / _CLOCK_TICKS:
                    out.add(_endpoint(fields[1]))
                    out.add(_endpoint(fields[2]))
            except (ValueError, IndexError, OSError):
                continue
    return out


def _named(peers: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """The peers, plus the host name each address was resolved from."""
    out = set(peers)
    for host, port in peers:
        name = _names.get(host)
        if name and name != host:
            out.add((name, port))
    return out


# --------------------------------------------------------------------------- mock detection

_MISSING = object()
# (key, owner object, attribute name, value before any test ran), once its module is imported.
_watched: dict[str, tuple[Any, str, Any]] = {}


def _owner(module: str, attribute: str) -> tuple[Any, str] | None:
    owner: Any = sys.modules.get(module)
    if owner is None:
        return None
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner, name


def _own_value(owner: Any, name: str) -> Any:
    # patch() and monkeypatch set the attribute on the owner itself, so its own
    # __dict__ is enough, and much cheaper than getattr_static on every test.
    return vars(owner).get(name, _MISSING)


def _describe(value: Any) -> str:
    if isinstance(value, mock.NonCallableMock):
        return type(value).__name__
    return getattr(value, "__qualname__", None) or type(value).__name__


def remember_network_attributes() -> None:
    """Note the network attributes as they are before any test (and its fixtures) runs."""
    if len(_watched) == len(NETWORK_ATTRIBUTES):
        return
    for module, attribute in NETWORK_ATTRIBUTES:
        key = f"{module}.{attribute}"
        if key in _watched:
            continue
        found = _owner(module, attribute)
        if found is None:
            continue
        value = _own_value(*found)
        if value is not _MISSING and not isinstance(value, mock.NonCallableMock):
            _watched[key] = (found[0], found[1], value)


def replaced_network_attributes() -> list[str]:
    """Network attributes that are mocks now, or differ from what they were before the tests."""
    replaced = []
    for key, (owner, name, original) in _watched.items():
        value = _own_value(owner, name)
        if value is not original and value is not _MISSING:
            replaced.append(f"{key} was replaced by {_describe(value)}")
    return replaced


def _patch_target(patcher: Any) -> str | None:
    """'module.attr' a unittest.mock patcher is about to replace, if it is a network client."""
    try:
        target = patcher.getter()
    except Exception:
        return None
    if inspect.ismodule(target):
        owner = target.__name__
    else:
        module = getattr(target, "__module__", None)
        qualname = getattr(target, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str):
            return None
        top = module.split(".")[0]
        # Say httpx.Client rather than httpx._client.Client when the package exports it.
        public = getattr(sys.modules.get(top), qualname, None) is target
        owner = f"{top if public else module}.{qualname}"
    if owner.split(".")[0] not in NETWORK_MODULES:
        return None
    return f"{owner}.{patcher.attribute}"


def _wrap_patch_enter(original: Callable[..., Any]) -> Callable[..., Any]:
    def __enter__(self: Any) -> Any:
        result = original(self)
        record = _current
        if record is not None:
            where = _patch_target(self)
            if where:
                record.mocks.add(f"{where} was replaced by {_describe(result)}")
        return result

    __enter__._greenloop = True  # type: ignore[attr-defined]
    return __enter__


def install_mock_recorder() -> None:
    """See every unittest.mock.patch (decorator, context manager or start()) of a network client."""
    _patch(mock._patch, "__enter__", _wrap_patch_enter)


def _check_mocks(record: TestRecord) -> None:
    record.mocks.update(replaced_network_attributes())
    for patcher in list(getattr(mock._patch, "_active_patches", ())):
        where = _patch_target(patcher)
        if where:
            record.mocks.add(f"{where} was replaced by a mock (patch active)")


# --------------------------------------------------------------------------- helpers


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    cut = len(text) - limit
    return f"{text[:head]}\n... [{cut} characters trimmed] ...\n{text[-(limit - head) :]}"


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skip gave, never a traceback (an xfail's longrepr is its failure)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(longrepr or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].removeprefix("Skipped: ")[:500] if lines else ""


def _markers(item: pytest.Item) -> list[str]:
    names = []
    for marker in item.iter_markers():
        if marker.name in ("parametrize", "usefixtures", "filterwarnings"):
            continue
        if marker.name not in names:
            names.append(marker.name)
    return names


def _order_rank() -> dict[str, int]:
    path = os.environ.get(ORDER_ENV)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
    except OSError:
        return {}
    return {key: i for i, key in enumerate(lines) if key}


# --------------------------------------------------------------------------- the plugin


class GreenloopPlugin:
    """Hooks that turn a pytest session into greenloop events."""

    def __init__(self, config: pytest.Config, sink: EventSink) -> None:
        self.config = config
        self.sink = sink
        self.is_worker = hasattr(config, "workerinput")
        self.is_controller = not self.is_worker and bool(getattr(config.option, "numprocesses", 0))
        self.worker = config.workerinput["workerid"] if self.is_worker else None  # type: ignore[attr-defined]
        # Writes test events: the controller under xdist, else the one process.
        self.writes_tests = not self.is_worker
        self.records: dict[str, TestRecord] = {}
        self.fixtures: dict[int, FixtureActivity] = {}  # by id(FixtureDef): last set-up

    # ---- session

    def pytest_sessionstart(self) -> None:
        if self.writes_tests:
            self.sink.emit(
                "session_start", pid=os.getpid(), xdist=self.is_controller, time=time.time()
            )

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.writes_tests:
            self.sink.emit("session_finish", exitstatus=int(exitstatus))

    # ---- collection

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        rank = _order_rank()
        if not rank:
            return
        last = len(rank)

        def key(item: pytest.Item) -> int:
            return rank.get(item.nodeid, rank.get(item.nodeid.split("::", 1)[0], last))

        items.sort(key=key)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.is_controller:
            return
        for item in session.items:
            path, line, _ = item.location
            self.sink.emit(
                "collected",
                nodeid=item.nodeid,
                file=path,
                line=None if line is None else line + 1,
                markers=_markers(item),
                arg=f"{item.path}::{item.nodeid.split('::', 1)[1]}"
                if "::" in item.nodeid
                else str(item.path),
                worker=self.worker,
            )
        self.sink.emit("collection_finish", count=len(session.items), worker=self.worker)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.is_worker:
            return  # xdist forwards failed and skipped collect reports to the controller
        if report.failed:
            self.sink.emit(
                "collection_error",
                nodeid=report.nodeid,
                error=_trim(str(report.longrepr), TRIM_TEXT),
            )
        elif report.skipped:
            self.sink.emit("collection_skip", nodeid=report.nodeid, reason=_skip_reason(report))

    # ---- running

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        global _current
        remember_network_attributes()
        record = _current = self.records[item.nodeid] = TestRecord(item.nodeid)
        record.tcp_before = tcp_counters()
        try:
            yield
        finally:
            _current = None
            self.records.pop(record.nodeid, None)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        record = self.records.get(item.nodeid)
        if record is not None:
            _check_mocks(record)
        yield
        if record is not None:
            _check_mocks(record)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        record = self.records.get(item.nodeid)
        if record is not None:
            _check_mocks(record)
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, None, None]:
        activity = FixtureActivity(fixturedef.argname, fixturedef.scope)
        shared = fixturedef.scope != "function"
        before = tcp_counters() if shared else {}
        _fixture_stack.append(activity)
        started = time.perf_counter()
        try:
            yield
        finally:
            _fixture_stack.remove(activity)
            activity.setup_s = time.perf_counter() - started
            if shared:
                activity.connections.update(_named(tcp_traffic(before, tcp_counters())))
                self.fixtures[id(fixturedef)] = activity

    def shared_fixtures(self, item: pytest.Item) -> list[dict[str, Any]]:
        """Wider-scoped fixtures this test uses whose set-up talked to the network."""
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            return []
        shared = []
        for name in info.names_closure:
            for fixturedef in info.name2fixturedefs.get(name, ())[-1:]:
                activity = self.fixtures.get(id(fixturedef))
                if activity is not None and activity.connections:
                    shared.append(activity.as_dict())
        return shared

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        record = self.records.get(item.nodeid)
        if record is not None:
            record.connections.update(_named(tcp_traffic(record.tcp_before, tcp_counters())))
            if (
                call.when == "teardown"
                and not record.connections
                and active_opens() > record.opens_before
            ):
                # Read the table only when it can matter: nothing seen, yet a connect happened.
                record.ended = ended_connections(time.monotonic() - record.started)
            # A plain attribute: xdist serialises the report's __dict__ to the controller.
            report.greenloop = {**record.as_dict(), "shared": self.shared_fixtures(item)}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.writes_tests:
            self.sink.emit("test_start", nodeid=nodeid, time=time.time())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.writes_tests:
            return
        extra = getattr(report, "greenloop", None) or {}
        outcome = report.outcome
        # An xfail's reason may be "": test for presence, or its traceback becomes a "skip reason".
        xfail = getattr(report, "wasxfail", None)
        self.sink.emit(
            "report",
            nodeid=report.nodeid,
            when=report.when,
            outcome=outcome,
            duration=report.duration,
            longrepr="" if report.passed else _trim(str(report.longrepr or ""), TRIM_TEXT),
            message=_message(report),
            skip_reason=_skip_reason(report) if report.skipped and xfail is None else "",
            xfail=xfail,
            stdout=_trim(report.capstdout, TRIM_OUTPUT),
            stderr=_trim(report.capstderr, TRIM_OUTPUT),
            log=_trim(report.caplog, TRIM_OUTPUT),
            connections=extra.get("connections", []),
            ended=extra.get("ended", []),
            mocks=extra.get("mocks", []),
            shared=extra.get("shared", []),
            request_id=extra.get("request_id"),
            sent=extra.get("sent", []),
            worker=_worker_id(report),
        )

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: Any
    ) -> None:
        if self.writes_tests and nodeid:
            category = getattr(warning_message.category, "__name__", "Warning")
            self.sink.emit("warning", nodeid=nodeid, text=f"{category}: {warning_message.message}")

    # ---- xdist and pytest-timeout (optional hooks: the plugins may be absent)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        self.sink.emit("crashed", nodeid=crashitem, worker=_worker_id(report))

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        """Thread-method timeouts end the process: say which test it was first."""
        main = threading.current_thread() is threading.main_thread()
        if settings.method == "signal" and main:
            return None
        import pytest_timeout

        def expire() -> None:
            self.sink.emit("timeout", nodeid=item.nodeid, timeout_s=settings.timeout)
            pytest_timeout.timeout_timer(item, settings)

        timer = threading.Timer(settings.timeout, expire)
        timer.daemon = True
        timer.name = f"greenloop timeout {item.nodeid}"

        def cancel() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel  # type: ignore[attr-defined]
        timer.start()
        return True

    # ---- the opt-in request id

    @pytest.fixture
    def greenloop_request_id(self, request: pytest.FixtureRequest) -> str:
        """A fresh id per test, recorded with its result; send it as X-Request-ID."""
        value = uuid.uuid4().hex
        record = self.records.get(request.node.nodeid)
        if record is not None:
            record.request_id = value
        return value


def _worker_id(report: Any) -> str | None:
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    return getattr(gateway, "id", None)


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0][:500] if crash.message else ""
    if report.skipped:
        return _skip_reason(report)[:500]
    text = str(report.longrepr or "").strip().splitlines()
    return text[-1][:500] if text else ""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenloop")
    group.addoption(
        "--greenloop-events",
        default=None,
        help=f"write greenloop's JSON events to this file (default: ${EVENTS_ENV})",
    )


def watch_parent(parent: int, interval_s: float = 0.5) -> None:
    """Stop this pytest (and its xdist workers) when greenloop itself is gone.

    pytest runs in its own session so Ctrl-C reaches greenloop first; if greenloop is
    killed outright (SIGKILL, OOM) nothing else would stop tests from running on
    against the environment, unobserved.
    """

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                try:
                    os.killpg(os.getpgrp(), signal.SIGKILL)
                finally:
                    os._exit(1)

    threading.Thread(target=watch, name="greenloop-parent-watch", daemon=True).start()


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--greenloop-events") or os.environ.get(EVENTS_ENV)
    if not path:
        return
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and not hasattr(config, "workerinput"):
        watch_parent(int(parent))
    install_network_recorder()
    install_mock_recorder()
    plugin = GreenloopPlugin(config, EventSink(path))
    config.pluginmanager.register(plugin, "greenloop-events")
    config.add_cleanup(plugin.sink.close)
