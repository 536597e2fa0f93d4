"""HTTP(S) probe: one request with httpx; conditions on status, latency, headers and body."""

from __future__ import annotations

import json
import re
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
from greenloop.records import DependencyLatency

# An answer slower than this is worth explaining: its body (a health check's per-dependency
# latency) goes into the detail, as it does for any 4xx/5xx answer.
SLOW_MS = 1000.0
BODY_EXCERPT_CHARS = 400
# Time spent on greenloop's side (client set-up, its own event loop busy) worth saying apart.
OVERHEAD_NOTE_MS = 100.0


class HttpOptions(ProbeOptions):
    url: ProbeUrl = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(None, alias="json")
    verify_tls: bool = True
    ca_file: CaFile = None  # PEM bundle to trust instead of the system store
    follow_redirects: bool = False


class HttpProbe(ProbeKind[HttpOptions]):
    name = "http"
    Options = HttpOptions
    variables = ("connected", "status", "latency_ms", "headers", "body")
    default_conditions = ("status < 400",)
    client_modules = ("httpx",)

    def target(self, options: HttpOptions) -> str:
        return f"{options.method} {mask_url(options.url)}"

    def secrets(self, options: HttpOptions) -> tuple[str, ...]:
        password = url_password(options.url)
        auth = options.headers.get("Authorization") or options.headers.get("authorization")
        return tuple(s for s in (password, auth) if s)

    async def check(self, options: HttpOptions, timeout_s: float) -> Observation:
        import httpx

        started = time.perf_counter()
        clock = _Clock()
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
                    extensions={"trace": clock.trace},
                )
        except httpx.HTTPError as exc:
            return Observation(
                {"connected": False, "latency_ms": ms(time.perf_counter() - started)},
                describe_error(exc),
            )
        total_s = time.perf_counter() - started
        # The target's answer time: from the request's first byte out to its answer's last
        # byte in. Setting up the client, TLS context and waiting for our own event loop
        # before sending are greenloop's time, not the target's (shown apart when large).
        latency = ms(clock.answer_s if clock.answer_s is not None else total_s)
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
        overhead = ms(total_s) - latency
        if overhead >= OVERHEAD_NOTE_MS:
            connect = f"connect {ms(clock.connect_s):.0f} ms, " if clock.connect_s else ""
            summary += f" ({connect}{overhead:.0f} ms more on greenloop's side)"
        dependencies: tuple[DependencyLatency, ...] = ()
        if response.status_code >= 400 or latency >= SLOW_MS:
            # An error or a slow answer: what the body says is the evidence triage cites
            # ("connection refused to cache at ...", a dependency's latency_ms).
            excerpt = body_excerpt(text, parsed)
            if excerpt:
                summary += f"; body: {excerpt}"
                dependencies = dependency_latencies(excerpt)
        return Observation(values, summary, dependencies)


class _Clock:
    """Times one request from httpcore's trace events (perf_counter seconds).

    `answer_s` runs from sending the request headers to the end of the response body
    (what the target took, plus the wire); `connect_s` is TCP and TLS set-up. Redirects
    add up.
    """

    def __init__(self) -> None:
        self.answer_s: float | None = None
        self.connect_s = 0.0
        self._marks: dict[str, float] = {}

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        step, _, phase = name.rpartition(".")
        if phase == "started":
            self._marks[step] = now
        elif phase == "complete":
            begun = self._marks.pop(step, None)
            if begun is None:
                return
            if step.endswith(("connect_tcp", "start_tls")):
                self.connect_s += now - begun
            elif step.endswith("send_request_headers"):
                self._marks["answer"] = begun
            elif step.endswith("receive_response_body") and "answer" in self._marks:
                self.answer_s = (self.answer_s or 0.0) + now - self._marks.pop("answer")


# '"database":{"ok":true,"latency_ms":3001.2}' in a health body's compact excerpt.
_DEPENDENCY_LATENCY = re.compile(
    r'"(?P<name>[\w.-]+)":\{[^{}]*?"latency_ms":(?P<ms>\d+(?:\.\d+)?)[^{}]*\}'
)


def dependency_latencies(excerpt: str) -> tuple[DependencyLatency, ...]:
    """Each dependency a health body's excerpt (`body_excerpt`) reports a `latency_ms` for,
    in order, with the body's words for it (at most 160 characters)."""
    if "latency_ms" not in excerpt:
        return ()
    return tuple(
        DependencyLatency(m.group("name"), float(m.group("ms")), m.group(0)[:160])
        for m in _DEPENDENCY_LATENCY.finditer(excerpt)
    )


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
