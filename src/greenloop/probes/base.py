"""What every probe kind is: an options model, a target, and one async check.

A kind observes (connects, asks, measures) and reports what it saw as an
`Observation`; it never decides pass or fail. The runner in `__init__.py`
judges the observation with the probe's conditions, so every kind gets the
same timeout, retry and condition handling.

A kind is one file (a `ProbeKind` subclass with its `Options` model) and one
line in `__init__.py`'s registry; `run.py` compiles and runs configured probes.

A kind imports its client library (httpx, websockets, psycopg, redis,
cryptography) inside `check`, not at module level: loading the registry then
costs nothing for the kinds a config does not use.
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator

from greenloop.kinds import KindOptions
from greenloop.records import DependencyLatency
from greenloop.redact import mask_dsn as mask_dsn  # the one redactor's maskers
from greenloop.redact import mask_url as mask_url


def checked_url(value: str) -> str:
    """A URL with a scheme, a host and (if given) a port in 1..65535; else ValueError."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if not parts.scheme or not parts.hostname:
        raise ValueError("not a valid URL: expected scheme://host[:port]/path")
    if port == 0:
        raise ValueError("port 0 is out of range 1-65535")
    if any(c in value for c in " \t\r\n"):
        raise ValueError("not a valid URL: it contains white space")
    return value


def existing_file(value: str | None) -> str | None:
    """A file path that exists (checked at load time, as the probe will read it)."""
    if value is not None and not Path(value).expanduser().is_file():
        raise ValueError(f"file {value!r} not found")
    return value


# Option types shared by the kinds: checked when the config loads, not when the probe runs.
ProbeUrl = Annotated[str, AfterValidator(checked_url)]
CaFile = Annotated[str | None, AfterValidator(existing_file)]


class ProbeOptions(KindOptions):
    """Base of every probe kind's options: unknown keys are errors."""


OptionsT = TypeVar("OptionsT", bound=ProbeOptions)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one attempt saw.

    `values` are what conditions read (`status`, `connected`, `body`...);
    `summary` says in words what happened ("HTTP 503 in 4 ms",
    "connection refused") and becomes the probe's detail.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    # Dependency latencies the answer reported (an http health body), for triage.
    dependencies: tuple[DependencyLatency, ...] = ()


class ProbeKind(ABC, Generic[OptionsT]):
    """One kind of probe (http, tcp, postgres...), typed by its options. Stateless."""

    name: ClassVar[str]
    Options: ClassVar[type[ProbeOptions]]
    # Root names of the values this kind observes; a condition reading any
    # other name is a config error (catches `stauts == 200` at load time).
    variables: ClassVar[tuple[str, ...]]
    # Used when the probe lists no conditions of its own.
    default_conditions: ClassVar[tuple[str, ...]]
    # Client libraries `check` imports: loaded before any probe's clock starts, so
    # an import on a busy machine is never counted as the component's slowness.
    client_modules: ClassVar[tuple[str, ...]] = ()

    def implied_conditions(self, options: OptionsT) -> tuple[str, ...]:
        """Conditions an option asks for (e.g. websocket `expect_type`), always applied."""
        return ()

    @abstractmethod
    def target(self, options: OptionsT) -> str:
        """What is probed, for people: a URL or host:port with any password masked."""

    def secrets(self, options: OptionsT) -> tuple[str, ...]:
        """Strings that must never appear in a detail (passwords)."""
        return ()

    @abstractmethod
    async def check(self, options: OptionsT, timeout_s: float) -> Observation:
        """Observe the target once. Network errors become an Observation, not an exception."""


# --------------------------------------------------------------------------- helpers


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception (httpx and redis wrap the OSError that says what happened)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def describe_error(exc: BaseException) -> str:
    """A network failure in a few plain words: 'connection refused', 'name does not resolve'."""
    cause = root_cause(exc)
    for candidate in (exc, cause):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {candidate.verify_message}"
        if isinstance(candidate, ssl.SSLError):
            return f"TLS handshake failed: {candidate.reason or candidate}"
        if isinstance(candidate, ConnectionRefusedError):
            return "connection refused"
        if isinstance(candidate, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(candidate, socket.gaierror):
            return f"name does not resolve ({candidate.strerror})"
        if isinstance(candidate, TimeoutError):
            return "timed out"
        if isinstance(candidate, OSError) and candidate.errno == errno.ECONNREFUSED:
            return "connection refused"
    text = str(exc).strip() or str(cause).strip() or type(exc).__name__
    return text.splitlines()[0]


@lru_cache(maxsize=16)
def tls_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """A client TLS context, built once per (CA bundle, verify) and shared by every check.

    Loading a trust store costs 20-30 ms, and a waiting gate probes again and
    again. Callers must not modify the returned context. Without `verify`,
    the certificate and host name are not checked (no trust store is loaded).
    """
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def json_or_none(text: str) -> Any:
    """Parsed JSON, or None when the text is not JSON (conditions then see it missing)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
