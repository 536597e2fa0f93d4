"""Runs: their lifecycle (start, progress, finish, crash, resume) and the reads of reports."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sqlalchemy import func, select, update

from greenloop.records import IterationResult, RunResult, utcnow
from greenloop.store.base import Repository
from greenloop.store.schema import IterationRow, ProbeResultRow, RunRow, TestResultRow
from greenloop.store.stored import ResumeProgress, RunSummary, StoredRun, aware, view

_EXECUTED = ("passed", "failed", "error", "timeout", "crashed")


class RunRepository(Repository):
    """The `runs` and `iterations` tables."""

    def start_run(
        self, run_id: str, *, environment: str, focus: str, command_line: str, config_path: str
    ) -> None:
        with self.session() as s:
            s.add(
                RunRow(
                    id=run_id,
                    started_at=utcnow(),
                    status="running",
                    environment=environment,
                    focus=focus,
                    command_line=command_line,
                    config_path=config_path,
                    pid=os.getpid(),
                    host=socket.gethostname(),
                )
            )

    def finish_run(self, run: RunResult, *, status: str | None = None) -> None:
        """Close a run's row; `status` overrides finished/interrupted (e.g. "crashed")."""
        with self.session() as s:
            s.execute(
                update(RunRow)
                .where(RunRow.id == run.run_id)
                .values(
                    finished_at=run.finished_at,
                    status=status or ("interrupted" if run.interrupted else "finished"),
                    verdict=run.verdict.value,
                    exit_code=int(run.exit_code),
                    revision=run.revision,
                    worklog=str(run.worklog) if run.worklog else None,
                    json_report=str(run.json_report) if run.json_report else None,
                )
            )

    def save_progress(self, run_id: str, progress: ResumeProgress) -> None:
        """What --resume needs: the last completed phase and iteration."""
        with self.session() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(progress=progress.to_json()))

    def record_iteration(self, run_id: str, result: IterationResult) -> None:
        with self.session() as s:
            s.add(
                IterationRow(
                    run_id=run_id,
                    number=result.number,
                    verdict=result.verdict.value,
                    started_at=result.started_at,
                    duration_s=result.duration_s,
                    interrupted=result.interrupted,
                )
            )

    def mark_dead_runs(self) -> list[str]:
        """Runs left 'running' by a process that no longer exists on this host: crashed."""
        host = socket.gethostname()
        dead: list[str] = []
        with self.session() as s:
            for row in s.scalars(select(RunRow).where(RunRow.status == "running")):
                if row.host == host and row.pid and not _pid_alive(row.pid):
                    row.status = "crashed"
                    row.finished_at = utcnow()
                    dead.append(row.id)
        return dead

    def latest_resumable(self, config_path: str) -> StoredRun | None:
        """The newest ended run of this config, if it was interrupted or killed.

        Only the newest: once a later run of the config finished, an older crash is
        history, not something to continue. Runs still in progress are not candidates.
        """
        with self.session() as s:
            query = (
                select(RunRow)
                .where(RunRow.config_path == config_path, RunRow.status != "running")
                .order_by(RunRow.started_at.desc(), RunRow.id.desc())
                .limit(1)
            )
            newest = s.scalars(query).first()
            if newest is None or newest.status not in ("interrupted", "crashed"):
                return None
            return view(StoredRun, newest)

    def mark_resumed(self, run_id: str, *, by: str) -> None:
        """An interrupted run another run has taken over: never resumed twice."""
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                row.status = "resumed"
                progress = dict(row.progress or {})
                progress["resumed_by"] = by
                row.progress = progress

    def run(self, run_id: str) -> StoredRun | None:
        with self.session() as s:
            row = s.get(RunRow, run_id)
            return view(StoredRun, row) if row is not None else None

    def latest_run(self, status: str | None = None) -> StoredRun | None:
        with self.session() as s:
            query = select(RunRow).order_by(RunRow.started_at.desc()).limit(1)
            if status:
                query = query.where(RunRow.status == status)
            row = s.scalars(query).first()
            return view(StoredRun, row) if row is not None else None

    def recent_runs(self, limit: int = 20) -> list[StoredRun]:
        """The newest `limit` runs, newest first."""
        with self.session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit))
            return [view(StoredRun, r) for r in rows]

    def previous_run(self, run_id: str) -> StoredRun | None:
        """The newest finished run that started before `run_id` (or the newest, if unknown)."""
        with self.session() as s:
            query = select(RunRow).where(RunRow.id != run_id, RunRow.verdict.is_not(None))
            anchor = s.get(RunRow, run_id)
            if anchor is not None:
                query = query.where(RunRow.started_at < anchor.started_at)
            row = s.scalars(query.order_by(RunRow.started_at.desc()).limit(1)).first()
            return view(StoredRun, row) if row is not None else None

    def run_summaries(self, limit: int = 20, until: str | None = None) -> list[RunSummary]:
        """Headline numbers of the `limit` runs up to `until` (all when None), oldest first."""
        with self.session() as s:
            # The three columns read, not whole rows: a row's progress holds every test of
            # every completed phase (0.1 s of loading for 20 runs of a 500-test suite).
            query = select(RunRow.id, RunRow.started_at, RunRow.verdict).order_by(
                RunRow.started_at.desc()
            )
            if until is not None:
                anchor = s.scalar(select(RunRow.started_at).where(RunRow.id == until))
                if anchor is not None:
                    query = query.where(RunRow.started_at <= anchor)
            runs = list(s.execute(query.limit(limit)))
            ids = [r.id for r in runs]
            tests = {
                (run_id, outcome): n
                for run_id, outcome, n in s.execute(
                    select(TestResultRow.run_id, TestResultRow.outcome, func.count())
                    .where(TestResultRow.run_id.in_(ids))
                    .group_by(TestResultRow.run_id, TestResultRow.outcome)
                )
            }
            probes = {
                (run_id, ok): n
                for run_id, ok, n in s.execute(
                    select(ProbeResultRow.run_id, ProbeResultRow.ok, func.count())
                    .where(ProbeResultRow.run_id.in_(ids))
                    .group_by(ProbeResultRow.run_id, ProbeResultRow.ok)
                )
            }
        return [
            RunSummary(
                run_id=r.id,
                started_at=aware(r.started_at) or r.started_at,
                verdict=r.verdict,
                passed=tests.get((r.id, "passed"), 0),
                executed=sum(tests.get((r.id, o), 0) for o in _EXECUTED),
                probes_ok=probes.get((r.id, True), 0),
                probes_total=probes.get((r.id, True), 0) + probes.get((r.id, False), 0),
            )
            for r in reversed(runs)
        ]


def _pid_alive(pid: int) -> bool:
    """Is the process there and not a zombie (killed, waiting for its parent to reap it)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
