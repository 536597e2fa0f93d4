"""The deploy stage against a real staging stand-in on loopback.

A small HTTP server serves /version and /health from a state file; the deploy
and rollback commands are real Python subprocesses that rewrite that file (a
new revision, a failure, a hang, nothing at all).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from greenloop.carry import Carrier, ensure_deployed, rollback
from greenloop.config import Config
from greenloop.deploy import (
    RevisionReading,
    after_health,
    deploy_if_due,
    deploy_reason,
    dig,
    is_new,
    parse_timestamp,
    read_revision,
    validate_deploy,
)
from greenloop.errors import ConfigError
from greenloop.load import config_from_dict
from greenloop.probes.conditions import MISSING
from greenloop.process import run_argv, trim
from greenloop.records import ComponentState, GateResult
from greenloop.store import Store

OPS = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import datetime, timezone
    state_path, verb = sys.argv[1], sys.argv[2]
    state = json.load(open(state_path))
    def save():
        json.dump(state, open(state_path + ".tmp", "w"))
        os.replace(state_path + ".tmp", state_path)
    if verb == "bump":
        state["history"].append(state["revision"])
        state["revision"] = f"r{int(state['revision'][1:]) + 1}"
        state["deployed_at"] = datetime.now(timezone.utc).isoformat()
        save()
        print(f"deployed {state['revision']} with args {sys.argv[3:]}")
    elif verb == "rollback":
        state["revision"] = state["history"].pop()
        state["deployed_at"] = datetime.now(timezone.utc).isoformat()
        save()
        print(f"rolled back to {state['revision']}")
    elif verb == "fail":
        print("pushing image registry.local/app:r9")
        print("error: image registry.local/app:r9 not found", file=sys.stderr)
        sys.exit(1)
    elif verb == "hang":
        open(state_path + ".pid", "w").write(str(os.getpid()))
        print("waiting for the rollout", flush=True)
        time.sleep(60)
    elif verb == "noop":
        print("nothing changed")
    elif verb == "list":  # a long listing, newest first, with a warning on stderr
        print("WARNING: this CLI version is deprecated", file=sys.stderr)
        older = [{"name": f"old-{i}", "created": "2020-01-01T00:00:00Z"} for i in range(300)]
        print(json.dumps([{"name": state["revision"], "created": state["deployed_at"]}, *older]))
    elif verb == "denied":
        print("ERROR: permission denied on project acme-staging", file=sys.stderr)
        sys.exit(1)
    """
)


class Staging:
    """/version and /health served from state.json; /health fails below `healthy_from`."""

    def __init__(self, root: Path) -> None:
        self.state_path = root / "state.json"
        self.hits: Counter[str] = Counter()
        self.write(revision="r1", deployed_at=datetime.now(UTC).isoformat(), history=[])
        staging = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                staging.hits[self.path] += 1
                state = staging.read()
                if self.path == "/version":
                    body: dict[str, Any] = {
                        "revision": state["revision"],
                        "deployed_at": state["deployed_at"],
                    }
                    code = 200
                elif self.path == "/health":
                    healthy = int(state["revision"][1:]) >= state.get("healthy_from", 0)
                    code, body = (200, {"status": "healthy"}) if healthy else (503, {})
                else:
                    code, body = 404, {}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.ops = root / "ops.py"
        self.ops.write_text(OPS)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def read(self) -> dict[str, Any]:
        return dict(json.loads(self.state_path.read_text()))

    def write(self, **values: Any) -> None:
        state = self.read() if self.state_path.exists() else {}
        self.state_path.write_text(json.dumps({**state, **values}))

    def command(self, verb: str, *extra: str) -> list[str]:
        return [sys.executable, str(self.ops), str(self.state_path), verb, *extra]


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[Staging]:
    server = Staging(tmp_path)
    yield server
    server.server.shutdown()
    server.server.server_close()


def make_config(tmp_path: Path, deploy: dict[str, Any], **sections: Any) -> Config:
    return config_from_dict({"deploy": deploy, **sections}, tmp_path / "greenloop.toml")


# --------------------------------------------------------------------------- the common path


def test_nothing_to_deploy_costs_one_get(staging: Staging, tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, {"version_url": f"{staging.url}/version"})
    result = ensure_deployed(config, store, force=False, run_id=None)
    assert (result.ok, result.deployed) == (True, False)
    assert result.revision_before == result.revision_after == "r1"
    assert staging.hits == Counter({"/version": 1})


