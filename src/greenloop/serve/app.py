"""The dashboard's web app (FastAPI): HTML pages and a JSON API over the same views.

Read-only unless a token is configured; the only write, labelling a problem, needs
`Authorization: Bearer TOKEN`. Every view passes through the config's Redactor
before it reaches a page or a JSON body, like every other output of greenloop.
"""

from __future__ import annotations

import dataclasses
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, field_validator

from greenloop import __version__
from greenloop.records import Category
from greenloop.redact import Redactor
from greenloop.serve import pages, queries
from greenloop.store import Store

Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]


@dataclass(frozen=True)
class Dashboard:
    """What the app serves: a store, how to redact, and who may write.

    `token` None means read-only: every write answers 403. `flaky_window` is
    triage.flaky_window of the config (runs per test the flakiness score reads).
    """

    store: Store
    redactor: Redactor
    title: str = "greenloop"
    flaky_window: int = 20
    token: str | None = None


class LabelRequest(BaseModel):
    """A person's verdict on a problem or a test: the body of POST /api/labels."""

    target: str = Field(min_length=1, max_length=500, description="cluster id, fingerprint or test")
    category: Category
    note: str = Field(default="", max_length=2000)

    @field_validator("category")
    @classmethod
    def _a_person_may_give_it(cls, value: Category) -> Category:
        if value is Category.BLOCKED:
            raise ValueError("`blocked` is the health gate's to say, not a label")
        return value


