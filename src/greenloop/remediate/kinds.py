"""The registry of remediation action kinds, and runbooks checked against it.

`base.py` says what a kind is (`ActionKind`); each kind is one file and adding one
is one line below. The registry is the allowlist: a runbook naming any other kind
is a config error, so greenloop never does what no one wrote a kind for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenloop.errors import ConfigError
from greenloop.kinds import KindOptions, OptionError, Registry
from greenloop.records import Category
from greenloop.remediate.base import ActionKind
from greenloop.remediate.command import CommandAction
from greenloop.remediate.guardrails import ROLLBACK_NAME, STOP_NAME
from greenloop.remediate.http import HttpAction
from greenloop.remediate.redeploy import RedeployAction
from greenloop.remediate.restart import RestartAction
from greenloop.remediate.rollback import RollbackAction

if TYPE_CHECKING:
    from greenloop.config import ActionConfig, Config

ACTIONS: Registry[ActionKind[Any]] = Registry("action")
ACTIONS.add("command", CommandAction())
ACTIONS.add("http", HttpAction())
ACTIONS.add("restart", RestartAction())
ACTIONS.add("rollback", RollbackAction())
ACTIONS.add("redeploy", RedeployAction())

__all__ = ["ACTIONS", "resolve_action", "validate_actions"]


def resolve_action(
    action: ActionConfig, key: str, file: str
) -> tuple[ActionKind[Any], KindOptions]:
    """The action's kind and validated options; a mistake is a ConfigError under `key`."""
    return ACTIONS.resolve(action.kind, action.options(), file=file, section=key)


def validate_actions(config: Config) -> None:
    """Every runbook's match and every action's kind and options; one ConfigError per mistake."""
    file = str(config.source)
    seen: dict[str, str] = {}
    categories = {c.value for c in Category}
    for i, runbook in enumerate(config.remediation.runbooks):
        where = f"remediation.runbooks[{i}]"
        match = runbook.match
        if match.component is None and match.category is None and match.fingerprint is None:
            raise ConfigError(
                file, f"{where}.match", "set at least one of component, category, fingerprint"
            )
        if match.category is not None and match.category not in categories:
            known = ", ".join(sorted(categories))
            raise ConfigError(
                file, f"{where}.match.category", f"unknown category {match.category!r} ({known})"
            )
        if not runbook.actions:
            raise ConfigError(file, f"{where}.actions", "a runbook needs at least one action")
        for j, action in enumerate(runbook.actions):
            key = f"{where}.actions[{j}]"
            if action.name in (STOP_NAME, ROLLBACK_NAME):
                raise ConfigError(file, f"{key}.name", f"{action.name!r} is reserved")
            if action.name in seen:
                raise ConfigError(
                    file,
                    f"{key}.name",
                    f"duplicate action name {action.name!r} (also {seen[action.name]})",
                )
            seen[action.name] = key
            kind, options = resolve_action(action, key, file)
            try:
                kind.validate(options, config)
            except OptionError as exc:
                raise ConfigError(file, f"{key}.{exc.key}", exc.problem) from None
