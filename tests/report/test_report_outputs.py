"""Worklog, JSON report, JUnit XML and GitHub output, rendered from a realistic run."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from report_samples import PLANTED, make_run

from greenloop.config import Config
from greenloop.errors import UserError
from greenloop.records import Verdict
from greenloop.redact import Redactor
from greenloop.report import (
    ReportContext,
    build_json_report,
    render_run_for_terminal,
    run_facts,
    run_trend,
    write_reports,
)
from greenloop.report.github import github_annotations
from greenloop.report.trend import sparkline
from greenloop.report.worklog import next_actions
from greenloop.store import Store

CATEGORIES = {
    "infrastructure",
    "product",
    "test",
    "configuration",
    "flaky",
    "blocked",
    "skipped_env",
    "unknown",
}


def context(tmp_path: Path, **report: object) -> ReportContext:
    config = Config.model_validate(
        {
            "report": {"redact_patterns": [r"ACME-INTERNAL-\d+"], **report},
            "source": tmp_path / "greenloop.toml",
            "secrets": (PLANTED["env_literal"],),
        }
    )
    return ReportContext(config=config, selections={"smoke": "P0 files: cheapest proof it answers"})


def test_json_report_matches_the_contract(tmp_path: Path) -> None:
    report = build_json_report(make_run(), worklog=tmp_path / "w.md")
    assert report["schema"] == "greenloop.report/v1"
    assert isinstance(report["run_id"], str)
    assert report["verdict"] in ("green", "failing", "blocked", "not_real")
    assert report["exit_code"] == 1
    for key in ("started_at", "finished_at"):
        assert report[key].endswith("Z")
    assert isinstance(report["duration_s"], float)
    assert set(report["environment"]) >= {"name", "revision"}
    for it in report["iterations"]:
        assert isinstance(it["number"], int) and it["verdict"] in (
            "green",
            "failing",
            "blocked",
            "not_real",
        )
        assert isinstance(it["duration_s"], float)
        for a in it["actions"]:
            assert set(a) >= {"name", "kind", "status", "detail"}
            assert a["status"] in ("done", "dry_run", "refused", "failed")
    assert report["probes"]
    for p in report["probes"]:
        assert set(p) >= {"component", "name", "kind", "target", "ok", "latency_ms", "detail"}
        assert isinstance(p["ok"], bool)
    for ph in report["phases"]:
        assert ph["status"] in ("passed", "failed", "blocked", "skipped")
        assert set(ph["counts"]) >= {"passed", "failed", "error", "skipped", "blocked", "flaky"}
    by_id = {t["nodeid"]: t for t in report["tests"]}
    for t in report["tests"]:
        assert set(t) >= {
            "nodeid",
            "phase",
            "outcome",
            "duration_s",
            "category",
            "cluster_id",
            "real",
            "real_evidence",
        }
        assert t["outcome"] in (
            "passed",
            "failed",
            "error",
            "skipped",
            "blocked",
            "timeout",
            "crashed",
        )
        assert t["category"] is None or t["category"] in CATEGORIES
        assert isinstance(t["real"], bool) and isinstance(t["real_evidence"], str)
    assert by_id["tests/e2e/test_health.py::test_too_fast"]["real"] is False
    assert by_id["tests/e2e/test_health.py::test_too_fast"]["real_evidence"].startswith("too_fast")
    assert by_id["tests/e2e/test_checkout.py::test_checkout_total"]["cluster_id"] == "C1"
    assert (
        "connected to 127.0.0.1:8000"
        in by_id["tests/e2e/test_health.py::test_health"]["real_evidence"]
    )
    for c in report["clusters"]:
        assert set(c) >= {
            "id",
            "fingerprint",
            "category",
            "confidence",
            "count",
            "tests",
            "title",
            "root_cause",
            "impact_usd",
        }
        assert set(c["root_cause"]) >= {"summary", "component", "whys"}
        for w in c["root_cause"]["whys"]:
            assert isinstance(w["verified"], bool)
    assert report["authenticity"][0]["check"] == "too_fast"
    assert report["impact"]["mrr_at_risk_usd"] == 17000.0
    assert report["issues"][0]["action"] == "created"
    assert set(report["issues"][0]) >= {"key", "title", "action", "location"}
    assert report["worklog"] == str(tmp_path / "w.md")
    json.dumps(report)  # serialisable as is


def test_triage_json_has_tests_and_clusters_only() -> None:
    report = build_json_report(make_run(), triage_only=True)
    assert report["tests"] and report["clusters"]
    assert report["probes"] == report["phases"] == report["iterations"] == []


def test_no_planted_secret_reaches_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    stdout = io.StringIO()
    paths = write_reports(
        make_run(),
        context(tmp_path),
        out_dir=tmp_path / "out",
        output_format="github",
        stream=stdout,
    )
    outputs = {
        "worklog": paths.worklog.read_text(),
        "json": paths.json_report.read_text(),
        "junit": paths.junit.read_text() if paths.junit else "",
        "annotations": stdout.getvalue(),
        "summary": summary.read_text(),
    }
    for where, text in outputs.items():
        assert text, where
        for name, secret in PLANTED.items():
            assert secret not in text, f"{name} leaked into {where}"
    assert "::error file=tests/e2e/test_checkout.py,line=42" in outputs["annotations"]


def test_worklog_sections_and_rerender_same_file(tmp_path: Path) -> None:
    run = make_run()
    out = tmp_path / "out"
    first = write_reports(run, context(tmp_path), out_dir=out)
    assert first.worklog.name == "E2E-DEPLOY-REMEDIATE-WORKLOG-all-20261128-101500-ab12cd.md"
    text = first.worklog.read_text()
    for heading in (
        "## Executive summary",
        "## Deployment",
        "## Test selection",
        "### Health gate",
        "### Phase `critical`",
        "## Authenticity",
        "## Problems",
        "## Business impact",
        "## Issues",
        "## Next actions",
        "## Trend",
    ):
        assert heading in text, heading
    assert "P0 files: cheapest proof it answers" in text
    assert "**verified**: total is 90" in text and "*hypothesis*: discount applied twice" in text
    assert "pytest tests/e2e -m critical" in text
    again = write_reports(replace(run, interrupted=True), context(tmp_path), out_dir=out)
    assert again.worklog == first.worklog
    assert "interrupted" in again.worklog.read_text()
    assert len(list(out.glob("*.md"))) == 1


def test_junit_xml_is_valid_and_complete(tmp_path: Path) -> None:
    paths = write_reports(make_run(), context(tmp_path), out_dir=tmp_path / "out")
    assert paths.junit == paths.worklog.parent / "junit.xml"
    root = ET.parse(paths.junit).getroot()
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("errors") == "1"
    failure = root.find(".//testcase[@name='test_checkout_total']/failure")
    assert failure is not None and "total 90 != 100" in (failure.get("message") or "")


def test_user_template_and_broken_template(tmp_path: Path) -> None:
    (tmp_path / "mine.md.j2").write_text("# {{ run.run_id }} {{ verdict_line }}\n")
    paths = write_reports(
        make_run(), context(tmp_path, worklog_template="mine.md.j2"), out_dir=tmp_path / "o"
    )
    assert paths.worklog.read_text().startswith("# 20261128-101500-ab12cd 2 of 4 tests failed")
    # Compiled templates are cached (jinja2's bytecode cache): an edit is still seen.
    (tmp_path / "mine.md.j2").write_text("## edited {{ run.run_id }}\n")
    paths = write_reports(
        make_run(), context(tmp_path, worklog_template="mine.md.j2"), out_dir=tmp_path / "o"
    )
    assert paths.worklog.read_text().startswith("## edited 20261128-101500-ab12cd")
    (tmp_path / "bad.md.j2").write_text("{{ no_such_thing }}\n")
    with pytest.raises(UserError, match=r"bad\.md\.j2"):
        write_reports(
            make_run(), context(tmp_path, worklog_template="bad.md.j2"), out_dir=tmp_path / "o"
        )


def test_next_actions_decision_tree() -> None:
    failing = next_actions(make_run())
    assert failing[0].startswith("Fix or roll back revision r2: CHECKOUT-TOTAL")
    assert failing[1].startswith("Restore websocket: WEBSOCKET-503")
    not_real = next_actions(replace(make_run(), verdict=Verdict.NOT_REAL))
    assert not_real[0].startswith("Fix the fake tests listed (too_fast)")
    blocked = next_actions(replace(make_run(), verdict=Verdict.BLOCKED))
    assert blocked[-1].startswith("Restore websocket, then rerun")
    assert "promoted" in next_actions(replace(make_run(), verdict=Verdict.GREEN))[0]


def test_next_actions_say_a_test_file_that_did_not_import_is_not_a_fake_test() -> None:
    from greenloop.records import AuthenticityFinding

    run = make_run()
    broken = AuthenticityFinding("test_integration.py", "collection_error", "No module x")
    last = replace(run.iterations[-1], authenticity=(broken,))
    actions = next_actions(replace(run, verdict=Verdict.NOT_REAL, iterations=(last,)))
    assert actions[0] == (
        "Make these test files importable (the phase table shows each error)"
        " (collection_error): `test_integration.py`."
    )
    assert not any("fake" in a for a in actions)


def test_sparkline_is_absolute_and_marks_gaps() -> None:
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▅█·"


def test_trend_and_previous_run_from_a_real_store(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        runs = []
        for i, verdict in enumerate([Verdict.FAILING, Verdict.GREEN, Verdict.FAILING]):
            run = make_run(run_id=f"run-{i}", verdict=verdict)
            run = replace(run, started_at=run.started_at + timedelta(hours=i))
            store.runs.start_run(
                run.run_id, environment="staging", focus="all", command_line="", config_path=""
            )
            it = run.iterations[0]
            for phase in it.phases:
                store.results.record_phase(run.run_id, 1, phase)
            store.probes.record_probes(it.gate.probes if it.gate else (), run.run_id, 1)
            store.runs.finish_run(run)
            runs.append(run)
        facts = run_facts(store, "run-2", tmp_path)
        gathered = replace(
            context(tmp_path), previous=facts.previous, trend=run_trend(store, "run-2")
        )
        paths = write_reports(runs[-1], gathered, out_dir=tmp_path / "out")
        text = paths.worklog.read_text()
        assert "Previous run `run-1`" in text and "pass rate" in text and "availability" in text
        rendered = render_run_for_terminal(store, "run-2", redactor=Redactor())
        assert rendered is not None
        with pytest.raises(UserError, match="not in the store"):
            render_run_for_terminal(store, "nope")
    finally:
        store.close()


def test_github_annotation_escaping() -> None:
    lines = github_annotations(make_run())
    assert all(line.startswith(("::error", "::warning")) for line in lines)
    assert all("\n" not in line for line in lines)


def test_github_annotations_point_at_files_from_the_checkout(tmp_path, monkeypatch) -> None:
    from greenloop.records import (
        AuthenticityFinding,
        IterationResult,
        Outcome,
        PhaseResult,
        PhaseStatus,
        RunResult,
        TestResult,
        Verdict,
        utcnow,
    )
    from greenloop.report.github import github_annotations

    tests_dir = tmp_path / "e2e"
    tests_dir.mkdir()
    (tests_dir / "test_api.py").write_text("def test_x(): pass\n")
    failed = TestResult("test_api.py::test_x", Outcome.FAILED, file="test_api.py", line=3)
    phase = PhaseResult("all", PhaseStatus.FAILED, 1.0, (failed, failed))
    nothing = AuthenticityFinding("broken.py", "collection_error", "ImportError: no module x")
    now = utcnow()
    iteration = IterationResult(
        1, Verdict.NOT_REAL, 1.0, now, phases=(phase,), authenticity=(nothing,)
    )
    run = RunResult("r", Verdict.NOT_REAL, now, now, "staging", None, (iteration,))
    monkeypatch.chdir(tmp_path)
    lines = github_annotations(run, tests_dir)
    assert lines[0].startswith("::error file=e2e/test_api.py,line=3,")
    assert len([line for line in lines if "test_api.py" in line]) == 1  # one per test
    assert any("collection_error" in line and "broken.py" in line for line in lines)


def test_a_green_run_says_its_skips_were_the_suites_own_not_missing_tests() -> None:
    from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult
    from greenloop.report.worklog import verdict_sentence

    run = make_run()
    tests = (
        TestResult("test_a.py::test_up", Outcome.PASSED, duration_s=0.3),
        TestResult("test_a.py::test_py2_only", Outcome.SKIPPED, message="needs Python 2"),
    )
    phase = PhaseResult("all", PhaseStatus.PASSED, 1.0, tests)
    last = replace(run.iterations[-1], phases=(phase,), clusters=(), authenticity=())
    green = replace(run, verdict=Verdict.GREEN, iterations=(last,))
    sentence = verdict_sentence(green, 0.0)
    assert "1 selected test skipped on the suite's own conditions" in sentence
    assert "did not run" not in sentence


def test_a_phase_without_failures_lists_all_its_tests_not_other_ones(tmp_path: Path) -> None:
    """The folded list is "N other tests" only beside failures shown above it."""
    text = write_reports(make_run(), context(tmp_path), out_dir=tmp_path / "o").worklog.read_text()
    smoke = text.split("### Phase `smoke`")[1].split("### Phase")[0]
    assert "<summary>all 2 tests</summary>" in smoke and "other test" not in smoke
