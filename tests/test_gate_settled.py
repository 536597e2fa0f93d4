"""The gate stops waiting for probes whose answer cannot change the verdict.

Pure: `settled` over every pass/fail combination of the probes still out. Real: a run's
early check against a TCP server that accepts and never answers (a hung health check)
behind a dependency whose port refuses; the verdict is the one a check that waits for
every probe reaches, and the report says which probe was not waited for and why.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from greenloop.cli import main
from greenloop.config import Config
from greenloop.earlygate import start_early_check
from greenloop.gate import (
    _verdict,
    check_gate,
    describe_gate,
    evaluate_gate,
    probes_json,
    settled,
    waited,
)
from greenloop.load import config_from_dict
from greenloop.records import ProbeResult

# app -> cache; database stands alone.
COMPONENTS = [
    {"name": "app", "depends_on": ["cache"]},
    {"name": "cache"},
    {"name": "database"},
]


def config(phases: list[dict[str, Any]] | None = None, **gate: Any) -> Config:
    probes = [
        {"name": f"{c}-probe", "component": c, "kind": "tcp", "host": "127.0.0.1", "port": 1}
        for c in ("app", "cache", "database")
    ]
    raw: dict[str, Any] = {"components": COMPONENTS, "probes": probes, "gate": gate}
    if phases is not None:
        raw["phases"] = phases
    return config_from_dict(raw, Path("greenloop.toml"))


def answer(component: str, ok: bool) -> ProbeResult:
    return ProbeResult(
        component=component,
        name=f"{component}-probe",
        kind="tcp",
        target="tcp://127.0.0.1:1",
        ok=ok,
        latency_ms=1.0 if ok else None,
        detail="connected" if ok else "connection refused",
    )


def test_a_dependency_down_settles_its_dependents_probe() -> None:
    cfg = config()
    reasons = settled(cfg, [None, answer("cache", False), answer("database", True)])
    assert reasons is not None and set(reasons) == {0}
    assert "app depends on cache, which is down" in reasons[0]


def test_a_component_that_depends_on_nothing_down_is_waited_for() -> None:
    # database is down and blocks every phase, but cache does not depend on it: cache's
    # probe is waited for (its component's state is reported as answered, not guessed).
    cfg = config()
    answers = [None, None, answer("database", False)]
    reasons = settled(cfg, answers)
    assert reasons is None or 1 not in reasons


def test_nothing_is_settled_while_the_answer_could_move_the_deepest_failure() -> None:
    cfg = config()
    # app failed, cache still out: if cache fails it is the deepest failure, else app is.
    assert settled(cfg, [answer("app", False), None, answer("database", True)]) is None
    # Nothing failed yet: the verdict is open.
    assert settled(cfg, [None, None, answer("database", True)]) is None


def test_nothing_is_settled_when_a_phase_would_still_run() -> None:
    # A phase that needs only the database runs whatever app answers: its tests' triage
    # may read app's state, so app's probe is waited for.
    cfg = config(phases=[{"name": "db", "needs": ["database"]}, {"name": "all"}])
    assert settled(cfg, [None, answer("cache", False), answer("database", True)]) is None


def test_nothing_is_settled_under_flapping_rules_without_history() -> None:
    # With fail_after 2, one refused check leaves cache healthy: the verdict is open.
    cfg = config(fail_after=2)
    assert settled(cfg, [None, answer("cache", False), answer("database", True)]) is None


def test_a_probe_not_waited_for_counts_as_no_probe() -> None:
    cfg = config()
    skipped = ProbeResult(
        component="app",
        name="app-probe",
        kind="tcp",
        target="tcp://127.0.0.1:1",
        ok=False,
        latency_ms=None,
        detail="not waited for: app depends on cache, which is down",
        attempts=0,
    )
    gate = evaluate_gate(cfg, [skipped, answer("cache", False), answer("database", True)])
    assert not waited(skipped)
    state = gate.component("app")
    assert state is not None and not state.healthy and state.degraded_by == ("cache",)
    # The verdict is the one of either answer app could have given.
    for ok in (True, False):
        other = evaluate_gate(
            cfg, [answer("app", ok), answer("cache", False), answer("database", True)]
        )
        assert _verdict(cfg, other) == _verdict(cfg, gate)
    assert "not waited for: app-probe" in describe_gate(gate)
    (entry,) = [p for p in probes_json(gate) if p["name"] == "app-probe"]
    assert entry["attempts"] == 0 and entry["detail"].startswith("not waited for")


# --------------------------------------------------------------------------- real sockets


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


@pytest.fixture
def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connections are refused


def live_config(hung: int, refused: int, timeout_s: float) -> Config:
    probes = [
        {
            "name": "health",
            "component": "app",
            "kind": "http",
            "url": f"http://127.0.0.1:{hung}/health",
            "timeout_s": timeout_s,
        },
        {
            "name": "cache",
            "component": "cache",
            "kind": "tcp",
            "host": "127.0.0.1",
            "port": refused,
        },
    ]
    raw = {"components": COMPONENTS[:2], "probes": probes}
    return config_from_dict(raw, Path("greenloop.toml"))


@pytest.mark.parametrize("fork", [True, False], ids=["child-process", "thread"])
def test_the_early_check_does_not_wait_for_a_hung_probe_behind_a_down_dependency(
    hung_port: int, refused_port: int, fork: bool
) -> None:
    waiting = check_gate(live_config(hung_port, refused_port, timeout_s=1), None)
    assert waiting.component("app") is not None
    assert all(waited(p) for p in waiting.probes)  # a plain check waits for every answer

    cfg = live_config(hung_port, refused_port, timeout_s=60)  # never reached
    check = start_early_check(cfg, fork=fork)
    assert check.forked is fork
    early = check_gate(cfg, None)
    assert _verdict(cfg, early) == _verdict(cfg, waiting)
    assert early.deepest_failure == "cache"
    health = next(p for p in early.probes if p.name == "health")
    assert not waited(health) and health.attempts == 0 and not health.ok
    assert "app depends on cache, which is down" in health.detail


@pytest.mark.parametrize("fork", [True, False], ids=["child-process", "thread"])
def test_the_head_start_begins_only_when_every_probe_passed(
    hung_port: int, refused_port: int, fork: bool
) -> None:
    """What `greenloop run` hands it (start a warm pytest) runs once every probe passed,
    and never for a blocked check, whether the check ran in a child or on a thread."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        port = int(listening.getsockname()[1])
        for ports, expected in (((refused_port, refused_port), []), ((port, port), ["go"])):
            raw = {
                "components": [{"name": "app"}],
                "probes": [
                    {"name": f"p{n}", "component": "app", "kind": "tcp", "host": "127.0.0.1"}
                    | {"port": p}
                    for n, p in enumerate(ports)
                ],
            }
            cfg = config_from_dict(raw, Path("greenloop.toml"))
            calls: list[str] = []
            check = start_early_check(cfg, lambda calls=calls: calls.append("go"), fork=fork)
            check.results()
            check._thread.join(timeout=30)
            assert calls == expected and check.failed() is not expected
            check_gate(cfg, None)  # claimed: the next check probes afresh


