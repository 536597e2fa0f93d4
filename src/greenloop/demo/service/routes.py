"""HTTP endpoints of the product: health, version, login, threads, messages, search, runs."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from greenloop.demo.service import faults as fm
from greenloop.demo.service.auth import (
    AuthError,
    bearer_token,
    issue_token,
    session_key,
    verification_key,
    verify_token,
)
from greenloop.demo.service.deps import DependencyError, Row
from greenloop.demo.service.logs import RequestContext, current_request
from greenloop.demo.service.runtime import ServiceRuntime

router = APIRouter()

SLOW_QUERY_MS = 1000.0


def runtime_of(request: Request) -> ServiceRuntime:
    """The process's runtime (faults and dependency clients)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def context() -> RequestContext:
    """The log context of the current request."""
    ctx = current_request.get()
    assert ctx is not None, "the gateway sets a request context for every request"
    return ctx


def authenticate(runtime: ServiceRuntime, token: str | None) -> str:
    """The username behind ``token``: signature, expiry and a live session in the cache.

    Raises AuthError (401) or DependencyError (503, cache unreachable).
    """
    if not token:
        raise AuthError("missing bearer token")
    broken = runtime.faults.get("auth-broken") is not None
    if broken:
        context().fault = "auth-broken"
    claims = verify_token(token, verification_key(runtime.config.jwt_secret, broken))
    if runtime.cache.get(session_key(claims.jti)) is None:
        raise AuthError("session expired or logged out")
    return claims.username


def current_user(request: Request) -> str:
    """FastAPI dependency: the authenticated username."""
    return authenticate(runtime_of(request), bearer_token(request.headers.get("authorization")))


User = Annotated[str, Depends(current_user)]
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


def _check(ping: Any) -> tuple[dict[str, Any], DependencyError | None]:
    """Run one dependency check and time it."""
    started = time.perf_counter()
    try:
        ping()
    except DependencyError as exc:
        ms = round((time.perf_counter() - started) * 1000, 1)
        return {"ok": False, "latency_ms": ms, "error": str(exc)}, exc
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}, None


@router.get("/health")
def health(runtime: Runtime) -> JSONResponse:
    """Each dependency with its latency; 503 naming the failing ones."""
    db, db_error = _check(runtime.database.ping)
    cache, cache_error = _check(runtime.cache.ping)
    db["backend"] = runtime.database.engine.dialect.name
    cache["backend"] = type(runtime.cache).__name__.removesuffix("Cache").lower()
    body: dict[str, Any] = {
        "status": "healthy",
        "revision": runtime.config.revision,
        "dependencies": {"database": db, "cache": cache},
    }
    failing = [e for e in (db_error, cache_error) if e is not None]
    if failing:
        body["status"] = "unhealthy"
        body["failing"] = [e.dependency for e in failing]
        body["error"] = "; ".join(str(e) for e in failing)
        down = fm.down_dependency(runtime.faults)
        context().record_exception(failing[0], "dependency-down" if down else None)
        return JSONResponse(body, status_code=503)
    if db["latency_ms"] > SLOW_QUERY_MS:
        body["status"] = "degraded"
        db["slow"] = True
        if runtime.faults.get("slow-db"):
            context().fault = "slow-db"
    return JSONResponse(body)


@router.get("/version")
def version(runtime: Runtime) -> dict[str, Any]:
    """The deployed revision, its deploy time and commit."""
    cfg = runtime.config
    return {"revision": cfg.revision, "deployed_at": cfg.deployed_at, "commit": cfg.commit}


class LoginRequest(BaseModel):
    """Credentials of the demo user."""

    username: str
    password: str


@router.post("/auth/login")
def login(body: LoginRequest, runtime: Runtime) -> dict[str, Any]:
    """A bearer token and a session in the cache."""
    cfg = runtime.config
    if (body.username, body.password) != (cfg.username, cfg.password):
        context().error = "invalid username or password"
        raise HTTPException(401, "invalid username or password")
    token, claims = issue_token(cfg.jwt_secret, body.username)
    runtime.cache.set(session_key(claims.jti), body.username, claims.expires_at - int(time.time()))
    return {"access_token": token, "token_type": "bearer", "expires_at": claims.expires_at}


