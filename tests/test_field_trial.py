"""The smallest field trial (docs/field-trials.md): walrus's own suite against redis-server.

A real third-party suite (131 tests, each real Redis commands over loopback, most of them
a few ms) run by greenloop as a new user configures it, against a throwaway redis-server
the trial script starts: healthy must be green with no authenticity finding at all, and
the server down must be blocked by the gate, naming the component.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GREENLOOP_TRIALS_CACHE", Path.home() / ".cache" / "greenloop-trials"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_walrus_suite_is_green_when_healthy_and_blocked_when_redis_is_down(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "trials" / "field_trials.py"),
            "--suite",
            "walrus",
            "--state",
            "healthy",
            "--state",
            "down",
            "--gate-only",
            "--no-pytest",
            "--cache",
            str(CACHE),
            "--work",
            str(tmp_path),
            "--json",
            str(rows_file),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if "pip" in proc.stderr and not (CACHE / "src" / "walrus-0.9.8").is_dir():
        pytest.skip(f"the walrus sdist could not be downloaded: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["state"]: r for r in json.loads(rows_file.read_text())}
    healthy, down = rows["healthy"], rows["down"]
    assert (healthy["exit_code"], healthy["verdict"]) == (0, "green")
    assert healthy["strong"] == 0 and healthy["weak"] == 0
    assert healthy["outcomes"] == {"passed": 131}
    assert (down["exit_code"], down["verdict"]) == (3, "blocked")
    assert down["clusters"] == ["blocked/redis (131)"]
