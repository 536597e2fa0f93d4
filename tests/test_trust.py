"""Issue 11: a verdict can be believed. The cases that cried wolf, as a user meets them.

Each test runs `greenloop` as a user does (a real subprocess, real pytest inside).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from greenloop.junit import parse_junit
from greenloop.records import Outcome, PhaseResult, PhaseStatus
from greenloop.starter import starter_config
from greenloop.verdict import iteration_verdict
from greenloop.verify import check_authenticity, strong, weak

# The case in ../shared/cases/junit/run_pytest_xfail_with_env_words.*: a strict xfail whose
# reason says "not available", run by a command phase through pytest's own JUnit.
XFAIL_CONFIG = """
[environment]
name = "staging"

[[phases]]
name = "api"
runner = "command"
command = ["{python}", "-m", "pytest", "-p", "no:rerunfailures", "-p", "no:cacheprovider",
           "-q", "--junitxml", "out/junit.xml", "tests"]
junit = "out/junit.xml"
"""
XFAIL_TESTS = """
import time, pytest

@pytest.mark.xfail(
    reason="known bug SHOP-812: search backend not available for EU tenants", strict=True
)
def test_search_eu_tenant():
    time.sleep(0.05)
    assert False, "search returned 404"

@pytest.mark.xfail
def test_search_without_reason():
    raise ConnectionRefusedError("connection refused by the search backend")

def test_search_us_tenant():
    time.sleep(0.05)
"""


def greenloop(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = cwd / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", *args, "--json", str(report)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return proc, json.loads(report.read_text()) if report.exists() else {}


def test_an_xfail_whose_reason_has_environment_words_is_green_and_files_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_search.py").write_text(XFAIL_TESTS)
    (tmp_path / "greenloop.toml").write_text(XFAIL_CONFIG.replace("{python}", sys.executable))
    proc, report = greenloop(tmp_path, "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["verdict"] == "green" and report["issues"] == []
    assert report["authenticity"] == [] and report["clusters"] == []
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert tests["test_search_eu_tenant"]["xfail"] == "xfailed"
    assert "SHOP-812" in tests["test_search_eu_tenant"]["real_evidence"]
    assert tests["test_search_without_reason"]["xfail"] == "xfailed"
    assert report["phases"][0]["counts"]["xfailed"] == 2
    worklog = Path(report["worklog"]).read_text()
    assert "(2 of them failed as their xfail marker expected)" in worklog


def test_a_phase_naming_a_missing_file_is_a_config_error_at_load(tmp_path: Path) -> None:
    """A path from the wrong folder selects nothing: exit 2 at load, never a green run."""
    (tmp_path / "e2e" / "api").mkdir(parents=True)
    (tmp_path / "e2e" / "api" / "test_orders.py").write_text("def test_x(): pass\n")
    (tmp_path / "greenloop.toml").write_text(
        '[execution]\ntests_dir = "e2e"\n\n'
        '[[phases]]\nname = "smoke"\n'
        'select = { files = ["e2e/api/test_orders.py", "tests/api/test_*.py"] }\n'
    )
    proc, _ = greenloop(tmp_path, "run")
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "greenloop.toml: phases[0].select.files[1]" in lines[0]
    assert "'tests/api/test_*.py' matches no test file" in lines[0]


def test_init_writes_no_duration_floor(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a(): pass\n")
    text = starter_config(tmp_path / "tests", tmp_path)
    assert "min_duration_ms" not in text


def test_googletest_notrun_is_not_every_test_really_ran(tmp_path: Path) -> None:
    """gtest's disabled tests are not run: green at most, never "all ran", never not_real."""
    junit = tmp_path / "gtest.xml"
    junit.write_text(
        '<testsuites><testsuite name="Cart" tests="3">'
        '<testcase name="Adds" classname="Cart" time="0.002" status="run" result="completed"/>'
        '<testcase name="DISABLED_Pays" classname="Cart" time="0" status="notrun"'
        ' result="suppressed"/>'
        '<testcase name="Ships" classname="Cart" time="0" status="run" result="skipped">'
        '<skipped message="needs a printer"/></testcase>'
        "</testsuite></testsuites>"
    )
    tests = parse_junit(junit, phase="native")
    by_name = {t.nodeid.split("::")[-1]: t for t in tests}
    assert by_name["Ships"].outcome is Outcome.SKIPPED
    phase = PhaseResult("native", PhaseStatus.PASSED, 0.1, tests=tuple(tests))
    from greenloop.load import config_from_dict

    config = config_from_dict(
        {"phases": [{"name": "native", "runner": "command", "command": ["x"], "junit": "j"}]},
        tmp_path / "greenloop.toml",
    )
    findings = check_authenticity([phase], config=config, index=[], history={})
    # A skip with no environment reason, and a 0 s pass, are never "not real"...
    assert strong(findings) == []
    # ...and the disabled test is not a pass: it did not run, and the verdict line says so.
    assert by_name["DISABLED_Pays"].outcome is Outcome.SKIPPED
    assert weak(findings) == []  # the one pass has a duration
    assert iteration_verdict([phase], strong(findings)).value == "green"
