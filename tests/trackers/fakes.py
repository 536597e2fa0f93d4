"""Fake GitHub and GitLab issue APIs on loopback, speaking the real wire formats.

Only what greenloop uses: list issues (Link pagination), create, comments/notes,
update state, labels, plus the failure modes a hosted tracker has: down (503),
rate limited (403/429 with x-ratelimit-* / retry-after), and a create whose reply
is lost after the issue was made (504 from a gateway).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

TOKEN = "fake-tracker-token-123456"


@dataclass
class FakeState:
    """What the fake holds, and switches a test flips mid-run."""

    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)  # every text we were sent
    down: bool = False
    rate_limited: int | None = None  # 403 or 429 while set
    lose_next_create: bool = False
    page_size: int = 2  # small, so Link pagination is exercised

    def open_issues(self) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if i["state"] in ("open", "opened")]


def _guard(state: FakeState, request: Request, token_ok: bool) -> Response | None:
    state.requests.append((request.method, request.url.path))
    if state.down:
        return JSONResponse({"message": "Service Unavailable"}, status_code=503)
    if state.rate_limited:
        reset = str(int(time.time()) + 60)
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset, "retry-after": "60"}
        return JSONResponse(
            {"message": "API rate limit exceeded"}, status_code=state.rate_limited, headers=headers
        )
    if not token_ok:
        return JSONResponse({"message": "Bad credentials"}, status_code=401)
    return None


def _page(request: Request, state: FakeState, items: list[Any]) -> Response:
    per_page = min(int(request.query_params.get("per_page", 30)), state.page_size)
    page = int(request.query_params.get("page", 1))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {"x-ratelimit-remaining": "4999"}
    if page * per_page < len(items):
        query = dict(request.query_params)
        query["page"] = str(page + 1)
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        headers["Link"] = (
            f'<{request.url.scheme}://{request.url.netloc}{request.url.path}?{qs}>; rel="next"'
        )
    return JSONResponse(chunk, headers=headers)


def github_app(state: FakeState) -> FastAPI:
    app = FastAPI()

    def check(request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        return _guard(state, request, auth == f"Bearer {TOKEN}")

    @app.get("/repos/{owner}/{repo}/issues")
    async def list_issues(owner: str, repo: str, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        wanted = request.query_params.get("labels")
        items = [
            i
            for i in state.issues.values()
            if not wanted or wanted in [label["name"] for label in i["labels"]]
        ]
        return _page(request, state, items)

    @app.post("/repos/{owner}/{repo}/issues")
    async def create(owner: str, repo: str, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        data = await request.json()
        number = len(state.issues) + 1
        state.bodies += [data["title"], data.get("body", "")]
        state.issues[number] = {
            "number": number,
            "title": data["title"],
            "body": data.get("body", ""),
            "state": "open",
            "labels": [{"name": n} for n in data.get("labels", [])],
            "html_url": f"https://github.example/{owner}/{repo}/issues/{number}",
        }
        state.comments[number] = []
        if state.lose_next_create:
            state.lose_next_create = False
            return JSONResponse({"message": "Gateway Timeout"}, status_code=504)
        return JSONResponse(state.issues[number], status_code=201)

    @app.get("/repos/{owner}/{repo}/issues/{number}/comments")
    async def comments(owner: str, repo: str, number: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        if number not in state.issues:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return _page(request, state, [{"body": b} for b in state.comments[number]])

    @app.post("/repos/{owner}/{repo}/issues/{number}/comments")
    async def comment(owner: str, repo: str, number: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        if number not in state.issues:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        body = (await request.json())["body"]
        state.bodies.append(body)
        state.comments[number].append(body)
        return JSONResponse({"id": len(state.comments[number]), "body": body}, status_code=201)

    @app.patch("/repos/{owner}/{repo}/issues/{number}")
    async def update(owner: str, repo: str, number: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        if number not in state.issues:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        data = await request.json()
        state.issues[number]["state"] = data.get("state", state.issues[number]["state"])
        return JSONResponse(state.issues[number])

    @app.put("/repos/{owner}/{repo}/issues/{number}/labels")
    async def labels(owner: str, repo: str, number: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        names = (await request.json())["labels"]
        state.issues[number]["labels"] = [{"name": n} for n in names]
        return JSONResponse(state.issues[number]["labels"])

    return app


def gitlab_app(state: FakeState) -> FastAPI:
    app = FastAPI()

    def check(request: Request) -> Response | None:
        return _guard(state, request, request.headers.get("private-token") == TOKEN)

    @app.get("/api/v4/projects/{project:path}/issues")
    async def list_issues(project: str, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        wanted = request.query_params.get("labels")
        items = [i for i in state.issues.values() if not wanted or wanted in i["labels"]]
        return _page(request, state, items)

    @app.post("/api/v4/projects/{project:path}/issues")
    async def create(project: str, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        data = await request.json()
        iid = len(state.issues) + 1
        state.bodies += [data["title"], data.get("description", "")]
        state.issues[iid] = {
            "iid": iid,
            "id": 1000 + iid,
            "title": data["title"],
            "description": data.get("description", ""),
            "state": "opened",
            "labels": [x for x in data.get("labels", "").split(",") if x],
            "web_url": f"https://gitlab.example/{project}/-/issues/{iid}",
        }
        state.comments[iid] = []
        if state.lose_next_create:
            state.lose_next_create = False
            return JSONResponse({"message": "504 Gateway Timeout"}, status_code=504)
        return JSONResponse(state.issues[iid], status_code=201)

    @app.get("/api/v4/projects/{project:path}/issues/{iid}/notes")
    async def notes(project: str, iid: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        return _page(request, state, [{"body": b} for b in state.comments.get(iid, [])])

    @app.post("/api/v4/projects/{project:path}/issues/{iid}/notes")
    async def note(project: str, iid: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        if iid not in state.issues:
            return JSONResponse({"message": "404 Not found"}, status_code=404)
        body = (await request.json())["body"]
        state.bodies.append(body)
        state.comments[iid].append(body)
        return JSONResponse({"id": len(state.comments[iid]), "body": body}, status_code=201)

    @app.put("/api/v4/projects/{project:path}/issues/{iid}")
    async def update(project: str, iid: int, request: Request) -> Response:
        if (r := check(request)) is not None:
            return r
        if iid not in state.issues:
            return JSONResponse({"message": "404 Not found"}, status_code=404)
        data = await request.json()
        event = data.get("state_event")
        if event == "close":
            state.issues[iid]["state"] = "closed"
        elif event == "reopen":
            state.issues[iid]["state"] = "opened"
        if "labels" in data:
            state.issues[iid]["labels"] = [x for x in data["labels"].split(",") if x]
        return JSONResponse(state.issues[iid])

    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run an app on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
