"""Command action: run a configured argv list (never a shell string) and judge its exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from greenloop.process import run_argv
from greenloop.remediate.base import (
    ActionContext,
    ActionKind,
    ActionOptions,
    ActionOutcome,
    check_placeholders,
    substitute,
    substitutions,
)

if TYPE_CHECKING:
    from greenloop.config import Config


class CommandOptions(ActionOptions):
    command: list[str] = Field(min_length=1)
    cwd: str | None = None  # relative to the config file's folder
    env: dict[str, str] = Field(default_factory=dict)  # added to the inherited environment


class CommandAction(ActionKind[CommandOptions]):
    name = "command"
    Options = CommandOptions

    def validate(self, options: CommandOptions, config: Config) -> None:
        for i, arg in enumerate(options.command):
            check_placeholders(f"command[{i}]", arg)
        if options.cwd:
            check_placeholders("cwd", options.cwd)
        for key, value in options.env.items():
            check_placeholders(f"env.{key}", value)

    def argv(self, options: CommandOptions, config: Config) -> list[str]:
        """The argv to run: each argument on its own, placeholders from the config only."""
        values = substitutions(config)
        return [substitute(arg, values) for arg in options.command]

    def describe(self, options: CommandOptions, context: ActionContext) -> str:
        return f"command `{' '.join(self.argv(options, context.config))}`"

    def run(self, options: CommandOptions, context: ActionContext) -> ActionOutcome:
        config = context.config
        values = substitutions(config)
        cwd = str(config.resolve(substitute(options.cwd, values))) if options.cwd else None
        env = {k: substitute(v, values) for k, v in options.env.items()}
        run = run_argv(self.argv(options, config), timeout_s=context.timeout_s, cwd=cwd, env=env)
        detail = f"{self.describe(options, context)}: {run.describe()}"
        if run.output:
            detail += f"; output: {_tail(run.output)}"
        return ActionOutcome(run.ok, detail)


def _tail(output: str, lines: int = 5) -> str:
    """The last few lines of an output: enough to see why, short enough for a worklog row."""
    return " | ".join(line.strip() for line in output.splitlines()[-lines:] if line.strip())
