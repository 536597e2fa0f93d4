"""The app factory: the FastAPI routes behind the fault-aware gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from greenloop.demo.service import admin, routes, ws
from greenloop.demo.service import faults as fm
from greenloop.demo.service.auth import AuthError
from greenloop.demo.service.config import ServiceConfig
from greenloop.demo.service.deps import DependencyError
from greenloop.demo.service.gateway import Gateway
from greenloop.demo.service.logs import JsonLog
from greenloop.demo.service.routes import context
from greenloop.demo.service.runtime import ServiceRuntime


def create_app(config: ServiceConfig) -> Gateway:
    """The ASGI app of one service process for ``config``."""
    runtime = ServiceRuntime(config)
    log = JsonLog(config.log_path, config.revision)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        specs = [f.spec for f in runtime.faults.faults]
        log.write("info", "startup", port=config.port, faults=specs)
        yield
        log.write("info", "shutdown")
        runtime.close()
        log.close()

    api = FastAPI(
        title="greenloop demo service",
        version=str(config.revision),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    api.state.runtime = runtime
    api.include_router(routes.router)
    api.include_router(ws.router)
    api.include_router(admin.router)

    @api.exception_handler(DependencyError)
    async def dependency_failed(request: Request, exc: DependencyError) -> JSONResponse:
        down = fm.down_dependency(runtime.faults) == exc.dependency
        context().record_exception(exc, "dependency-down" if down else None)
        body = {"detail": str(exc), "dependency": exc.dependency}
        return JSONResponse(body, status_code=503, headers={"retry-after": "5"})

    @api.exception_handler(AuthError)
    async def unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        ctx = context()
        ctx.error_type, ctx.error = type(exc).__name__, str(exc)
        headers = {"www-authenticate": "Bearer"}
        return JSONResponse({"detail": str(exc)}, status_code=401, headers=headers)

    @api.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> PlainTextResponse:
        # Runs inside Starlette's error middleware before the 500 goes out, so the log
        # line written with the response already names the exception.
        context().record_exception(exc)
        return PlainTextResponse("Internal Server Error", status_code=500)

    return Gateway(api, runtime, log)
