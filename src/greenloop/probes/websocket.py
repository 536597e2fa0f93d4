"""WebSocket probe: handshake, optionally one message and its reply, and the close code.

A rejected handshake reports the HTTP status (`status == 503`); a server that
accepts and then dies reports its close code (`close_code == 1011`).
websockets is imported only when a websocket probe runs.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any

from pydantic import Field, model_validator

from greenloop.probes.base import (
    CaFile,
    Observation,
    ProbeKind,
    ProbeOptions,
    ProbeUrl,
    describe_error,
    json_or_none,
    mask_url,
    ms,
    tls_context,
    url_password,
)
from greenloop.probes.conditions import Document


class WebsocketOptions(ProbeOptions):
    url: ProbeUrl = Field(pattern=r"^wss?://")
    headers: dict[str, str] = Field(default_factory=dict)
    send: str | dict[str, Any] | None = None  # a dict is sent as JSON
    expect_reply: bool | None = None  # default: true when `send` is set
    expect_type: str | None = None  # the reply's JSON "type" must equal this
    # How long to wait for the reply (or, with expect_reply = false, for the server to close).
    reply_timeout_s: float = Field(1.0, gt=0)
    ca_file: CaFile = None
    verify_tls: bool = True

    @model_validator(mode="after")
    def _reply_needed(self) -> WebsocketOptions:
        if self.expect_type is not None and self.expect_reply is False:
            raise ValueError("expect_type needs a reply; remove expect_reply = false")
        return self

    @property
    def wants_reply(self) -> bool:
        if self.expect_reply is not None:
            return self.expect_reply
        return self.send is not None or self.expect_type is not None


class WebsocketProbe(ProbeKind[WebsocketOptions]):
    name = "websocket"
    Options = WebsocketOptions
    variables = ("connected", "status", "replied", "reply", "close_code", "latency_ms")
    default_conditions = ("connected",)
    client_modules = ("websockets.asyncio.client",)

    def implied_conditions(self, options: WebsocketOptions) -> tuple[str, ...]:
        implied: tuple[str, ...] = ("replied",) if options.wants_reply else ()
        if options.expect_type is not None:
            implied += (f"reply.type == {json.dumps(options.expect_type)}",)
        return implied

    def target(self, options: WebsocketOptions) -> str:
        return mask_url(options.url)

    def secrets(self, options: WebsocketOptions) -> tuple[str, ...]:
        password = url_password(options.url)
        return (password,) if password else ()

    async def check(self, options: WebsocketOptions, timeout_s: float) -> Observation:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        context: ssl.SSLContext | None = None
        if options.url.startswith("wss://"):
            context = tls_context(options.ca_file, options.verify_tls)
        started = time.perf_counter()
        try:
            ws = await connect(
                options.url,
                additional_headers=options.headers,
                open_timeout=timeout_s,
                ssl=context,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            return Observation(
                {
                    "connected": False,
                    "status": status,
                    "latency_ms": ms(time.perf_counter() - started),
                },
                f"handshake rejected with HTTP {status}",
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return Observation({"connected": False}, describe_error(exc))
        latency = ms(time.perf_counter() - started)
        values: dict[str, Any] = {"connected": True, "status": 101, "latency_ms": latency}
        summary = f"connected in {latency:.0f} ms"
        try:
            if options.send is not None:
                message = (
                    options.send if isinstance(options.send, str) else json.dumps(options.send)
                )
                await ws.send(message)
            # Even when no reply is required, listen briefly after sending: a
            # server that dies on the message shows it by its close code.
            if options.send is not None or options.wants_reply:
                reply = await asyncio.wait_for(ws.recv(), options.reply_timeout_s)
                text = reply if isinstance(reply, str) else reply.decode("utf-8", "replace")
                values["replied"] = True
                values["reply"] = Document(text, json_or_none(text))
                summary += f", reply {text[:80]!r}"
        except TimeoutError:
            values["replied"] = False
            if options.wants_reply:
                summary += f", no reply within {options.reply_timeout_s:g} s"
        except ConnectionClosed:
            values["replied"] = False
            summary += ", closed by server" + (" before replying" if options.wants_reply else "")
        await ws.close()
        values["close_code"] = ws.close_code
        if ws.close_code not in (None, 1000):
            reason = f" ({ws.close_reason})" if ws.close_reason else ""
            summary += f", close code {ws.close_code}{reason}"
        return Observation(values, summary)
