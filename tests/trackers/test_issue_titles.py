"""Issue titles: a cluster of many tests is named by its cause and a count, not one test.

The field trial (P8) filed `E2E-DEPLOY-BLOCKED-BY-REDIS-REFUSED-test_redis_semaphore` for a
cluster of 77 blocked tests. The issue is still found by its fingerprint, whatever its title.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from tracker_samples import make_cluster, make_config

from greenloop.records import Category, IssueAction, RootCause, Verdict
from greenloop.store import Store
from greenloop.trackers.body import issue_title
from greenloop.trackers.filing import file_issues
from greenloop.triage.names import component_reason


def _tests(n: int, module: str = "test_storage") -> tuple[str, ...]:
    return tuple(f"huey/tests/{module}.py::TestRedis::test_{i}" for i in range(n))


def test_one_test_keeps_the_team_convention() -> None:
    assert issue_title(make_cluster()) == "E2E-DEPLOY-WEBSOCKET-503-test_websocket_events"


def test_a_blocked_cluster_names_its_cause_and_a_count() -> None:
    blocked = replace(
        make_cluster(reason="BLOCKED-BY-REDIS-REFUSED", tests=_tests(77)),
        category=Category.BLOCKED,
        root_cause=RootCause("Redis does not accept connections", "redis"),
    )
    assert issue_title(blocked) == "E2E-DEPLOY-BLOCKED-BY-REDIS-REFUSED-77-tests"


def test_other_many_test_clusters_name_their_component_when_the_reason_does_not() -> None:
    product = replace(
        make_cluster(reason="APP-500", tests=_tests(3, "test_checkout")),
        category=Category.PRODUCT,
        root_cause=RootCause("the checkout raises KeyError", "checkout"),
    )
    assert issue_title(product) == "E2E-DEPLOY-APP-500-CHECKOUT-3-tests"
    # The reason names the component already: not twice.
    down = replace(make_cluster(reason="DATABASE-UNAVAILABLE", tests=_tests(119)),
                   root_cause=RootCause("service unavailable", "database"))  # fmt: skip
    assert issue_title(down) == "E2E-DEPLOY-DATABASE-UNAVAILABLE-119-tests"


def test_a_reason_made_specific_by_a_component_is_still_a_reason() -> None:
    assert component_reason("SERVICE-UNAVAILABILITY", "cache") == "CACHE-UNAVAILABLE"
    assert component_reason("BLOCKED", "redis") == "BLOCKED-BY-REDIS"
    # Only those two templates: a component never turns a reason into a sentence.
    assert component_reason("DEPENDENCY-MISSING", "database") == "DEPENDENCY-MISSING"
    assert component_reason("FIXTURE-ERROR", "backend") == "FIXTURE-ERROR"


def test_a_count_that_changes_is_still_one_issue(sqlite_store: Store, tmp_path: Path) -> None:
    """77 tests blocked, then 80: the fingerprint finds the same issue, which keeps its
    first title (only a new issue sends one)."""
    config = make_config(tmp_path)
    seen = []
    for run, n in (("run-1", 77), ("run-2", 80)):
        cluster = replace(
            make_cluster(fingerprint="fp-redis-refused", reason="BLOCKED-BY-REDIS-REFUSED",
                         tests=_tests(n)),
            category=Category.BLOCKED,
        )  # fmt: skip
        [ref] = file_issues([cluster], config=config, store=sqlite_store, run_id=run,
                            verdict=Verdict.BLOCKED, out_dir=tmp_path / "out")  # fmt: skip
        seen.append(ref)
    assert [r.action for r in seen] == [IssueAction.CREATED, IssueAction.UPDATED]
    assert seen[0].key == seen[1].key and seen[0].fingerprint == seen[1].fingerprint
    text = Path(seen[0].location).read_text()
    assert "E2E-DEPLOY-BLOCKED-BY-REDIS-REFUSED-77-tests" in text
    assert "77 blocked tests" in text and "80 blocked tests" in text  # body, then comment


def test_greenloop_run_blocked_by_a_closed_port_files_one_titled_issue(tmp_path: Path) -> None:
    """A real `greenloop run`: the cache probe is refused, 3 tests blocked, one issue."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_cache.py").write_text(
        textwrap.dedent(
            f"""
            import socket

            def _ping():
                socket.create_connection(("127.0.0.1", {port}), timeout=1).close()

            def test_get():
                _ping()

            def test_set():
                _ping()

            def test_delete():
                _ping()
            """
        )
    )
    (tmp_path / "greenloop.toml").write_text(
        textwrap.dedent(
            f"""
            [[components]]
            name = "redis"

            [[probes]]
            name = "redis-tcp"
            component = "redis"
            kind = "tcp"
            host = "127.0.0.1"
            port = {port}
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "run", "--json", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 3, run.stdout + run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    (cluster,) = report["clusters"]
    assert cluster["category"] == "blocked" and cluster["count"] == 3, cluster["tests"]
    (issue,) = report["issues"]
    assert issue["title"] == "E2E-DEPLOY-BLOCKED-BY-REDIS-REFUSED-3-tests", issue
    assert issue["fingerprint"] == cluster["fingerprint"]
