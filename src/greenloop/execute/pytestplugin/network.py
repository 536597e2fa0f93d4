"""What the running test talks to: every socket it connects or sends on, and the HTTP
request heads it sends (any client: these are its bytes), kept on its `TestRecord`.

`_current` is the record of the test running now (set by the hooks); the wrappers
installed by `install_network_recorder` add to it and to the fixtures being set up.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from greenloop.execute.pytestplugin.tcp import TcpCounters, active_opens, address_of


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
# Local ports of the client sockets this process opened through Python's socket: their
# closes in the kernel's table are not a C client's (see tcp.ended_connections).
_client_ports: set[int] = set()
_sending = threading.local()  # inside a wrapped send: inner sends are the same bytes


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


# --------------------------------------------------------------------------- wrappers


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any, *args: Any) -> Any:
        peer = address_of(address)
        if peer is not None:
            _peers[self] = peer
            _note(peer)
        try:
            return original(self, address, *args)
        finally:
            _remember_local_port(self)

    connect.__wrapped__ = original  # type: ignore[attr-defined]
    connect._greenloop = True  # type: ignore[attr-defined]
    return connect


def _remember_local_port(sock: socket.socket) -> None:
    # Bound by connect() even when it raised (non-blocking: in progress).
    try:
        local = sock.getsockname()
    except OSError:
        return
    if isinstance(local, tuple) and len(local) >= 2 and local[1]:
        _client_ports.add(local[1])


def client_ports() -> frozenset[int]:
    """Local ports of every client socket this process connected through Python's socket."""
    return frozenset(_client_ports)


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if _current is not None:
            peer = _peers.get(self)
            if peer is None and isinstance(self, ssl.SSLSocket) and not self.server_side:
                try:
                    peer = address_of(self.getpeername())
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
        peer = address_of(address)
        if peer is not None:
            _note(peer)
        try:
            return await original(self, sock, address)
        finally:
            if isinstance(sock, socket.socket):
                _remember_local_port(sock)

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


def patch_once(owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
    original = inspect.getattr_static(owner, name)
    if getattr(original, "_greenloop", False):
        return
    setattr(owner, name, wrapper(original))


def install_network_recorder() -> None:
    """Wrap connect / send so each test's peers are known; behaviour is unchanged."""
    for name in ("connect", "connect_ex"):
        patch_once(socket.socket, name, _wrap_connect)
    for name in ("send", "sendall", "sendmsg"):
        patch_once(socket.socket, name, _wrap_send)
    for name in ("send", "sendall"):
        patch_once(ssl.SSLSocket, name, _wrap_send)
    patch_once(ssl.SSLObject, "write", _wrap_tls_write)
    patch_once(socket, "getaddrinfo", _wrap_getaddrinfo)
    base = asyncio.base_events.BaseEventLoop
    patch_once(base, "create_connection", _wrap_create_connection)
    patch_once(base, "sock_connect", _wrap_sock_connect)


def named_peers(peers: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """The peers, plus the host name each address was resolved from."""
    out = set(peers)
    for host, port in peers:
        name = _names.get(host)
        if name and name != host:
            out.add((name, port))
    return out
