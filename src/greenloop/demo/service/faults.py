"""The fault model: which faults exist, their parameters, and what each does to a request.

Pure values and functions only. The service asks these functions what to do; the sockets,
clocks and random draws stay in the caller so every decision here is testable with plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

Source = Literal["runtime", "revision"]

EVENT_TYPES: tuple[str, ...] = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)

DEPENDENCIES: tuple[str, ...] = ("database", "cache")

LB_BODY = (
    "upstream connect error or disconnect/reset before headers. "
    "reset reason: connection failure, transport failure reason: Service Unavailable"
)


class FaultError(ValueError):
    """A fault name or parameter the user gave is not valid."""


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: its name, what it does, its parameter defaults."""

    name: str
    description: str
    defaults: tuple[tuple[str, str], ...] = ()
    runtime: bool = True  # False: needs a process restart (the control CLI redeploys)


KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in (
        FaultKind("lb-503", "the load balancer answers 503 for every endpoint"),
        FaultKind(
            "dependency-down",
            "a dependency refuses connections; health 503 names it",
            (("dependency", "cache"),),
        ),
        FaultKind("slow-db", "every database query sleeps N seconds", (("seconds", "6"),)),
        FaultKind("ws-reject", "the WebSocket handshake is rejected with HTTP 503"),
        FaultKind("ws-1011", "the WebSocket is accepted, then closed with 1011 internal error"),
        FaultKind("app-bug", "posting or listing messages raises KeyError (HTTP 500)"),
        FaultKind(
            "wrong-result",
            "listing messages leaves out the newest one (HTTP 200, nothing logged)",
        ),
        FaultKind(
            "missing-event",
            "one of the five agent events is never sent",
            (("event", "tool_completed"),),
        ),
        FaultKind("auth-broken", "valid tokens are verified with the wrong key (401)"),
        FaultKind(
            "intermittent",
            "percent% of requests fail with 500 (seeded random)",
            (("percent", "30"), ("seed", "0")),
        ),
        FaultKind(
            "flaky",
            "one endpoint fails on every Nth call, starting with the first",
            (("path", "/search"), ("every", "2")),
        ),
        FaultKind(
            "tls-mismatch",
            "HTTPS with a self-signed certificate for wrong.example.test",
            runtime=False,
        ),
        FaultKind(
            "slow-start",
            "everything but admin answers 503 starting for N seconds",
            (("seconds", "10"),),
        ),
    )
}


