"""Each JUnit case in tests/data/junit_cases gives its right value (README there).

Parsing is checked on the records; triage, clusters, money at risk and the JSON report
through a real `greenloop triage` process where the row's right value is about them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from greenloop.index import load_index
from greenloop.junit import parse_junit
from greenloop.load import load_config
from greenloop.records import Category, Outcome, PhaseResult, PhaseStatus, TestResult
from greenloop.store import Store
from greenloop.triage import triage, triage_junit
from greenloop.triage.flaky import history_facts

CASES = Path(__file__).parent / "data" / "junit_cases"


def case(name: str) -> Path:
    return CASES / name


def by_nodeid(name: str) -> dict[str, TestResult]:
    results = parse_junit(case(name))
    assert len({r.nodeid for r in results}) == len(results), "one result per test"
    return {r.nodeid: r for r in results}


def greenloop_triage(*args: str | Path, cwd: Path) -> tuple[int, str, dict[str, object]]:
    """`greenloop triage ... --json out.json` as a process: exit code, stderr, report."""
    out = cwd / "out.json"
    done = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "triage", *map(str, args), "--json", str(out)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return done.returncode, done.stderr, report


def test_suites_nested_a_thousand_deep_are_read_without_recursion(tmp_path: Path) -> None:
    (leaf,) = parse_junit(case("nested_testsuites_depth_1000.xml"))
    assert leaf.outcome is Outcome.FAILED and leaf.message == "boom"
    code, stderr, report = greenloop_triage(case("nested_testsuites_depth_1000.xml"), cwd=tmp_path)
    assert (code, stderr) == (1, "")
    assert [t["outcome"] for t in report["tests"]] == ["failed"]  # type: ignore[index]


def test_pytest_teardown_error_record_joins_the_failed_call() -> None:
    tests = by_nodeid("pytest_call_fail_plus_teardown_error.xml")
    assert sorted(tests) == [
        "test_orders.py::test_cart_listing",
        "test_orders.py::test_checkout_total",
    ]
    total = tests["test_orders.py::test_checkout_total"]
    assert total.outcome is Outcome.FAILED and total.message == "assert 1 == 2"
    assert "could not delete cart 4711" in total.longrepr  # the teardown error belongs here
    listing = tests["test_orders.py::test_cart_listing"]
    assert listing.outcome is Outcome.ERROR and listing.message.startswith("failed on teardown")


def test_rerunfailures_attempts_are_one_test_with_reruns() -> None:
    tests = by_nodeid("pytest_rerunfailures_16_duplicate_testcases.xml")
    assert len(tests) == 3
    always = tests["test_search.py::test_search_always_500"]
    assert always.outcome is Outcome.FAILED
    assert always.reruns == (Outcome.FAILED, Outcome.FAILED) and not always.passed_on_rerun
    assert "GET /search answered 500" in always.message
    flaky = tests["test_search.py::test_profile_flaky"]
    assert flaky.outcome is Outcome.FAILED and flaky.reruns == (Outcome.PASSED,)
    assert flaky.passed_on_rerun
    assert tests["test_search.py::test_health_ok"].outcome is Outcome.PASSED


def test_gradle_retry_in_one_file_is_one_flaky_test() -> None:
    tests = by_nodeid("gradle_test_retry_fail_then_pass.xml")
    assert sorted(tests) == [
        "shop.api.CheckoutApiTest::listsOrders()",
        "shop.api.CheckoutApiTest::placesOrder()",
    ]
    places = tests["shop.api.CheckoutApiTest::placesOrder()"]
    assert places.outcome is Outcome.FAILED and places.passed_on_rerun
    assert "SocketTimeoutException" in places.message
    result = triage(list(tests.values()), gate=None)
    (classification,) = result.classifications
    assert classification.category is Category.FLAKY


def test_decimal_comma_and_grouped_times() -> None:
    tests = by_nodeid("time_decimal_comma_locale.xml")
    durations = {nodeid.rsplit("::", 1)[1]: t.duration_s for nodeid, t in tests.items()}
    assert durations == {
        "loginWithValidUser": 0.16,
        "loginWithLockedUser": 0.031,
        "longRunningImport": 1234.5,
    }


def test_googletest_notrun_and_result_skipped_are_not_run(tmp_path: Path) -> None:
    tests = by_nodeid("gtest_notrun_disabled_and_result_skipped.xml")
    outcomes = {nodeid.rsplit("::", 1)[1]: t.outcome for nodeid, t in tests.items()}
    assert outcomes == {
        "ChargesCard": Outcome.PASSED,
        "DISABLED_RefundsCard": Outcome.SKIPPED,
        "ChargesInEuro": Outcome.SKIPPED,
        "VoidsCharge": Outcome.PASSED,
    }
    assert tests["PaymentsE2E::DISABLED_RefundsCard"].skip_reason == 'not run (status="notrun")'
    _, _, report = greenloop_triage(
        case("gtest_notrun_disabled_and_result_skipped.xml"), cwd=tmp_path
    )
    not_run = [t for t in report["tests"] if not t["real"]]  # type: ignore[attr-defined]
    assert sorted(t["nodeid"] for t in not_run) == [
        "PaymentsE2E::ChargesInEuro",
        "PaymentsE2E::DISABLED_RefundsCard",
    ]
    assert all(t["real_evidence"].startswith("skipped: not run") for t in not_run)


def test_jest_suite_that_failed_to_run_is_a_test_fault_of_the_test_file() -> None:
    tests = by_nodeid("jest_junit_test_suite_failed_to_run.xml")
    broken = tests["src/orders.test.ts"]
    assert broken.file == "src/orders.test.ts" and broken.outcome is Outcome.ERROR
    result = triage(list(tests.values()), gate=None)
    (cluster,) = result.clusters
    assert cluster.category is Category.TEST and cluster.reason == "IMPORT-ERROR"
    assert cluster.tests == ("src/orders.test.ts",)
    assert "application code" not in cluster.root_cause.summary


def test_playwright_project_is_part_of_identity_and_a_steady_failure_is_not_flaky(
    store: Store,
) -> None:
    a = parse_junit(case("playwright_two_projects_order_A.xml"))
    b = parse_junit(case("playwright_two_projects_order_B.xml"))
    assert sorted(t.nodeid for t in a) == sorted(t.nodeid for t in b)
    webkit = "checkout.spec.ts::checkout \u203a pays with saved card[webkit]"
    chromium = "checkout.spec.ts::checkout \u203a pays with saved card[chromium]"
    assert {t.nodeid: t.outcome for t in a}[webkit] is Outcome.FAILED
    assert {t.nodeid: t.outcome for t in a}[chromium] is Outcome.PASSED
    for n, tests in enumerate([a, b, a, b]):
        run = f"r{n}"
        store.runs.start_run(run, environment="ci", focus="all", command_line="", config_path="")
        store.results.record_phase(
            run, 1, PhaseResult("e2e", PhaseStatus.FAILED, 1.0, tuple(tests)), "v1"
        )
    assert history_facts(store, webkit, 20).verdict == "failing"  # 4/4 failures: not flaky
    assert history_facts(store, chromium, 20).verdict == "stable"
    result = triage(b, gate=None, store=store, revision="v1")
    assert [c.category for c in result.classifications if c.nodeid == webkit] != [Category.FLAKY]


def test_four_unrelated_assertions_are_four_problems() -> None:
    result = triage_junit([case("pytest_distinct_assertions_numbers_only_differ.xml")])
    assert len(result.clusters) == 4
    assert sorted(c.count for c in result.clusters) == [1, 1, 1, 1]


@pytest.mark.parametrize(
    "name",
    ["pytest_xunit2_dotted_classname_index_lookup.xml", "pytest_xunit1_file_attr_index_lookup.xml"],
)
def test_pytest_classname_and_file_attribute_find_the_index_file(name: str) -> None:
    (test,) = parse_junit(case(name))
    assert test.nodeid == "tests/test_checkout.py::test_pay_by_card"
    config = load_config(case("pytest_xunit2_dotted_classname_index_lookup.greenloop.toml"))
    result = triage([test], gate=None, index=load_index(config), config=config)
    (cluster,) = result.clusters
    assert result.mrr_at_risk_usd == 25_000 and cluster.impact_usd == 25_000
    assert cluster.root_cause.component == "payments"


def test_xdist_worker_crash_is_crashed() -> None:
    tests = by_nodeid("xdist_worker_crash_segfault.xml")
    assert tests["test_native.py::test_image_resize_native"].outcome is Outcome.CRASHED
    assert tests["test_native.py::test_exif_ok"].outcome is Outcome.PASSED
