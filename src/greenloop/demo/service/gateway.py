"""The ASGI layer in front of the app: request IDs, fault refusals and the access log.

It plays the load balancer and the process edge: it answers lb-503, slow-start, ws-reject,
intermittent and flaky itself, echoes ``X-Request-ID``, and writes one log line per request
(plus an error line with the traceback when the app raised).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from greenloop.demo.service import faults as fm
from greenloop.demo.service.logs import JsonLog, RequestContext, current_request
from greenloop.demo.service.runtime import ServiceRuntime

_STARTS = ("http.response.start", "websocket.http.response.start")


def request_id_from(scope: Scope) -> str:
    """The incoming ``X-Request-ID`` (trimmed to 128 chars), or a new one."""
    for key, value in scope.get("headers", []):
        if key == b"x-request-id" and value.strip():
            return str(value.decode("latin-1").strip()[:128])
    return uuid.uuid4().hex


def trace_id_from(scope: Scope) -> str | None:
    """The trace id of an incoming W3C ``traceparent`` (``00-<trace id>-<span id>-01``)."""
    for key, value in scope.get("headers", []):
        if key == b"traceparent":
            parts = value.decode("latin-1").strip().split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return None


class Gateway:
    """Wraps the FastAPI app; see the module docstring."""

    def __init__(self, app: ASGIApp, runtime: ServiceRuntime, log: JsonLog) -> None:
        self.app = app
        self.runtime = runtime
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        ctx = RequestContext(request_id_from(scope), scope.get("method", "GET"), scope["path"])
        if websocket:
            ctx.extra["websocket"] = True
        trace = trace_id_from(scope)
        if trace:
            ctx.extra["trace_id"] = trace
        token = current_request.set(ctx)
        rid_header = (b"x-request-id", ctx.request_id.encode("latin-1"))
        status = 0
        written = False
        started = time.perf_counter()

        def write_log() -> None:
            nonlocal written
            if not written:
                written = True
                elapsed = (time.perf_counter() - started) * 1000
                self.log.request(ctx, status or 500, elapsed)

        async def send_with_id(message: Message) -> None:
            # The log line is written before the last message goes out, so a client that
            # reads the log right after its response finds the line there.
            nonlocal status
            kind = message["type"]
            if kind in _STARTS or kind == "websocket.accept":
                status = message.get("status", 101)
                message = {**message, "headers": [*message.get("headers", []), rid_header]}
            elif kind == "websocket.close":
                ctx.extra["close_code"] = message.get("code", 1000)
                status = status or 403  # closed before accept: the server answers 403
                write_log()
            elif kind.endswith("response.body") and not message.get("more_body", False):
                write_log()
            await send(message)

        try:
            refusal = self._refusal(scope["path"], websocket)
            if refusal is not None:
                ctx.fault, ctx.error_type, ctx.error = (
                    refusal.fault,
                    refusal.error_type,
                    refusal.error,
                )
                if refusal.fault == "lb-503":
                    ctx.extra["layer"] = "load_balancer"
                await self._refuse(refusal, websocket, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:
            ctx.record_exception(exc)
            if not status and not websocket:
                await _send_plain(send_with_id, 500, b"Internal Server Error", "text/plain")
        finally:
            write_log()
            current_request.reset(token)

    def _refusal(self, path: str, websocket: bool) -> fm.Refusal | None:
        """Ask the fault model whether this request is answered at the edge."""
        faults = self.runtime.faults
        if fm.is_admin(path) or not faults.faults:
            return None
        return fm.front_door(
            faults,
            path=path,
            websocket=websocket,
            now=time.monotonic(),
            draw=self.runtime.draw(),
            flaky_call=self.runtime.next_flaky_call(path),
        )

    async def _refuse(
        self, refusal: fm.Refusal, websocket: bool, receive: Receive, send: Send
    ) -> None:
        """Send the refusal: an HTTP response, or an HTTP denial of the WebSocket upgrade."""
        body = refusal.body.encode()
        headers = [(k.encode(), v.encode()) for k, v in refusal.headers]
        if not websocket:
            await _send_plain(send, refusal.status, body, refusal.content_type, headers)
            return
        await receive()  # websocket.connect
        start = "websocket.http.response.start"
        await _send_plain(send, refusal.status, body, refusal.content_type, headers, start)


async def _send_plain(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    start: str = "http.response.start",
) -> None:
    """Send a complete response with ``body``."""
    all_headers: list[Any] = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    await send({"type": start, "status": status, "headers": all_headers})
    body_type = start.replace(".start", ".body")
    await send({"type": body_type, "body": body, "more_body": False})