def test_an_early_check_in_a_child_hands_back_its_error(refused_port: int) -> None:
    """An exception in the child (here: a probe option only compile finds wrong) reaches
    the run as the same exception, with its words."""
    cfg = live_config(refused_port, refused_port, timeout_s=1)
    broken = cfg.model_copy(
        update={"probes": [cfg.probes[0].model_copy(update={"kind": "no-such-kind"})]}
    )
    check = start_early_check(broken, fork=True)
    with pytest.raises(Exception, match="no-such-kind"):
        check.results()
    assert check.failed()
    from greenloop import gate

    gate._early.clear()


def test_a_child_that_dies_without_answering_is_replaced_by_a_check_here(
    refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from greenloop import earlygate

    parent, real = os.getpid(), earlygate.probe_once

    def dies_in_the_child(cfg: Config, settle: bool = True) -> list[ProbeResult]:
        if os.getpid() != parent:
            os._exit(3)
        return real(cfg, settle)

    monkeypatch.setattr(earlygate, "probe_once", dies_in_the_child)
    cfg = live_config(refused_port, refused_port, timeout_s=1)
    check = start_early_check(cfg, fork=True)
    results = check.results()
    assert [r.name for r in results] == ["health", "cache"]
    assert all("refused" in r.detail for r in results if r.attempts)
    check_gate(cfg, None)


@pytest.mark.parametrize("process", ["own-process", "in-process"])
def test_a_run_with_a_dependency_down_reports_the_probe_it_did_not_wait_for(
    tmp_path: Path, hung_port: int, refused_port: int, process: str
) -> None:
    """In its own process `greenloop run` probes in a forked child (single-threaded
    there); inside this test process, which has threads, on a thread."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_app.py").write_text("def test_app():\n    assert True\n", encoding="utf-8")
    (tmp_path / "greenloop.toml").write_text(
        f"""
[environment]
name = "settled"

[execution]
tests_dir = "tests"

[[components]]
name = "app"
depends_on = ["cache"]

[[components]]
name = "cache"

[[probes]]
name = "health"
component = "app"
kind = "http"
url = "http://127.0.0.1:{hung_port}/health"
timeout_s = 60

[[probes]]
name = "cache"
component = "cache"
kind = "tcp"
host = "127.0.0.1"
port = {refused_port}

[report]
out_dir = "out"
""",
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    argv = ["run", "-c", str(tmp_path / "greenloop.toml"), "--json", str(report)]
    before = datetime.now(UTC)
    if process == "in-process":
        code = main(argv)
    else:
        command = [sys.executable, "-m", "greenloop.cli", *argv]
        code = subprocess.run(command, capture_output=True, timeout=120).returncode
    assert code == 3
    data = json.loads(report.read_text(encoding="utf-8"))
    if process == "own-process":
        # The run counts from its process's start (the kernel's, to 10 ms), so its duration
        # holds start-up and the early check: it starts before the first probe's check.
        started = datetime.fromisoformat(data["started_at"])
        assert before - timedelta(seconds=0.05) <= started
        assert started <= min(datetime.fromisoformat(p["checked_at"]) for p in data["probes"])
        # The run id's time is that start too, as in the worklog's name (pg8000 trial:
        # they differed by a second).
        stamp = started.strftime("%Y%m%d-%H%M%S")
        assert data["run_id"].startswith(stamp) and stamp in Path(data["worklog"]).name
    assert data["verdict"] == "blocked" and data["exit_code"] == 3
    health = next(p for p in data["probes"] if p["name"] == "health")
    assert health["attempts"] == 0 and not health["ok"]
    assert "not waited for: app depends on cache, which is down" in health["detail"]
    cache = next(p for p in data["probes"] if p["name"] == "cache")
    assert cache["attempts"] == 1 and "refused" in cache["detail"]
    worklog = Path(data["worklog"]).read_text(encoding="utf-8")
    assert "not waited for" in worklog


def test_probe_in_its_own_process_waits_for_every_probe(
    tmp_path: Path, hung_port: int, refused_port: int
) -> None:
    """`greenloop probe` starts its check early (in a child process) too, but never
    settles: the hung health check is waited for up to its timeout_s."""
    (tmp_path / "greenloop.toml").write_text(
        f"""
[[components]]
name = "app"
depends_on = ["cache"]

[[components]]
name = "cache"

[[probes]]
name = "health"
component = "app"
kind = "http"
url = "http://127.0.0.1:{hung_port}/health"
timeout_s = 1

[[probes]]
name = "cache"
component = "cache"
kind = "tcp"
host = "127.0.0.1"
port = {refused_port}
""",
        encoding="utf-8",
    )
    report = tmp_path / "probes.json"
    command = [sys.executable, "-m", "greenloop.cli", "probe", "-c", "greenloop.toml"]
    done = subprocess.run(
        [*command, "--json", str(report)], cwd=tmp_path, capture_output=True, timeout=120
    )
    assert done.returncode == 3, done.stderr
    probes = {p["name"]: p for p in json.loads(report.read_text(encoding="utf-8"))["probes"]}
    assert probes["health"]["attempts"] >= 1 and "not waited" not in probes["health"]["detail"]
    assert "refused" in probes["cache"]["detail"]