def create_app(dashboard: Dashboard) -> FastAPI:
    """The ASGI app for `greenloop serve` (and for tests, through any ASGI server)."""
    app = FastAPI(
        title="greenloop dashboard",
        version=__version__,
        docs_url=None,  # Swagger UI loads from a CDN: the dashboard makes no outside requests
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    store, safe = dashboard.store, dashboard.redactor.redact_obj

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(dashboard.redactor.redact(text), status_code=status)

    # ------------------------------------------------------------------ pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def runs_page(
        offset: Offset = 0, limit: Limit = queries.DEFAULT_LIMIT, verdict: str | None = None
    ) -> HTMLResponse:
        runs = safe(queries.list_runs(store, limit=limit, offset=offset, verdict=verdict or None))
        trend = safe(queries.run_trend_points(store))
        return html(pages.runs_page(runs, trend, verdict=verdict, title=dashboard.title))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(run_id: str) -> HTMLResponse:
        detail = queries.run_detail(store, run_id)
        if detail is None:
            return html(
                pages.not_found_page(f"No run {run_id} in the store.", title=dashboard.title), 404
            )
        trend = queries.run_trend_points(store, until=run_id)
        return html(
            pages.run_page(safe(detail), safe(trend), title=f"{run_id} · {dashboard.title}")
        )

    @app.get("/clusters", response_class=HTMLResponse, include_in_schema=False)
    def clusters_page(offset: Offset = 0, limit: Limit = queries.DEFAULT_LIMIT) -> HTMLResponse:
        clusters = safe(queries.list_clusters(store, limit=limit, offset=offset))
        issues = safe(queries.list_issues(store, limit=queries.DEFAULT_LIMIT))
        stats = queries.issue_stats(store)
        per_run = safe(queries.problems_per_run(store))
        return html(pages.clusters_page(clusters, issues, stats, per_run, title=dashboard.title))

    @app.get("/flaky", response_class=HTMLResponse, include_in_schema=False)
    def flaky_page(offset: Offset = 0, limit: Limit = queries.DEFAULT_LIMIT) -> HTMLResponse:
        flaky = safe(queries.list_flaky(store, dashboard.flaky_window, limit=limit, offset=offset))
        return html(pages.flaky_page(flaky, window=dashboard.flaky_window, title=dashboard.title))

    @app.get("/probes", response_class=HTMLResponse, include_in_schema=False)
    def probes_page(runs: Limit = queries.DEFAULT_LIMIT) -> HTMLResponse:
        components = safe(queries.component_availability(store, runs=runs))
        return html(pages.probes_page(components, runs=runs, title=dashboard.title))

    # ------------------------------------------------------------------ JSON API

    @app.get("/api")
    def api_index() -> dict[str, Any]:
        """The API's endpoints; lists take `limit` (1-500, default 50) and `offset`."""
        return {
            "endpoints": {
                "/api/runs": "runs, newest first; ?verdict=",
                "/api/runs/{run_id}": "one run: phases, probes, tests, clusters, actions, issues",
                "/api/trend": "pass rate, availability, time to verdict per run, oldest first",
                "/api/clusters": "problems by fingerprint: first and last seen, occurrences; "
                "per_run: distinct problems in each of the last 50 runs",
                "/api/issues": "the issue index, open first; ?state=open|closed",
                "/api/flaky": "tests that flip on one revision, with their history",
                "/api/probes": "availability per component over the last runs; ?runs=",
                "/api/labels": "POST {target, category, note} with a bearer token",
            },
            "read_only": dashboard.token is None,
            "openapi": "/api/openapi.json",
        }

    @app.get("/api/runs")
    def api_runs(
        request: Request,
        offset: Offset = 0,
        limit: Limit = queries.DEFAULT_LIMIT,
        verdict: str | None = None,
    ) -> JSONResponse:
        page = queries.list_runs(store, limit=limit, offset=offset, verdict=verdict or None)
        return _page_json(request, safe(page))

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str) -> JSONResponse:
        detail = queries.run_detail(store, run_id)
        if detail is None:
            raise HTTPException(404, f"no run {run_id} in the store")
        return JSONResponse(_jsonable(safe(detail)))

    @app.get("/api/trend")
    def api_trend(limit: Limit = queries.DEFAULT_LIMIT, until: str | None = None) -> JSONResponse:
        points = queries.run_trend_points(store, limit=limit, until=until)
        return JSONResponse({"items": _jsonable(safe(points))})

    @app.get("/api/clusters")
    def api_clusters(
        request: Request, offset: Offset = 0, limit: Limit = queries.DEFAULT_LIMIT
    ) -> JSONResponse:
        body = _page_body(request, safe(queries.list_clusters(store, limit=limit, offset=offset)))
        body["per_run"] = _jsonable(safe(queries.problems_per_run(store)))
        return JSONResponse(body)

    @app.get("/api/issues")
    def api_issues(
        request: Request,
        offset: Offset = 0,
        limit: Limit = queries.DEFAULT_LIMIT,
        state: str | None = None,
    ) -> JSONResponse:
        page = queries.list_issues(store, limit=limit, offset=offset, state=state or None)
        body = _page_body(request, safe(page))
        body["stats"] = _jsonable(queries.issue_stats(store))
        return JSONResponse(body)

    @app.get("/api/flaky")
    def api_flaky(
        request: Request, offset: Offset = 0, limit: Limit = queries.DEFAULT_LIMIT
    ) -> JSONResponse:
        page = queries.list_flaky(store, dashboard.flaky_window, limit=limit, offset=offset)
        return _page_json(request, safe(page))

    @app.get("/api/probes")
    def api_probes(runs: Limit = queries.DEFAULT_LIMIT) -> JSONResponse:
        components = queries.component_availability(store, runs=runs)
        return JSONResponse({"runs": runs, "items": _jsonable(safe(components))})

    @app.post("/api/labels", status_code=201)
    def api_label(
        label: LabelRequest, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        """Record a person's category for a problem or test (needs the serve token)."""
        _authorise(dashboard.token, authorization)
        # The same write as `greenloop label` (the labels table of the triage stage). A store
        # from before that table answers 501 rather than pretending.
        find = getattr(store, "label_target", None)
        record = getattr(store, "record_label", None)
        if find is None or record is None:
            raise HTTPException(501, "this greenloop's store cannot record labels")
        found = find(label.target)
        if found is None:
            raise HTTPException(404, f"no cluster or failed test {label.target!r} in the store")
        kind, text = found
        redact = dashboard.redactor.redact
        record(
            label.target,
            label.category.value,
            kind=kind,
            text=redact(text),
            note=redact(label.note),
            by="greenloop serve",
        )
        return {"target": label.target, "kind": kind, "category": label.category.value}

    return app


def _authorise(token: str | None, header: str | None) -> None:
    """403 when the dashboard is read-only; 401 unless the bearer token matches."""
    if token is None:
        raise HTTPException(
            403, "read-only dashboard: start `greenloop serve` with a token to allow writes"
        )
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "a valid `Authorization: Bearer TOKEN` header is required")


def _jsonable(value: Any) -> Any:
    """Views to JSON values: dataclasses as objects, datetimes as ISO 8601, tuples as lists.

    Written out rather than fastapi's jsonable_encoder, which is ten times slower on a
    page of 500 runs.
    """
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _page_body(request: Request, page: queries.Page[Any]) -> dict[str, Any]:
    def link(offset: int | None) -> str | None:
        if offset is None:
            return None
        return str(request.url.include_query_params(offset=offset, limit=page.limit))

    return {
        "items": [_jsonable(item) for item in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "next": link(page.next_offset),
        "previous": link(page.previous_offset),
    }


def _page_json(request: Request, page: queries.Page[Any]) -> JSONResponse:
    return JSONResponse(_page_body(request, page))
