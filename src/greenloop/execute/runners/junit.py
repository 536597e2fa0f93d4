"""The command runner: any test command that writes JUnit XML joins the loop.

`runner = "command"` runs `command` (an argv list, no shell) in `cwd` with the
phase's deadline, then reads the JUnit XML at `junit`. A command that leaves
no fresh report, or an unreadable one, becomes one ERROR result carrying the
command's output, so the phase can never pass by writing nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from greenloop.config import Config, PhaseConfig
from greenloop.errors import InputError
from greenloop.execute.progress import Reporter
from greenloop.execute.runners.base import (
    CUT_SHORT,
    display_command,
    phase_status,
    process_environment,
    tail,
)
from greenloop.execute.selection import Selection
from greenloop.junit import parse_junit
from greenloop.kinds import NoOptions, OptionError
from greenloop.process import run_process
from greenloop.records import Outcome, PhaseResult, TestResult

if TYPE_CHECKING:
    from greenloop.store import Store


class CommandRunner:
    """Runs `phase.command` and ingests the JUnit XML it writes."""

    kind = "command"
    runs_pytest = False
    Options = NoOptions

    def validate(self, phase: PhaseConfig) -> None:
        if not phase.command:
            raise OptionError("command", "a command runner needs a command")

    def run(
        self,
        config: Config,
        phase: PhaseConfig,
        selection: Selection,
        *,
        store: Store | None,
        reporter: Reporter,
        run_env: Mapping[str, str] | None,
    ) -> PhaseResult:
        started = time.monotonic()
        timeout = phase.timeout_s or config.execution.phase_timeout_s
        cwd = config.resolve(phase.cwd or ".")
        junit = (cwd / phase.junit) if phase.junit else None
        if junit is not None and Path(phase.junit or "").is_absolute():
            junit = Path(phase.junit or "")
        command = display_command(phase.command)
        history = store.results.durations() if store is not None else {}
        reporter.on_phase_start(phase.name, workers=1, durations=history)
        before = _mtime(junit)
        with tempfile.TemporaryDirectory(prefix="greenloop-command-") as tmp:
            output = Path(tmp) / "output.log"
            end = run_process(
                phase.command,
                cwd=cwd,
                env=process_environment(config, run_env),
                deadline=started + timeout,
                output=output,
            )
            log = tail(output, 60)
        notes = [] if end.returncode in (0, None) else [f"command exited with {end.returncode}"]
        if end.interrupted:
            notes.append(f"{CUT_SHORT}the command was stopped")
        tests: tuple[TestResult, ...] = ()
        problem = ""
        if end.timed_out:
            problem = f"the command ran past the phase deadline of {timeout:g}s and was stopped"
        if junit is None:
            problem = problem or "the phase has no `junit` report path to read"
        elif _mtime(junit) is None or _mtime(junit) == before:
            problem = problem or f"the command wrote no JUnit report at {junit}"
        else:
            try:
                tests = tuple(parse_junit(junit, phase=phase.name))
            except InputError as exc:
                problem = str(exc)
        if problem:
            notes.append(problem)
            outcome = Outcome.TIMEOUT if end.timed_out else Outcome.ERROR
            tests += (
                TestResult(
                    nodeid=f"{phase.name}::command",
                    outcome=outcome,
                    duration_s=end.duration_s,
                    phase=phase.name,
                    message=problem,
                    longrepr=log,
                    when="setup",
                ),
            )
        reporter.on_collected(len(tests))
        for t in tests:
            reporter.on_test(t)
        result = PhaseResult(
            name=phase.name,
            status=phase_status(tests, ()),
            duration_s=time.monotonic() - started,
            tests=tests,
            command=command,
            note="; ".join(notes),
        )
        reporter.on_phase_end(result)
        return result


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None