def test_nothing_configured_costs_no_request(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    result = ensure_deployed(make_config(tmp_path, {}), store, force=False, run_id=None)
    assert (result.ok, result.deployed, result.revision_after) == (True, False, None)
    assert sum(staging.hits.values()) == 0


def test_unreachable_version_url_is_unknown_not_an_error(
    tmp_path: Path, store: Store, free_port: int
) -> None:
    config = make_config(tmp_path, {"version_url": f"http://127.0.0.1:{free_port}/version"})
    result = ensure_deployed(config, store, force=False, run_id=None)
    assert result.ok and result.revision_after is None
    assert "revision unknown" in result.detail
    assert read_revision(config) == (None, None)


def test_fresh_revision_within_max_age_is_not_redeployed(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    config = make_config(
        tmp_path,
        {
            "version_url": f"{staging.url}/version",
            "command": staging.command("bump"),
            "max_age": "24h",
        },
    )
    result = ensure_deployed(config, store, force=False, run_id=None)
    assert (result.ok, result.deployed, result.revision_after) == (True, False, "r1")
    assert staging.read()["revision"] == "r1"


# --------------------------------------------------------------------------- deploying


def test_forced_deploy_waits_for_the_new_revision(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    config = make_config(
        tmp_path,
        {"version_url": f"{staging.url}/version", "command": staging.command("bump", "--prod=no")},
    )
    result = ensure_deployed(config, store, force=True, run_id="run-1")
    assert (result.ok, result.deployed) == (True, True)
    assert (result.revision_before, result.revision_after) == ("r1", "r2")
    assert "deployed r2 with args ['--prod=no']" in result.output
    assert read_revision(config)[0] == "r2"
    with store.session() as s:
        from greenloop.store.schema import DeployRow

        rows = s.query(DeployRow).all()
        assert [(r.run_id, r.revision_after, r.ok) for r in rows] == [("run-1", "r2", True)]


def test_stale_revision_is_redeployed_and_health_awaited(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    staging.write(deployed_at=two_days_ago, healthy_from=2)  # r1 is unhealthy, r2 is not
    config = make_config(
        tmp_path,
        {
            "version_url": f"{staging.url}/version",
            "command": staging.command("bump"),
            "max_age": "24h",
            "timeout_s": 20,
        },
        probes=[
            {
                "name": "health",
                "component": "backend",
                "kind": "http",
                "url": f"{staging.url}/health",
                "conditions": ["status == 200"],
            }
        ],
    )
    result = ensure_deployed(config, store, force=False, run_id=None)
    assert result.ok and result.deployed, result.detail
    assert "older than max_age" in result.detail and "healthy" in result.detail
    assert staging.hits["/health"] >= 1


def test_failed_deploy_returns_its_output(staging: Staging, tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path, {"version_url": f"{staging.url}/version", "command": staging.command("fail")}
    )
    result = ensure_deployed(config, store, force=True, run_id=None)
    assert (result.ok, result.deployed) == (False, False)
    assert "exit code 1" in result.detail
    assert "error: image registry.local/app:r9 not found" in result.output
    assert result.revision_after == "r1"


def test_timed_out_deploy_is_killed(staging: Staging, tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path,
        {
            "version_url": f"{staging.url}/version",
            "command": staging.command("hang"),
            "timeout_s": 1,
        },
    )
    result = ensure_deployed(config, store, force=True, run_id=None)
    assert not result.ok
    assert "timed out" in result.detail
    assert "waiting for the rollout" in result.output
    pid = int(Path(f"{staging.state_path}.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_revision_that_never_changes_hits_the_deadline(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    config = make_config(
        tmp_path,
        {
            "version_url": f"{staging.url}/version",
            "command": staging.command("noop"),
            "timeout_s": 1,
        },
    )
    result = ensure_deployed(config, store, force=True, run_id=None)
    assert not result.ok
    assert "still r1" in result.detail
    assert staging.hits["/version"] >= 2  # it kept looking until the deadline


def test_revision_command_reads_a_listing(staging: Staging, tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path,
        {
            "revision_command": staging.command("list"),
            "revision_path": "[0].name",
            "deployed_at_path": "[0].created",
            "command": staging.command("bump"),
        },
    )
    revision, deployed_at = read_revision(config)
    assert revision == "r1" and deployed_at is not None
    result = ensure_deployed(config, store, force=True, run_id=None)
    assert (result.ok, result.revision_after) == (True, "r2")


def test_failing_revision_command_says_why(staging: Staging, tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, {"revision_command": staging.command("denied")})
    result = ensure_deployed(config, store, force=False, run_id=None)
    assert result.ok and result.revision_after is None
    assert "exit code 1" in result.detail and "permission denied on project" in result.detail


def test_rollback_returns_to_the_previous_revision(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    config = make_config(
        tmp_path,
        {
            "version_url": f"{staging.url}/version",
            "command": staging.command("bump"),
            "rollback_command": staging.command("rollback"),
        },
    )
    assert ensure_deployed(config, store, force=True, run_id=None).revision_after == "r2"
    result = rollback(config, store, None)
    assert result.ok, result.detail
    assert (result.revision_before, result.revision_after) == ("r2", "r1")
    assert "rolled back to r1" in result.output


def test_deploy_output_and_detail_hide_config_secrets(
    staging: Staging, tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-5ecret-value")
    config = make_config(
        tmp_path,
        {
            "version_url": f"{staging.url}/version",
            "command": [*staging.command("fail"), "--token", "${DEPLOY_TOKEN}"],
        },
    )
    result = ensure_deployed(config, store, force=True, run_id=None)
    assert "tok-5ecret-value" not in result.detail + result.output
    assert "--token ***" in result.detail


def test_forced_deploy_without_a_command_is_a_config_error(tmp_path: Path, store: Store) -> None:
    with pytest.raises(ConfigError, match=r"deploy\.command"):
        ensure_deployed(make_config(tmp_path, {}), store, force=True, run_id=None)


@pytest.mark.parametrize(
    ("deploy", "problem"),
    [
        ({"max_age": "1h", "version_url": "http://127.0.0.1:1/v"}, "needs a deploy.command"),
        ({"max_age": "1h", "command": ["true"]}, "needs deploy.version_url"),
    ],
)
def test_validate_deploy(tmp_path: Path, deploy: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as error:
        validate_deploy(make_config(tmp_path, deploy))
    assert error.value.key == "deploy.max_age"


def test_missing_command_is_reported_not_raised() -> None:
    run = run_argv(["/nonexistent/deploy-tool"], timeout_s=5)
    assert not run.ok and run.describe() == "command not found: /nonexistent/deploy-tool"


# --------------------------------------------------------------------------- pure decisions

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)


def test_deploy_reason() -> None:
    fresh = RevisionReading("r1", NOW - timedelta(hours=1))
    old = RevisionReading("r1", NOW - timedelta(hours=30))
    assert deploy_reason(force=False, max_age_s=None, reading=old, now=NOW) is None
    assert deploy_reason(force=False, max_age_s=86400, reading=fresh, now=NOW) is None
    assert "older than max_age 1.0d" in str(
        deploy_reason(force=False, max_age_s=86400, reading=old, now=NOW)
    )
    assert deploy_reason(force=True, max_age_s=None, reading=fresh, now=NOW) == "deploy requested"
    no_time = RevisionReading("r1", None)
    assert "no deploy time" in str(
        deploy_reason(force=False, max_age_s=60, reading=no_time, now=NOW)
    )


def test_is_new() -> None:
    before = RevisionReading("r1", NOW)
    assert is_new(before, RevisionReading("r2", NOW))
    assert is_new(before, RevisionReading("r1", NOW + timedelta(seconds=1)))
    assert not is_new(before, RevisionReading("r1", NOW))
    assert not is_new(before, RevisionReading(None, None, "connection refused"))
    assert is_new(RevisionReading(None, None), RevisionReading("r1", None))


def test_dig_and_timestamps() -> None:
    doc = {"build": {"sha": "abc"}, "items": [{"name": "x"}]}
    assert dig(doc, "build.sha") == "abc"
    assert dig(doc, "items[0].name") == "x"
    assert dig([{"name": "y"}], "[0].name") == "y"
    assert dig(doc, "nope") is MISSING
    assert parse_timestamp("2025-01-02T12:00:00Z") == NOW
    assert parse_timestamp(NOW.timestamp()) == NOW
    assert parse_timestamp("yesterday") is None


def test_trim_keeps_the_tail() -> None:
    text = "x" * 5000 + "the error"
    trimmed = trim(text, 100)
    assert trimmed.endswith("the error") and "4909 characters cut" in trimmed


def test_the_deploy_stage_asks_for_the_health_wait_instead_of_waiting(
    staging: Staging, tmp_path: Path, store: Store
) -> None:
    """deploy_if_due runs the command and waits for the new revision, then returns the health
    wait as a request: it probes nothing and records nothing; after_health concludes."""
    staging.write(healthy_from=2)  # r1 is unhealthy, r2 is not
    health = {
        "name": "health",
        "component": "backend",
        "kind": "http",
        "url": f"{staging.url}/health",
        "conditions": ["status == 200"],
    }
    config = make_config(
        tmp_path,
        {"version_url": f"{staging.url}/version", "command": staging.command("bump")},
        probes=[health],
    )
    step = deploy_if_due(config, force=True)
    assert step.wait is not None and step.wait.deadline > time.monotonic()
    assert (step.result.revision_before, step.result.revision_after) == ("r1", "r2")
    assert not step.result.ok and "waiting for health" in step.result.detail
    assert staging.hits.get("/health", 0) == 0
    with store.session() as s:
        from greenloop.store.schema import DeployRow

        assert s.query(DeployRow).count() == 0

    unhealthy = GateResult(
        healthy=False,
        components=(ComponentState("backend", healthy=False),),
        probes=(),
        deepest_failure="backend",
    )
    failed = after_health(step, unhealthy, config)
    assert not failed.ok and failed.deployed
    assert "revision r2 is serving but not healthy" in failed.detail
    assert "deepest failure backend" in failed.detail

    result = after_health(step, Carrier(config, store, None).wait_for_health(step.wait), config)
    assert result.ok, result.detail
    assert "deploy (deploy requested): revision r2 serving and healthy (was r1" in result.detail
    assert staging.hits["/health"] >= 1
