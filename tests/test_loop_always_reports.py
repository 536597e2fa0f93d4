"""Whatever fails after a run started, it leaves its worklog, its JSON and a closed store row.

Each stage of the loop is made to fail in turn (a user's mistake: exit 2; a bug: exit
70) inside a real `greenloop run` of a real pytest suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from greenloop import loop as loop_module
from greenloop.cli import main
from greenloop.errors import UserError
from greenloop.store import Store

CONFIG = """
[environment]
name = "staging"

[execution]
tests_dir = "suite"
reruns = 0

[report]
out_dir = "out"

[store]
url = "sqlite:///{store}"
"""

# The loop's stages as loop.py calls them (module attribute names).
STAGES = [
    "deploy_if_due",
    "check_gate",
    "run_phase",
    "check_authenticity",
    "triage",
    "file_issues",
    "remediate",
]


def _fail_with(exc: BaseException) -> Any:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise exc

    return fail


# Every stage with a bug (exit 70); a user's mistake (exit 2) where one can happen late.
CASES = [(stage, RuntimeError("a bug in a stage"), 70) for stage in STAGES] + [
    (stage, UserError("the tracker said no"), 2) for stage in ("file_issues", "remediate")
]


@pytest.mark.parametrize(
    ("stage", "error", "code"), CASES, ids=[f"{c[0]}-exit{c[2]}" for c in CASES]
)
def test_a_failing_stage_still_leaves_worklog_json_and_a_closed_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    error: BaseException,
    code: int,
) -> None:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_a.py").write_text("def test_a():\n    assert True\n")
    config = tmp_path / "greenloop.toml"
    config.write_text(CONFIG.format(store=tmp_path / "store.db"))
    monkeypatch.setattr(loop_module, stage, _fail_with(error))

    exit_code = main(["run", "-c", str(config), "--json", str(tmp_path / "r.json")])

    err = capsys.readouterr().err
    assert exit_code == code, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_code"] == code
    assert str(error) in report["error"]
    worklogs = list((tmp_path / "out").glob("*.md"))
    assert len(worklogs) == 1
    assert "stopped by an error" in worklogs[0].read_text()
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        [row] = store.runs.recent_runs(5)
        assert row.status == "crashed" and row.finished_at is not None
        assert row.exit_code == code and row.worklog == str(worklogs[0])
    finally:
        store.close()
