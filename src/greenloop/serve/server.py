"""`greenloop serve`: bind the socket, then hand the dashboard app to uvicorn.

The socket is bound here rather than by uvicorn so a port already in use or an
address that is not ours is one clear line (exit 2), not a server log.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn

from greenloop.config import Config
from greenloop.errors import UserError
from greenloop.redact import redactor_for
from greenloop.serve.app import Dashboard, create_app
from greenloop.store import Store


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port. Raises UserError when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: cannot resolve it: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UserError(f"--host {host} --port {port}: cannot listen: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_dashboard(
    config: Config,
    store: Store,
    *,
    host: str,
    port: int,
    token: str | None,
    say: Callable[[str], None],
) -> None:
    """Serve until interrupted. `token` None keeps the dashboard read-only."""
    dashboard = Dashboard(
        store=store,
        # The token is a secret too: it must never show in a page.
        redactor=redactor_for(config, (token,) if token else ()),
        title=f"greenloop · {config.environment.name}",
        flaky_window=config.triage.flaky_window,
        token=token,
    )
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    mode = "writes allowed with the token" if token else "read-only"
    say(f"greenloop dashboard at http://{shown}:{sock.getsockname()[1]}/ ({mode}); Ctrl+C stops")
    if not is_loopback(host):
        say(f"note: listening on {host}: anyone who can reach it can read the (redacted) store")
    server = uvicorn.Server(
        uvicorn.Config(create_app(dashboard), log_level="warning", access_log=False)
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
