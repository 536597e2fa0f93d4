"""`greenloop triage`: secrets in test output never reach the terminal or the JSON report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOKEN = "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"

JUNIT = f"""<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="2" failures="2">
<testcase classname="tests.test_pay" name="test_charge" file="tests/test_pay.py" time="0.1">
<failure message="AssertionError: token {TOKEN} rejected">E AssertionError: token {TOKEN} \
rejected for key {AWS}</failure></testcase>
<testcase classname="tests.test_pay" name="test_refund_{AWS}_x" time="0.1">
<failure message="assert 500 == 200">E assert 500 == 200 ({TOKEN})</failure></testcase>
</testsuite></testsuites>
"""


def test_triage_output_and_json_are_redacted(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(JUNIT, encoding="utf-8")
    report = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "triage", str(junit), "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    written = report.read_text(encoding="utf-8")
    assert "test_charge" in written  # the report is there, and it names the tests
    for secret in (TOKEN, AWS):
        assert secret not in proc.stdout + proc.stderr + written
