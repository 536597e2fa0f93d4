"""Probe results: what the gate writes and what its flapping rules read back."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from greenloop.records import ProbeResult
from greenloop.store.base import Repository
from greenloop.store.schema import ProbeResultRow
from greenloop.store.stored import StoredProbe, view


class ProbeRepository(Repository):
    """The `probe_results` table."""

    def record_probes(
        self, probes: Iterable[ProbeResult], run_id: str | None = None, iteration: int | None = None
    ) -> None:
        with self.session() as s:
            s.add_all(
                ProbeResultRow(
                    run_id=run_id,
                    iteration=iteration,
                    component=p.component,
                    name=p.name,
                    kind=p.kind,
                    target=p.target,
                    ok=p.ok,
                    latency_ms=p.latency_ms,
                    detail=p.detail,
                    checked_at=p.checked_at,
                )
                for p in probes
            )

    def recent_probe_results(
        self, components: Iterable[str] | None = None, limit: int = 500
    ) -> list[StoredProbe]:
        """The newest probe results, newest first: the history the gate's flapping rules read."""
        with self.session() as s:
            query = select(ProbeResultRow)
            if components is not None:
                query = query.where(ProbeResultRow.component.in_(list(components)))
            query = query.order_by(ProbeResultRow.checked_at.desc(), ProbeResultRow.id.desc())
            return [view(StoredProbe, r) for r in s.scalars(query.limit(limit))]
