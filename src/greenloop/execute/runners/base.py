"""What every runner shares: the interface, the test environment, the results.

A runner turns a phase and its `Selection` into a `PhaseResult`. `pytest.py`
runs pytest with greenloop's plugin; `junit.py` runs any command and reads the
JUnit XML it writes; both start and watch their child through `greenloop.process`.
Add a kind with one file and one line in `__init__.py` (the `RUNNERS` registry).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from greenloop.config import Config, PhaseConfig
from greenloop.execute.progress import Reporter
from greenloop.execute.selection import Selection
from greenloop.kinds import KindOptions
from greenloop.records import PhaseResult, PhaseStatus, TestResult
from greenloop.redact import mask_argv

if TYPE_CHECKING:
    from greenloop.store import Store

INHERITED_PYTEST_VARS = {
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
}


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
    return shlex.join(mask_argv(argv))


# --------------------------------------------------------------------------- processes


# The note part a runner writes when a stop request cut its phase short (see `cut_short`).
CUT_SHORT = "interrupted: "


def cut_short(phase: PhaseResult) -> bool:
    """Did a stop request end this phase before it finished? (Then --resume re-runs it.)"""
    return any(part.startswith(CUT_SHORT) for part in phase.note.split("; "))


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
