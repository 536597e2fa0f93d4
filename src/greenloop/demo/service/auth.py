"""JWT login tokens for the demo user: issue on login, verify on every protected call.

Each token has a session (``session:<jti>``) in the cache, so logging out revokes it and an
unreachable cache makes authenticated calls fail like they would in a real deployment.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

AUDIENCE = "greenloop-demo"
ALGORITHM = "HS256"
TOKEN_TTL_S = 3600


class AuthError(Exception):
    """A token that is missing, malformed, expired or signed with another key."""


@dataclass(frozen=True)
class Claims:
    """The verified claims of a token."""

    username: str
    jti: str
    expires_at: int


def issue_token(secret: str, username: str, now: float | None = None) -> tuple[str, Claims]:
    """A signed token for ``username`` and its claims."""
    issued = int(now if now is not None else time.time())
    claims = Claims(username, uuid.uuid4().hex, issued + TOKEN_TTL_S)
    payload = {
        "sub": username,
        "jti": claims.jti,
        "iat": issued,
        "exp": claims.expires_at,
        "aud": AUDIENCE,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def verification_key(secret: str, broken: bool) -> str:
    """The key tokens are checked with; auth-broken checks with a key nobody signs with."""
    return secret + ":rotated-2024" if broken else secret


def verify_token(token: str, key: str) -> Claims:
    """The claims of ``token`` verified with ``key``; AuthError when it does not verify."""
    try:
        payload = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE)
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    return Claims(str(payload["sub"]), str(payload["jti"]), int(payload["exp"]))


def bearer_token(header: str | None) -> str:
    """The token in an ``Authorization: Bearer`` header; AuthError when absent or malformed."""
    if not header:
        raise AuthError("missing Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def session_key(jti: str) -> str:
    """The cache key of a token's session."""
    return f"session:{jti}"
