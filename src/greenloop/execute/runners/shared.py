"""One pytest process for several progressive phases: start-up and collection paid once.

Progressive phases (smoke, then critical, then the rest) used to cost one
pytest start-up and collection each, the suite's session fixtures included.
When consecutive phases differ only in which files they run, one pytest
process collects all their files once, then runs one phase's tests whenever
the runner asks (`phased.py` is its plugin); between phases the loop decides,
as before, whether the next one runs at all, and `stop` ends the session.

Anything unusual falls back to the old way, one pytest per phase: a phase
with several workers, `-m`/`-k` filters or its own per-test timeout is not
shared; a shared process that dies, times out or is interrupted serves no
further phase (the phase it was running finishes in fresh processes, as after
any crash).

    SharedSession.plan(config, phases, history) -> SharedSession | None
    session.serve(ctx, fold, phase) -> ProcessEnd    # the phase's first launch
    session.close()                                  # teardown waited for, exit reaped later
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from greenloop.config import Config, PhaseConfig
from greenloop.execute.events import EventFold
from greenloop.execute.runners import runner_for
from greenloop.execute.runners.base import display_command
from greenloop.execute.selection import Selection
from greenloop.execute.warm import take_warm_pytest
from greenloop.execute.wire import CONTROL_ENV, EVENTS_ENV, ORDER_ENV, PARENT_ENV, PLAN_ENV
from greenloop.process import KILL_GRACE_S, ProcessEnd, kill_group, start_process, watch_process

if TYPE_CHECKING:
    from greenloop.execute.runners.pytest import EventTail, PytestSettings, _Context

PHASED_PLUGIN = "greenloop.execute.phased"
# Events about collection are routed to the phase that owns the file; these go to all.
SESSION_EVENTS = {"session_start", "collection_finish", "session_finish", "warning"}


def shareable(
    phase: PhaseConfig, selection: Selection, settings: PytestSettings, *, own_pytest: bool
) -> bool:
    """Can this phase run in a shared session: pytest, one worker, and a `-m`/`-k` of its
    own only where the session's pytest is greenloop's (whose expression matching the
    phased plugin uses: phased.filters_supported) and the expressions compile."""
    if not (runner_for(phase.runner).runs_pytest and settings.workers == 1 and selection.files):
        return False
    if not selection.pytest_args:
        return True
    from greenloop.execute.phased import filters_supported

    return own_pytest and filters_supported(phase.select.markers, phase.select.keyword)


class SharedSession:
    """A pytest process that has collected several phases' files and runs them on request."""

    def __init__(
        self,
        config: Config,
        selections: Mapping[str, Selection],
        settings: PytestSettings,
        order: Sequence[str],
        filters: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.config = config
        self.selections = dict(selections)
        # Per phase with a -m/-k of its own: those arguments, and (once the plugin says)
        # the node ids they select; collection events of its other items are not its own.
        self.filters = {name: args for name, args in (filters or {}).items() if args}
        self.items: dict[str, set[str]] = {}
        self.held: dict[str, list[str]] = {name: [] for name in self.filters}
        self.settings = settings
        self.order = list(order)
        self.proc: subprocess.Popen[bytes] | None = None
        self.dead = False
        self.workdir = Path(tempfile.mkdtemp(prefix="greenloop-shared-"))
        self.tail: EventTail | None = None
        self.pending: dict[str, list[str]] = {name: [] for name in self.selections}
        self.done_phase: str | None = None
        self.started_ahead = False  # its process was the warm pytest (execute/warm.py)
        self.command = ""
        self.output = self.workdir / "output.log"

    # ------------------------------------------------------------------ planning

    @classmethod
    def plan(
        cls,
        config: Config,
        phases: Sequence[tuple[PhaseConfig, Selection]],
        history: Mapping[str, float],
    ) -> SharedSession | None:
        """A session for the shareable phases, when at least two can share one; else None.

        Phases share only with others of the same per-test timeout (one
        `--timeout` per pytest process); the first such group is taken.
        """
        from greenloop.execute.interpreter import python_path, same_interpreter
        from greenloop.execute.runners.pytest import resolve_settings, run_order

        own = same_interpreter(python_path(config) or sys.executable, sys.executable)
        groups: dict[float, list[tuple[PhaseConfig, Selection, PytestSettings]]] = {}
        for phase, selection in phases:
            settings = resolve_settings(config, phase, selection, history)
            if shareable(phase, selection, settings, own_pytest=own):
                groups.setdefault(settings.test_timeout_s, []).append((phase, selection, settings))
        group = next((g for g in groups.values() if len(g) >= 2), None)
        if group is None:
            return None
        order = [n for _, s, st in group for n in run_order(s, history, st.workers)]
        filters = {p.name: s.pytest_args for p, s, _ in group}
        return cls(config, {p.name: s for p, s, _ in group}, group[0][2], order, filters)

    def serves(self, phase: str) -> bool:
        return not self.dead and phase in self.selections

    def note(self, phase: str) -> str:
        others = [n for n in self.selections if n != phase]
        ahead = ", ahead, while greenloop loaded" if self.started_ahead else ""
        return f"one pytest session shared with phase(s) {', '.join(others)} (started once{ahead})"

    # ------------------------------------------------------------------ the process

    def _start(self, env: Mapping[str, str]) -> None:
        reap_closed()
        from greenloop.execute.interpreter import import_root, interpreter_for
        from greenloop.execute.runners.pytest import EventTail, pytest_argv

        first = next(iter(self.selections.values()))
        # A file two phases share (one with a filter) is collected once.
        files = list(dict.fromkeys(f for s in self.selections.values() for f in s.files))
        combined = Selection(phase="shared", files=tuple(files), tests_dir=first.tests_dir)
        interpreter = interpreter_for(self.config, self.workdir)
        argv = pytest_argv(self.config, combined, self.settings, files, interpreter=interpreter)
        argv = [*argv[:3], "-p", PHASED_PLUGIN, *argv[3:]]  # beside greenloop's own plugin
        tests_dir = Path(first.tests_dir)
        plan = {
            name: [_relative(f, tests_dir) for f in s.files] for name, s in self.selections.items()
        }
        filters = {name: _filter_of(args) for name, args in self.filters.items()}
        (self.workdir / "plan.json").write_text(
            json.dumps({"phases": plan, "filters": filters}), encoding="utf-8"
        )
        (self.workdir / "order.txt").write_text("\n".join(self.order) + "\n", encoding="utf-8")
        (self.workdir / "control").write_bytes(b"")
        events = self.workdir / "events.jsonl"
        self.tail = EventTail(events)
        self.command = display_command(argv)
        full_env = {
            **interpreter.environment(env, import_root(tests_dir, self.config.base_dir)),
            EVENTS_ENV: str(events),
            ORDER_ENV: str(self.workdir / "order.txt"),
            PLAN_ENV: str(self.workdir / "plan.json"),
            CONTROL_ENV: str(self.workdir / "control"),
            PARENT_ENV: str(os.getpid()),
        }
        # A pytest started ahead (execute/warm.py) when there is one that fits, else a cold one.
        warm = take_warm_pytest(argv, cwd=tests_dir, env=full_env, output=self.output)
        self.started_ahead = warm is not None
        self.proc = warm or start_process(argv, cwd=tests_dir, env=full_env, output=self.output)

    def serve(self, ctx: _Context, fold: EventFold, phase: str) -> ProcessEnd:
        """Run `phase` in the shared process, its events into `fold`; how it ended.

        A normal end is exit code 0 with the process still running. Any other
        end (died, deadline, interrupt) leaves the session dead.
        """
        started = time.monotonic()
        if self.proc is None:
            try:
                self._start(ctx.env)
            except OSError:
                self.dead = True
                return ProcessEnd(127, False, 0.0)
        assert self.proc is not None
        # The phase's own -m/-k (not on the session's command line: the plugin applies it).
        own_filter = " ".join(shlex.quote(arg) for arg in self.filters.get(phase, ()))
        ctx.first_command = ctx.first_command or " ".join(filter(None, (self.command, own_filter)))
        fold.feed_lines(self.pending.pop(phase, []))
        with (self.workdir / "control").open("a", encoding="utf-8") as control:
            control.write(f"run {phase}\n")
        self.done_phase = None
        end = watch_process(
            self.proc,
            deadline=ctx.deadline,
            on_poll=lambda: self._route(fold, phase),
            until=lambda: self.done_phase == phase,
        )
        if end is None:
            return ProcessEnd(0, False, time.monotonic() - started)
        self.dead = True
        _copy_tail(self.output, ctx.workdir / f"output-{ctx.launches}.log")
        return end

    def _route(self, fold: EventFold, phase: str) -> None:
        """New event lines: this phase's into `fold`, collection events of others kept for them."""
        assert self.tail is not None
        for line in self.tail.read():
            try:
                event = json.loads(line)
                kind = event.get("event")
            except (ValueError, AttributeError):
                fold.feed_lines([line])  # the fold counts it as unreadable
                continue
            if kind == "phase_done":
                self.done_phase = str(event.get("phase"))
                continue
            if kind == "phase_items":  # a filtered phase's items: its held events sorted
                name = str(event.get("phase"))
                self.items[name] = {str(n) for n in event.get("nodeids") or ()}
                for held in self.held.pop(name, []):
                    if json.loads(held).get("nodeid") in self.items[name]:
                        self._deliver(fold, phase, name, held)
                continue
            if kind in ("collected", "collection_error", "collection_skip"):
                nodeid = str(event.get("nodeid", ""))
                for owner in self._owners(nodeid):
                    if kind == "collected" and owner in self.filters:
                        if owner not in self.items:
                            self.held.setdefault(owner, []).append(line)
                            continue
                        if nodeid not in self.items[owner]:
                            continue  # not selected by this phase's -m/-k
                    self._deliver(fold, phase, owner, line)
                continue
            if kind in SESSION_EVENTS:
                for name in self.pending:
                    if name != phase:
                        self.pending[name].append(line)
            fold.feed_lines([line])

    def _deliver(self, fold: EventFold, phase: str, owner: str, line: str) -> None:
        if owner == phase:
            fold.feed_lines([line])
        elif owner in self.pending:
            self.pending[owner].append(line)

    def _owners(self, nodeid: str) -> list[str]:
        """The phases whose files hold `nodeid`; all of them for a conftest or folder error."""
        file = nodeid.split("::", 1)[0]
        owners = []
        for name, selection in self.selections.items():
            tests_dir = Path(selection.tests_dir)
            rels = [_relative(f, tests_dir) for f in selection.files]
            if any(file == r or file.startswith(r + "/") for r in rels):
                owners.append(name)
        return owners or list(self.selections)

    def close(self) -> None:
        """End the session: `stop`, then wait until pytest has torn the session fixtures
        down (its `torn_down` event) or exited; kill it if it lingers.

        The rest of its exit (terminal summary, interpreter teardown) changes nothing
        outside and is not waited for here: `reap_closed` waits for it before another
        session starts and when greenloop exits.
        """
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with (self.workdir / "control").open("a", encoding="utf-8") as control:
                control.write("stop\n")
            deadline = time.monotonic() + KILL_GRACE_S * 3
            while proc.poll() is None and not self._torn_down():
                if time.monotonic() > deadline:
                    kill_group(proc)
                    break
                time.sleep(0.01)
            if proc.poll() is None:
                _closing.append((proc, self.workdir))
                return
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _torn_down(self) -> bool:
        assert self.tail is not None
        for line in self.tail.read():
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(line).get("event") == "torn_down":
                    return True
        return False


# Sessions told to stop whose processes are still exiting, with their folders.
_closing: list[tuple[subprocess.Popen[bytes], Path]] = []


def reap_closed() -> None:
    """Wait for the processes of closed sessions to exit (kill any that lingers); remove
    their folders. Run before a session starts and when greenloop exits."""
    while _closing:
        proc, workdir = _closing.pop()
        try:
            proc.wait(timeout=KILL_GRACE_S * 3)
        except subprocess.TimeoutExpired:
            kill_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)


atexit.register(reap_closed)


def _filter_of(args: Sequence[str]) -> dict[str, str | None]:
    """`("-m", M, "-k", K)` (selection.pytest_filter_args) as the plan's filter entry."""
    given = dict(zip(args[::2], args[1::2], strict=False))
    return {"markers": given.get("-m"), "keyword": given.get("-k")}


def _relative(path: str, tests_dir: Path) -> str:
    try:
        return Path(path).relative_to(tests_dir).as_posix()
    except ValueError:
        return path


def _copy_tail(source: Path, target: Path) -> None:
    """The shared output, where the runner looks for a crashed launch's output."""
    with contextlib.suppress(OSError):
        target.write_bytes(source.read_bytes()[-65536:])
