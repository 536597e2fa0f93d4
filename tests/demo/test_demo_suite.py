"""The E2E suite and the bad tests, run with a real pytest subprocess; and the scenarios."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from greenloop.demo import control, scenarios

DEMO = Path(control.__file__).parent


def run_pytest(path: Path, base_url: str, tmp_path: Path, *extra: str) -> dict[str, str]:
    """Outcome per test id ('passed', 'failed', 'error', 'skipped') from the JUnit report."""
    junit = tmp_path / f"junit-{path.name}.xml"
    env = {**os.environ, "GREENLOOP_BASE_URL": base_url}
    subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "-q", f"--junitxml={junit}", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        # A collection error is reported with an empty classname and the module as name.
        name = f"{case.get('classname') or case.get('name')}::{case.get('name')}"
        kinds = [child.tag for child in case]
        outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
        outcomes[name] = {"failure": "failed"}.get(outcome, outcome)
    return outcomes


def test_suite_passes_against_healthy_service(service: object, tmp_path: Path) -> None:
    outcomes = run_pytest(DEMO / "suite", service.base_url, tmp_path)  # type: ignore[attr-defined]
    assert len(outcomes) == 40
    assert set(outcomes.values()) == {"passed"}, outcomes


def test_bad_deploy_fails_message_flow(state_dir: Path, tmp_path: Path) -> None:
    base_url = scenarios.prepare(scenarios.get("bad-deploy"), state_dir)
    assert httpx.get(base_url + "/version").json()["revision"] == 2
    outcomes = run_pytest(DEMO / "suite", base_url, tmp_path)
    message_flow = {k: v for k, v in outcomes.items() if "test_message_flow" in k}
    assert message_flow["test_message_flow::test_create_thread_returns_id"] == "error"
    assert message_flow["test_message_flow::test_empty_message_rejected"] == "passed"
    websocket = {k: v for k, v in outcomes.items() if "test_websocket_events" in k}
    assert set(websocket.values()) == {"passed"}
    assert outcomes["test_critical_path::test_user_journey"] == "failed"


def test_bad_tests_cannot_fail(service: object, tmp_path: Path) -> None:
    base_url = service.base_url  # type: ignore[attr-defined]
    outcomes = run_pytest(DEMO / "bad_tests", base_url, tmp_path, "--continue-on-collection-errors")
    by_file: dict[str, set[str]] = {}
    for name, outcome in outcomes.items():
        by_file.setdefault(name.split("::")[0], set()).add(outcome)
    assert by_file["test_skip_when_unavailable"] == {"skipped"}
    assert by_file["test_mocked_client"] == {"passed"}
    assert by_file["test_trivial"] == {"passed"}
    assert by_file["test_unawaited"] == {"passed"}
    assert by_file["test_broken_import"] == {"error"}


def test_scenario_table() -> None:
    assert scenarios.names() == (
        "healthy",
        "outage",
        "lb-503",
        "bad-deploy",
        "flaky",
        "auth-broken",
        "slow-db",
        "tls-mismatch",
        "fake-tests",
    )
    for scenario in scenarios.SCENARIOS.values():
        assert scenario.index_path.exists() and scenario.expected_conclusion
    with pytest.raises(KeyError, match="known"):
        scenarios.get("nope")


@pytest.mark.parametrize(
    ("name", "path", "status"),
    [
        ("healthy", "/health", 200),
        ("outage", "/health", 503),
        ("lb-503", "/version", 503),
        ("flaky", "/version", 200),
        ("auth-broken", "/me", 401),
        ("fake-tests", "/health", 200),
    ],
)
def test_prepare_stages_the_symptom(
    name: str, path: str, status: int, state_dir: Path, login: object
) -> None:
    base_url = scenarios.prepare(scenarios.get(name), state_dir)
    headers = {}
    if path == "/me":
        headers["Authorization"] = f"Bearer {login(base_url)}"  # type: ignore[operator]
    assert httpx.get(base_url + path, headers=headers).status_code == status


def test_prepare_tls_mismatch(state_dir: Path) -> None:
    base_url = scenarios.prepare(scenarios.get("tls-mismatch"), state_dir)
    assert base_url.startswith("https://")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(base_url + "/health")
