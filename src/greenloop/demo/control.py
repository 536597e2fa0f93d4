"""Deploy, roll back, fault and stop the demo service: the staging environment's control plane.

``python -m greenloop.demo.control --state-dir DIR <command>``, or the functions below.
Every deploy starts a new revision as a detached process on the same loopback port (so the
base URL stays stable) and records it in ``DIR/state.json``; rollback routes back to the
previous revision by starting it again under its own number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from greenloop.demo.service.faults import DEPENDENCIES, FaultError, make_fault, parse_spec

STATE_FILE = "state.json"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
SERVICE_MODULE = "greenloop.demo.service"

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # started here: reap them, no zombies


class ControlError(Exception):
    """A control command could not do what was asked; the message says why."""


@dataclass(frozen=True)
class RevisionInfo:
    """One deployed revision and the settings it runs with."""

    revision: int
    commit: str
    deployed_at: str
    bug: str | None = None
    faults: tuple[str, ...] = ()
    tls_mismatch: bool = False
    database_url: str | None = None
    cache_url: str | None = None
    tls_cert: str | None = None  # serve HTTPS with this PEM chain and key (--real-deps TLS)
    tls_key: str | None = None
    port: int = 0
    pid: int = 0

    @property
    def base_url(self) -> str:
        """Where the revision answers."""
        scheme = "https" if self.tls_mismatch or self.tls_cert else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RevisionInfo:
        """Read a revision record from state.json."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["faults"] = tuple(known.get("faults", ()))
        return cls(**known)


@dataclass(frozen=True)
class Status:
    """What ``status`` reports."""

    running: bool
    pid: int | None
    port: int | None
    revision: int | None
    base_url: str | None
    revisions: tuple[int, ...] = field(default_factory=tuple)


# --- state.json -------------------------------------------------------------------------------


def _state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE


def load_state(state_dir: Path) -> dict[str, Any]:
    """The recorded state, or an empty one for a fresh directory."""
    path = _state_path(state_dir)
    if not path.exists():
        return {"port": None, "pid": None, "current_revision": None, "revisions": []}
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise ControlError(f"{path} is not valid JSON ({exc}); delete it to start over") from exc
    return state


def _save_state(state_dir: Path, state: Mapping[str, Any]) -> None:
    """Write state.json atomically with mode 0600 (it holds the admin token)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = _state_path(state_dir).with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, _state_path(state_dir))


def _revisions(state: Mapping[str, Any]) -> list[RevisionInfo]:
    return [RevisionInfo.from_json(r) for r in state.get("revisions", [])]


def _current(state: Mapping[str, Any]) -> RevisionInfo | None:
    number = state.get("current_revision")
    return next((r for r in _revisions(state) if r.revision == number), None)


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_service(pid: int, state_dir: Path) -> bool:
    """True when ``pid`` is a live (not zombie) demo service for ``state_dir``."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    args = [a.decode(errors="replace") for a in cmdline]
    return SERVICE_MODULE in args and str(Path(state_dir).resolve()) in args


def _kill(pid: int, state_dir: Path) -> None:
    """Stop the process group of ``pid``: SIGTERM, then SIGKILL after a grace period."""
    if not _is_service(pid, state_dir):
        return
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _is_service(pid, state_dir):
            time.sleep(0.05)
        if not _is_service(pid, state_dir):
            break
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=STOP_TIMEOUT_S)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Return once something accepts TCP connections on ``port``; fail if the process died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ControlError(f"service exited with code {proc.returncode}: {tail[0]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ControlError(f"service did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S} s")


