"""The agent WebSocket: a chat message starts a run that streams five events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from greenloop.demo.service import agent
from greenloop.demo.service import faults as fm
from greenloop.demo.service.auth import AuthError, bearer_token
from greenloop.demo.service.deps import DependencyError
from greenloop.demo.service.logs import now_iso
from greenloop.demo.service.routes import authenticate, context
from greenloop.demo.service.runtime import ServiceRuntime

router = APIRouter()

STEP_SECONDS = 0.02  # a pause between events, so the stream looks like work happening


class AgentCrashed(RuntimeError):
    """The agent worker died mid-run (the ws-1011 fault)."""


def _token(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    header = websocket.headers.get("authorization")
    return bearer_token(header) if header else None


@router.websocket("/ws")
async def agent_socket(websocket: WebSocket) -> None:
    """Authenticate the upgrade, then answer each chat message with an agent run."""
    runtime: ServiceRuntime = websocket.app.state.runtime
    ctx = context()
    try:
        user = await run_in_threadpool(authenticate, runtime, _token(websocket))
    except AuthError as exc:
        ctx.error_type, ctx.error = type(exc).__name__, str(exc)
        await websocket.send_denial_response(JSONResponse({"detail": str(exc)}, 401))
        return
    except DependencyError as exc:
        ctx.record_exception(exc, "dependency-down")
        await websocket.send_denial_response(JSONResponse({"detail": str(exc)}, 503))
        return
    await websocket.accept()
    try:
        while True:
            raw = await websocket.receive_text()
            message = _chat_text(raw)
            if message is None:
                await websocket.send_json(
                    {"type": "error", "detail": 'expected {"type":"chat","message":"..."}'}
                )
                continue
            await _run(websocket, runtime, user, message)
    except WebSocketDisconnect:
        return
    except (AgentCrashed, DependencyError) as exc:
        fault = "ws-1011" if isinstance(exc, AgentCrashed) else fm.down_dependency(runtime.faults)
        ctx.record_exception(exc, "dependency-down" if fault in fm.DEPENDENCIES else fault)
        await websocket.close(code=1011, reason="internal error")


def _chat_text(raw: str) -> str | None:
    """The text of a chat message, or None when the frame is not one."""
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(frame, dict) or frame.get("type") != "chat":
        return None
    text = frame.get("message")
    return text.strip() if isinstance(text, str) and text.strip() else None


async def _run(websocket: WebSocket, runtime: ServiceRuntime, user: str, message: str) -> None:
    """One agent run: stream the events the fault model allows, persist the run."""
    run_id = uuid.uuid4().hex
    started = time.perf_counter()
    if runtime.faults.get("ws-1011"):
        raise AgentCrashed(f"agent worker exited with signal 9 during run {run_id}")
    sendable = set(fm.agent_events(runtime.faults))
    if len(sendable) < len(fm.EVENT_TYPES):
        context().fault = "missing-event"

    async def emit(kind: str, **extra: Any) -> None:
        if kind in sendable:
            event = {"type": kind, "run_id": run_id, "timestamp": now_iso(), **extra}
            await websocket.send_json(event)
        await asyncio.sleep(STEP_SECONDS)

    await emit("agent_started", message=message)
    await emit("agent_thinking", thought=agent.thought(message))
    await emit("tool_executing", tool_name=agent.TOOL_NAME, input=message)
    results = agent.analyze(message)
    answer = agent.compose_answer(message, results)
    run = {
        "run_id": run_id,
        "owner": user,
        "message": message,
        "answer": answer,
        "tool_name": agent.TOOL_NAME,
        "created_at": now_iso(),
    }
    await run_in_threadpool(runtime.database.record_run, run)
    await emit("tool_completed", tool_name=agent.TOOL_NAME, results=results)
    duration = round(time.perf_counter() - started, 3)
    await emit("agent_completed", answer=answer, duration=duration)