@dataclass(frozen=True)
class Fault:
    """An active fault with its parameters (strings, validated) and where it came from."""

    name: str
    params: tuple[tuple[str, str], ...] = ()
    source: Source = "runtime"
    activated_at: float = 0.0  # monotonic seconds; only slow-start reads it

    def param(self, key: str) -> str:
        """The value of parameter ``key`` (always present after validation)."""
        return dict(self.params)[key]

    def number(self, key: str) -> float:
        """Parameter ``key`` as a number."""
        return float(self.param(key))

    @property
    def spec(self) -> str:
        """The fault as a command-line spec, ``name:k=v,k=v``."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params)

    def to_json(self) -> dict[str, object]:
        """The fault as the admin API shows it."""
        return {"name": self.name, "params": dict(self.params), "source": self.source}


def _check_param(name: str, key: str, value: str) -> None:
    """Raise FaultError when ``value`` is not valid for parameter ``key`` of fault ``name``."""
    try:
        if key in ("seconds", "percent") and float(value) < 0:
            raise FaultError(f"{name}: {key} must be >= 0, got {value}")
        if key == "percent" and float(value) > 100:
            raise FaultError(f"{name}: percent must be <= 100, got {value}")
        if key in ("seed", "every"):
            int(value)
    except ValueError as exc:
        if isinstance(exc, FaultError):
            raise
        raise FaultError(f"{name}: {key} must be a number, got {value!r}") from None
    if key == "every" and int(value) < 2:
        raise FaultError(f"{name}: every must be >= 2, got {value}")
    if key == "dependency" and value not in DEPENDENCIES:
        raise FaultError(f"{name}: dependency must be one of {', '.join(DEPENDENCIES)}")
    if key == "event" and value not in EVENT_TYPES:
        raise FaultError(f"{name}: event must be one of {', '.join(EVENT_TYPES)}")
    if key == "path" and not value.startswith("/"):
        raise FaultError(f"{name}: path must start with /, got {value!r}")


def make_fault(
    name: str,
    params: Mapping[str, object] | None = None,
    source: Source = "runtime",
    activated_at: float = 0.0,
) -> Fault:
    """Validate ``name`` and ``params`` and return the fault with defaults filled in."""
    kind = KINDS.get(name)
    if kind is None:
        raise FaultError(f"unknown fault {name!r}; known: {', '.join(sorted(KINDS))}")
    given = {k: str(v) for k, v in (params or {}).items()}
    defaults = dict(kind.defaults)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise FaultError(f"{name}: unknown parameter {unknown[0]!r} (allowed: {allowed})")
    merged = {**defaults, **given}
    for key, value in merged.items():
        _check_param(name, key, value)
    return Fault(name, tuple(merged.items()), source, activated_at)


def parse_spec(spec: str, source: Source = "runtime", activated_at: float = 0.0) -> Fault:
    """Parse ``name`` or ``name:k=v,k=v`` into a validated fault."""
    name, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FaultError(f"bad fault parameter {item!r} in {spec!r}; expected key=value")
        params[key.strip()] = value.strip()
    return make_fault(name, params, source, activated_at)


@dataclass(frozen=True)
class FaultSet:
    """The faults active in one process; revision faults (bugs) cannot be cleared at runtime."""

    faults: tuple[Fault, ...] = field(default_factory=tuple)

    def get(self, name: str) -> Fault | None:
        """The active fault called ``name``, if any."""
        return next((f for f in self.faults if f.name == name), None)

    def with_fault(self, fault: Fault) -> FaultSet:
        """This set with ``fault`` added, replacing a runtime fault of the same name."""
        old = self.get(fault.name)
        if old is not None and old.source == "revision":
            raise FaultError(f"{fault.name} is baked into the deployed revision; roll back")
        return FaultSet((*(f for f in self.faults if f.name != fault.name), fault))

    def without(self, name: str) -> FaultSet:
        """This set without the runtime fault ``name``."""
        old = self.get(name)
        if old is None:
            raise FaultError(f"fault {name!r} is not active")
        if old.source == "revision":
            raise FaultError(f"{name} is baked into the deployed revision; roll back")
        return FaultSet(tuple(f for f in self.faults if f.name != name))

    def runtime_cleared(self) -> FaultSet:
        """This set with every runtime fault removed (revision faults stay)."""
        return FaultSet(tuple(f for f in self.faults if f.source == "revision"))

    def to_json(self) -> list[dict[str, object]]:
        """The faults as the admin API lists them."""
        return [f.to_json() for f in self.faults]


@dataclass(frozen=True)
class Refusal:
    """A response sent instead of running the endpoint, and the fault that caused it."""

    status: int
    body: str
    content_type: str
    fault: str
    error_type: str  # what the service log records
    error: str
    headers: tuple[tuple[str, str], ...] = ()


def is_admin(path: str) -> bool:
    """Admin endpoints are never affected by faults."""
    return path == "/admin" or path.startswith("/admin/")


def flaky_applies(faults: FaultSet, path: str) -> bool:
    """True when the flaky fault targets ``path`` (so the caller counts this call)."""
    fault = faults.get("flaky")
    return fault is not None and path.startswith(fault.param("path"))


def flaky_fails(call_number: int, every: int) -> bool:
    """The 1st, (every+1)th, ... calls fail: with every=2, a rerun of a failed call passes."""
    return call_number % every == 1


def front_door(
    faults: FaultSet,
    *,
    path: str,
    websocket: bool,
    now: float,
    draw: float,
    flaky_call: int,
) -> Refusal | None:
    """What a request meets before reaching an endpoint, or None to let it through.

    ``now`` is monotonic seconds, ``draw`` a uniform random number in [0, 1) for
    the intermittent fault, ``flaky_call`` this call's number on the flaky path (0: not counted).
    """
    if is_admin(path):
        return None
    if faults.get("lb-503"):
        return Refusal(
            503,
            LB_BODY,
            "text/plain",
            "lb-503",
            "UpstreamConnectError",
            "load balancer has no healthy upstream for this service",
            (("server", "envoy"), ("retry-after", "5")),
        )
    slow = faults.get("slow-start")
    if slow is not None:
        left = slow.activated_at + slow.number("seconds") - now
        if left > 0:
            body = f'{{"status":"starting","detail":"service is starting; ready in {left:.0f} s"}}'
            return Refusal(
                503,
                body,
                "application/json",
                "slow-start",
                "ServiceStarting",
                "service is still starting",
            )
    if websocket and faults.get("ws-reject"):
        body = '{"detail":"websocket upgrade rejected: no capacity for new connections"}'
        return Refusal(
            503,
            body,
            "application/json",
            "ws-reject",
            "WebSocketRejected",
            "websocket upgrade rejected: no capacity for new connections",
        )
    intermittent = faults.get("intermittent")
    if intermittent and path != "/health" and draw < intermittent.number("percent") / 100:
        return Refusal(
            500,
            '{"detail":"Internal Server Error"}',
            "application/json",
            "intermittent",
            "RuntimeError",
            "worker crashed while handling request",
        )
    flaky = faults.get("flaky")
    if flaky and flaky_call and flaky_fails(flaky_call, int(flaky.number("every"))):
        return Refusal(
            500,
            '{"detail":"Internal Server Error"}',
            "application/json",
            "flaky",
            "ConnectionResetError",
            "upstream worker reset the connection",
        )
    return None


def down_dependency(faults: FaultSet) -> str | None:
    """The dependency the dependency-down fault takes away, if active."""
    fault = faults.get("dependency-down")
    return fault.param("dependency") if fault else None


def db_delay(faults: FaultSet) -> float:
    """Seconds every database query sleeps first (slow-db)."""
    fault = faults.get("slow-db")
    return fault.number("seconds") if fault else 0.0


def agent_events(faults: FaultSet) -> tuple[str, ...]:
    """The agent events the service sends, in order (missing-event drops one)."""
    fault = faults.get("missing-event")
    dropped = fault.param("event") if fault else None
    return tuple(e for e in EVENT_TYPES if e != dropped)


def with_activation(fault: Fault, now: float) -> Fault:
    """``fault`` stamped with the time it became active."""
    return replace(fault, activated_at=now)