@router.post("/auth/logout", status_code=204)
def logout(request: Request, runtime: Runtime, user: User) -> None:
    """End the token's session; the token is rejected afterwards."""
    token = bearer_token(request.headers.get("authorization"))
    claims = verify_token(token, verification_key(runtime.config.jwt_secret, False))
    runtime.cache.delete(session_key(claims.jti))


@router.get("/me")
def me(user: User) -> dict[str, str]:
    """Who the token belongs to."""
    return {"username": user}


class NewThread(BaseModel):
    """A thread to create."""

    title: str = Field(min_length=1, max_length=200)


class NewMessage(BaseModel):
    """A message to post."""

    content: str = Field(min_length=1, max_length=4000)


# The app-bug revision reads the author under the column name of a migration that was never
# applied, so serialising a message raises KeyError in service code (HTTP 500).
AUTHOR_COLUMN = {False: "author", True: "author_id"}


def message_json(row: Row, app_bug: bool) -> dict[str, Any]:
    """A message as the API returns it."""
    return {
        "id": row["id"],
        "thread_id": row["thread_id"],
        "author": row[AUTHOR_COLUMN[app_bug]],
        "content": row["content"],
        "created_at": row["created_at"],
    }


def _app_bug(runtime: ServiceRuntime) -> bool:
    active = runtime.faults.get("app-bug") is not None
    if active:
        context().fault = "app-bug"
    return active


def _owned_thread(runtime: ServiceRuntime, thread_id: str, user: str) -> Row:
    thread = runtime.database.get_thread(thread_id)
    if thread is None or thread["owner"] != user:
        raise HTTPException(404, f"thread {thread_id} not found")
    return thread


@router.post("/threads", status_code=201)
def create_thread(body: NewThread, runtime: Runtime, user: User) -> Row:
    """Start a conversation thread."""
    return runtime.database.create_thread(user, body.title)


@router.get("/threads")
def list_threads(
    runtime: Runtime, user: User, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """The user's threads, newest first."""
    return {"threads": runtime.database.list_threads(user, limit)}


@router.get("/threads/{thread_id}")
def get_thread(thread_id: str, runtime: Runtime, user: User) -> Row:
    """One thread."""
    return _owned_thread(runtime, thread_id, user)


@router.post("/threads/{thread_id}/messages", status_code=201)
def post_message(thread_id: str, body: NewMessage, runtime: Runtime, user: User) -> dict[str, Any]:
    """Append a message to a thread."""
    _owned_thread(runtime, thread_id, user)
    row = runtime.database.add_message(thread_id, user, body.content)
    return message_json(row, _app_bug(runtime))


@router.get("/threads/{thread_id}/messages")
def list_messages(thread_id: str, runtime: Runtime, user: User) -> dict[str, Any]:
    """A thread's messages in posting order."""
    _owned_thread(runtime, thread_id, user)
    bug = _app_bug(runtime)
    rows = runtime.database.list_messages(thread_id)
    if runtime.faults.get("wrong-result") is not None:
        rows = rows[:-1]  # an off-by-one in pagination: a wrong answer, no error anywhere
    return {"thread_id": thread_id, "messages": [message_json(r, bug) for r in rows]}


@router.get("/search")
def search(
    runtime: Runtime, user: User, q: Annotated[str, Query(min_length=1, max_length=200)]
) -> dict[str, Any]:
    """The user's messages containing ``q``."""
    rows = runtime.database.search_messages(user, q)
    return {"query": q, "results": [message_json(r, False) for r in rows]}


@router.get("/runs/{run_id}")
def get_run(run_id: str, runtime: Runtime, user: User) -> Row:
    """A finished agent run."""
    run = runtime.database.get_run(run_id)
    if run is None or run["owner"] != user:
        raise HTTPException(404, f"run {run_id} not found")
    return run
