"""Short, skimmable REASON names for clusters, and the phrase each one reads as in a title.

A reason is what a person scanning a worklog or an issue list reads first:
`CACHE-UNAVAILABLE` says more at a glance than a category. Every built-in rule
names one of these; user rules may name their own (upper-cased rule name).
"""

from __future__ import annotations

# reason -> the phrase a cluster title starts with ("Service unavailable: 12 tests failed")
PHRASES: dict[str, str] = {
    "SERVICE-UNAVAILABILITY": "Service unavailable",
    "GATEWAY-ERROR": "Gateway error (502/503/504)",
    "WEBSOCKET-503": "WebSocket handshake rejected",
    "WEBSOCKET-CLOSED": "WebSocket closed abnormally",
    "WEBSOCKET-1011": "WebSocket closed with a server error (1011)",
    "CONNECTION-RESET": "Connection reset by the remote side",
    "NETWORK-TIMEOUT": "Network timeout",
    "DNS-FAILURE": "Host name does not resolve",
    "DISK-FULL": "Disk full",
    "OUT-OF-MEMORY": "Out of memory",
    "DATABASE-CONNECTIONS-EXHAUSTED": "Database refuses new connections",
    "DATABASE-SLOW": "Database too slow",
    "SLOW-DEPENDENCY": "A dependency answers too slowly",
    "TLS-CERTIFICATE": "TLS certificate not trusted",
    "TLS-HOSTNAME-MISMATCH": "TLS certificate does not match the host name",
    "INTERMITTENT-INFRASTRUCTURE": "Intermittent failure while a component was unhealthy",
    "AUTH-401": "Credentials rejected",
    "DATABASE-AUTH": "Database rejected the credentials",
    "MISSING-ENV": "Environment variable missing",
    "MISCONFIGURED": "Application settings missing or invalid",
    "WRONG-ADDRESS": "Nothing listens at the configured address",
    "WRONG-INTERPRETER": "Tests run by the wrong Python interpreter",
    "SCHEMA-MISSING": "Database schema missing",
    "APP-500": "Server error (HTTP 500)",
    "APP-EXCEPTION": "Application exception",
    "DATA-INTEGRITY": "Database integrity violation",
    "MISSING-EVENT": "Expected event never arrived",
    "WRONG-RESPONSE": "Wrong response content",
    "IMPORT-ERROR": "Test module cannot be imported",
    "MISSING-FIXTURE": "Fixture not found",
    "FIXTURE-SCOPE-MISMATCH": "Fixture scope mismatch",
    "UNAWAITED-COROUTINE": "Coroutine never awaited",
    "UNKNOWN-MARKER": "Unknown pytest marker (plugin missing)",
    "STALE-CALL": "Test calls a helper with a stale signature",
    "AUTH-TOKEN-EXPIRED": "Test presented an expired or malformed token",
    "TEST-CODE-ERROR": "Error in test code",
    "FLAKY-RERUN": "Passed on re-run",
    "FLAKY-HISTORY": "Flips between pass and fail on one revision",
    "FLAKY-ORDERING": "Depends on set or dict ordering",
    "FLAKY-TIMING": "Timing-dependent wait timed out",
    "PORT-RACE": "Port already in use",
    "TEST-API-MISUSE": "Test uses a removed or misspelt testing API",
    "PLUGIN-MISSING": "A pytest plugin the tests need is not installed",
    "REMOVED-API": "Code uses a removed module or API",
    "DEPENDENCY-MISSING": "A module the code needs is not installed",
    "SYSTEM-LIBRARY-MISSING": "A system library is missing",
    "LOCALE": "No UTF-8 locale in the environment",
    "TLS-UNTRUSTED-CA": "Certificate chain ends in an untrusted CA",
    "TLS-FIXTURE-EXPIRED": "A test certificate has expired",
    "RATE-LIMITED": "Rate limited by a remote service",
    "FIXTURE-ERROR": "Fixture setup failed",
    "TEAM-LABEL": "Labelled by the team",
    "MODEL-GUESS": "Learned model's guess",
    "BLOCKED": "Blocked by an unhealthy component",
    "SKIPPED-ENV": "Skipped because the environment was unavailable",
    "SKIPPED": "Skipped by the test itself",
    "UNEXPECTED-STATUS": "Unexpected HTTP status",
    "INSUFFICIENT-EVIDENCE": "Not enough evidence to classify",
    "STOPPED-BY-RUNNER": "Stopped by the runner with no error of its own",
}


def phrase(reason: str) -> str:
    """The human phrase for a reason; unknown (user) reasons read as themselves."""
    return PHRASES.get(reason, reason.replace("-", " ").capitalize())


# A reason made specific by the component: SERVICE-UNAVAILABILITY + cache -> CACHE-UNAVAILABLE.
_BY_COMPONENT = {
    "SERVICE-UNAVAILABILITY": "{}-UNAVAILABLE",
    "BLOCKED": "BLOCKED-BY-{}",
    "SLOW-DEPENDENCY": "{}-SLOW",
}


def component_reason(reason: str, component: str | None) -> str:
    """Make a reason specific: SERVICE-UNAVAILABILITY + cache -> CACHE-UNAVAILABLE,
    SLOW-DEPENDENCY + database -> DATABASE-SLOW, BLOCKED + backend -> BLOCKED-BY-BACKEND."""
    template = _BY_COMPONENT.get(reason)
    if component and template:
        name = "".join(ch if ch.isalnum() else "-" for ch in component.upper()).strip("-")
        return template.format(name)
    return reason
