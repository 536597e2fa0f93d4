"""End to end: a real pytest run writes JUnit XML; `triage_junit` classifies and clusters it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from triage_helpers import failed, gate, probe

from greenloop.load import config_from_dict
from greenloop.records import Category
from greenloop.triage import triage, triage_junit, triage_report

SUITE = {
    "tests/test_fixture.py": """
        def test_uses_missing(no_such_fixture):
            pass
    """,
    "tests/test_closed_port.py": """
        import socket, httpx, pytest

        def _closed():
            s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
            return p

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_api(n):
            httpx.get(f"http://127.0.0.1:{_closed()}/threads/{n}", timeout=2)
    """,
    "tests/test_imports.py": """
        import module_that_does_not_exist
        def test_never_runs():
            pass
    """,
    "tests/test_skip.py": """
        import pytest
        def test_env():
            pytest.skip("staging database unavailable")
    """,
    "tests/test_ok.py": """
        def test_ok():
            assert 1 + 1 == 2
    """,
}


def _run_suite(tmp_path: Path) -> Path:
    for name, body in SUITE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    xml = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={xml}",
            "--continue-on-collection-errors",
            "tests",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return xml


def test_real_junit_file_is_classified_clustered_and_reported(tmp_path: Path) -> None:
    xml = _run_suite(tmp_path)
    result = triage_junit([xml])
    categories = {
        c.nodeid.split("::")[-1].split(".")[-1]: c.category for c in result.classifications
    }
    by_cluster = {c.reason: c for c in result.clusters}
    assert by_cluster["MISSING-FIXTURE"].category is Category.TEST
    assert by_cluster["IMPORT-ERROR"].category is Category.TEST
    # three tests, one fault (ports differ between them): one cluster; refused with no
    # probe data and nothing showing the address is wrong: the server is down
    refused = [c for c in result.clusters if len(c.tests) == 3]
    assert len(refused) == 1 and refused[0].category is Category.INFRASTRUCTURE
    assert by_cluster["SKIPPED-ENV"].category is Category.SKIPPED_ENV
    assert "test_ok" not in categories

    report = triage_report(result, [xml])
    assert report["schema"] == "greenloop.report/v1"
    assert report["verdict"] == "failing" and report["probes"] == [] and report["phases"] == []
    json.dumps(report)  # JSON-able
    by_test = {t["nodeid"]: t for t in report["tests"]}
    assert all(t["cluster_id"] for t in by_test.values() if t["outcome"] not in ("passed",))
    assert {c["id"] for c in report["clusters"]} == {c.id for c in result.clusters}


def test_config_adds_user_rules_and_log_files(tmp_path: Path) -> None:
    (tmp_path / "svc.log").write_text(
        json.dumps(
            {
                "ts": "2025-03-01T12:00:01Z",
                "level": "error",
                "request_id": "q-1",
                "message": "payment provider said 'card_declined_by_gateway'",
            }
        )
        + "\n"
        + "{torn\n"
    )
    config = config_from_dict(
        {
            "triage": {
                "rules": [
                    {
                        "name": "payment gateway",
                        "category": "infrastructure",
                        "pattern": "PaymentGatewayTimeout",
                        "component": "payments",
                    }
                ],
                "logs": [
                    {"name": "svc", "kind": "file", "path": "svc.log"},
                    {"name": "gone", "kind": "file", "path": "missing.log"},
                ],
                "log_window_s": 600,
            }
        },
        tmp_path / "greenloop.toml",
    )
    from triage_helpers import T0

    tests = [
        failed(
            "E   PaymentGatewayTimeout: no answer in 30s",
            nodeid="tests/test_pay.py::test_a",
            started_at=T0,
        ),
        failed(
            "E   AssertionError: assert 402 == 200",
            nodeid="tests/test_pay.py::test_b",
            started_at=T0,
            request_id="q-1",
        ),
    ]
    result = triage(tests, gate=gate(probe("backend", True, "200")), index=[], config=config)
    rules = {c.nodeid: (c.rule, c.component) for c in result.classifications}
    assert rules["tests/test_pay.py::test_a"] == ("payment gateway", "payments")
    assert rules["tests/test_pay.py::test_b"][0] == "server-log-exception"
    assert result.log_malformed == 1 and result.log_errors == 1
    assert any("gone" in w and "not found" in w for w in result.warnings)
    assert result.log_templates[0].count == 1
