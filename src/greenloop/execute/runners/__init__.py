"""Runner kinds by name: `phase.runner` picks one."""

from __future__ import annotations

from greenloop.execute.runners.base import Runner
from greenloop.execute.runners.junit import CommandRunner
from greenloop.execute.runners.pytest import PytestRunner

RUNNERS: dict[str, Runner] = {
    PytestRunner.kind: PytestRunner(),
    CommandRunner.kind: CommandRunner(),
}


def runner_for(kind: str) -> Runner:
    """The runner of a phase (config validation already limits the names)."""
    return RUNNERS[kind]


__all__ = ["RUNNERS", "Runner", "runner_for"]
