"""The two ways a phase ends up in the record: run by its runner, or blocked by the gate."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from greenloop.config import Config, PhaseConfig
from greenloop.execute.events import CollectedItem, EventFold
from greenloop.execute.interpreter import interpreter_for
from greenloop.execute.plugin import EVENTS_ENV
from greenloop.execute.progress import NullReporter, Reporter
from greenloop.execute.runners import runner_for
from greenloop.execute.runners.base import process_environment, run_process
from greenloop.execute.runners.pytest import pytest_argv, resolve_settings
from greenloop.execute.selection import Selection
from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult

if TYPE_CHECKING:
    from greenloop.store import Store

COLLECT_TIMEOUT_S = 60.0


def run_phase(
    config: Config,
    phase: PhaseConfig,
    selection: Selection,
    *,
    store: Store | None = None,
    reporter: Reporter | None = None,
    run_env: Mapping[str, str] | None = None,
) -> PhaseResult:
    """Run one phase with its runner (`phase.runner`): every selected test gets a result."""
    return runner_for(phase.runner).run(
        config,
        phase,
        selection,
        store=store,
        reporter=reporter or NullReporter(),
        run_env=run_env,
    )


def blocked_phase(
    config: Config, phase: PhaseConfig, selection: Selection, component: str, note: str
) -> PhaseResult:
    """The phase's tests, each named and recorded BLOCKED by `component`, none run."""
    started = time.monotonic()
    if phase.runner == "command":
        names = [f"{phase.name}::command"]
    else:
        names = [item.nodeid for item in collect(config, phase, selection)]
    tests = tuple(
        TestResult(
            nodeid=name,
            outcome=Outcome.BLOCKED,
            phase=phase.name,
            file=name.split("::", 1)[0],
            message=note,
            blocked_by=component,
        )
        for name in names
    )
    return PhaseResult(
        name=phase.name,
        status=PhaseStatus.BLOCKED,
        duration_s=time.monotonic() - started,
        tests=tests,
        blocked_by=component,
        note=note,
    )


def collect(config: Config, phase: PhaseConfig, selection: Selection) -> list[CollectedItem]:
    """`pytest --collect-only` through the plugin; files stand in for what fails to collect."""
    if not selection.files:
        return []
    settings = resolve_settings(config, phase, selection)
    fold = EventFold(phase.name)
    with tempfile.TemporaryDirectory(prefix="greenloop-collect-") as tmp:
        interpreter = interpreter_for(config, Path(tmp))
        argv = pytest_argv(
            config,
            selection,
            settings,
            list(selection.files),
            collect_only=True,
            interpreter=interpreter,
        )
        events = Path(tmp) / "events.jsonl"
        run_process(
            argv,
            cwd=Path(selection.tests_dir),
            env={**process_environment(config), **interpreter.env, EVENTS_ENV: str(events)},
            deadline=time.monotonic() + min(COLLECT_TIMEOUT_S, settings.phase_timeout_s),
            output=Path(tmp) / "output.log",
        )
        if events.exists():
            with events.open(encoding="utf-8", errors="replace") as f:
                fold.feed_lines(f)
    items = list(fold.collected.values())
    have = {i.file for i in items}
    for file in selection.files:
        rel = _relative(file, selection.tests_dir)
        if rel not in have and not any(i.file.startswith(rel + "/") for i in items):
            items.append(CollectedItem(nodeid=rel, file=rel, arg=file))
    return items


def _relative(path: str, tests_dir: str) -> str:
    try:
        return Path(path).relative_to(tests_dir).as_posix()
    except ValueError:
        return path
