"""HTTP calls with one total deadline: connect, headers and every byte of the body.

httpx's timeouts are per operation: a server that answers at once and then drips one
byte every second never trips a read timeout, and a call could last forever. Every
outgoing HTTP call of greenloop outside the probes (which run under asyncio.timeout)
goes through `request_within`: the body is read chunk by chunk against one deadline, so
a call ends within `timeout_s` plus at most one read timeout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where called: a run that makes no such call never loads httpx
    import httpx


def request_within(
    client: httpx.Client, method: str, url: str, timeout_s: float, **kwargs: Any
) -> httpx.Response:
    """One request whose whole exchange ends by `timeout_s` seconds from now.

    Returns the complete response (body read). Raises httpx.ReadTimeout when the body
    is still arriving at the deadline, and any other httpx.HTTPError as httpx does.
    """
    import httpx

    deadline = time.monotonic() + timeout_s
    kwargs.setdefault("timeout", timeout_s)
    with client.stream(method, url, **kwargs) as streamed:
        body = bytearray()
        for chunk in streamed.iter_raw():
            body += chunk
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(
                    f"the reply took longer than {timeout_s:g}s in all", request=streamed.request
                )
        return httpx.Response(
            streamed.status_code,
            headers=streamed.headers,
            content=bytes(body),
            request=streamed.request,
            extensions=streamed.extensions,
        )


def get_within(url: str, timeout_s: float, **kwargs: Any) -> httpx.Response:
    """`request_within` for one GET with a client of its own (`verify` and friends go to it)."""
    import httpx

    client_options = {k: kwargs.pop(k) for k in ("verify", "follow_redirects") if k in kwargs}
    with httpx.Client(**client_options) as client:
        return request_within(client, "GET", url, timeout_s, **kwargs)
