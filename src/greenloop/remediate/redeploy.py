"""Redeploy action: deploy again with `deploy.command`, as `greenloop run --deploy` would."""

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
from greenloop.remediate.rollback import deploy_config


class RedeployOptions(ActionOptions):
    pass


class RedeployAction(ActionKind[RedeployOptions]):
    name = "redeploy"
    Options = RedeployOptions

    def validate(self, options: RedeployOptions, config: Config) -> None:
        if not config.deploy.command:
            raise OptionError("kind", "a redeploy action needs deploy.command")

    def describe(self, options: RedeployOptions, context: ActionContext) -> str:
        return f"redeploy `{' '.join(context.config.deploy.command)}`"

    def run(self, options: RedeployOptions, context: ActionContext) -> ActionOutcome:
        result = carry.ensure_deployed(
            deploy_config(context), context.store, force=True, run_id=context.run_id
        )
        return ActionOutcome(result.ok, result.detail)
