"""A staging stand-in for the remediation tests: real HTTP on loopback, real ops scripts.

The server answers /version, /health/<component> (503 while the component is
listed as down in state.json) and records every request to /ops/...; `ops.py`
is run as a real subprocess by the actions under test and rewrites state.json.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from greenloop.config import Config
from greenloop.load import config_from_dict
from greenloop.records import Category, Cluster, RootCause
from greenloop.store import Store

COMPONENTS = ("load_balancer", "cache", "database")

OPS = textwrap.dedent(
    """
    import json, os, sys
    state_path, verb, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    state = json.load(open(state_path))
    def save():
        json.dump(state, open(state_path + ".tmp", "w"))
        os.replace(state_path + ".tmp", state_path)
    if verb == "mark":  # create a marker file holding the argv it was given
        open(args[0], "w").write(json.dumps(args[1:]))
        print(f"marked {args[0]}")
    elif verb == "down":
        state["down"] = sorted(set(state["down"]) | {args[0]})
        save()
    elif verb == "up":
        state["down"] = [c for c in state["down"] if c != args[0]]
        save()
        print(f"{args[0]} restarted")
    elif verb == "bump":
        state["history"].append(state["revision"])
        state["revision"] = f"r{int(state['revision'][1:]) + 1}"
        save()
    elif verb == "rollback":  # the previous revision, with nothing down
        state["revision"] = state["history"].pop() if state["history"] else state["revision"] + "b"
        state["down"] = []
        save()
        print(f"rolled back to {state['revision']}")
    elif verb == "fail":
        print("permission denied: not allowed to restart", file=sys.stderr)
        sys.exit(3)
    """
)


class Staging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_path = root / "state.json"
        self.state_path.write_text(json.dumps({"revision": "r1", "history": [], "down": []}))
        self.ops_script = root / "ops.py"
        self.ops_script.write_text(OPS)
        self.requests: list[dict[str, Any]] = []
        self.ops_status = 200
        staging = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                state = staging.read()
                if self.path == "/version":
                    self._reply(200, {"revision": state["revision"]})
                elif self.path.startswith("/health/"):
                    down = self.path.removeprefix("/health/") in state["down"]
                    self._reply(503 if down else 200, {"ok": not down})
                else:
                    self._reply(404, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                staging.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length).decode(),
                    }
                )
                self._reply(staging.ops_status, {"done": staging.ops_status < 300})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def read(self) -> dict[str, Any]:
        return dict(json.loads(self.state_path.read_text()))

    def set_down(self, *components: str) -> None:
        self.state_path.write_text(json.dumps({**self.read(), "down": list(components)}))

    def ops(self, verb: str, *args: str) -> list[str]:
        return [sys.executable, str(self.ops_script), str(self.state_path), verb, *args]

    def config(self, runbooks: list[dict[str, Any]], **sections: Any) -> Config:
        """A config with one probe per component, these runbooks, and any other sections."""
        raw: dict[str, Any] = {
            "environment": {"name": "staging-x", "base_url": self.url},
            "probes": [
                {
                    "name": f"{c}-health",
                    "component": c,
                    "kind": "http",
                    "url": f"{self.url}/health/{c}",
                    "conditions": ["status == 200"],
                }
                for c in COMPONENTS
            ],
            "deploy": {
                "version_url": f"{self.url}/version",
                "command": self.ops("bump"),
                "rollback_command": self.ops("rollback"),
                "timeout_s": 15,
            },
            **sections,
        }
        raw["remediation"] = {**raw.get("remediation", {}), "runbooks": runbooks}
        return config_from_dict(raw, self.root / "greenloop.toml")


def start_run(store: Store, run_id: str) -> str:
    store.runs.start_run(
        run_id, environment="staging-x", focus="all", command_line="", config_path=""
    )
    return run_id


def make_cluster(
    component: str | None = "cache",
    category: Category = Category.INFRASTRUCTURE,
    fingerprint: str = "c0ffee00aa",
    title: str = "ConnectionRefusedError: cache at 127.0.0.1:6390",
) -> Cluster:
    return Cluster(
        id=f"cl-{fingerprint[:6]}",
        fingerprint=fingerprint,
        category=category,
        confidence=0.9,
        tests=("tests/test_messages.py::test_post",),
        title=title,
        reason="CACHE-UNAVAILABLE",
        root_cause=RootCause(f"{component} refuses connections", component),
        excerpt=title,
    )
