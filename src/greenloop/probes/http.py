"""HTTP(S) probe: one request with httpx; conditions on status, latency, headers and body."""

from __future__ import annotations

import json
import ssl
import time
from typing import Any, Literal

from pydantic import Field

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

# An answer slower than this is worth explaining: its body (a health check's per-dependency
# latency) goes into the detail, as it does for any 4xx/5xx answer.
SLOW_MS = 1000.0
BODY_EXCERPT_CHARS = 400


class HttpOptions(ProbeOptions):
    url: ProbeUrl = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(None, alias="json")
    verify_tls: bool = True
    ca_file: CaFile = None  # PEM bundle to trust instead of the system store
    follow_redirects: bool = False


class HttpProbe(ProbeKind):
    name = "http"
    options_model = HttpOptions
    variables = ("connected", "status", "latency_ms", "headers", "body")
    default_conditions = ("status < 400",)

    def target(self, options: HttpOptions) -> str:
        return f"{options.method} {mask_url(options.url)}"

    def secrets(self, options: HttpOptions) -> tuple[str, ...]:
        password = url_password(options.url)
        auth = options.headers.get("Authorization") or options.headers.get("authorization")
        return tuple(s for s in (password, auth) if s)

    async def check(self, options: HttpOptions, timeout_s: float) -> Observation:
        import httpx

        started = time.perf_counter()
        try:
            async with httpx.AsyncClient(
                verify=_context(options),
                timeout=timeout_s,
                follow_redirects=options.follow_redirects,
                trust_env=False,
            ) as client:
                response = await client.request(
                    options.method,
                    options.url,
                    headers=options.headers,
                    content=options.body,
                    json=options.json_body,
                )
        except httpx.HTTPError as exc:
            return Observation(
                {"connected": False, "latency_ms": ms(time.perf_counter() - started)},
                describe_error(exc),
            )
        latency = ms(time.perf_counter() - started)
        text = response.text
        parsed = json_or_none(text)
        values = {
            "connected": True,
            "status": response.status_code,
            "latency_ms": latency,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": Document(text, parsed),
        }
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        summary = f"HTTP {response.status_code}{reason} in {latency:.0f} ms"
        if response.status_code >= 400 or latency >= SLOW_MS:
            # An error or a slow answer: what the body says is the evidence triage cites
            # ("connection refused to cache at ...", a dependency's latency_ms).
            excerpt = body_excerpt(text, parsed)
            if excerpt:
                summary += f"; body: {excerpt}"
        return Observation(values, summary)


def body_excerpt(text: str, parsed: Any, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A short, redacted, one-line excerpt of a response body (compact JSON when it is JSON)."""
    from greenloop.redact import Redactor

    if parsed is not None:
        text = json.dumps(Redactor().redact_obj(parsed), separators=(",", ":"), default=str)
    else:
        text = Redactor().redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _context(options: HttpOptions) -> ssl.SSLContext:
    """The TLS context for this request, shared across checks.

    A plain http:// URL that may not redirect never handshakes, so it gets the
    context that loads no trust store: loading one costs 20-30 ms, a large
    part of a gate's first check against a loopback server.
    """
    if options.url.startswith("https://") or options.follow_redirects:
        return tls_context(options.ca_file, options.verify_tls)
    return tls_context(verify=False)
