"""The Tracker interface every kind implements, and the HTTP plumbing the hosted ones share.

A tracker only does what it is told (find, create, comment, reopen, close, label);
what to tell it lives in lifecycle.py (pure) and outbox.py (delivery). Errors are
two kinds: `TrackerUnavailable` (down, slow, rate-limited, refusing our token: keep
the operation queued and stop delivering) and `IssueRejected` (this one operation
can never succeed, e.g. the issue was deleted: drop it and flag the issue).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from greenloop.deadline import request_within
from greenloop.kinds import KindOptions, OptionError

if TYPE_CHECKING:  # loaded by the hosted kinds when they connect, not when registered
    import httpx

MARKER = "<!-- greenloop:fingerprint={} -->"
OP_MARKER = "<!-- greenloop:op={} -->"


def fingerprint_marker(fingerprint: str) -> str:
    """The hidden line in every issue body that finds the issue again, whatever its title."""
    return MARKER.format(fingerprint)


def op_marker(idempotency_key: str) -> str:
    """The hidden line in every comment that makes re-delivering it a no-op."""
    return OP_MARKER.format(idempotency_key)


@dataclass(frozen=True)
class RemoteIssue:
    """An issue as the tracker reports it."""

    key: str
    title: str
    state: str  # open | closed
    location: str


class TrackerUnavailable(Exception):
    """The tracker cannot take operations now; retry later, in the same order."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class IssueRejected(Exception):
    """This operation will never succeed (issue gone, invalid); drop it, flag the issue."""


class Tracker(Protocol):
    """What the lifecycle and the outbox need from an issue tracker."""

    name: str  # identifies the tracker in the store's index, e.g. "github:owner/repo"

    def find(self, fingerprint: str) -> RemoteIssue | None: ...

    def create(self, title: str, body: str, labels: Sequence[str]) -> RemoteIssue: ...

    def comment(self, key: str, body: str) -> None: ...

    def comments(self, key: str) -> list[str]: ...

    def reopen(self, key: str) -> None: ...

    def close(self, key: str, comment: str | None = None) -> None: ...

    def set_labels(self, key: str, labels: Sequence[str]) -> None: ...


class TrackerKind(Protocol):
    """A tracker kind as the registry holds it: the class itself.

    `Options` is the model of [tracker]'s extra keys; `build` makes the tracker (a
    hosted kind reads its token here); `index_name` names it in the store's index
    without building it (no token needed); `validate` checks at load time.
    """

    @property
    def Options(self) -> type[KindOptions]: ...

    def build(self, options: Any, *, out_dir: Path) -> Tracker: ...

    def index_name(self, options: Any) -> str: ...

    def validate(self, options: Any) -> None: ...


class HttpTracker:
    """Shared by the hosted kinds: one httpx client, error mapping, Link pagination."""

    kind: ClassVar[str] = "http"

    @classmethod
    def validate(cls, options: Any) -> None:
        """The token must be in the environment now, not discovered mid-run."""
        token_env = options.token_env
        if token_env and not os.environ.get(token_env):
            raise OptionError(
                "token_env",
                f"environment variable {token_env} is not set "
                f'(the {cls.kind} tracker needs a token; export it or use kind = "local")',
            )

    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": "greenloop", **headers},
            timeout=timeout_s,
        )
        self.timeout_s = timeout_s

    def close_client(self) -> None:
        self.client.close()

    def request(
        self, method: str, path: str, *, issue_level: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One call; every failure becomes TrackerUnavailable or IssueRejected, never raw httpx."""
        import httpx

        try:
            response = request_within(self.client, method, path, self.timeout_s, **kwargs)
        except httpx.TimeoutException:
            raise TrackerUnavailable(
                f"{self.kind}: no reply from {self.base_url} within {self.timeout_s:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise TrackerUnavailable(f"{self.kind}: cannot reach {self.base_url}: {exc}") from None
        status = response.status_code
        if status < 400:
            return response
        limited = _rate_limit(response)
        if limited is not None:
            raise TrackerUnavailable(
                f"{self.kind}: rate limited ({status}); retry in {limited:.0f}s",
                retry_after=limited,
            )
        if status >= 500:
            raise TrackerUnavailable(f"{self.kind}: {method} {path} answered {status}")
        if status == 401:
            raise TrackerUnavailable(f"{self.kind}: the token was rejected (401)")
        if issue_level and status in (404, 410, 422):
            raise IssueRejected(
                f"{self.kind}: {method} {path} answered {status}: {_message(response)}"
            )
        raise TrackerUnavailable(
            f"{self.kind}: {method} {path} answered {status}: {_message(response)}"
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise TrackerUnavailable(f"{self.kind}: {method} {path}: reply is not JSON") from None

    def paginate(self, path: str, params: dict[str, Any], limit: int = 50) -> Iterator[Any]:
        """Every item of a list endpoint, following `Link: <...>; rel="next"`."""
        url: str | None = path
        pages = 0
        while url and pages < limit:
            response = self.request("GET", url, params=params if pages == 0 else None)
            try:
                items = response.json()
            except ValueError:
                raise TrackerUnavailable(f"{self.kind}: GET {url}: reply is not JSON") from None
            if not isinstance(items, list):
                raise TrackerUnavailable(f"{self.kind}: GET {url}: expected a list")
            yield from items
            url = response.links.get("next", {}).get("url")
            pages += 1


def _rate_limit(response: httpx.Response) -> float | None:
    """Seconds to wait when the reply says we are rate limited (GitHub and GitLab headers)."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            return 60.0
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    if response.status_code == 429 or remaining == "0":
        reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
        if reset and reset.isdigit():
            import time

            return max(0.0, int(reset) - time.time())
        return 60.0
    return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]
