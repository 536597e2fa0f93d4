"""A `greenloop demo` killed with SIGKILL leaves no demo service behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_for(predicate, limit_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _service_pid(state: Path) -> int | None:
    try:
        pid = json.loads(state.read_text()).get("pid")
    except (OSError, ValueError):
        return None
    return int(pid) if pid and _alive(int(pid)) else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_demo_leaves_no_service(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GREENLOOP_DEMO_OWNER_PID"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "greenloop.cli", "demo", "--out", str(tmp_path / "demo")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    state = tmp_path / "demo" / "service" / "state.json"
    service: int | None = None
    try:
        assert _wait_for(lambda: _service_pid(state) is not None, 120), "the service never started"
        service = _service_pid(state)
        assert service is not None
        demo.send_signal(signal.SIGKILL)
        demo.wait(timeout=30)
        assert _wait_for(lambda: not _alive(service), 60), "the service outlived its demo"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if service is not None and _alive(service):
            os.kill(service, signal.SIGKILL)
