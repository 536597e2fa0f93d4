"""Reports: the markdown worklog, the JSON report, JUnit XML and GitHub annotations.

`write_reports` is the one entry point the loop calls after each iteration, so an
interrupted run still leaves a (partial) worklog. It renders records only (the run and
its `ReportContext`); what comes from the store or git is gathered by the loop:
`run_facts` once per run, `run_trend` after each iteration. Everything is redacted
before it is written: the run record itself first, then each rendered text again.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from rich.console import RenderableType

from greenloop.errors import UserError
from greenloop.records import Outcome, RunResult
from greenloop.redact import Redactor, redactor_for
from greenloop.report.context import PreviousRun, ReportContext
from greenloop.report.github import github_annotations, write_github
from greenloop.report.json_report import SCHEMA, build_json_report
from greenloop.report.junit_out import junit_xml
from greenloop.report.trend import Trend, run_trend, sparkline
from greenloop.report.worklog import git_commit, render_worklog, worklog_name
from greenloop.store import Store, aware

__all__ = [
    "SCHEMA",
    "PreviousRun",
    "ReportContext",
    "ReportPaths",
    "Trend",
    "build_json_report",
    "github_annotations",
    "junit_xml",
    "previous_run",
    "render_run_for_terminal",
    "run_facts",
    "run_trend",
    "sparkline",
    "write_reports",
]


@dataclass(frozen=True)
class ReportPaths:
    """Where the reports of one run went."""

    worklog: Path
    json_report: Path
    junit: Path | None = None
    step_summary: Path | None = None


def write_reports(
    run: RunResult,
    context: ReportContext,
    *,
    out_dir: Path,
    json_path: Path | None = None,
    output_format: str = "text",
    stream: TextIO | None = None,
) -> ReportPaths:
    """Write the worklog, JSON report and JUnit XML (and GitHub annotations when asked).

    The worklog is named after the run's focus and start time, so calling this after
    every iteration rewrites the same file. JSON goes to `json_path` or beside the
    worklog; `junit.xml` always in `out_dir`, with the worklog. Returns where
    everything went.
    """
    redactor = redactor_for(context.config, context.secrets)
    safe = redactor.redact_obj(run)
    out_dir = Path(out_dir)
    worklog = out_dir / worklog_name(run)
    json_file = Path(json_path) if json_path else worklog.with_suffix(".json")
    safe = _with_paths(safe, worklog, json_file)
    config = context.config
    template = (
        config.resolve(config.report.worklog_template)
        if config is not None and config.report.worklog_template
        else None
    )
    markdown = render_worklog(
        safe,
        context,
        previous=context.previous,
        trend=context.trend,
        template=template,
        commit=context.commit,
    )
    _write(worklog, redactor.redact(markdown))
    report = build_json_report(safe, worklog=worklog, mrr_at_risk_usd=context.mrr_at_risk_usd)
    _write(json_file, json.dumps(redactor.redact_obj(report), indent=2) + "\n")
    junit = None
    if config is None or config.report.junit:
        junit = out_dir / "junit.xml"
        _write(junit, redactor.redact(junit_xml(safe)))
    summary = None
    if output_format == "github":
        tests_dir = config.resolve(config.execution.tests_dir) if config is not None else None
        summary = write_github(safe, redactor.redact(markdown), stream or sys.stdout, tests_dir)
    return ReportPaths(worklog=worklog, json_report=json_file, junit=junit, step_summary=summary)


@dataclass(frozen=True)
class RunFacts:
    """What the reports say about a run's surroundings that stays put while it runs."""

    previous: PreviousRun | None
    commit: str | None


def run_facts(store: Store, run_id: str, base_dir: Path | None) -> RunFacts:
    """The previous finished run (from the store) and the test repository's commit (git)."""
    return RunFacts(previous=previous_run(store, run_id), commit=git_commit(base_dir))


def previous_run(store: Store, run_id: str) -> PreviousRun | None:
    """The last finished run before `run_id`, with the tests that failed in its last iteration."""
    row = store.runs.previous_run(run_id)
    if row is None:
        return None
    tests = store.results.run_tests(row.id)
    final = max((t.iteration for t in tests), default=0)
    failing = frozenset(
        t.nodeid for t in tests if t.iteration == final and Outcome(t.outcome).is_failure
    )
    return PreviousRun(
        run_id=row.id,
        verdict=row.verdict,
        started_at=aware(row.started_at) or row.started_at,
        revision=row.revision,
        failing=failing,
        total=sum(1 for t in tests if t.iteration == final),
    )


def render_run_for_terminal(
    store: Store, run_id: str, *, redactor: Redactor | None = None
) -> RenderableType:
    """`greenloop report RUN_ID`: the run's worklog as Rich markdown, redacted again.

    Falls back to a short summary from the store when the worklog file is gone.
    """
    row = store.runs.run(run_id)
    if row is None:
        raise UserError(f"run {run_id}: not in the store (see `greenloop history`)")
    redactor = redactor or Redactor()
    if row.worklog and Path(row.worklog).is_file():
        text = Path(row.worklog).read_text(encoding="utf-8")
    else:
        text = _summary_from_store(store, run_id, row.worklog)
    from rich.markdown import Markdown  # markdown-it: only for the terminal

    return Markdown(redactor.redact(text))


def _summary_from_store(store: Store, run_id: str, missing: str | None) -> str:
    row = store.runs.run(run_id)
    assert row is not None
    lines = [
        f"# Run {run_id}: {row.verdict or row.status}",
        "",
        f"Environment {row.environment}, focus `{row.focus}`, "
        f"revision {row.revision or 'unknown'}.",
        f"Worklog file {missing} is gone; this summary is rebuilt from the store."
        if missing
        else "No worklog was written for this run; this summary is rebuilt from the store.",
        "",
        "| phase | status | time | note |",
        "| --- | --- | --- | --- |",
    ]
    for p in store.results.run_phases(run_id):
        lines.append(f"| {p.name} | {p.status} | {p.duration_s:.1f} s | {p.note} |")
    failing = [t for t in store.results.run_tests(run_id) if Outcome(t.outcome).is_failure]
    if failing:
        lines += ["", "## Failing tests", ""]
        lines += [
            f"- `{t.nodeid}`: {t.outcome} ({t.category or 'untriaged'}) {t.message}"
            for t in failing
        ]
    clusters = store.triage.run_clusters(run_id)
    if clusters:
        lines += ["", "## Problems", ""]
        lines += [f"- **{c.reason}** ({c.category}, {c.count} tests): {c.title}" for c in clusters]
    return "\n".join(lines) + "\n"


def _with_paths(run: RunResult, worklog: Path, json_file: Path) -> RunResult:
    return replace(run, worklog=worklog, json_report=json_file)


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader (or a crash) never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
