"""Restart action: restart the component a cluster blames, the way the config says for it.

Each component's restart is a command or an HTTP call, configured per component:

    { name = "restart", kind = "restart", components = {
        cache = { command = ["systemctl", "restart", "redis"] },
        search = { url = "https://ops.example/restart/search",
                   headers_env = { Authorization = "OPS_TOKEN" } } } }

The component comes from the cluster's root cause and is only ever used to look
up one of these configured entries, never put into a command.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from greenloop.config import Config
from greenloop.kinds import validation_problem
from greenloop.records import Cluster
from greenloop.remediate.base import (
    ActionContext,
    ActionKind,
    ActionOptions,
    ActionOutcome,
    OptionError,
)
from greenloop.remediate.command import CommandAction, CommandOptions
from greenloop.remediate.http import HttpAction, HttpOptions


class RestartOptions(ActionOptions):
    # Component name -> the options of a command action (`command`) or an http action (`url`).
    components: dict[str, dict[str, Any]] = Field(min_length=1)


def _target(how: dict[str, Any]) -> tuple[ActionKind, CommandOptions | HttpOptions]:
    """The command or http action one component's entry describes (ValidationError if neither)."""
    if "command" in how:
        return CommandAction(), CommandOptions.model_validate(how)
    return HttpAction(), HttpOptions.model_validate(how)


class RestartAction(ActionKind[RestartOptions]):
    name = "restart"
    Options = RestartOptions

    def validate(self, options: RestartOptions, config: Config) -> None:
        for component, how in options.components.items():
            key = f"components.{component}"
            if "command" not in how and "url" not in how:
                raise OptionError(key, "a restart needs a `command` (argv) or a `url`")
            try:
                kind, target = _target(how)
            except ValidationError as exc:
                raise OptionError(*validation_problem(exc, key)) from None
            try:
                kind.validate(target, config)
            except OptionError as exc:
                raise OptionError(f"{key}.{exc.key}", exc.problem) from None

    def scope(self, options: RestartOptions, cluster: Cluster) -> str:
        return cluster.root_cause.component or ""

    def unavailable(self, options: RestartOptions, scope: str) -> str | None:
        if scope in options.components:
            return None
        configured = ", ".join(sorted(options.components))
        what = f"component {scope!r}" if scope else "a cluster with no root-cause component"
        return f"no restart configured for {what} (configured: {configured})"

    def secrets(self, options: RestartOptions) -> tuple[str, ...]:
        found: list[str] = []
        for how in options.components.values():
            kind, target = _target(how)
            found.extend(kind.secrets(target))
        return tuple(found)

    def describe(self, options: RestartOptions, context: ActionContext) -> str:
        kind, target = _target(options.components[context.scope])
        return f"restart {context.scope} via {kind.describe(target, context)}"

    def run(self, options: RestartOptions, context: ActionContext) -> ActionOutcome:
        kind, target = _target(options.components[context.scope])
        outcome = kind.run(target, context)
        return ActionOutcome(outcome.ok, f"restart {context.scope} via {outcome.detail}")
