"""Which component a failure points at: named by its text, its probes or the index."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from greenloop.records import ProbeResult
from greenloop.triage.evidence import FailureEvidence
from greenloop.triage.rules.combinators import ComponentOf


def probes_note(ev: FailureEvidence) -> str:
    if not ev.failing_probes:
        return "every probe green" if ev.gate_known else "no probe data"
    return _failing_note(ev.failing_probes[:3])


# Every failure of a run shares the gate's failing probes: format them (a strftime each) once.
@lru_cache(maxsize=64)
def _failing_note(probes: tuple[ProbeResult, ...]) -> str:
    return "; ".join(
        f"probe {p.name!r} ({p.component}) failing at {p.checked_at:%H:%M:%S}: {p.detail[:120]}"
        for p in probes
    )


@dataclass(frozen=True, slots=True)
class _Family:
    """A kind of component an error text can name: its pattern, and the probe names it fits.

    `needles` are literals one of which every match of `pattern` holds: a text without any
    of them is not searched (the search costs several times more than the scans).
    """

    name: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...]
    hints: tuple[str, ...]  # a probe whose component or kind holds one is of this family

    def named_in(self, text: str) -> bool:
        for needle in self.needles:
            if needle in text:
                return self.pattern.search(text) is not None
        return False


_FAMILIES = (
    _Family(
        "database",
        re.compile(r"psycopg|postgres|PgDatabase|sqlalchemy|django\.db|mysql|:5432\b|port 5432"),
        ("psycopg", "postgres", "PgDatabase", "sqlalchemy", "django.db", "mysql", "5432"),
        ("db", "database", "postgres", "pg", "sql"),
    ),
    _Family(
        "cache",
        re.compile(r"Redis|redis|:6379\b|port 6379"),
        ("edis", "6379"),
        ("redis", "cache"),
    ),
    _Family(
        "websocket",
        re.compile(r"WebSocket|Websocket|webSocket|websocket|ws(?<!\wws)s?://"),
        ("ebSocket", "ebsocket", "ws://", "wss://"),
        ("ws", "websocket", "realtime", "gateway"),
    ),
)
_PORT = re.compile(r"(?:[:(,]\s?|port |, )(\d{2,5})\b")
_HOST = re.compile(r"""(?:host=['"]?|https?://|wss?://|host ")([\w.-]+)""")


@lru_cache(maxsize=256)  # a handful of probe targets, asked about for every failure
def _target_port(target: str) -> str | None:
    try:
        parts = urlsplit(target if "://" in target else f"tcp://{target}")
        return str(parts.port) if parts.port else None
    except ValueError:
        return None


# The port a scheme means when a probe's URL names none.
_SCHEME_PORTS = {
    "http": 80, "ws": 80, "https": 443, "wss": 443, "postgres": 5432, "postgresql": 5432,
    "redis": 6379, "rediss": 6379, "mysql": 3306, "amqp": 5672, "mongodb": 27017,
}  # fmt: skip
_DSN_PORT = re.compile(r"(?:^|\s)port=(\d+)")
_HOST_PORT = re.compile(r"(?:[\w.\-]+|\[[0-9a-fA-F:]+\]):(\d+)")


@lru_cache(maxsize=256)
def probed_port(target: str) -> str | None:
    """The port a probe's target checks: `tcp://h:5432`, `GET http://h/health` (80), a
    DSN URL or `host=h port=5442` (5432 when it names none); None when the target names
    no port (a command, a DNS name)."""
    if "://" not in target:
        if "host=" in target:  # PostgreSQL key=value DSN
            found = _DSN_PORT.search(target)
            return found.group(1) if found else "5432"
        found = _HOST_PORT.fullmatch(target)  # host:port
        return found.group(1) if found else None
    url = target.split()[-1] if " " in target else target  # "GET http://..." (http probe)
    try:
        parts = urlsplit(url)
        port = parts.port or _SCHEME_PORTS.get(parts.scheme.split("+", 1)[0].lower())
    except ValueError:
        return None
    return str(port) if port else None


def probed_ports(ev: FailureEvidence) -> tuple[str, ...]:
    """The ports the run's probes check (what the config names), known ones only."""
    return tuple(dict.fromkeys(p for t in ev.probe_targets if (p := probed_port(t))))


# Where a refusal names the address it was refused at, in the words of libpq, asyncio
# (asyncpg), redis-py, aiohttp, Node, curl and Java: the port, group 1.
_REFUSED_AT = (
    re.compile(r"Connect call failed \('[^']*', (\d+)"),
    re.compile(r"connection to server at \"[^\"]*\"(?: \([^)]*\))?, port (\d+) failed"),
    re.compile(r"server running on host \"[^\"]*\"[^?]{0,80}?on port (\d+)\?"),
    re.compile(r"Error \d+ connecting to [\w.\-\[\]:]+:(\d+)\."),
    re.compile(r"Cannot connect to host [\w.\-\[\]:]+:(\d+)"),
    re.compile(r"ECONNREFUSED [\w.:\[\]]*:(\d+)"),
    re.compile(r"[Ff]ailed to connect to \S+ port (\d+)"),
    re.compile(r"Connect to [\w.\-]+:(\d+)"),
)


def refused_ports(text: str) -> tuple[str, ...]:
    """The ports a connection-refused text says it was refused at, in order; () when it
    names none (httpx's `ConnectError: [Errno 111] Connection refused`)."""
    found = (m.group(1) for pattern in _REFUSED_AT for m in pattern.finditer(text))
    return tuple(dict.fromkeys(found))


def target_component(ev: FailureEvidence) -> str | None:
    """Which component a network failure points at.

    Failing probes first (same port as the error, then a name matching the
    error's family), then the family of the error itself, then the host.
    """
    text = ev.text
    if ev.failing_probes:
        targets = [(probe, _target_port(probe.target)) for probe in ev.failing_probes]
        # A port the text names is digits of it: list them only when a probe's port is there.
        if any(port and port in text for _, port in targets):
            ports = set(_PORT.findall(text))
            for probe, port in targets:
                if port and port in ports:
                    return probe.component
        for family in _FAMILIES:  # each family searched only when it is needed
            if not family.named_in(text):
                continue
            for probe in ev.failing_probes:
                if any(h in probe.component.lower() or h in probe.kind for h in family.hints):
                    return probe.component
        return ev.failing_probes[0].component
    for family in _FAMILIES:
        if family.named_in(text):
            return family.name
    host = _HOST.search(text)
    return host.group(1) if host else None


_AUTH_HINTS = ("auth", "identity", "login", "sso", "oauth", "iam", "keycloak")


def auth_component(ev: FailureEvidence) -> str | None:
    """The component the environment names for authentication ('auth', 'identity', ...)."""
    for name in (*ev.test_components, *ev.known_components):
        if any(h in name.lower() for h in _AUTH_HINTS):
            return name
    return None


def slow_component(ev: FailureEvidence) -> str | None:
    return ev.slow[0].component if ev.slow else None


def failing_component(ev: FailureEvidence) -> str | None:
    """The failing component the test depends on, else the first failing one."""
    for probe in ev.failing_probes:
        if probe.component in ev.test_components:
            return probe.component
    return ev.failing_probes[0].component if ev.failing_probes else None


# The names the rule table (table.py) gives these.
COMPONENTS: dict[str, ComponentOf] = {
    "target": target_component,
    "auth": auth_component,
    "slow": slow_component,
    "failing": failing_component,
}
