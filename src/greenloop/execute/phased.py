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
`{"phases": {"<phase>": ["<node id prefix>", ...]}, "filters": {"<phase>":
{"markers": "...", "keyword": "..."}}}`, prefixes relative to the rootdir like node
ids. A phase with a filter runs only its files' items that match it, as `-m` / `-k`
would select them (pytest's own expression matching); a test may then belong to
several phases, and runs in each. After collection the plugin writes each filtered
phase's items (`{"event": "phase_items", "phase": ..., "nodeids": [...]}`), before
the items' own `collected` events, so the runner counts for that phase only those.
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


def _owners(nodeid: str, prefixes: dict[str, list[str]]) -> list[str]:
    file = nodeid.split("::", 1)[0]
    return [
        phase
        for phase, files in prefixes.items()
        if any(file == p or file.startswith(p.rstrip("/") + "/") for p in files)
    ]


def filters_supported(markers: str | None = None, keyword: str | None = None) -> bool:
    """Whether this pytest exposes the expression matching `-m` and `-k` use (a private
    API: `_pytest.mark`), and both expressions compile with it."""
    try:
        matcher(markers, keyword)
    except (ImportError, AttributeError, SyntaxError):
        return False
    return True


def matcher(markers: str | None, keyword: str | None) -> Any:
    """A predicate over items: True when `-m markers -k keyword` would select the item,
    as pytest's `deselect_by_mark` / `deselect_by_keyword` decide. Raises ImportError or
    AttributeError on a pytest without that API, SyntaxError for a bad expression."""
    from _pytest.mark import KeywordMatcher, MarkMatcher
    from _pytest.mark.expression import Expression

    by_mark = Expression.compile(markers.strip()) if markers and markers.strip() else None
    by_word = Expression.compile(keyword.strip()) if keyword and keyword.strip() else None
    from_markers = getattr(MarkMatcher, "from_markers", None)  # pytest >= 8.2
    marks_of = (
        (lambda item: from_markers(item.iter_markers()))
        if from_markers is not None
        else MarkMatcher.from_item  # type: ignore[attr-defined]  # older pytest
    )
    keywords_of = KeywordMatcher.from_item

    def selected(item: pytest.Item) -> bool:
        if by_mark is not None and not by_mark.evaluate(marks_of(item)):
            return False
        return by_word is None or bool(by_word.evaluate(keywords_of(item)))

    return selected


class PhasedSession:
    """Runs the collected items phase by phase, as the control file asks."""

    def __init__(
        self,
        plan: dict[str, list[str]],
        control: Path,
        filters: dict[str, dict[str, str | None]] | None = None,
    ) -> None:
        self.plan = plan
        self.filters = {
            name: matcher(f.get("markers"), f.get("keyword")) for name, f in (filters or {}).items()
        }
        self.by_phase: dict[str, list[pytest.Item]] = {}
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
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Each phase's items, in run order; the filtered phases' lists go to the runner
        before the `collected` events (this hook runs before the event plugin's)."""
        self.by_phase = {name: [] for name in self.plan}
        for item in session.items:
            for owner in _owners(item.nodeid, self.plan):
                selected = self.filters.get(owner)
                if selected is None or selected(item):
                    self.by_phase[owner].append(item)
        events = session.config.pluginmanager.get_plugin("greenloop-events")
        if events is not None:
            for name in self.filters:
                nodeids = [item.nodeid for item in self.by_phase.get(name, [])]
                events.sink.emit("phase_items", phase=name, nodeids=nodeids)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        if session.config.option.collectonly:
            return True
        by_phase = self.by_phase
        events = session.config.pluginmanager.get_plugin("greenloop-events")
        remaining = list({id(i): i for items in by_phase.values() for i in items}.values())
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
        document = json.load(f)
    session = PhasedSession(document["phases"], Path(control), document.get("filters"))
    config.pluginmanager.register(session, "greenloop-phased")
