"""A runbook restarts the real demo service's failed cache and the gate sees it recover."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from remediation_staging import make_cluster

from greenloop.carry import Carrier
from greenloop.demo import control
from greenloop.load import config_from_dict
from greenloop.records import ActionStatus, Verdict
from greenloop.remediate import remediate, validate_actions
from greenloop.store import Store


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    state_dir = tmp_path / "demo"
    rev = control.deploy(state_dir, faults=["dependency-down:dependency=cache"])
    try:
        yield state_dir, rev.base_url
    finally:
        control.stop(state_dir)


def test_restart_dependency_recovers_the_cache(
    demo: tuple[Path, str], tmp_path: Path, store: Store, run_id: str
) -> None:
    state_dir, base_url = demo
    assert httpx.get(f"{base_url}/health").status_code == 503
    restart = [sys.executable, "-m", "greenloop.demo.control", "--state-dir", str(state_dir)]
    raw = {
        "environment": {"name": "demo-staging", "base_url": base_url},
        "components": [{"name": "cache"}, {"name": "backend", "depends_on": ["cache"]}],
        "probes": [
            {
                "name": "health",
                "component": "backend",
                "kind": "http",
                "url": f"{base_url}/health",
                "conditions": ["status == 200"],
                "timeout_s": 10,
            },
            {
                "name": "cache-health",
                "component": "cache",
                "kind": "http",
                "url": f"{base_url}/health",
                "conditions": ["body.dependencies.cache.ok == true"],
                "timeout_s": 10,
            },
        ],
        "remediation": {
            "runbooks": [
                {
                    "name": "restart-failed-dependency",
                    "match": {"component": "cache"},
                    "actions": [
                        {
                            "name": "restart-cache",
                            "kind": "command",
                            "command": [*restart, "restart-dependency", "cache"],
                            "timeout_s": 20,
                        }
                    ],
                }
            ]
        },
    }
    config = config_from_dict(raw, tmp_path / "greenloop.toml")
    validate_actions(config)
    (action,) = remediate(
        [make_cluster("cache")],
        verdict=Verdict.BLOCKED,
        config=config,
        store=store,
        run_id=run_id,
        iteration=1,
        allow=True,
        requests=Carrier(config, store, run_id, 1),
    )
    assert action.status is ActionStatus.DONE, action.detail
    assert "cache restarted" in action.detail
    assert "gate after: better, unhealthy 2 -> 0 (recovered: backend, cache)" in action.detail
    assert httpx.get(f"{base_url}/health").json()["status"] == "healthy"
