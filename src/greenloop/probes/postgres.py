"""PostgreSQL probe: connect with psycopg and run one query (default `SELECT 1`).

Credentials come from the DSN, which the config fills from the environment
(`dsn = "postgresql://app:${PGPASSWORD}@db:5432/app"`); the target and detail
never show the password.

psycopg is imported only when a postgres probe is used: importing it costs tens
of milliseconds that a gate without such probes should not pay.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from greenloop.probes.base import (
    Observation,
    ProbeKind,
    ProbeOptions,
    checked_url,
    describe_error,
    mask_dsn,
    ms,
)

if TYPE_CHECKING:
    import psycopg


# Time left for the server to cancel a slow query before the probe's own timeout fires.
_MARGIN_S = 0.2


class PostgresOptions(ProbeOptions):
    dsn: str

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        # The key=value form is read by libpq itself; a URL is checked here, at load time.
        return checked_url(value) if "://" in value else value

    query: str = "SELECT 1"


class PostgresProbe(ProbeKind[PostgresOptions]):
    name = "postgres"
    Options = PostgresOptions
    variables = ("connected", "queried", "result", "latency_ms")
    default_conditions = ("queried",)
    client_modules = ("psycopg",)

    def target(self, options: PostgresOptions) -> str:
        return mask_dsn(options.dsn)

    def secrets(self, options: PostgresOptions) -> tuple[str, ...]:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            password = conninfo_to_dict(options.dsn).get("password")
        except psycopg.ProgrammingError:
            return ()
        return (str(password),) if password else ()

    async def check(self, options: PostgresOptions, timeout_s: float) -> Observation:
        import psycopg

        started = time.perf_counter()
        try:
            conn = await psycopg.AsyncConnection.connect(
                options.dsn, connect_timeout=max(1, round(timeout_s)), autocommit=True
            )
        except psycopg.Error as exc:
            return Observation({"connected": False, "queried": False}, _words(exc))
        except OSError as exc:
            return Observation({"connected": False, "queried": False}, describe_error(exc))
        # The server cancels the query when the probe's time is nearly up, so a slow
        # query or a held lock reads as such ("query too slow"), not as a hung server.
        budget_ms = int((timeout_s - (time.perf_counter() - started) - _MARGIN_S) * 1000)
        try:
            async with conn:
                await conn.execute(f"SET statement_timeout = {max(budget_ms, 50)}".encode())
                cursor = await conn.execute(options.query.encode())
                row = await cursor.fetchone() if cursor.description else None
        except psycopg.errors.QueryCanceled as exc:
            return Observation(
                {"connected": True, "queried": False},
                f"query too slow: {_words(exc)} after {ms(time.perf_counter() - started):.0f} ms",
            )
        except psycopg.Error as exc:
            return Observation(
                {"connected": True, "queried": False}, f"query failed: {_words(exc)}"
            )
        latency = ms(time.perf_counter() - started)
        result: Any = row[0] if row else None
        return Observation(
            {"connected": True, "queried": True, "result": result, "latency_ms": latency},
            f"{options.query!r} returned {result!r} in {latency:.0f} ms",
        )


def _words(exc: psycopg.Error) -> str:
    """psycopg's message, whose useful part is the server's last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines else type(exc).__name__
    lowered = text.lower()
    if "connection refused" in lowered:
        return f"connection refused ({text})"
    if "password authentication failed" in lowered:
        return f"password authentication failed ({text})"
    if "timeout" in lowered:
        return f"timed out ({text})"
    return text
