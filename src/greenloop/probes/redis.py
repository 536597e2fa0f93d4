"""Redis probe: connect, AUTH when a password is configured, PING.

redis-py is imported only when a redis probe runs (its import costs tens of ms).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import Field

from greenloop.probes.base import (
    Observation,
    ProbeKind,
    ProbeOptions,
    ProbeUrl,
    describe_error,
    mask_url,
    ms,
    url_password,
)

if TYPE_CHECKING:
    from redis.exceptions import RedisError


class RedisOptions(ProbeOptions):
    url: ProbeUrl = Field(pattern=r"^rediss?://")
    username: str | None = None
    password: str | None = None  # put "${REDIS_PASSWORD}" here, never the secret itself


class RedisProbe(ProbeKind[RedisOptions]):
    name = "redis"
    Options = RedisOptions
    variables = ("connected", "pong", "latency_ms")
    default_conditions = ("pong",)
    client_modules = ("redis.asyncio",)

    def target(self, options: RedisOptions) -> str:
        return mask_url(options.url)

    def secrets(self, options: RedisOptions) -> tuple[str, ...]:
        return tuple(s for s in (options.password, url_password(options.url)) if s)

    async def check(self, options: RedisOptions, timeout_s: float) -> Observation:
        import redis.asyncio as aioredis
        from redis.exceptions import AuthenticationError, RedisError, ResponseError
        from redis.exceptions import TimeoutError as RedisTimeout

        client = aioredis.Redis.from_url(
            options.url,
            username=options.username,
            password=options.password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
        )
        started = time.perf_counter()
        try:
            pong = await client.ping()
        except (AuthenticationError, ResponseError) as exc:
            return Observation({"connected": True, "pong": False}, _auth_words(options, exc))
        except RedisTimeout:
            return Observation({"connected": False, "pong": False}, "timed out")
        except (RedisError, OSError) as exc:
            return Observation({"connected": False, "pong": False}, describe_error(exc))
        finally:
            await client.aclose()
        latency = ms(time.perf_counter() - started)
        return Observation(
            {"connected": True, "pong": bool(pong), "latency_ms": latency},
            f"PONG in {latency:.0f} ms",
        )


def _auth_words(options: RedisOptions, exc: RedisError) -> str:
    """Say which it was: no password configured, or the configured one was refused."""
    from redis.exceptions import AuthenticationError

    message = str(exc).split(";")[0].split(", otherwise")[0].strip()
    unconfigured = options.password is None and url_password(options.url) is None
    # redis-py reports a missing password as NOAUTH, or as HELLO needing authentication.
    needs_auth = isinstance(exc, AuthenticationError) or any(
        word in str(exc) for word in ("NOAUTH", "HELLO")
    )
    if unconfigured and needs_auth:
        return (
            f"authentication required: the server wants a password, none is configured ({message})"
        )
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {message}"
    return f"server refused PING: {message}"
