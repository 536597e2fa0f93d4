"""A blocked cluster's mode and category reach the JSON report and the next actions."""

from __future__ import annotations

from dataclasses import replace

from report_samples import make_run

from greenloop.records import Category, Cluster, FailureMode, RootCause, RunResult, Verdict
from greenloop.report.json_report import build_json_report
from greenloop.report.worklog import next_actions


def blocked_run(mode: FailureMode, category: Category) -> RunResult:
    run = make_run()
    cause = RootCause(
        "Cache refuses the credentials it was given, or needs some it was not given; "
        f"a {category.value} problem (mode: {mode})",
        "cache",
        mode=mode,
        category=category,
    )
    cluster = Cluster(
        id="C-1", fingerprint="f" * 16, category=Category.BLOCKED, confidence=1.0,
        tests=("tests/test_a.py::test_a",), title="Cache unhealthy", reason="BLOCKED-BY-CACHE",
        root_cause=cause,
    )  # fmt: skip
    last = replace(run.iterations[-1], clusters=(cluster,))
    return replace(run, verdict=Verdict.BLOCKED, iterations=(*run.iterations[:-1], last))


def test_root_cause_mode_and_category_are_in_the_json_report() -> None:
    report = build_json_report(blocked_run(FailureMode.CREDENTIALS, Category.CONFIGURATION))
    cause = report["clusters"][0]["root_cause"]
    assert (cause["mode"], cause["category"]) == ("credentials", "configuration")
    plain = build_json_report(make_run())
    assert all(c["root_cause"]["mode"] is None for c in plain["clusters"])


def test_a_configuration_block_asks_to_fix_the_configuration_not_to_restore() -> None:
    actions = next_actions(blocked_run(FailureMode.CREDENTIALS, Category.CONFIGURATION))
    assert actions[-1].startswith("Fix the configuration of cache: Cache refuses")
    actions = next_actions(blocked_run(FailureMode.TIMEOUT, Category.INFRASTRUCTURE))
    assert "(timeout), then rerun" in actions[-1] and actions[-1].startswith("Restore ")
