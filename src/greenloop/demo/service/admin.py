"""Admin endpoints: list, set and clear faults. Guarded by X-Admin-Token; never faulted."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field

from greenloop.demo.service import faults as fm
from greenloop.demo.service.routes import runtime_of
from greenloop.demo.service.runtime import ServiceRuntime


def require_admin(
    request: Request, x_admin_token: Annotated[str | None, Header()] = None
) -> ServiceRuntime:
    """The runtime, when the request carries the admin token."""
    runtime = runtime_of(request)
    if not x_admin_token:
        raise HTTPException(401, "missing X-Admin-Token header")
    if not hmac.compare_digest(x_admin_token, runtime.config.admin_token):
        raise HTTPException(403, "wrong admin token")
    return runtime


router = APIRouter(prefix="/admin")
Admin = Annotated[ServiceRuntime, Depends(require_admin)]


class FaultRequest(BaseModel):
    """A fault to activate."""

    name: str
    params: dict[str, str | int | float] = Field(default_factory=dict)


def _listing(runtime: ServiceRuntime) -> dict[str, Any]:
    return {"revision": runtime.config.revision, "faults": runtime.faults.to_json()}


@router.get("/faults")
def list_faults(runtime: Admin) -> dict[str, Any]:
    """Active faults, bugs of the revision included."""
    return _listing(runtime)


@router.post("/faults", status_code=201)
def set_fault(body: FaultRequest, runtime: Admin) -> dict[str, Any]:
    """Activate a fault (replacing one of the same name)."""
    try:
        fault = fm.make_fault(body.name, body.params)
    except fm.FaultError as exc:
        raise HTTPException(400, str(exc)) from exc
    try:
        return runtime.set_fault(fault).to_json()
    except fm.FaultError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.delete("/faults/{name}", status_code=204)
def clear_fault(name: str, runtime: Admin) -> Response:
    """Deactivate one fault."""
    if runtime.faults.get(name) is None:
        raise HTTPException(404, f"fault {name!r} is not active")
    try:
        runtime.clear_fault(name)
    except fm.FaultError as exc:
        raise HTTPException(409, str(exc)) from exc
    return Response(status_code=204)


@router.delete("/faults")
def clear_faults(runtime: Admin) -> dict[str, Any]:
    """Deactivate every runtime fault; returns what stays (bugs, restart-only faults)."""
    runtime.clear_all()
    return _listing(runtime)
