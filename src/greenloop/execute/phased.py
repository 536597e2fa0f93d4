"""pytest plugin: one session runs several phases' tests, a phase at a time, when told to.

Loaded with `-p greenloop.execute.phased` next to `greenloop.execute.plugin`
when the runner shares one pytest process between consecutive phases
(runners/shared.py): pytest starts and collects once, instead of once per
phase. The plugin decides nothing: after collection it waits for lines in the
control file the runner appends to,

    run <phase>      run the collected tests of that phase's files, in order
    stop             end the session (session fixtures are torn down as usual)

and writes a `phase_done` event (`{"event": "phase_done", "phase": ...}`) to
the events file after each phase. Whether the next phase runs is the runner's
decision (the gate's `should_expand`), made between phases.

Which files belong to which phase comes from the plan file: one JSON object,
`{"phases": {"<phase>": ["<node id prefix>", ...]}}`, prefixes relative to the
rootdir like node ids.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from greenloop.execute.wire import CONTROL_ENV, PLAN_ENV

POLL_S = 0.01


def _owner(nodeid: str, prefixes: dict[str, list[str]]) -> str | None:
    file = nodeid.split("::", 1)[0]
    for phase, files in prefixes.items():
        if any(file == p or file.startswith(p.rstrip("/") + "/") for p in files):
            return phase
    return None


class PhasedSession:
    """Runs the collected items phase by phase, as the control file asks."""

    def __init__(self, plan: dict[str, list[str]], control: Path) -> None:
        self.plan = plan
        self.control = control
        self.offset = 0
        self.partial = b""

    def commands(self) -> Any:
        """Lines appended to the control file, as they come (blocks while there are none)."""
        while True:
            try:
                with self.control.open("rb") as f:
                    f.seek(self.offset)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            self.offset += len(chunk)
            *lines, self.partial = (self.partial + chunk).split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace").strip()
            if not lines:
                time.sleep(POLL_S)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        if session.config.option.collectonly:
            return True
        by_phase: dict[str, list[pytest.Item]] = {name: [] for name in self.plan}
        for item in session.items:
            owner = _owner(item.nodeid, self.plan)
            if owner is not None:
                by_phase[owner].append(item)
        events = session.config.pluginmanager.get_plugin("greenloop-events")
        remaining = [i for items in by_phase.values() for i in items]
        for command in self.commands():
            verb, _, name = command.partition(" ")
            if verb != "run" or name not in by_phase:
                break
            items = by_phase[name]
            done = set(map(id, items))
            remaining = [i for i in remaining if id(i) not in done]
            for index, item in enumerate(items):
                # The next phase's first test keeps session fixtures up between phases;
                # if that phase never runs, pytest tears them down at session end.
                nextitem = items[index + 1] if index + 1 < len(items) else None
                if nextitem is None and remaining:
                    nextitem = remaining[0]
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                if session.shouldfail or session.shouldstop:
                    break
            if events is not None:
                events.sink.emit("phase_done", phase=name)
            if session.shouldfail or session.shouldstop:
                break
        return True


def pytest_configure(config: pytest.Config) -> None:
    plan_path, control = os.environ.get(PLAN_ENV), os.environ.get(CONTROL_ENV)
    if not plan_path or not control or hasattr(config, "workerinput"):
        return
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)["phases"]
    config.pluginmanager.register(PhasedSession(plan, Path(control)), "greenloop-phased")
