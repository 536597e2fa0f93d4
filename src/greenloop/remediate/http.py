"""HTTP action: one request to an ops endpoint (restart hook, cache flush, feature flag)."""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from pydantic import Field

from greenloop.config import Config
from greenloop.deadline import request_within
from greenloop.remediate.base import (
    ActionContext,
    ActionKind,
    ActionOptions,
    ActionOutcome,
    OptionError,
    check_placeholders,
    substitute,
    substitutions,
)


class HttpOptions(ActionOptions):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    # Header name -> environment variable read when the action runs (tokens stay out of the file).
    headers_env: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | list[Any] | str | None = None  # a dict or list is sent as JSON
    expect_status: list[int] = Field(default_factory=list)  # empty: any 2xx
    verify: bool = True


class HttpAction(ActionKind[HttpOptions]):
    name = "http"
    Options = HttpOptions

    def validate(self, options: HttpOptions, config: Config) -> None:
        check_placeholders("url", options.url)
        if not options.url.startswith(("http://", "https://", "{base_url}")):
            raise OptionError("url", "expected an http:// or https:// URL")

    def url(self, options: HttpOptions, config: Config) -> str:
        return substitute(options.url, substitutions(config))

    def secrets(self, options: HttpOptions) -> tuple[str, ...]:
        return tuple(os.environ[v] for v in options.headers_env.values() if os.environ.get(v))

    def describe(self, options: HttpOptions, context: ActionContext) -> str:
        # Header values may be credentials: name them, never show them.
        names = sorted({*options.headers, *options.headers_env})
        headers = f" (headers: {', '.join(names)})" if names else ""
        return f"{options.method} {self.url(options, context.config)}{headers}"

    def run(self, options: HttpOptions, context: ActionContext) -> ActionOutcome:
        headers = dict(options.headers)
        for header, variable in options.headers_env.items():
            if variable not in os.environ:
                return ActionOutcome(
                    False,
                    f"{self.describe(options, context)}: environment variable {variable} "
                    f"(for header {header}) is not set",
                )
            headers[header] = os.environ[variable]
        kwargs: dict[str, Any] = {"headers": headers}
        if isinstance(options.body, str):
            kwargs["content"] = options.body.encode()
        elif options.body is not None:
            kwargs["json"] = options.body
        import httpx  # loaded when an HTTP action runs, not when the kind is registered

        started = time.perf_counter()
        try:
            with httpx.Client(timeout=context.timeout_s, verify=options.verify) as client:
                response = request_within(
                    client,
                    options.method,
                    self.url(options, context.config),
                    context.timeout_s,
                    **kwargs,
                )
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return ActionOutcome(False, f"{self.describe(options, context)}: {reason}")
        elapsed = (time.perf_counter() - started) * 1000
        ok = (
            response.status_code in options.expect_status
            if options.expect_status
            else 200 <= response.status_code < 300
        )
        detail = (
            f"{self.describe(options, context)}: HTTP {response.status_code} in {elapsed:.0f} ms"
        )
        if not ok and response.text.strip():
            detail += f"; reply: {response.text.strip()[:300]}"
        return ActionOutcome(ok, detail)
