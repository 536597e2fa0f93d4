"""Approval mode tty on a real pseudo-terminal: the question is asked and the answer obeyed."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from remediation_staging import Staging, make_cluster, start_run
    from greenloop.records import Verdict
    from greenloop.remediate import remediate
    from greenloop.carry import Carrier
    from greenloop.store import Store

    root = Path(sys.argv[2])
    staging = Staging(root / "staging")
    store = Store.open(f"sqlite:///{root / 'store.db'}")
    action = {"name": "mark", "kind": "command", "command": staging.ops("mark", str(root / "m"))}
    config = staging.config(
        [{"name": "fix-cache", "match": {"component": "cache"}, "actions": [action]}],
        remediation={"approval": "tty"},
    )
    run_id = start_run(store, "run-1")
    (done,) = remediate([make_cluster()], verdict=Verdict.FAILING, config=config, store=store,
                        run_id=run_id, iteration=1, allow=True,
                        requests=Carrier(config, store, run_id, 1))
    print("RESULT " + json.dumps({"status": done.status.value, "detail": done.detail}))
    """
)


@pytest.mark.parametrize(("answer", "status"), [("y", "done"), ("n", "refused")])
def test_tty_approval_asks_and_obeys(tmp_path: Path, answer: str, status: str) -> None:
    (tmp_path / "staging").mkdir()
    script = tmp_path / "ask.py"
    script.write_text(SCRIPT)
    here = str(Path(__file__).parent)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(script), here, str(tmp_path)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    os.close(terminal)
    prompt = b""
    while b"[y/N]" not in prompt:  # typer.confirm writes its question to the terminal's stdout
        chunk = process.stdout.read1(4096) if process.stdout else b""
        assert chunk, f"no prompt; output so far: {prompt!r}"
        prompt += chunk
    os.write(controller, f"{answer}\n".encode())
    rest, _ = process.communicate(timeout=60)
    os.close(controller)
    output = (prompt + rest).decode()
    assert "run remediation mark: command" in output
    result = json.loads(output.split("RESULT ", 1)[1].splitlines()[0])
    assert result["status"] == status, result
    assert (tmp_path / "m").exists() is (status == "done")
