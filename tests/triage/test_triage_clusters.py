"""Fingerprints, clusters, titles, impact and root-cause chains."""

from __future__ import annotations

import uuid
from datetime import timedelta

from triage_helpers import T0, failed, gate, probe

from greenloop.records import Category, IndexEntry, Outcome, TestResult
from greenloop.triage import triage
from greenloop.triage.fingerprint import fingerprint, normalize
from greenloop.triage.logs.base import LogRecord


def refused(port: int, when: str, rid: str) -> str:
    return f"""Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.11/site-packages/redis/connection.py", line 357, in connect
    sock = self.retry.call_with_retry(
  File "/srv/app/chat/cache.py", line 41, in get_thread
    return client.get(key)
  File "/work/tests/test_chat.py", line 12, in test_post_message
    r = api.post("/threads/1/messages")
redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:{port}. \
Connection refused. at {when} request {rid}"""


def test_same_fault_in_later_runs_has_the_same_fingerprint() -> None:
    a = failed(refused(6390, "2025-03-01T12:00:01Z", str(uuid.uuid4())))
    b = failed(refused(51123, "2025-03-02T08:13:59.123Z", str(uuid.uuid4())))
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 16 and int(fingerprint(a), 16) >= 0


def test_a_different_fault_has_a_different_fingerprint() -> None:
    a = failed(refused(6390, "2025-03-01T12:00:01Z", "r1"))
    key_error = a.longrepr.replace(
        "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6390. "
        "Connection refused.",
        "KeyError: 'author'",
    )
    assert fingerprint(a) != fingerprint(failed(key_error))


def test_normalize_masks_what_varies() -> None:
    text = (
        "at 0x7f63baff2828 id=3f2b1c9e-1d2a-4c1b-9a7e-0b1c2d3e4f50 from 10.1.2.3:5432 "
        "in /tmp/pytest-of-ci/pytest-7/test_x0/db.sqlite on 2025-03-01 12:00:01,123 took 314ms"
    )
    out = normalize(text)
    for leaked in ("0x7f63", "3f2b1c9e", "10.1.2.3", "pytest-7", "12:00:01", "314"):
        assert leaked not in out
    assert normalize(text) == normalize(text.replace("314", "27").replace("10.1.2.3", "10.9.9.9"))


def outage_gate():
    return gate(
        probe(
            "backend",
            False,
            'HTTP 503: {"cache": "connection refused to 127.0.0.1:6390"}',
            "http://127.0.0.1:8000/health",
            "http",
            name="health",
        ),
        probe("cache", False, "connection refused", "127.0.0.1:6390", "tcp", name="cache"),
        depends={"backend": ("cache",)},
    )


def test_blocked_tests_form_one_cluster_with_a_verified_chain_that_stops() -> None:
    tests = [
        TestResult(f"tests/test_chat.py::test_{i}", Outcome.BLOCKED, blocked_by="backend")
        for i in range(12)
    ]
    result = triage(tests, gate=outage_gate(), index=[], config=None)
    assert len(result.clusters) == 1
    cluster = result.clusters[0]
    assert cluster.title == (
        "Backend unhealthy (cache: connection refused, infrastructure): 12 tests blocked"
    )
    assert cluster.root_cause.component == "cache"
    assert cluster.root_cause.mode == "refused"
    assert cluster.root_cause.category is Category.INFRASTRUCTURE
    assert cluster.category is Category.BLOCKED and cluster.count == 12
    whys = cluster.root_cause.whys
    assert [w.verified for w in whys] == [True, True, True, True]
    assert "backend unhealthy" in whys[1].why and "'health'" in whys[1].evidence
    assert "dependency cache" in whys[2].why and "6390" in whys[2].evidence
    assert whys[3].why == "cache does not accept connections"
    assert "12:00:01" in whys[3].evidence  # the probe's time is cited
    assert cluster.id == f"C-{cluster.fingerprint[:8]}"


def test_failures_against_the_down_cache_cluster_as_one_infrastructure_problem() -> None:
    tests = [
        failed(
            refused(6390, "2025-03-01T12:00:0{i}Z", f"r{i}"), nodeid=f"tests/test_chat.py::test_{i}"
        )
        for i in range(5)
    ]
    result = triage(tests, gate=outage_gate(), index=[], config=None)
    assert [c.title for c in result.clusters] == ["Cache unreachable: 5 tests failed"]
    assert result.clusters[0].reason == "CACHE-UNAVAILABLE"


ZERO = 'E   ZeroDivisionError: division by zero\n  File "/srv/app/stats.py", line 8, in avg'


