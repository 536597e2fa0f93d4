"""The health gate: pure decisions over plain records, then the I/O shell on real servers."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from greenloop.config import Config, PhaseConfig
from greenloop.errors import ConfigError
from greenloop.gate import (
    ComponentHistory,
    check_gate,
    debounced_healthy,
    dependencies,
    describe_gate,
    evaluate_gate,
    histories_from_rows,
    phase_blocker,
    probes_json,
    render_probe_table,
    should_expand,
    validate_components,
    wait_for_healthy,
)
from greenloop.load import config_from_dict
from greenloop.records import Outcome, PhaseResult, PhaseStatus, ProbeResult, TestResult
from greenloop.retry import backoff_delay
from greenloop.store import Store

# load_balancer -> backend -> (database, cache); search is unprobed and needs backend.
COMPONENTS = [
    {"name": "load_balancer", "depends_on": ["backend"]},
    {"name": "backend", "depends_on": ["database", "cache"]},
    {"name": "database"},
    {"name": "cache"},
    {"name": "search", "depends_on": ["backend"]},
]


def make_config(probes: list[dict[str, Any]] | None = None, **gate: Any) -> Config:
    if probes is None:
        probes = [
            {"name": f"{c}-probe", "component": c, "kind": "tcp", "host": "127.0.0.1", "port": 1}
            for c in ("load_balancer", "backend", "database", "cache")
        ]
    raw = {"components": COMPONENTS, "probes": probes, "gate": gate}
    return config_from_dict(raw, Path("greenloop.toml"))


def results(**ok: bool) -> list[ProbeResult]:
    return [
        ProbeResult(
            component=name,
            name=f"{name}-probe",
            kind="tcp",
            target="tcp://127.0.0.1:1",
            ok=healthy,
            latency_ms=1.0 if healthy else None,
            detail="connected" if healthy else "connection refused",
        )
        for name, healthy in ok.items()
    ]


ALL_OK = {"load_balancer": True, "backend": True, "database": True, "cache": True}


# --------------------------------------------------------------------------- components


def test_all_healthy() -> None:
    gate = evaluate_gate(make_config(), results(**ALL_OK))
    assert gate.healthy
    assert gate.deepest_failure is None
    assert gate.unhealthy() == ()
    assert [c.name for c in gate.components] == [c["name"] for c in COMPONENTS]


def test_deepest_failure_is_the_dependency_that_explains_the_rest() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "backend": False, "cache": False}))
    assert not gate.healthy
    assert gate.deepest_failure == "cache"
    assert set(gate.unhealthy()) == {"backend", "cache", "search"}


def test_the_progress_line_names_the_deepest_failure_and_its_probe() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "backend": False, "cache": False}))
    line = describe_gate(gate)
    assert line.startswith("gate: cache unhealthy (cache-probe: connection refused)")
    assert "backend-probe" not in line and "blocked" in line
    assert describe_gate(evaluate_gate(make_config(), results(**ALL_OK))).startswith(
        "gate: healthy (4 probe(s) in "
    )


def test_failure_at_the_top_only() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "load_balancer": False}))
    assert gate.deepest_failure == "load_balancer"
    assert gate.unhealthy() == ("load_balancer",)


def test_independent_failures_pick_the_one_explaining_most() -> None:
    # database and cache are independent; only cache is failing below backend
    # here, but with both down the first in config order wins the tie.
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "database": False, "cache": False}))
    assert gate.deepest_failure == "database"


def test_unprobed_component_inherits_health_from_dependencies() -> None:
    healthy = evaluate_gate(make_config(), results(**ALL_OK))
    assert healthy.component("search").healthy  # type: ignore[union-attr]
    broken = evaluate_gate(make_config(), results(**{**ALL_OK, "database": False}))
    search = broken.component("search")
    assert search is not None and not search.healthy
    assert search.degraded_by == ("database",)  # backend's own probe passes
    assert search.probes == ()


def test_degraded_by_lists_failing_dependencies_of_a_healthy_component() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "database": False}))
    lb = gate.component("load_balancer")
    assert lb is not None
    assert lb.healthy  # its own probe passes
    assert lb.degraded_by == ("database",)
    assert gate.deepest_failure == "database"


def test_probe_component_not_declared_is_still_a_component() -> None:
    config = config_from_dict(
        {"probes": [{"name": "q", "component": "queue", "kind": "tcp", "host": "h", "port": 1}]},
        Path("greenloop.toml"),
    )
    gate = evaluate_gate(config, results(queue=False))
    assert gate.deepest_failure == "queue"
    assert gate.component("queue") is not None


def test_dependencies_are_transitive_nearest_first() -> None:
    graph = {c["name"]: c.get("depends_on", []) for c in COMPONENTS}
    assert dependencies("load_balancer", graph) == ("backend", "database", "cache")
    assert dependencies("database", graph) == ()


def test_dependency_cycle_is_a_config_error() -> None:
    raw = {"components": [{"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}]}
    with pytest.raises(ConfigError) as info:
        validate_components(config_from_dict(raw, Path("g.toml")))
    assert str(info.value) == "g.toml: components[0].depends_on: dependency cycle a -> b -> a"


def test_validate_components_accepts_a_tree() -> None:
    validate_components(make_config())


# --------------------------------------------------------------------------- phases


def phase(name: str = "smoke", needs: list[str] | None = None, rate: float = 0.0) -> PhaseConfig:
    return PhaseConfig(name=name, needs=needs, min_pass_rate=rate)


def test_phase_blocker_is_the_deepest_failure_among_its_needs() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "backend": False, "cache": False}))
    assert phase_blocker(phase(needs=["load_balancer"]), gate) == "cache"
    assert phase_blocker(phase(needs=["backend"]), gate) == "cache"
    assert phase_blocker(phase(needs=["database"]), gate) is None


def test_phase_blocked_by_its_own_need_when_dependencies_are_fine() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "backend": False}))
    assert phase_blocker(phase(needs=["search"]), gate) == "backend"
    assert phase_blocker(phase(needs=["cache"]), gate) is None


def test_phase_without_needs_needs_everything() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "database": False}))
    assert phase_blocker(phase(), gate) == "database"
    assert phase_blocker(phase(), evaluate_gate(make_config(), results(**ALL_OK))) is None


def test_phase_with_empty_needs_needs_nothing() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "database": False}))
    assert phase_blocker(phase(needs=[]), gate) is None


def phase_tests(**counts: int) -> tuple[TestResult, ...]:
    made: list[TestResult] = []
    for outcome, n in counts.items():
        for i in range(n):
            if outcome == "flaky":
                made.append(
                    TestResult(f"t_{outcome}_{i}", Outcome.FAILED, reruns=(Outcome.PASSED,))
                )
            else:
                made.append(TestResult(f"t_{outcome}_{i}", Outcome(outcome)))
    return tuple(made)


def test_should_expand_below_min_pass_rate() -> None:
    result = PhaseResult("smoke", PhaseStatus.FAILED, 1.0, phase_tests(passed=3, failed=7))
    expand, reason = should_expand(result, phase(rate=0.8))
    assert not expand
    assert reason == "smoke passed 3/10 (30%), below its min_pass_rate 80%; later phases not run"


def test_should_expand_at_or_above_min_pass_rate() -> None:
    result = PhaseResult("smoke", PhaseStatus.FAILED, 1.0, phase_tests(passed=8, failed=1, flaky=1))
    expand, reason = should_expand(result, phase(rate=0.9))
    assert expand
    assert reason == "smoke passed 9/10 (90%), min_pass_rate 90%"


def test_should_expand_ignores_skipped_tests() -> None:
    result = PhaseResult("smoke", PhaseStatus.PASSED, 1.0, phase_tests(passed=4, skipped=6))
    assert should_expand(result, phase(rate=1.0))[0]


def test_should_not_expand_after_a_blocked_phase() -> None:
    blocked = PhaseResult("smoke", PhaseStatus.BLOCKED, 0.0, blocked_by="database")
    assert should_expand(blocked, phase()) == (
        False,
        "smoke was blocked by database; later phases not run",
    )


def test_a_phase_that_selected_nothing_does_not_hold_the_next_back() -> None:
    skipped = PhaseResult("smoke", PhaseStatus.SKIPPED, 0.0, note="nothing selected")
    assert should_expand(skipped, phase(rate=1.0)) == (
        True,
        "smoke selected no tests; nothing to hold later phases back",
    )


def test_should_expand_when_nothing_ran() -> None:
    empty = PhaseResult("smoke", PhaseStatus.PASSED, 0.0)
    assert should_expand(empty, phase(rate=0.5)) == (
        True,
        "no tests ran in smoke; nothing to hold later phases back",
    )


def test_a_smoke_phase_whose_only_file_did_not_collect_holds_the_next_back() -> None:
    # Found on the databases 0.9.0 field trial: smoke's one file failed to import, every
    # count was 0, and the next phase ran in spite of min_pass_rate 0.95.
    broken = PhaseResult(
        "smoke",
        PhaseStatus.FAILED,
        0.4,
        collection_errors=("test_integration.py: ModuleNotFoundError: No module named 'x'",),
    )
    assert should_expand(broken, phase(rate=0.95)) == (
        False,
        "smoke passed 0/1 (0%; 1 test file not collected), below its min_pass_rate 95%; "
        "later phases not run",
    )
    # Without a min_pass_rate nothing holds the phases back, as before.
    assert should_expand(broken, phase(rate=0.0))[0]


def test_a_file_that_did_not_collect_counts_against_the_pass_rate() -> None:
    result = PhaseResult(
        "smoke",
        PhaseStatus.FAILED,
        1.0,
        phase_tests(passed=9),
        collection_errors=("test_b.py: SyntaxError",),
    )
    expand, reason = should_expand(result, phase(rate=0.95))
    assert not expand
    assert reason.startswith("smoke passed 9/10 (90%; 1 test file not collected)")


def test_a_phase_that_failed_before_any_test_ran_holds_the_next_back() -> None:
    crashed = PhaseResult("smoke", PhaseStatus.FAILED, 0.2, note="pytest exited with code 3")
    assert should_expand(crashed, phase(rate=0.5)) == (
        False,
        "nothing ran in smoke (pytest exited with code 3); later phases not run",
    )


# --------------------------------------------------------------------------- flapping


@pytest.mark.parametrize(
    ("checks", "fail_after", "recover_after", "healthy"),
    [
        ((), 1, 1, True),
        ((False,), 1, 1, False),
        ((False,), 2, 1, True),  # one failure is not enough
        ((False, False), 2, 1, False),
        ((False, True, False), 2, 1, True),  # never two in a row
        ((False, False, True), 2, 1, True),
        ((False, False, True), 2, 2, False),  # one pass is not a recovery
        ((False, False, True, True), 2, 2, True),
        ((False, False, True, False, True), 2, 2, False),  # flapping stays down
        ((True, True, False, False, False), 3, 1, False),
    ],
)
def test_debounced_health(
    checks: tuple[bool, ...], fail_after: int, recover_after: int, healthy: bool
) -> None:
    assert debounced_healthy(checks, fail_after, recover_after) is healthy


def test_evaluate_gate_applies_history() -> None:
    config = make_config(fail_after=2, recover_after=2)
    failing = results(**{**ALL_OK, "database": False})
    assert evaluate_gate(config, failing).healthy  # first failure only
    history = {"database": ComponentHistory((True, False))}
    gate = evaluate_gate(config, failing, history)
    assert gate.deepest_failure == "database"
    down = {"database": ComponentHistory((False, False))}
    assert not evaluate_gate(config, results(**ALL_OK), down).healthy  # one pass: still down


def test_histories_group_rows_by_check_time() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(seconds=5)
    rows = [  # newest first, as the store returns them
        SimpleNamespace(component="db", checked_at=t1, ok=True),
        SimpleNamespace(component="db", checked_at=t1, ok=True),
        SimpleNamespace(component="db", checked_at=t0, ok=True),
        SimpleNamespace(component="db", checked_at=t0, ok=False),
        SimpleNamespace(component="api", checked_at=t0, ok=True),
    ]
    assert histories_from_rows(rows) == {
        "db": ComponentHistory((False, True)),
        "api": ComponentHistory((True,)),
    }


def test_backoff_grows_with_jitter_and_caps() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.5, 5.0, rng) for n in range(1, 8)]
    bases = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.5 <= delay <= base
    assert len(set(delays)) == len(delays)  # jittered, not lockstep


# --------------------------------------------------------------------------- presentation


def test_probes_json_matches_the_report_contract() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "cache": False}))
    entries = probes_json(gate)
    assert len(entries) == 4
    required = {"component", "name", "kind", "target", "ok", "latency_ms", "detail"}
    assert required <= set(entries[0])
    cache = next(e for e in entries if e["component"] == "cache")
    assert cache["ok"] is False and cache["detail"] == "connection refused"


def render(gate: Any) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render_probe_table(gate))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_table_highlights_the_deepest_failure() -> None:
    gate = evaluate_gate(make_config(), results(**{**ALL_OK, "backend": False, "cache": False}))
    text = render(gate)
    assert "▶ cache" in text
    assert "▶ backend" not in text
    assert "connection refused" in text
    assert "search" in text and "depends on backend, cache" in text
    assert "▶ deepest failure: cache (unhealthy: backend, cache, search)" in text


def test_table_when_healthy() -> None:
    text = render(evaluate_gate(make_config(), results(**ALL_OK)))
    assert "healthy: 5 components, 4 probes" in text
    assert "deepest failure" not in text and "▶" not in text


# --------------------------------------------------------------------------- I/O shell


class Service:
    """A tiny HTTP service whose /health answers `status` (changeable), or counts down."""

    def __init__(self) -> None:
        self.status = 200
        self.fail_next = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = service.status
                if service.fail_next > 0:
                    service.fail_next -= 1
                    code = 503
                body = b'{"status": "healthy"}' if code == 200 else b'{"status": "down"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.close()


def service_config(service: Service, **gate: Any) -> Config:
    probes = [
        {"name": "health", "component": "backend", "kind": "http",
         "url": f"http://127.0.0.1:{service.port}/health", "conditions": ["status == 200"]},
        {"name": "db-port", "component": "database", "kind": "tcp",
         "host": "127.0.0.1", "port": service.port},
    ]  # fmt: skip
    raw = {
        "components": [{"name": "backend", "depends_on": ["database"]}, {"name": "database"}],
        "probes": probes,
        "gate": {"wait_initial_s": 0.01, "wait_max_s": 0.05, **gate},
    }
    return config_from_dict(raw, Path("greenloop.toml"))


def test_check_gate_runs_records_and_judges(service: Service, store: Store) -> None:
    config = service_config(service)
    gate = check_gate(config, store, run_id=None, iteration=None)
    assert gate.healthy
    service.status = 503
    gate = check_gate(config, store)
    assert not gate.healthy
    assert gate.deepest_failure == "backend"
    assert gate.duration_s > 0
    rows = store.probes.recent_probe_results()
    assert len(rows) == 4
    assert [r.ok for r in rows if r.component == "backend"] == [False, True]
    # One stamp per check: both probes of a check share it.
    assert len({r.checked_at for r in rows}) == 2


def test_check_gate_flapping_uses_stored_history(service: Service, store: Store) -> None:
    config = service_config(service, fail_after=2, recover_after=2)
    service.status = 503
    assert check_gate(config, store).healthy  # first failure tolerated
    second = check_gate(config, store)
    assert not second.healthy and second.deepest_failure == "backend"
    service.status = 200
    assert not check_gate(config, store).healthy  # one pass is not a recovery
    assert check_gate(config, store).healthy


def test_wait_for_healthy_backs_off_until_the_service_recovers(
    service: Service, store: Store
) -> None:
    service.fail_next = 3
    seen: list[tuple[int, bool, float]] = []
    gate = wait_for_healthy(
        service_config(service),
        store,
        timeout_s=30,
        on_progress=lambda attempt, g, delay: seen.append((attempt, g.healthy, delay)),
        rng=random.Random(1),
    )
    assert gate.healthy
    assert [(a, h) for a, h, _ in seen] == [(1, False), (2, False), (3, False)]
    assert all(0 < d <= 0.05 for _, _, d in seen)


def test_wait_for_healthy_gives_up_at_the_deadline(service: Service) -> None:
    service.status = 503
    calls: list[int] = []
    gate = wait_for_healthy(
        service_config(service),
        None,
        timeout_s=0.2,
        on_progress=lambda attempt, g, delay: calls.append(attempt),
    )
    assert not gate.healthy
    assert gate.deepest_failure == "backend"
    assert calls == list(range(1, len(calls) + 1))
