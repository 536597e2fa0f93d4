"""`greenloop demo`: every scenario, end to end, as a user runs it (a real subprocess).

Each scenario starts the real demo service with its fault, runs the whole loop
and must end with the exit code and the conclusion a person would reach.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from greenloop.demo.scenarios import SCENARIOS


def demo(out: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run `greenloop demo` with its JSON report; (exit code, report, stdout)."""
    report = out / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "greenloop.cli",
            "demo",
            "--out",
            str(out),
            "--json",
            str(report),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, data, proc.stdout


def categories(report: dict[str, Any]) -> set[str]:
    return {c["category"] for c in report["clusters"]}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_ends_with_its_exit_code(name: str, tmp_path: Path) -> None:
    code, report, stdout = demo(tmp_path, "--scenario", name)
    assert code == SCENARIOS[name].expected_exit, stdout
    assert report["exit_code"] == code
    assert Path(report["worklog"]).is_file()
    verdict = {0: "green", 1: "failing", 3: "blocked", 4: "not_real"}[code]
    assert report["verdict"] == verdict
    if name == "healthy":
        assert report["clusters"] == [] and report["authenticity"] == []
        assert all(t["real"] for t in report["tests"]) and len(report["tests"]) >= 35
    if name in ("outage", "lb-503", "tls-mismatch"):
        assert categories(report) == {"blocked"}
        assert all(t["outcome"] == "blocked" for t in report["tests"])
    if name == "outage":
        assert report["clusters"][0]["root_cause"]["component"] == "cache"
    if name in ("lb-503", "tls-mismatch"):
        assert report["clusters"][0]["root_cause"]["component"] == "load_balancer"
    if name == "tls-mismatch":
        evidence = " ".join(w["evidence"] for w in report["clusters"][0]["root_cause"]["whys"])
        assert "wrong.example.test" in evidence
    if name == "bad-deploy":
        assert "product" in categories(report)
    if name == "flaky":
        assert categories(report) == {"flaky"}
    if name == "auth-broken":
        assert "configuration" in categories(report)
    if name == "slow-db":
        assert "infrastructure" in categories(report)
    if name == "fake-tests":
        named = {f["nodeid"].split("::")[0] for f in report["authenticity"]}
        assert named == {
            "test_broken_import.py",
            "test_skip_when_unavailable.py",
            "test_mocked_client.py",
            "test_trivial.py",
            "test_unawaited.py",
        }
        checks = {f["check"] for f in report["authenticity"]}
        assert checks == {
            "collection_error",
            "skipped_env",
            "mocked",
            "no_connection",
            "unawaited_coroutine",
        }
        assert all(f["strength"] == "strong" for f in report["authenticity"])
        # The configured floor adds its (weak) word about the trivial tests.
        warned = {(f["check"], f["nodeid"].split("::")[0]) for f in report["authenticity_warnings"]}
        assert ("too_fast", "test_trivial.py") in warned


def test_running_a_scenario_twice_updates_the_issue_and_healthy_closes_it(
    tmp_path: Path,
) -> None:
    code, first, _ = demo(tmp_path, "--scenario", "outage")
    assert code == 3
    assert [i["action"] for i in first["issues"]] == ["created"]
    code, second, _ = demo(tmp_path, "--scenario", "outage")
    assert [i["action"] for i in second["issues"]] == ["updated"]
    assert second["issues"][0]["key"] == first["issues"][0]["key"]
    assert [c["fingerprint"] for c in second["clusters"]] == [
        c["fingerprint"] for c in first["clusters"]
    ]
    issue_file = Path(first["issues"][0]["location"])
    assert (
        issue_file.read_text().count("New occurrence") + issue_file.read_text().count("occurrence")
        >= 1
    )
    open_issues = [p for p in (tmp_path / "issues").glob("*.md")]
    assert len(open_issues) == 1

    code, healthy, _ = demo(tmp_path, "--scenario", "healthy")
    assert code == 0
    assert [(i["key"], i["action"]) for i in healthy["issues"]] == [
        (first["issues"][0]["key"], "closed")
    ]


@pytest.mark.parametrize(
    ("scenario", "action_kind"), [("outage", "command"), ("bad-deploy", "rollback")]
)
def test_until_green_heals_with_remediation_and_only_dry_runs_without(
    scenario: str, action_kind: str, tmp_path: Path
) -> None:
    code, report, _ = demo(
        tmp_path / "allowed", "--scenario", scenario, "--until-green", "--allow-remediation"
    )
    assert code == 0
    assert report["verdict"] == "green" and len(report["iterations"]) >= 2
    done = [a for it in report["iterations"] for a in it["actions"] if a["status"] == "done"]
    assert [a["kind"] for a in done] == [action_kind]

    code, report, _ = demo(tmp_path / "dry", "--scenario", scenario, "--until-green")
    assert code == SCENARIOS[scenario].expected_exit
    actions = [a for it in report["iterations"] for a in it["actions"]]
    assert actions and {a["status"] for a in actions} == {"dry_run"}


def test_flaky_until_green_reports_the_flaky_test_and_does_not_remediate(
    tmp_path: Path,
) -> None:
    code, report, stdout = demo(
        tmp_path, "--scenario", "flaky", "--until-green", "--allow-remediation"
    )
    assert code == 1
    assert categories(report) == {"flaky"}
    assert all(not it["actions"] for it in report["iterations"])
    assert "nothing left to try" in stdout


def test_greenloop_run_with_the_demo_config_does_the_same_work(tmp_path: Path) -> None:
    """The demo verb is only set-up: `greenloop run -c <its config>` runs the same loop."""
    from greenloop.demo import control
    from greenloop.demo.runner import write_demo_config
    from greenloop.demo.scenarios import prepare

    scenario = SCENARIOS["healthy"]
    state = tmp_path / "service"
    base_url = prepare(scenario, state)
    try:
        config = write_demo_config(scenario, tmp_path, state, base_url)
        proc = subprocess.run(
            [sys.executable, "-m", "greenloop.cli", "run", "-c", str(config), "--json", "r.json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
    finally:
        control.stop(state)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [p["name"] for p in report["phases"]] == ["smoke", "critical", "expansion"]
    assert report["environment"] == {"name": "demo-staging", "revision": "1"}
