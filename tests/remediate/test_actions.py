"""remediate() end to end: real subprocesses, a real HTTP server, the real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from remediation_staging import Staging, make_cluster, start_run

from greenloop.carry import Carrier
from greenloop.errors import ConfigError
from greenloop.records import ActionStatus, Category, Verdict
from greenloop.remediate import remediate, validate_actions
from greenloop.store import Store


def runbook(*actions: dict[str, Any], name: str = "fix-cache", **match: str) -> dict[str, Any]:
    return {"name": name, "match": match or {"component": "cache"}, "actions": list(actions)}


def mark(staging: Staging, marker: Path, *args: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "mark",
        "kind": "command",
        "command": staging.ops("mark", str(marker), *args),
        **extra,
    }


def run(
    staging: Staging, store: Store, config: Any, run_id: str, iteration: int = 1, **kw: Any
) -> Any:
    options = {"verdict": Verdict.FAILING, "allow": True, **kw}
    clusters = options.pop("clusters", [make_cluster()])
    requests = Carrier(config, store, run_id, iteration)
    return remediate(
        clusters,
        config=config,
        store=store,
        run_id=run_id,
        iteration=iteration,
        requests=requests,
        **options,
    )


def test_command_action_runs_records_and_reprobes(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker))])
    (action,) = run(staging, store, config, run_id)
    assert action.status is ActionStatus.DONE, action.detail
    assert marker.exists()
    assert "exit code 0" in action.detail and "gate after: unchanged" in action.detail
    assert "runbook fix-cache" in action.detail
    (row,) = store.remediation.run_actions(run_id)
    assert (row.name, row.kind, row.status, row.fingerprint) == (
        "mark",
        "command",
        "done",
        "c0ffee00aa",
    )


def test_without_allow_it_is_a_dry_run(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker))])
    (action,) = run(staging, store, config, run_id, allow=False)
    assert action.status is ActionStatus.DRY_RUN
    assert not marker.exists()
    assert f"would run command `{staging.ops('mark', str(marker))[0]}" in action.detail
    assert [r.status for r in store.remediation.run_actions(run_id)] == ["dry_run"]


def test_remediation_enabled_in_config_allows(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker))], remediation={"enabled": True})
    (action,) = run(staging, store, config, run_id, allow=False)
    assert action.status is ActionStatus.DONE and marker.exists()


def test_approval_flag_needs_approve(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker))], remediation={"approval": "flag"})
    (refused,) = run(staging, store, config, run_id)
    assert refused.status is ActionStatus.REFUSED and "--approve" in refused.detail
    assert not marker.exists()
    (done,) = run(staging, store, config, run_id, iteration=2, approve=True)
    assert done.status is ActionStatus.DONE and marker.exists()


def test_approval_tty_refuses_without_a_terminal(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker))], remediation={"approval": "tty"})
    (action,) = run(staging, store, config, run_id)  # pytest's stdin is not a terminal
    assert action.status is ActionStatus.REFUSED and "not a terminal" in action.detail
    assert not marker.exists()


def test_max_attempts_counts_across_iterations_of_a_run(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker, max_attempts=2))])
    statuses = [run(staging, store, config, run_id, iteration=i)[0].status for i in (1, 2, 3)]
    assert statuses == [ActionStatus.DONE, ActionStatus.DONE, ActionStatus.REFUSED]
    assert "max_attempts 2 reached" in store.remediation.run_actions(run_id)[-1].detail
    # A new run starts counting again.
    (again,) = run(staging, store, config, start_run(store, "run-2"))
    assert again.status is ActionStatus.DONE


def test_cooldown_holds_across_runs(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker, cooldown_s=3600))])
    assert run(staging, store, config, run_id)[0].status is ActionStatus.DONE
    (later,) = run(staging, store, config, start_run(store, "run-2"))
    assert later.status is ActionStatus.REFUSED and "cooldown" in later.detail


def test_text_from_a_cluster_is_never_interpolated(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker, pwned = tmp_path / "marker", tmp_path / "PWNED"
    hostile = f"{{environment}} $(touch {pwned}) `touch {pwned}`; touch {pwned}"
    cluster = make_cluster(title=hostile)
    action = mark(staging, marker, "{environment}", "--url={base_url}", "literal {not-a-name}")
    config = staging.config([runbook(action)])
    (done,) = run(staging, store, config, run_id, clusters=[cluster])
    assert done.status is ActionStatus.DONE, done.detail
    argv = json.loads(marker.read_text())
    assert argv == ["staging-x", f"--url={staging.url}", "literal {not-a-name}"]
    assert not pwned.exists()


def test_secrets_in_an_argv_are_redacted(
    staging: Staging, store: Store, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TOKEN", "s3cr3t-ops-token")
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker, "--token", "${OPS_TOKEN}"))])
    (dry,) = run(staging, store, config, run_id, allow=False)
    (done,) = run(staging, store, config, run_id, iteration=2)
    for action in (dry, done):
        assert "s3cr3t-ops-token" not in action.detail and "--token ***" in action.detail
    assert json.loads(marker.read_text()) == ["--token", "s3cr3t-ops-token"]


def test_http_action_sends_the_configured_request(
    staging: Staging, store: Store, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TOKEN", "Bearer http-0ps-secret")
    action = {
        "name": "flush-cache",
        "kind": "http",
        "url": "{base_url}/ops/flush?env={environment}",
        "headers": {"X-Reason": "greenloop"},
        "headers_env": {"Authorization": "OPS_TOKEN"},
        "body": {"scope": "all"},
    }
    (done,) = run(staging, store, staging.config([runbook(action)]), run_id)
    assert done.status is ActionStatus.DONE, done.detail
    (request,) = staging.requests
    assert request["path"] == "/ops/flush?env=staging-x"
    assert request["headers"]["Authorization"] == "Bearer http-0ps-secret"
    assert json.loads(request["body"]) == {"scope": "all"}
    assert "HTTP 200" in done.detail and "http-0ps-secret" not in done.detail


def test_a_failed_action_stops_the_rest_of_its_runbook(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    staging.ops_status = 500
    marker = tmp_path / "marker"
    flush = {"name": "flush", "kind": "http", "url": f"{staging.url}/ops/flush"}
    config = staging.config([runbook(flush, mark(staging, marker))])
    failed, skipped = run(staging, store, config, run_id)
    assert failed.status is ActionStatus.FAILED and "HTTP 500" in failed.detail
    assert skipped.status is ActionStatus.REFUSED and "earlier action flush" in skipped.detail
    assert not marker.exists()


def test_failed_command_shows_its_output(staging: Staging, store: Store, run_id: str) -> None:
    config = staging.config(
        [runbook({"name": "x", "kind": "command", "command": staging.ops("fail")})]
    )
    (failed,) = run(staging, store, config, run_id)
    assert failed.status is ActionStatus.FAILED
    assert "exit code 3" in failed.detail and "permission denied" in failed.detail


def test_restart_acts_on_the_cluster_component(staging: Staging, store: Store, run_id: str) -> None:
    staging.set_down("cache")
    restart = {
        "name": "restart",
        "kind": "restart",
        "components": {
            "cache": {"command": staging.ops("up", "cache")},
            "database": {"url": f"{staging.url}/ops/restart-db"},
        },
    }
    config = staging.config([runbook(restart, category="infrastructure")])
    clusters = [
        make_cluster("cache", fingerprint="aaaa"),
        make_cluster("search", fingerprint="bbbb"),
    ]
    cache, search = run(staging, store, config, run_id, verdict=Verdict.BLOCKED, clusters=clusters)
    assert (cache.name, cache.status) == ("restart:cache", ActionStatus.DONE), cache.detail
    assert "gate after: better" in cache.detail and "recovered: cache" in cache.detail
    assert (search.name, search.status) == ("restart:search", ActionStatus.REFUSED)
    assert "no restart configured for component 'search'" in search.detail
    assert staging.read()["down"] == [] and staging.requests == []


def test_rollback_action_uses_the_rollback_command(
    staging: Staging, store: Store, run_id: str
) -> None:
    staging.state_path.write_text(json.dumps({"revision": "r2", "history": ["r1"], "down": []}))
    config = staging.config(
        [runbook({"name": "rollback", "kind": "rollback", "timeout_s": 10}, category="product")]
    )
    cluster = make_cluster("backend", Category.PRODUCT)
    (done,) = run(staging, store, config, run_id, clusters=[cluster])
    assert done.status is ActionStatus.DONE, done.detail
    assert staging.read()["revision"] == "r1" and "revision r1 serving and healthy" in done.detail


def test_redeploy_action_deploys_again(staging: Staging, store: Store, run_id: str) -> None:
    config = staging.config([runbook({"name": "redeploy", "kind": "redeploy"})])
    (done,) = run(staging, store, config, run_id)
    assert done.status is ActionStatus.DONE, done.detail
    assert staging.read()["revision"] == "r2"


def test_worse_after_an_action_rolls_back_and_stops_the_run(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    staging.state_path.write_text(
        json.dumps({"revision": "r2", "history": ["r1"], "down": ["cache"]})
    )
    marker = tmp_path / "marker"
    breaks = {
        "name": "bounce-lb",
        "kind": "command",
        "command": staging.ops("down", "load_balancer"),
    }
    config = staging.config([runbook(breaks, mark(staging, marker))])
    bounced, rolled_back, stopped = run(staging, store, config, run_id)
    assert bounced.status is ActionStatus.DONE and "gate after: worse" in bounced.detail
    assert (rolled_back.name, rolled_back.status) == ("rollback-after-worse", ActionStatus.DONE)
    assert (stopped.name, stopped.status) == ("remediation-stopped", ActionStatus.REFUSED)
    assert "bounce-lb made things worse" in stopped.detail
    assert not marker.exists()  # the runbook's next action did not run
    assert staging.read()["revision"] == "r1"
    (later,) = run(staging, store, config, run_id, iteration=2)[:1]
    assert later.status is ActionStatus.REFUSED and "remediation stopped" in later.detail


def test_flaky_clusters_and_not_real_runs_are_not_remediated(
    staging: Staging, store: Store, run_id: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    config = staging.config([runbook(mark(staging, marker))])
    (flaky,) = run(staging, store, config, run_id, clusters=[make_cluster(category=Category.FLAKY)])
    (not_real,) = run(staging, store, config, run_id, verdict=Verdict.NOT_REAL)
    assert flaky.status is not_real.status is ActionStatus.REFUSED
    assert "never remediated" in flaky.detail and "not_real" in not_real.detail
    assert not marker.exists()


def test_nothing_to_do_returns_nothing(staging: Staging, store: Store, run_id: str) -> None:
    config = staging.config([])
    assert run(staging, store, config, run_id) == []
    config = staging.config([runbook({"name": "x", "kind": "command", "command": ["true"]})])
    assert run(staging, store, config, run_id, clusters=[make_cluster("search")]) == []
    assert store.remediation.run_actions(run_id) == []


# --------------------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("runbooks", "key", "problem"),
    [
        (
            [runbook({"name": "a", "kind": "shell", "command": ["x"]})],
            "remediation.runbooks[0].actions[0].kind",
            "unknown action kind 'shell'",
        ),
        (
            [runbook({"name": "a", "kind": "command", "command": ["x"], "shell": True})],
            "remediation.runbooks[0].actions[0].shell",
            "unknown key",
        ),
        (
            [runbook({"name": "a", "kind": "command"})],
            "remediation.runbooks[0].actions[0].command",
            "missing required key",
        ),
        (
            [runbook({"name": "a", "kind": "command", "command": ["echo", "{title}"]})],
            "remediation.runbooks[0].actions[0].command[1]",
            "unknown placeholder {title}",
        ),
        (
            [runbook({"name": "a", "kind": "http", "url": "ftp://x"})],
            "remediation.runbooks[0].actions[0].url",
            "http",
        ),
        (
            [runbook({"name": "r", "kind": "restart", "components": {"cache": {"cwd": "/"}}})],
            "remediation.runbooks[0].actions[0].components.cache",
            "needs a `command`",
        ),
        (
            [runbook({"name": "r", "kind": "restart", "components": {"cache": {"url": "{x}"}}})],
            "remediation.runbooks[0].actions[0].components.cache.url",
            "unknown placeholder {x}",
        ),
        (
            [{"name": "any", "match": {}, "actions": [{"name": "a", "kind": "redeploy"}]}],
            "remediation.runbooks[0].match",
            "at least one",
        ),
        (
            [runbook({"name": "a", "kind": "redeploy"}, category="outage")],
            "remediation.runbooks[0].match.category",
            "unknown category 'outage'",
        ),
        (
            [
                runbook({"name": "a", "kind": "redeploy"}),
                runbook({"name": "a", "kind": "redeploy"}, name="other"),
            ],
            "remediation.runbooks[1].actions[0].name",
            "duplicate action name 'a'",
        ),
    ],
)
def test_validate_actions_names_the_key(
    staging: Staging, runbooks: list[dict[str, Any]], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        validate_actions(staging.config(runbooks))
    assert error.value.key == key and problem in error.value.expected


def test_rollback_and_redeploy_need_their_commands(staging: Staging) -> None:
    for kind, missing in (("rollback", "rollback_command"), ("redeploy", "command")):
        # Loading the config validates the actions: the mistake is caught before any run.
        with pytest.raises(ConfigError, match=f"deploy.{missing}") as error:
            staging.config([runbook({"name": "a", "kind": kind})], deploy={})
        assert error.value.key == "remediation.runbooks[0].actions[0].kind"


def test_a_valid_config_validates(staging: Staging, tmp_path: Path) -> None:
    config = staging.config(
        [
            runbook(mark(staging, tmp_path / "m", "{environment}")),
            runbook({"name": "rb", "kind": "rollback"}, name="product", category="product"),
        ]
    )
    validate_actions(config)
