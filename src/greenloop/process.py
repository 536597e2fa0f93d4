"""Child processes: the one way greenloop runs a command (an argv list, never a shell).

Every child runs in its own process group, so a timeout or a stop kills what it
started too. Two ways in, one machinery:

- `run_argv`: a configured command with a timeout, its output captured (deploy and
  rollback commands, command actions and log sources, `git`, interpreter checks);
  `run_argv_async` the same inside an event loop (the command probe).
- `start_process` / `watch_process` / `run_process`: a long child whose output goes
  to a file while the caller polls it (pytest, the command runner), killed at a
  deadline or when the user asks the run to stop.

Nothing from test output or logs is ever put into an argv by the callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from greenloop import interrupt

__all__ = [
    "KILL_GRACE_S",
    "OUTPUT_LIMIT",
    "POLL_S",
    "CommandRun",
    "ProcessEnd",
    "kill_group",
    "run_argv",
    "run_argv_async",
    "run_process",
    "start_process",
    "trim",
    "watch_process",
]

KILL_GRACE_S = 3.0  # after SIGTERM, how long a process group gets before SIGKILL
POLL_S = 0.05
OUTPUT_LIMIT = 4000  # characters of a command's output kept (the tail)


# --------------------------------------------------------------------------- configured commands


@dataclass(frozen=True, slots=True)
class CommandRun:
    """How one configured command ended: exit code (None if it never ran or timed out)."""

    argv: tuple[str, ...]
    exit_code: int | None
    output: str  # stdout and stderr interleaved (stdout only with stderr_apart), trimmed
    duration_s: float
    timed_out: bool = False
    error: str = ""  # could not start: not found, not executable
    stderr: str = ""  # with stderr_apart: what went to stderr, trimmed

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """How it ended, in words."""
        if self.error:
            return self.error
        if self.timed_out:
            return f"timed out after {self.duration_s:.1f} s (killed)"
        return f"exit code {self.exit_code} after {self.duration_s:.1f} s"


def trim(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The tail of a long output, saying how much was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n{text[-limit:]}"


def run_argv(
    argv: Sequence[str],
    *,
    timeout_s: float,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    output_limit: int | None = OUTPUT_LIMIT,
    stderr_apart: bool = False,
) -> CommandRun:
    """Run an argv list (no shell) with the inherited environment plus `env`, within a timeout.

    Output goes to a temporary file, not a pipe, so a daemon the command leaves
    running cannot keep us waiting; on timeout (or interruption) the command's
    whole process group is killed. `stderr_apart` keeps stdout clean for JSON.
    `inherit_env=False`: `env` is the whole environment. `output_limit`: characters
    kept of the output's tail (None: all of it). Never raises for a command that
    cannot start: `error` says why.
    """
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **(env or {})} if inherit_env else dict(env or {}),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err if stderr_apart else subprocess.STDOUT,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError) as exc:
            return _not_started(argv, exc, started)
        timed_out = False
        try:
            process.wait(timeout=max(timeout_s, 0.001))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:
                kill_group(process, grace_s=0)
        out.seek(0)
        err.seek(0)
        output = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return CommandRun(
        argv=tuple(argv),
        exit_code=None if timed_out else process.returncode,
        output=output if output_limit is None else trim(output, output_limit),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        stderr=stderr if output_limit is None else trim(stderr, output_limit),
    )


def _not_started(argv: Sequence[str], exc: OSError, started: float) -> CommandRun:
    """A command that could not start, in words: not found, or not executable."""
    why = "not found" if isinstance(exc, FileNotFoundError) else "not executable"
    error = f"command {why}: {argv[0]}"
    return CommandRun(tuple(argv), None, "", time.monotonic() - started, error=error)


async def run_argv_async(
    argv: Sequence[str], *, cwd: str | Path | None = None, env: Mapping[str, str] | None = None
) -> CommandRun:
    """`run_argv` inside an event loop (the command probe), stdout and stderr apart, kept whole.

    No timeout of its own: the caller's `asyncio.timeout` bounds it, and when that
    cancels the wait the command's process group is killed before the cancellation
    goes on, so no process is left behind.
    """
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        return _not_started(argv, exc, started)
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    return CommandRun(
        argv=tuple(argv),
        exit_code=process.returncode,
        output=out.decode("utf-8", "replace"),
        duration_s=time.monotonic() - started,
        stderr=err.decode("utf-8", "replace"),
    )


# --------------------------------------------------------------------------- long children


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
    return follow_process(proc, deadline=deadline, on_poll=on_poll, started=start)


def follow_process(
    proc: subprocess.Popen[bytes],
    *,
    deadline: float,
    on_poll: Callable[[], object] | None = None,
    started: float | None = None,
) -> ProcessEnd:
    """`run_process` for a process already started (in its own process group): wait
    for it as `watch_process` does; the duration counts from `started` (default: now)."""
    start = time.monotonic() if started is None else started
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


def kill_group(proc: subprocess.Popen[bytes], *, grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers `grace_s` (xdist workers included).

    `grace_s=0`: SIGKILL at once (a configured command past its timeout).
    """
    steps = [(signal.SIGTERM, grace_s)] if grace_s > 0 else []
    for sig, wait in (*steps, (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def process_started_at() -> datetime | None:
    """When this process started (UTC), from the kernel: its age is the system's uptime
    (/proc/uptime) less its start time after boot (/proc/self/stat, in clock ticks), both
    to 10 ms. None where /proc has no such entries (not Linux). A run's reported duration
    counts from here, so it includes start-up and the early gate check, as a user's
    stopwatch does."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    if not 0 <= age < 86400 * 365:
        return None
    return datetime.now(UTC) - timedelta(seconds=age)


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with `code` as a normal exit would, less the interpreter's
    module-by-module teardown (0.1-0.5 s of CPU once SQLAlchemy, pytest and the like are
    loaded): exit handlers run and stdout/stderr are flushed first. The callers decide
    when it is safe (no other thread that a normal exit would wait for)."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe: nothing more can be said there.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
