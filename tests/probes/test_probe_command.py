"""Command probes: real subprocesses, argv only, JSON conditions, and no orphan on timeout."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PY = sys.executable


def test_exit_code_and_json_output(check: Any) -> None:
    script = 'import json; print(json.dumps({"replicas": 3, "state": "ready"}))'
    result = check(
        "command",
        conditions=("exit_code == 0", "json.replicas >= 2", 'json.state == "ready"'),
        argv=[PY, "-c", script],
    )
    assert result.ok, result.detail
    assert result.detail.startswith("exit code 0 in ")


def test_nonzero_exit_fails_with_last_stderr_line(check: Any) -> None:
    script = (
        "import sys; print('checking'); sys.stderr.write('queue depth too high\\n'); sys.exit(3)"
    )
    result = check("command", argv=[PY, "-c", script])
    assert not result.ok
    assert "exit code 3" in result.detail
    assert "queue depth too high" in result.detail
    assert result.failed_conditions == ("exit_code == 0 (exit_code=3)",)


def test_stdout_condition(check: Any) -> None:
    result = check(
        "command", conditions=('stdout contains "ready"',), argv=[PY, "-c", "print('ready')"]
    )
    assert result.ok, result.detail


def test_arguments_are_never_a_shell(check: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = check(
        "command",
        conditions=('stdout contains "touch"',),
        argv=[PY, "-c", "import sys; print(sys.argv[1])", f"; touch {marker}"],
    )
    assert result.ok, result.detail
    assert not marker.exists()


def test_missing_command(check: Any) -> None:
    result = check("command", argv=["/nonexistent/greenloop-check"])
    assert not result.ok
    assert result.detail.startswith("command not found: /nonexistent/greenloop-check")


def test_timeout_kills_the_process(check: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    result = check("command", argv=[PY, "-c", script], timeout_s=1.0)
    assert not result.ok
    assert result.detail.startswith("timed out after 1 s")
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, f"probe left process {pid} running"
