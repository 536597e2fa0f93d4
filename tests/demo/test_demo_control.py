"""Deploy, rollback, faults, restart-dependency and stop through control.py, for real."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenloop.demo import control


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenloop.demo.control", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_redeploy_bug_and_rollback(state_dir: Path, login: Any) -> None:
    first = control.deploy(state_dir)
    token = login(first.base_url)
    headers = {"Authorization": f"Bearer {token}"}
    thread = httpx.post(first.base_url + "/threads", json={"title": "kept"}, headers=headers)
    thread_id = thread.json()["id"]

    second = control.deploy(state_dir, bug="app-bug")
    assert (second.revision, second.port) == (2, first.port)
    assert second.pid != first.pid and not alive(first.pid)
    assert httpx.get(second.base_url + "/version").json()["revision"] == 2
    token = login(second.base_url)
    headers = {"Authorization": f"Bearer {token}"}
    posted = httpx.post(
        f"{second.base_url}/threads/{thread_id}/messages", json={"content": "x"}, headers=headers
    )
    assert posted.status_code == 500
    with pytest.raises(control.ControlError, match="roll back"):
        control.clear_fault(state_dir, "app-bug")

    back = control.rollback(state_dir)
    assert (back.revision, back.commit) == (1, first.commit)
    version = httpx.get(back.base_url + "/version").json()
    assert version == {"revision": 1, "deployed_at": first.deployed_at, "commit": first.commit}
    token = login(back.base_url)
    headers = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{back.base_url}/threads/{thread_id}", headers=headers)
    assert listed.status_code == 200  # data survived two restarts (SQLite in the state dir)

    third = control.deploy(state_dir)
    assert third.revision == 3
    state = control.load_state(state_dir)
    assert [r["revision"] for r in state["revisions"]] == [1, 2, 3]
    assert state["revisions"][1]["bug"] == "app-bug"
    mode = stat.S_IMODE(os.stat(state_dir / "state.json").st_mode)
    assert mode == 0o600 and state["admin_token"]


def test_faults_and_restart_dependency(state_dir: Path) -> None:
    rev = control.deploy(state_dir, faults=["dependency-down:dependency=cache"])
    assert httpx.get(rev.base_url + "/health").status_code == 503
    assert control.restart_dependency(state_dir, "database").endswith("nothing to restart")
    assert "restarted" in control.restart_dependency(state_dir, "cache")
    assert httpx.get(rev.base_url + "/health").status_code == 200
    control.set_fault(state_dir, "lb-503", {})
    assert [f["name"] for f in control.list_faults(state_dir)["faults"]] == ["lb-503"]
    assert httpx.get(rev.base_url + "/health").status_code == 503
    control.clear_faults(state_dir)
    assert httpx.get(rev.base_url + "/health").status_code == 200
    with pytest.raises(control.ControlError, match="unknown fault"):
        control.set_fault(state_dir, "nope", {})


def test_slow_start_from_deploy(state_dir: Path) -> None:
    rev = control.deploy(state_dir, faults=["slow-start:seconds=60"])
    health = httpx.get(rev.base_url + "/health")
    assert health.status_code == 503 and health.json()["status"] == "starting"


def test_tls_mismatch(state_dir: Path) -> None:
    rev = control.deploy(state_dir, tls_mismatch=True)
    assert rev.base_url.startswith("https://")
    with pytest.raises(httpx.ConnectError) as info:
        httpx.get(rev.base_url + "/health")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", rev.port)) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["wrong.example.test"]
    assert cert.issuer == cert.subject  # self-signed
    control.clear_fault(state_dir, "tls-mismatch")
    assert control.status(state_dir).base_url == f"http://127.0.0.1:{rev.port}"
    assert httpx.get(f"http://127.0.0.1:{rev.port}/health").status_code == 200


def test_cli_and_stop(state_dir: Path) -> None:
    assert cli(state_dir, "rollback").returncode == 1
    failed = cli(state_dir, "fault", "list")
    assert failed.returncode == 1 and failed.stderr.startswith("error: ")
    assert cli(state_dir, "bogus").returncode == 2
    deployed = cli(state_dir, "deploy", "--fault", "missing-event")
    assert deployed.returncode == 0, deployed.stderr
    info = json.loads(deployed.stdout)
    assert info["revision"] == 1 and info["faults"] == ["missing-event"]
    status = json.loads(cli(state_dir, "status").stdout)
    assert status["running"] and status["base_url"] == info["base_url"]
    assert cli(state_dir, "fault", "set", "slow-db", "seconds=0.1").returncode == 0
    listed = json.loads(cli(state_dir, "fault", "list").stdout)
    assert {f["name"] for f in listed["faults"]} == {"missing-event", "slow-db"}
    assert cli(state_dir, "fault", "clear", "slow-db").returncode == 0
    assert cli(state_dir, "stop").returncode == 0
    assert not alive(info["pid"])
    with pytest.raises(httpx.ConnectError):
        httpx.get(info["base_url"] + "/health")
    assert control.status(state_dir).running is False
