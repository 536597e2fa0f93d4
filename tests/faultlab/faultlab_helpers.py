"""The fault lab's one helper: judge a gate check the way the loop does, and time it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenloop.config import PhaseConfig
from greenloop.gate import check_gate, phase_blocker
from greenloop.load import config_from_dict
from greenloop.records import Cluster, GateResult, Outcome, TestResult
from greenloop.triage import triage


@dataclass(frozen=True)
class Verdict:
    """What greenloop concluded about a blocked run, and how long it took to conclude."""

    gate: GateResult
    cluster: Cluster
    seconds: float  # gate check + triage, wall clock

    @property
    def mode(self) -> str | None:
        mode = self.cluster.root_cause.mode
        return None if mode is None else mode.value

    @property
    def category(self) -> str | None:
        category = self.cluster.root_cause.category
        return None if category is None else category.value

    @property
    def component(self) -> str | None:
        return self.cluster.root_cause.component


BACKEND_NEEDS = [
    {"name": "database"},
    {"name": "cache"},
    {"name": "backend", "depends_on": ["database", "cache"]},
]


def judge(
    probes: Sequence[dict[str, Any]],
    components: Sequence[dict[str, Any]] = BACKEND_NEEDS,
    needs: Sequence[str] = ("backend",),
) -> Verdict:
    """Check the gate once against the real servers; the tests of a phase that needs
    `needs` are blocked by what the gate found, and triage explains them."""
    started = time.perf_counter()
    gate = check(probes, components)
    blocker = phase_blocker(PhaseConfig(name="smoke", needs=list(needs)), gate)
    assert blocker is not None, f"the gate let the phase run: {gate}"
    tests = [
        TestResult(f"tests/test_orders.py::test_{n}", Outcome.BLOCKED, blocked_by=blocker)
        for n in ("checkout", "refund")
    ]
    result = triage(tests, gate=gate, config=None)
    seconds = time.perf_counter() - started
    (cluster,) = result.clusters
    return Verdict(gate, cluster, seconds)


def check(
    probes: Sequence[dict[str, Any]], components: Sequence[dict[str, Any]] = BACKEND_NEEDS
) -> GateResult:
    """One real gate check of `probes`."""
    config = config_from_dict(
        {"components": list(components), "probes": list(probes)}, Path("faultlab.toml")
    )
    return check_gate(config, None)
