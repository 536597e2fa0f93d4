"""DNS probe: does a name resolve (through the system resolver, like the tests would)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Literal

from greenloop.probes.base import Observation, ProbeKind, ProbeOptions, describe_error, ms

FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class DnsOptions(ProbeOptions):
    host: str  # the name to resolve
    family: Literal["any", "ipv4", "ipv6"] = "any"


class DnsProbe(ProbeKind[DnsOptions]):
    name = "dns"
    Options = DnsOptions
    variables = ("resolved", "addresses", "latency_ms")
    default_conditions = ("resolved",)

    def target(self, options: DnsOptions) -> str:
        return f"dns:{options.host}"

    async def check(self, options: DnsOptions, timeout_s: float) -> Observation:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            infos = await loop.getaddrinfo(
                options.host, None, family=FAMILIES[options.family], type=socket.SOCK_STREAM
            )
        except UnicodeError:
            return Observation({"resolved": False}, f"{options.host!r} is not a valid host name")
        except OSError as exc:
            return Observation({"resolved": False}, describe_error(exc))
        latency = ms(time.perf_counter() - started)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return Observation(
            {"resolved": bool(addresses), "addresses": addresses, "latency_ms": latency},
            f"resolves to {', '.join(addresses)}",
        )
