"""Failure modes: how a probe failed, and what kind of problem each mode is.

Pure: words in, a `FailureMode` out. The probe kinds describe what they saw in a
small vocabulary of their own ("connection refused", "timed out", "password
authentication failed", "certificate expired 3 days ago"), and an HTTP probe adds
the body of an error answer, where a health endpoint names its failing dependency
in the driver's own words ("connection refused to cache at ...", "WRONGPASS").
`mode_of_text` reads both. The most specific mode wins: a certificate problem or
rejected credentials say more than the timeout or refusal a client reports after.
"""

from __future__ import annotations

import re

from greenloop.records import Category, FailureMode, ProbeResult

# Most specific first: the first pattern found decides.
_PATTERNS: tuple[tuple[FailureMode, re.Pattern[str]], ...] = (
    (
        FailureMode.CREDENTIALS,
        re.compile(
            r"password authentication failed|authentication failed|authentication required|"
            r"\bNOAUTH\b|\bWRONGPASS\b|invalid (?:username-)?password|"
            r"no password supplied|access denied for user|AuthenticationError|"
            # The server refused who we are, not the password: still the credentials given.
            r"role \"[^\"]*\" does not exist|no pg_hba\.conf entry|\bNOPERM\b",
            re.I,
        ),
    ),
    (
        FailureMode.CONNECTION_LIMIT,
        re.compile(
            r"too many (?:clients|connections)|max(?:imum)? number of clients reached|"
            r"remaining connection slots are reserved|connection limit exceeded",
            re.I,
        ),
    ),
    (
        FailureMode.DNS,
        re.compile(
            r"name does not resolve|name or service not known|could not translate host name|"
            r"temporary failure in name resolution|nodename nor servname|getaddrinfo failed|"
            r"no address associated with hostname",
            re.I,
        ),
    ),
    (FailureMode.EXPIRED_CERTIFICATE, re.compile(r"certificate (?:has )?expired", re.I)),
    (
        FailureMode.HOSTNAME_MISMATCH,
        re.compile(r"certificate is for .+?, not |hostname mismatch|ip address mismatch", re.I),
    ),
    (
        FailureMode.UNTRUSTED_CERTIFICATE,
        re.compile(
            r"certificate not trusted|self[- ]signed certificate|unable to get local issuer|"
            r"certificate verify failed|unknown ca\b",
            re.I,
        ),
    ),
    (
        FailureMode.SLOW,
        re.compile(r"canceling statement due to (?:statement|lock) timeout|query too slow", re.I),
    ),
    (FailureMode.REFUSED, re.compile(r"connection refused|\bECONNREFUSED\b", re.I)),
    (FailureMode.RESET, re.compile(r"connection reset|connection aborted", re.I)),
    (
        FailureMode.TIMEOUT,
        re.compile(r"timed out|timeout expired|no reply within|\btimeout\b", re.I),
    ),
)
_SERVER_ERROR = re.compile(r"\bHTTP 5\d\d\b|handshake rejected with HTTP 5\d\d|close code 1011")
_SLOW = re.compile(r"\blatency_ms\b")

# What a person reads in a title: "Cache unhealthy (connection refused, infrastructure)".
WORDS: dict[FailureMode, str] = {
    FailureMode.REFUSED: "connection refused",
    FailureMode.TIMEOUT: "no answer, timed out",
    FailureMode.CREDENTIALS: "credentials rejected",
    FailureMode.CONNECTION_LIMIT: "connection limit reached",
    FailureMode.EXPIRED_CERTIFICATE: "certificate expired",
    FailureMode.UNTRUSTED_CERTIFICATE: "certificate not trusted",
    FailureMode.HOSTNAME_MISMATCH: "certificate for another host",
    FailureMode.DNS: "host name does not resolve",
    FailureMode.RESET: "connection reset",
    FailureMode.SLOW: "too slow",
    FailureMode.SERVER_ERROR: "answers with a server error",
    FailureMode.UNHEALTHY: "fails its probe",
}

# What a component does, in a why: "cache refuses the credentials given (...)".
DOES: dict[FailureMode, str] = {
    FailureMode.REFUSED: "does not accept connections",
    FailureMode.TIMEOUT: "accepts connections but does not answer (timed out)",
    FailureMode.CREDENTIALS: "refuses the credentials it was given, or needs some it was not given",
    FailureMode.CONNECTION_LIMIT: "refuses new connections: its connection limit is reached",
    FailureMode.EXPIRED_CERTIFICATE: "presents an expired TLS certificate",
    FailureMode.UNTRUSTED_CERTIFICATE: "presents a TLS certificate that is not trusted",
    FailureMode.HOSTNAME_MISMATCH: "presents a TLS certificate issued for another host name",
    FailureMode.DNS: "cannot be found: its host name does not resolve",
    FailureMode.RESET: "resets connections",
    FailureMode.SLOW: "answers too slowly",
    FailureMode.SERVER_ERROR: "answers with a server error",
    FailureMode.UNHEALTHY: "fails its own probe",
}

# A setting someone got wrong (a password, a trust store, a certificate for another name)
# is configuration; a process or machine that is down, hung, full or expired is
# infrastructure. An expired certificate was right once: time, not a setting, broke it.
_CONFIGURATION = frozenset(
    {FailureMode.CREDENTIALS, FailureMode.UNTRUSTED_CERTIFICATE, FailureMode.HOSTNAME_MISMATCH}
)


def mode_of_text(text: str) -> FailureMode | None:
    """The failure mode a probe's words name, or None when they name none."""
    for mode, pattern in _PATTERNS:
        if pattern.search(text):
            return mode
    if _SERVER_ERROR.search(text):
        return FailureMode.SERVER_ERROR
    return None


def failure_mode(
    detail: str, failed_conditions: tuple[str, ...] = (), ok: bool = False
) -> FailureMode | None:
    """How a probe failed: its words first, then which condition failed; None when it passed."""
    if ok:
        return None
    found = mode_of_text(detail)
    if found is not None:
        return found
    if any(_SLOW.search(c) for c in failed_conditions):
        return FailureMode.SLOW
    return FailureMode.UNHEALTHY


def probe_mode(probe: ProbeResult) -> FailureMode | None:
    """A probe result's mode: the one recorded when it ran, else read from its detail
    (results stored before modes were recorded, or built by hand)."""
    if probe.ok:
        return None
    return probe.mode or failure_mode(probe.detail, probe.failed_conditions)


def mode_category(mode: FailureMode | None) -> Category:
    """Configuration for a rejected setting, infrastructure for everything else."""
    return Category.CONFIGURATION if mode in _CONFIGURATION else Category.INFRASTRUCTURE


def strongest(modes: list[FailureMode]) -> FailureMode | None:
    """The most telling of several probes' modes (a component with a TLS and a TCP probe
    failing is best described by the TLS one); generic modes lose to specific ones."""
    order = [m for m, _ in _PATTERNS] + [FailureMode.SERVER_ERROR, FailureMode.UNHEALTHY]
    return min(modes, key=order.index) if modes else None