def test_impact_counts_each_file_once_and_ranks_clusters_by_money() -> None:
    index = [
        IndexEntry("test_billing.py", mrr_at_risk_usd=5000.0),
        IndexEntry("test_chat.py", mrr_at_risk_usd=1200.0),
    ]

    def key_error(name: str) -> str:
        return (
            f"tests/test_billing.py:9: in {name}\n    total = invoice()\n"
            "  File \"/srv/app/billing.py\", line 3, in total\nE   KeyError: 'total'"
        )

    tests = [
        failed(key_error("test_a"), nodeid="tests/test_billing.py::test_a"),
        failed(key_error("test_b"), nodeid="tests/test_billing.py::test_b"),
        failed(
            'E   ZeroDivisionError: division by zero\n  File "/srv/app/stats.py", line 8, in avg',
            nodeid="tests/test_billing.py::test_c",
        ),
        *(
            failed(
                ZERO,
                nodeid=f"tests/test_chat.py::test_{i}",
            )
            for i in range(3)
        ),
    ]
    result = triage(tests, gate=gate(probe("backend", True, "200")), index=index, config=None)
    by_count = {c.count: c for c in result.clusters}
    assert by_count[4].impact_usd == 6200.0  # billing + chat, each once
    assert by_count[2].impact_usd == 5000.0
    assert result.mrr_at_risk_usd == 6200.0  # billing is in both clusters, counted once
    assert [c.count for c in result.clusters] == [4, 2]


def test_bad_deploy_chain_cites_the_log_line_and_the_revision_change(tmp_path) -> None:
    from greenloop.records import PhaseResult, PhaseStatus
    from greenloop.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        store.runs.start_run(
            "r1", environment="staging", focus="all", command_line="", config_path=""
        )
        ok = TestResult("tests/test_chat.py::test_post", Outcome.PASSED)
        store.results.record_phase(
            "r1", 1, PhaseResult("smoke", PhaseStatus.PASSED, 1.0, (ok,)), "1"
        )
        text = """tests/test_chat.py:30: in test_post
    assert r.status_code == 201
E   AssertionError: assert 500 == 201"""
        test = failed(
            text, nodeid="tests/test_chat.py::test_post", request_id="req-42", started_at=T0
        )
        logs = [
            LogRecord(
                T0 + timedelta(milliseconds=5), "INFO", "POST /threads/1/messages", "svc", "req-41"
            ),
            LogRecord(
                T0 + timedelta(milliseconds=9),
                "ERROR",
                "POST /threads/1/messages 500",
                "svc",
                "req-42",
                "Traceback (most recent call last):\n"
                '  File "/srv/app/chat/messages.py", line 88, in create\n'
                "KeyError: 'author'",
            ),
        ]
        result = triage(
            [test],
            gate=gate(probe("backend", True, "200")),
            index=[],
            config=None,
            store=store,
            revision="2",
            previous_revision="1",
            logs=logs,
        )
    finally:
        store.close()
    (cluster,) = result.clusters
    assert cluster.category is Category.PRODUCT
    assert result.classifications[0].rule == "server-log-exception"
    whys = cluster.root_cause.whys
    assert whys[0].verified and "500" in whys[0].evidence
    assert "KeyError: 'author'" in whys[1].why and "12:00:01" in whys[1].evidence
    assert "req-42" in whys[1].evidence and whys[1].verified
    assert whys[-1].why == "it appeared with revision 2" and whys[-1].verified
    assert "1 -> 2" in whys[-1].evidence


def test_chain_stops_at_the_first_hypothesis() -> None:
    text = "E   AssertionError: assert 500 == 200"
    result = triage(
        [failed(text)], gate=None, index=[], config=None, revision="2", previous_revision="1"
    )
    whys = result.clusters[0].root_cause.whys
    assert whys[0].verified
    assert not whys[-1].verified and whys[-1].why.startswith("hypothesis")
    assert all(w.verified for w in whys[:-1])


def test_index_lookup_by_table_finds_what_a_scan_of_the_index_finds() -> None:
    """entry_for looks a file up in tables made once per index: the same entry a scan in
    index order finds (the exact path first, else the first path that is the file's or a
    tail of it after a slash), for exact, nested, `./`, backslash and unknown paths."""
    from greenloop.triage.impact import entry_for

    index = (
        IndexEntry("e2e/tests/test_a.py", mrr_at_risk_usd=1.0),
        IndexEntry("./test_b.py", mrr_at_risk_usd=2.0),
        IndexEntry("tests\\test_c.py", mrr_at_risk_usd=3.0),
        IndexEntry("test_a.py", mrr_at_risk_usd=4.0),
        IndexEntry("c.py", mrr_at_risk_usd=5.0),
        IndexEntry("tests/test_c.py", mrr_at_risk_usd=6.0),
        IndexEntry("test_a.py", mrr_at_risk_usd=7.0),
    )

    def scan(path: str) -> IndexEntry | None:
        exact = next((e for e in index if e.path == path), None)
        if exact is not None:
            return exact
        for entry in index:
            rel = entry.path.replace("\\", "/").removeprefix("./")
            if path == rel or path.endswith("/" + rel):
                return entry
        return None

    paths = [
        "test_a.py", "e2e/tests/test_a.py", "x/e2e/tests/test_a.py", "tests/test_a.py",
        "test_b.py", "a/test_b.py", "tests/test_c.py", "x/tests/test_c.py", "y/c.py",
        "c.py", "tests/test_d.py", "", "/", "a//test_b.py", "e2e/tests\\test_a.py",
    ]  # fmt: skip
    for path in paths:
        assert entry_for(path, index) == scan(path), path
        assert entry_for(path, list(index)) == scan(path), path
    assert entry_for("x/tests/test_c.py", index) == index[2]  # the first in index order
