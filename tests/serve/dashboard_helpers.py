"""Dashboard test helpers: a dashboard served in a thread, JSON reads (not a conftest)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from greenloop.redact import Redactor
from greenloop.serve.app import Dashboard, create_app
from greenloop.serve.server import bind
from greenloop.store import Store


@contextmanager
def running_dashboard(
    store: Store, *, token: str | None = None, redactor: Redactor | None = None
) -> Iterator[str]:
    """Serve the dashboard over `store` in a thread; yields its base URL, stops it after."""
    sock = bind("127.0.0.1", 0)
    app = create_app(Dashboard(store=store, redactor=redactor or Redactor(), token=token))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def get_json(url: str) -> dict:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response.json()
