"""Rollback action: route back to the previous revision with `deploy.rollback_command`."""

from __future__ import annotations

from greenloop import carry
from greenloop.config import Config
from greenloop.remediate.base import (
    ActionContext,
    ActionKind,
    ActionOptions,
    ActionOutcome,
    OptionError,
)


class RollbackOptions(ActionOptions):
    pass


def deploy_config(context: ActionContext) -> Config:
    """The config with the action's own timeout_s as the deploy timeout, when it set one."""
    config = context.config
    if not context.timeout_explicit:
        return config
    return config.model_copy(
        update={"deploy": config.deploy.model_copy(update={"timeout_s": context.timeout_s})}
    )


class RollbackAction(ActionKind[RollbackOptions]):
    name = "rollback"
    Options = RollbackOptions

    def validate(self, options: RollbackOptions, config: Config) -> None:
        if not config.deploy.rollback_command:
            raise OptionError("kind", "a rollback action needs deploy.rollback_command")

    def describe(self, options: RollbackOptions, context: ActionContext) -> str:
        return f"rollback `{' '.join(context.config.deploy.rollback_command)}`"

    def run(self, options: RollbackOptions, context: ActionContext) -> ActionOutcome:
        result = carry.rollback(deploy_config(context), context.store, context.run_id)
        return ActionOutcome(result.ok, result.detail)
