"""Clusters and configs for the tracker tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenloop.config import Config
from greenloop.records import Category, Cluster, RootCause, Why


def make_cluster(
    fingerprint: str = "fp-websocket-503",
    reason: str = "WEBSOCKET-503",
    tests: tuple[str, ...] = ("tests/e2e/test_ws.py::test_websocket_events",),
    excerpt: str = "InvalidStatus: server rejected WebSocket connection: HTTP 503",
) -> Cluster:
    return Cluster(
        id="C1",
        fingerprint=fingerprint,
        category=Category.INFRASTRUCTURE,
        confidence=0.9,
        tests=tests,
        title="WebSocket upgrade rejected with HTTP 503",
        reason=reason,
        root_cause=RootCause(
            "the websocket gateway is down",
            "websocket",
            (Why("upgrade answered 503", "probe ws-connect: HTTP 503", True),),
        ),
        impact_usd=8000.0,
        excerpt=excerpt,
    )


def make_config(tmp_path: Path, **tracker: Any) -> Config:
    return Config.model_validate(
        {"tracker": {"kind": "local", **tracker}, "source": tmp_path / "greenloop.toml"}
    )
