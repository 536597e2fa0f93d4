"""TCP probe: can a connection be opened to host:port."""

from __future__ import annotations

import asyncio
import contextlib
import time

from pydantic import Field

from greenloop.probes.base import Observation, ProbeKind, ProbeOptions, describe_error, ms


class TcpOptions(ProbeOptions):
    host: str
    port: int = Field(ge=1, le=65535)


class TcpProbe(ProbeKind[TcpOptions]):
    name = "tcp"
    Options = TcpOptions
    variables = ("connected", "latency_ms")
    default_conditions = ("connected",)

    def target(self, options: TcpOptions) -> str:
        return f"tcp://{options.host}:{options.port}"

    async def check(self, options: TcpOptions, timeout_s: float) -> Observation:
        started = time.perf_counter()
        try:
            _reader, writer = await asyncio.open_connection(options.host, options.port)
        except ConnectionResetError:
            # A reset before the connection was ever ours: the listener went away with our
            # handshake in its queue (a process killed a moment ago). Nothing accepts.
            return Observation({"connected": False}, "connection refused (reset while connecting)")
        except OSError as exc:
            return Observation({"connected": False}, describe_error(exc))
        latency = ms(time.perf_counter() - started)
        writer.close()
        # The peer closing first is fine: we only wanted the handshake.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Observation(
            {"connected": True, "latency_ms": latency}, f"connected in {latency:.0f} ms"
        )
