"""`greenloop demo --real-deps`: a whole run on throwaway PostgreSQL and Redis names the mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenloop.demo.realdeps import missing


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "demo", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        timeout=240,
    )


@pytest.mark.slow
def test_requirepass_on_the_real_redis_is_a_configuration_problem(tmp_path: Path) -> None:
    if missing():
        pytest.skip("; ".join(missing()))
    report = tmp_path / "report.json"
    done = demo("--real-deps", "--scenario", "cache-requirepass", "--out", str(tmp_path),
                "--json", str(report))  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(report.read_text())
    (cluster,) = data["clusters"]
    assert cluster["category"] == "blocked"
    cause = cluster["root_cause"]
    assert (cause["component"], cause["mode"], cause["category"]) == (
        "cache", "credentials", "configuration",
    )  # fmt: skip
    assert "credentials rejected" in cluster["title"]
    config = (tmp_path / "greenloop.toml").read_text()
    assert 'kind = "redis"' in config and "${GREENLOOP_DEMO_DB_PASSWORD}" in config
    assert not (tmp_path / "real-deps" / "tls").exists()  # the demo CA is removed after


def test_real_dependency_scenarios_need_the_flag_and_say_so(tmp_path: Path) -> None:
    done = demo("--scenario", "db-hung", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "needs real processes; add --real-deps" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_missing_binaries_are_named_in_one_line(tmp_path: Path) -> None:
    # No redis-server on this PATH: the demo says which binary, and how to do without.
    done = demo("--real-deps", "--scenario", "healthy", "--out", str(tmp_path),
                env={"PATH": str(Path(sys.executable).parent)})  # fmt: skip
    assert done.returncode == 2
    said = (done.stdout + done.stderr).strip()
    assert "redis-server not found" in said and "SQLite" in said
    assert "Traceback" not in said


def test_every_real_deps_scenario_names_a_fault_and_a_cause_greenloop_knows() -> None:
    from greenloop.demo.realdeps import CERTIFICATES, REAL_FAULTS
    from greenloop.demo.scenarios import REAL_DEPS_SCENARIOS, SCENARIOS
    from greenloop.records import Category, FailureMode

    real_only = [s for name, s in REAL_DEPS_SCENARIOS.items() if name not in SCENARIOS]
    assert real_only and all(s.name not in SCENARIOS for s in real_only)
    for scenario in real_only:
        assert scenario.real_fault is None or scenario.real_fault in REAL_FAULTS
        assert scenario.certificate in CERTIFICATES
        if scenario.expected_cause is not None:
            _, mode, category = scenario.expected_cause
            FailureMode(mode), Category(category)  # raise on a name greenloop does not know
            assert scenario.expected_exit == 3