def _launch(state_dir: Path, state: dict[str, Any], rev: RevisionInfo) -> RevisionInfo:
    """Stop the running process, start ``rev`` on the state's port, and record it."""
    if state.get("pid"):
        _kill(int(state["pid"]), state_dir)
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    port = int(state.get("port") or free_port())
    cmd = [
        sys.executable,
        "-m",
        SERVICE_MODULE,
        "--state-dir",
        str(Path(state_dir).resolve()),
        "--port",
        str(port),
        "--revision",
        str(rev.revision),
        "--commit",
        rev.commit,
        "--deployed-at",
        rev.deployed_at,
    ]
    cmd += [arg for spec in rev.faults for arg in ("--fault", spec)]
    if rev.bug:
        cmd += ["--bug", rev.bug]
    tls = _tls(state, rev)
    if tls:
        cmd.append("--tls-mismatch")
    if rev.database_url:
        cmd += ["--database-url", rev.database_url]
    if rev.cache_url:
        cmd += ["--cache-url", rev.cache_url]
    if rev.tls_cert and rev.tls_key:
        cmd += ["--tls-cert", rev.tls_cert, "--tls-key", rev.tls_key]
    env = {**os.environ, "GREENLOOP_DEMO_ADMIN_TOKEN": state["admin_token"]}
    env.pop("GREENLOOP_DEMO_FAULTS", None)
    env.pop("GREENLOOP_DEMO_BUG", None)
    log = Path(state_dir) / "process.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    state.update(port=port, pid=proc.pid, current_revision=rev.revision)
    _save_state(state_dir, state)
    _wait_listening(port, proc, log)
    return replace(rev, port=port, pid=proc.pid, tls_mismatch=tls)


def _tls(state: Mapping[str, Any], rev: RevisionInfo) -> bool:
    """Whether ``rev`` serves HTTPS now: its own setting unless a fault command overrode it."""
    override = state.get("tls_override")
    return rev.tls_mismatch if override is None else bool(override)


# --- commands ---------------------------------------------------------------------------------


