"""--resume takes only the newest run of a config, and a phase that ended is always kept.

Real SQLite store, real `greenloop run` of real pytest phases (in-process CLI).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from greenloop import execute, interrupt
from greenloop.cli import main
from greenloop.records import RunResult, Verdict, utcnow
from greenloop.store import Store


def _run_row(store: Store, run_id: str, minutes_ago: int, status: str) -> None:
    store.runs.start_run(
        run_id, environment="e", focus="all", command_line="", config_path="/c.toml"
    )
    started = utcnow() - timedelta(minutes=minutes_ago)
    result = RunResult(
        run_id=run_id,
        verdict=Verdict.FAILING,
        started_at=started,
        finished_at=started,
        environment="e",
        revision=None,
        iterations=(),
    )
    store.runs.finish_run(result, status=status)
    with store.session() as s:
        from greenloop.store.schema import RunRow

        row = s.get(RunRow, run_id)
        assert row is not None
        row.started_at = started


def test_resume_takes_the_newest_run_only_when_it_crashed(store: Store) -> None:
    _run_row(store, "old-crash", 30, "crashed")
    _run_row(store, "finished-later", 20, "finished")
    assert store.runs.latest_resumable("/c.toml") is None  # the crash is history now
    _run_row(store, "newest-interrupt", 10, "interrupted")
    row = store.runs.latest_resumable("/c.toml")
    assert row is not None and row.id == "newest-interrupt"
    assert store.runs.latest_resumable("/other.toml") is None


CONFIG = """
[execution]
tests_dir = "suite"
reruns = 0

[[phases]]
name = "first"
select = {{ files = ["suite/test_a.py"] }}

[[phases]]
name = "second"
select = {{ files = ["suite/test_b.py"] }}

[store]
url = "sqlite:///{store}"
"""


def test_a_phase_that_ended_is_snapshotted_even_if_a_stop_request_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "suite").mkdir()
    for name in ("a", "b"):
        (tmp_path / "suite" / f"test_{name}.py").write_text(f"def test_{name}():\n    pass\n")
    config = tmp_path / "greenloop.toml"
    config.write_text(CONFIG.format(store=tmp_path / "store.db"))
    real = execute.make_reporter

    class StopAfterPrinting:
        """Prints like the real reporter, then a stop request lands right after a phase."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def on_phase_end(self, phase: Any) -> None:
            self.inner.on_phase_end(phase)
            interrupt.request()

    monkeypatch.setattr(execute, "make_reporter", lambda *a, **k: StopAfterPrinting(real(*a, **k)))
    try:
        code = main(["run", "-c", str(config), "--json", str(tmp_path / "r.json")])
    finally:
        interrupt.reset()
    out = capsys.readouterr().out
    assert code == 130, out
    assert "first passed" in out or "phase first: passed" in out
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        [row] = store.runs.recent_runs(1)
        assert row.status == "interrupted"
        assert row.progress is not None
        assert [p.name for p in row.progress.phases] == ["first"]
    finally:
        store.close()
