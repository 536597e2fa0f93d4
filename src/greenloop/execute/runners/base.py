"""What every runner shares: the interface, the test environment, processes with deadlines.

A runner turns a phase and its `Selection` into a `PhaseResult`. `pytest.py`
runs pytest with greenloop's plugin; `junit.py` runs any command and reads the
JUnit XML it writes. Add a kind with one file and one line in `__init__.py`.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from greenloop import interrupt
from greenloop.config import Config, PhaseConfig
from greenloop.execute.progress import Reporter
from greenloop.execute.selection import Selection
from greenloop.kinds import KindOptions
from greenloop.records import PhaseResult, PhaseStatus, TestResult

if TYPE_CHECKING:
    from greenloop.store import Store

KILL_GRACE_S = 3.0  # after SIGTERM, how long a process group gets before SIGKILL
POLL_S = 0.05
INHERITED_PYTEST_VARS = {
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
}
SECRET_OPTION = re.compile(r"(token|secret|password|passwd|api[-_]?key|credential)", re.I)


class Runner(Protocol):
    """Runs one phase's tests and says how each ended.

    A runner's settings are the phase's own keys (`command`, `junit`, `cwd`...), so
    its `Options` is `NoOptions`; `validate` checks them at load time (raise
    `OptionError` with the phase key). `runs_pytest`: the runner runs pytest with
    greenloop's plugin over the selected test files (so `select.files` must match
    files, the tests can be listed without running them, and a phase may share a
    pytest session); otherwise the phase is one opaque command.
    """

    kind: str
    runs_pytest: bool

    @property
    def Options(self) -> type[KindOptions]: ...

    def validate(self, phase: PhaseConfig) -> None: ...

    def run(
        self,
        config: Config,
        phase: PhaseConfig,
        selection: Selection,
        *,
        store: Store | None,
        reporter: Reporter,
        run_env: Mapping[str, str] | None,
    ) -> PhaseResult: ...


# --------------------------------------------------------------------------- environment


def env_name(name: str) -> str:
    """GREENLOOP_URL_<NAME>: upper case, anything but letters and digits as '_'."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def process_environment(config: Config, run_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ, then environment.env, the target URLs, and run_env over all of them."""
    # Not our own pytest's bookkeeping (when greenloop itself runs under pytest / xdist).
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_PYTEST_VARS}
    env.update(config.environment.env)
    if config.environment.base_url:
        env["GREENLOOP_BASE_URL"] = config.environment.base_url
    for name, url in config.environment.urls.items():
        env[f"GREENLOOP_URL_{env_name(name)}"] = url
    env.update(run_env or {})
    return env


def display_command(argv: Sequence[str]) -> str:
    """The command as a shell line, with values of secret-looking options masked."""
    shown: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            shown.append("***")
            mask_next = False
            continue
        if arg.startswith("-") and SECRET_OPTION.search(arg):
            if "=" in arg:
                shown.append(arg.split("=", 1)[0] + "=***")
            else:
                shown.append(arg)
                mask_next = True
            continue
        shown.append(arg)
    return shlex.join(shown)


# --------------------------------------------------------------------------- processes


# The note part a runner writes when a stop request cut its phase short (see `cut_short`).
CUT_SHORT = "interrupted: "


def cut_short(phase: PhaseResult) -> bool:
    """Did a stop request end this phase before it finished? (Then --resume re-runs it.)"""
    return any(part.startswith(CUT_SHORT) for part in phase.note.split("; "))


@dataclass(frozen=True, slots=True)
class ProcessEnd:
    """How a child process ended."""

    returncode: int | None  # None when we killed it at the deadline
    timed_out: bool
    duration_s: float
    interrupted: bool = False  # stopped because the user asked the run to stop


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    deadline: float,
    output: Path,
    on_poll: Callable[[], object] | None = None,
) -> ProcessEnd:
    """Run argv (no shell) in its own process group; kill the group at `deadline` (monotonic).

    stdout and stderr go to `output`; `on_poll` runs every few milliseconds
    while it runs (the pytest runner reads new events there).
    """
    start = time.monotonic()
    try:
        proc = start_process(argv, cwd=cwd, env=env, output=output)
    except OSError:
        return ProcessEnd(127, False, 0.0)
    end = watch_process(proc, deadline=deadline, on_poll=on_poll)
    assert end is not None  # no `until`: it returns only when the process is gone
    return ProcessEnd(end.returncode, end.timed_out, time.monotonic() - start, end.interrupted)


def start_process(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path
) -> subprocess.Popen[bytes]:
    """Start argv (no shell) in its own process group, stdout and stderr appended to `output`.

    Raises OSError when it cannot start, after writing why to `output`.
    """
    with output.open("ab") as out:
        try:
            return subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            out.write(f"greenloop: cannot start {argv[0]}: {exc.strerror or exc}\n".encode())
            raise


def watch_process(
    proc: subprocess.Popen[bytes],
    *,
    deadline: float,
    on_poll: Callable[[], object] | None = None,
    until: Callable[[], bool] | None = None,
) -> ProcessEnd | None:
    """Wait for `proc`, calling `on_poll` every few ms; kill its group at `deadline` or on a stop.

    With `until`, also return None (the process still running) as soon as
    `until()` is true after a poll: a shared pytest session finished a phase.
    """
    start = time.monotonic()
    timed_out = stopped = False
    while True:
        try:
            proc.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if on_poll is not None:
            on_poll()
        if until is not None and until():
            return None
        if time.monotonic() >= deadline:
            timed_out = True
            kill_group(proc)
            break
        if interrupt.requested():
            stopped = True
            kill_group(proc)
            break
    if on_poll is not None:
        on_poll()
    code = None if timed_out or stopped else proc.returncode
    return ProcessEnd(code, timed_out, time.monotonic() - start, interrupted=stopped)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers (xdist workers included)."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a process's output, for a note or a crash message."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- results


def phase_status(tests: Sequence[TestResult], collection_errors: Sequence[str]) -> PhaseStatus:
    """Failed when any test failed or anything could not be collected (or nothing was)."""
    if collection_errors or not tests or any(t.outcome.is_failure for t in tests):
        return PhaseStatus.FAILED
    return PhaseStatus.PASSED


def skipped_phase(phase: PhaseConfig, selection: Selection) -> PhaseResult:
    """A phase whose selection is empty: nothing to run, in words."""
    return PhaseResult(
        name=phase.name,
        status=PhaseStatus.SKIPPED,
        duration_s=0.0,
        note=f"nothing selected: {selection.reason}",
    )
