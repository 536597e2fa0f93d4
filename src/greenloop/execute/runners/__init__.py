"""The registry of runner kinds: `phase.runner` picks one.

`base.py` says what a runner is (`Runner`); each kind is one file (`pytest.py`,
`junit.py` for `runner = "command"`) and adding one is one line below.
"""

from __future__ import annotations

from greenloop.execute.runners.base import Runner
from greenloop.execute.runners.junit import CommandRunner
from greenloop.execute.runners.pytest import PytestRunner
from greenloop.kinds import Registry

RUNNERS: Registry[Runner] = Registry("runner")
RUNNERS.add("pytest", PytestRunner())
RUNNERS.add("command", CommandRunner())


def runner_for(kind: str) -> Runner:
    """The runner of a phase (`greenloop.load` already checked the name)."""
    return RUNNERS[kind]


__all__ = ["RUNNERS", "Runner", "runner_for"]