def deploy(
    state_dir: Path,
    *,
    bug: str | None = None,
    faults: Sequence[str] = (),
    port: int | None = None,
    database_url: str | None = None,
    cache_url: str | None = None,
    tls_mismatch: bool = False,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> RevisionInfo:
    """Start a new revision (number + 1) and stop the previous one; returns once listening.

    ``bug`` (a fault spec) is baked into the revision; ``faults`` are specs active at start.
    Database and cache URLs and the TLS certificate default to the previous revision's.
    """
    state_dir = Path(state_dir)
    try:
        for spec in [*faults, *([bug] if bug else [])]:
            parse_spec(spec)
    except FaultError as exc:
        raise ControlError(str(exc)) from exc
    state = load_state(state_dir)
    state.setdefault("admin_token", secrets.token_urlsafe(24))
    state.pop("tls_override", None)
    if port is not None:
        state["port"] = port
    previous = _current(state)
    number = max((r.revision for r in _revisions(state)), default=0) + 1
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    rev = RevisionInfo(
        revision=number,
        commit=hashlib.sha1(f"{number}:{now}:{bug}:{faults}".encode()).hexdigest()[:12],
        deployed_at=now,
        bug=bug,
        faults=tuple(s for s in faults if s.split(":")[0] != "tls-mismatch"),
        tls_mismatch=tls_mismatch or any(s.split(":")[0] == "tls-mismatch" for s in faults),
        database_url=database_url or (previous.database_url if previous else None),
        cache_url=cache_url or (previous.cache_url if previous else None),
        tls_cert=tls_cert or (previous.tls_cert if previous else None),
        tls_key=tls_key or (previous.tls_key if previous else None),
    )
    state["revisions"] = [*state.get("revisions", []), _record(rev)]
    return _launch(state_dir, state, rev)


def _record(rev: RevisionInfo) -> dict[str, Any]:
    data = asdict(rev)
    data.pop("port")
    data.pop("pid")
    data["faults"] = list(rev.faults)
    return data


def rollback(state_dir: Path) -> RevisionInfo:
    """Route back to the revision before the current one, with that revision's settings."""
    state = load_state(Path(state_dir))
    current = _current(state)
    if current is None:
        raise ControlError("nothing deployed yet; run deploy first")
    older = [r for r in _revisions(state) if r.revision < current.revision]
    if not older:
        raise ControlError(f"revision {current.revision} has no previous revision to roll back to")
    state.pop("tls_override", None)
    return _launch(Path(state_dir), state, older[-1])


def stop(state_dir: Path) -> bool:
    """Stop the running service (its whole process group); True if one was running."""
    state = load_state(Path(state_dir))
    pid = int(state.get("pid") or 0)
    running = bool(pid) and _is_service(pid, Path(state_dir))
    if pid:
        _kill(pid, Path(state_dir))
    if _state_path(Path(state_dir)).exists():
        state["pid"] = None
        _save_state(Path(state_dir), state)
    return running


def status(state_dir: Path) -> Status:
    """Whether the service runs, where, and which revision serves."""
    state = load_state(Path(state_dir))
    pid = int(state.get("pid") or 0)
    running = bool(pid) and _is_service(pid, Path(state_dir))
    current = _current(state)
    url = None
    if current is not None and state.get("port"):
        url = replace(current, port=int(state["port"]), tls_mismatch=_tls(state, current)).base_url
    return Status(
        running=running,
        pid=pid if running else None,
        port=state.get("port"),
        revision=current.revision if current else None,
        base_url=url,
        revisions=tuple(r.revision for r in _revisions(state)),
    )


def base_url(state_dir: Path) -> str:
    """The base URL of the running service."""
    url = status(state_dir).base_url
    if url is None:
        raise ControlError("nothing deployed yet; run deploy first")
    return url


def _admin(state_dir: Path, method: str, path: str, body: Any = None) -> Any:
    """Call an admin endpoint of the running service."""
    state = load_state(Path(state_dir))
    if not status(state_dir).running:
        raise ControlError("the demo service is not running; run deploy first")
    url = base_url(state_dir)
    # The tls-mismatch certificate is ours and wrong on purpose; admin calls skip verification.
    verify = not url.startswith("https://")
    headers = {"X-Admin-Token": state["admin_token"]}
    try:
        with httpx.Client(base_url=url, timeout=10, verify=verify) as client:
            response = client.request(method, path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ControlError(f"admin call {method} {path} failed: {exc}") from exc
    if response.status_code >= 400:
        detail = response.json().get("detail", response.text) if response.content else ""
        raise ControlError(f"admin {method} {path}: HTTP {response.status_code}: {detail}")
    return response.json() if response.content else None


def _restart_tls(state_dir: Path, on: bool) -> RevisionInfo:
    """Restart the current revision with or without the wrong-host certificate."""
    state = load_state(Path(state_dir))
    current = _current(state)
    if current is None:
        raise ControlError("nothing deployed yet; run deploy first")
    state["tls_override"] = on
    return _launch(Path(state_dir), state, current)


def _serves_tls(state_dir: Path) -> bool:
    return (status(state_dir).base_url or "").startswith("https://")


def set_fault(state_dir: Path, name: str, params: Mapping[str, object] | None = None) -> Any:
    """Activate a fault on the running service (tls-mismatch restarts it with HTTPS)."""
    try:
        make_fault(name, params)
    except FaultError as exc:
        raise ControlError(str(exc)) from exc
    if name == "tls-mismatch":
        rev = _restart_tls(state_dir, True)
        return {"name": name, "params": {}, "source": "runtime", "base_url": rev.base_url}
    return _admin(state_dir, "POST", "/admin/faults", {"name": name, "params": params or {}})


def clear_fault(state_dir: Path, name: str) -> None:
    """Deactivate one fault."""
    if name == "tls-mismatch":
        if not _serves_tls(state_dir):
            raise ControlError("tls-mismatch is not active")
        _restart_tls(state_dir, False)
        return
    _admin(state_dir, "DELETE", f"/admin/faults/{name}")


def clear_faults(state_dir: Path) -> Any:
    """Deactivate every runtime fault; returns what stays active (the revision's bugs)."""
    if _serves_tls(state_dir):
        _restart_tls(state_dir, False)
    return _admin(state_dir, "DELETE", "/admin/faults")


def list_faults(state_dir: Path) -> Any:
    """The active faults."""
    return _admin(state_dir, "GET", "/admin/faults")


def restart_dependency(state_dir: Path, name: str) -> str:
    """Runbook action: restart a failed dependency (clears its dependency-down fault)."""
    if name not in DEPENDENCIES:
        expected = ", ".join(DEPENDENCIES)
        raise ControlError(f"unknown dependency {name!r}; expected one of {expected}")
    listing = list_faults(state_dir)
    down = [
        f
        for f in listing["faults"]
        if f["name"] == "dependency-down" and f["params"].get("dependency") == name
    ]
    if not down:
        return f"{name} is not down; nothing to restart"
    _admin(state_dir, "DELETE", "/admin/faults/dependency-down")
    return f"{name} restarted; connections to it succeed again"


def reset(state_dir: Path) -> None:
    """Stop the service and forget its revisions and data; the port is kept."""
    state_dir = Path(state_dir)
    stop(state_dir)
    port = load_state(state_dir).get("port")
    for name in ("demo.sqlite3", "service.log", "process.log"):
        (state_dir / name).unlink(missing_ok=True)
    _save_state(state_dir, {"port": port, "pid": None, "current_revision": None, "revisions": []})


# --- command line -----------------------------------------------------------------------------


def _params(items: Sequence[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ControlError(f"bad parameter {item!r}; expected key=value")
        params[key] = value
    return params


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m greenloop.demo.control")
    p.add_argument("--state-dir", type=Path, default=Path("greenloop-demo"))
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy", help="start a new revision")
    d.add_argument("--bug", default=None, metavar="NAME[:k=v,...]")
    d.add_argument("--fault", action="append", default=[], metavar="NAME[:k=v,...]")
    d.add_argument("--port", type=int, default=None)
    d.add_argument("--database-url", default=None)
    d.add_argument("--cache-url", default=None)
    d.add_argument("--tls-mismatch", action="store_true")
    sub.add_parser("rollback", help="route back to the previous revision")
    f = sub.add_parser("fault", help="set, clear or list faults")
    fsub = f.add_subparsers(dest="action", required=True)
    fs = fsub.add_parser("set")
    fs.add_argument("name")
    fs.add_argument("params", nargs="*", metavar="k=v")
    fc = fsub.add_parser("clear")
    fc.add_argument("name", nargs="?")
    fsub.add_parser("list")
    r = sub.add_parser("restart-dependency", help="restart a failed dependency")
    r.add_argument("name", choices=DEPENDENCIES)
    sub.add_parser("status")
    sub.add_parser("stop")
    return p


def _run(args: argparse.Namespace) -> Any:
    state_dir: Path = args.state_dir
    match args.command:
        case "deploy":
            rev = deploy(
                state_dir,
                bug=args.bug,
                faults=args.fault,
                port=args.port,
                database_url=args.database_url,
                cache_url=args.cache_url,
                tls_mismatch=args.tls_mismatch,
            )
            return {**asdict(rev), "base_url": rev.base_url}
        case "rollback":
            rev = rollback(state_dir)
            return {**asdict(rev), "base_url": rev.base_url}
        case "fault" if args.action == "set":
            return set_fault(state_dir, args.name, _params(args.params))
        case "fault" if args.action == "clear":
            return clear_fault(state_dir, args.name) if args.name else clear_faults(state_dir)
        case "fault":
            return list_faults(state_dir)
        case "restart-dependency":
            return {"message": restart_dependency(state_dir, args.name)}
        case "status":
            return asdict(status(state_dir))
        case _:
            return {"stopped": stop(state_dir)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one control command; 0 ok, 1 failed (one line on stderr), 2 usage."""
    args = _parser().parse_args(argv)
    try:
        result = _run(args)
    except (ControlError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
