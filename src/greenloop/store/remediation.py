"""Actions and deploys: what remediation and deploy write, and the guardrails' reads."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from greenloop.records import Action, DeployResult, utcnow
from greenloop.store.base import Repository
from greenloop.store.schema import ActionRow, DeployRow
from greenloop.store.stored import StoredAction, view


class RemediationRepository(Repository):
    """The `actions` and `deploys` tables."""

    def record_actions(
        self, run_id: str, iteration: int, actions: Iterable[Action], fingerprint: str | None = None
    ) -> None:
        with self.session() as s:
            s.add_all(
                ActionRow(
                    run_id=run_id,
                    iteration=iteration,
                    name=a.name,
                    kind=a.kind,
                    status=a.status.value,
                    detail=a.detail,
                    started_at=a.started_at,
                    duration_s=a.duration_s,
                    fingerprint=fingerprint,
                )
                for a in actions
            )

    def run_actions(self, run_id: str) -> list[StoredAction]:
        """Every action of a run, in the order they were recorded."""
        with self.session() as s:
            query = select(ActionRow).where(ActionRow.run_id == run_id)
            return [view(StoredAction, r) for r in s.scalars(query.order_by(ActionRow.id))]

    def last_action_attempt(self, name: str) -> StoredAction | None:
        """The newest time this action really ran (done or failed), in any run: for cooldown."""
        with self.session() as s:
            query = (
                select(ActionRow)
                .where(ActionRow.name == name, ActionRow.status.in_(("done", "failed")))
                .order_by(ActionRow.started_at.desc(), ActionRow.id.desc())
                .limit(1)
            )
            row = s.scalars(query).first()
            return view(StoredAction, row) if row is not None else None

    def record_deploy(self, run_id: str | None, deploy: DeployResult) -> None:
        with self.session() as s:
            s.add(
                DeployRow(
                    run_id=run_id,
                    revision_before=deploy.revision_before,
                    revision_after=deploy.revision_after,
                    deployed=deploy.deployed,
                    ok=deploy.ok,
                    detail=deploy.detail,
                    at=utcnow(),
                )
            )
