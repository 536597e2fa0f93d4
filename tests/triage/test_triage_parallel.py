"""Large batches are classified in worker processes; the result must not change."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from triage_helpers import LABELLED, T0, failed, gate, probe

from greenloop.config import RuleConfig
from greenloop.records import IndexEntry, Outcome, PhaseResult, PhaseStatus, TestResult
from greenloop.store import Store
from greenloop.triage import TriageResult, parallel, triage
from greenloop.triage.cluster import cluster_keys
from greenloop.triage.evidence import FailureEvidence, gather_evidence
from greenloop.triage.logs.base import LogRecord
from greenloop.triage.rules import BUILTIN_RULES, Rule, user_rules

pytestmark = pytest.mark.skipif(
    parallel.worker_count(2) < 2, reason="needs fork and at least 2 CPUs"
)


def batch(n: int, seed: int = 3) -> tuple[list[TestResult], list[LogRecord]]:
    """n varied failures from the labelled texts: blocked, skipped, re-run, and product
    failures whose request id ties them to a server error line (shared cluster keys)."""
    rng = random.Random(seed)
    texts = [json.loads(line)["text"] for line in LABELLED.read_text().splitlines() if line]
    tests: list[TestResult] = []
    logs: list[LogRecord] = []
    for i in range(n):
        nodeid = f"tests/test_mod{i % 30}.py::test_case_{i}"
        if i % 40 == 0:
            tests.append(TestResult(nodeid, Outcome.BLOCKED, blocked_by="cache"))
        elif i % 41 == 0:
            tests.append(TestResult(nodeid, Outcome.SKIPPED, skip_reason="redis not available"))
        elif i % 7 == 0:
            rid = f"req-{i}"
            text = f"tests/test_chat.py:30: in {nodeid}\nE   AssertionError: assert 500 == 201"
            tests.append(failed(text, nodeid=nodeid, request_id=rid, started_at=T0))
            logs.append(
                LogRecord(
                    T0 + timedelta(milliseconds=i),
                    "ERROR",
                    "POST /threads/1/messages 500",
                    "svc",
                    rid,
                    f"Traceback (most recent call last):\nKeyError: '{rng.choice('ab')}'",
                )
            )
        else:
            text = f"{rng.choice(texts)}\nrequest {uuid.UUID(int=rng.getrandbits(128))} port {i}"
            reruns = (Outcome.PASSED,) if i % 50 == 1 else ()
            tests.append(failed(text, nodeid=nodeid, reruns=reruns, started_at=T0))
    return tests, logs


def test_a_large_batch_in_workers_equals_the_serial_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests, logs = batch(3000)
    index = [IndexEntry(f"tests/test_mod{i}.py", mrr_at_risk_usd=10.0 * i) for i in range(30)]
    the_gate = gate(
        probe("cache", False, "refused", "127.0.0.1:6390"), probe("backend", True, "ok")
    )
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")  # history is read in the parent
    forks: list[int] = []
    in_workers = parallel._in_workers

    def spy(
        evidence: Sequence[FailureEvidence], rules: tuple[Rule, ...], n: int
    ) -> list[parallel.Compact]:
        forks.append(n)
        return in_workers(evidence, rules, n)

    def run(workers: int) -> TriageResult:
        return triage(
            tests, gate=the_gate, index=index, store=store, revision="2", logs=logs, workers=workers
        )

    try:
        store.runs.start_run(
            "r1", environment="staging", focus="all", command_line="", config_path=""
        )
        phase = PhaseResult("smoke", PhaseStatus.FAILED, 1.0, tuple(tests[:200]))
        store.results.record_phase("r1", 1, phase, "1")
        serial = run(workers=1)
        monkeypatch.setattr(parallel, "PARALLEL_MIN", 1000)
        monkeypatch.setattr(parallel, "_in_workers", spy)
        parallel_result = run(workers=2)
    finally:
        store.close()
    assert forks == [2]  # the batch really went to two worker processes
    assert len(serial.clusters) > 5 and any(c.tests[1:] for c in serial.clusters)
    assert parallel_result == serial
    assert repr(parallel_result) == repr(serial)


def test_user_rules_reach_the_workers_without_pickling(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = (
        user_rules(
            [RuleConfig(name="vendor outage", category="infrastructure", pattern="Connection")],
            "greenloop.toml",
        )
        + BUILTIN_RULES
    )
    tests, _ = batch(1200, seed=5)
    evidence = [gather_evidence(t, gate=None) for t in tests]
    serial, serial_keys = parallel.classify_batch(evidence, rules, workers=1)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 100)
    decided, keys = parallel.classify_batch(evidence, rules, workers=2)
    assert keys == serial_keys == cluster_keys(serial) and len(keys) == len(tests)
    assert [d.classification for d in decided] == [d.classification for d in serial]
    assert [d.rule for d in decided] == [d.rule for d in serial]  # the same Rule objects
    assert any(d.reason == "VENDOR-OUTAGE" for d in decided)


def test_one_worker_or_a_small_batch_stays_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parallel.worker_count(1) == 1
    tests, _ = batch(50)
    evidence = [gather_evidence(t, gate=None) for t in tests]
    forks: list[int] = []
    monkeypatch.setattr(parallel, "_in_workers", lambda *args: forks.append(1))
    decisions, keys = parallel.classify_batch(evidence, BUILTIN_RULES, workers=2)
    assert forks == []  # below PARALLEL_MIN: the serial path
    assert keys == cluster_keys(decisions)


def test_failures_equal_but_for_the_test_id_are_classified_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One fault met by many tests costs one classification; each test keeps its own id,
    and the result equals classifying every failure on its own."""
    from greenloop.triage import classify as classify_module

    texts = [json.loads(line)["text"] for line in LABELLED.read_text().splitlines() if line]
    tests = [
        failed(texts[i % 7], nodeid=f"tests/test_mod{i % 3}.py::test_case_{i}") for i in range(70)
    ]
    # A frame of the test function itself is left out of a signature: two tests whose
    # texts name their own function are different inputs.
    own = "tests/test_x.py:3: in test_named\n    assert f()\nE   AssertionError: boom"
    tests += [failed(own, nodeid="tests/test_x.py::test_named"), failed(own, nodeid="t.py::t2")]
    evidence = [gather_evidence(t, gate=None) for t in tests]
    calls: list[str] = []
    real = parallel.classify

    def counting(ev: FailureEvidence, rules: Sequence[Rule]) -> classify_module.Decision:
        calls.append(ev.nodeid)
        return real(ev, rules)

    monkeypatch.setattr(parallel, "classify", counting)
    decisions, keys = parallel.classify_batch(evidence, BUILTIN_RULES, workers=1)
    assert len(calls) == 7 + 2
    alone = [real(ev, BUILTIN_RULES) for ev in evidence]
    assert [d.classification for d in decisions] == [d.classification for d in alone]
    assert [d.evidence for d in decisions] == evidence
    assert keys == cluster_keys(alone)
