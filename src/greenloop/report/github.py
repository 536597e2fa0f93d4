"""`--format github`: workflow-command annotations on stdout and a job summary.

Annotations (`::error file=...,line=...::message`) put each failure on the
line of the test in the pull request; the job summary (markdown appended to
$GITHUB_STEP_SUMMARY) is what people see on the run's page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from greenloop.records import Category, Outcome, RunResult


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, **props: str | int | None) -> str:
    """One workflow command line, escaped as the runner expects."""
    given = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items() if v is not None)
    return f"::{level} {given}::{_escape_data(message)}" if given else f"::{level}::{message}"


def github_annotations(run: RunResult, tests_dir: Path | None = None) -> list[str]:
    """Errors for real failures, warnings for flaky tests and tests that did not really run.

    GitHub places an annotation by a path relative to the checkout (the working
    folder); test files are relative to `tests_dir`, so they are re-rooted here.
    """
    last = run.last
    if last is None:
        return [annotation("error", f"greenloop run {run.run_id}: nothing ran")]
    categories = {c.nodeid: c.category for c in last.classifications}
    findings = {f.nodeid: f for f in last.authenticity}
    lines = []
    seen: set[str] = set()
    for test in last.tests:
        if test.nodeid in seen:
            continue
        seen.add(test.nodeid)
        where = {
            "file": _path(test.file or test.nodeid.split("::")[0], tests_dir),
            "line": test.line,
        }
        name = test.nodeid.split("::")[-1]
        if test.nodeid in findings:
            f = findings[test.nodeid]
            lines.append(
                annotation(
                    "error",
                    f"not really run ({f.check}): {f.evidence}",
                    **where,
                    title=f"{name}: not real",
                )
            )
        elif test.passed_on_rerun or categories.get(test.nodeid) is Category.FLAKY:
            lines.append(
                annotation(
                    "warning",
                    f"flaky: failed, then passed on re-run. {test.message}",
                    **where,
                    title=f"{name}: flaky",
                )
            )
        elif test.outcome.is_failure:
            category = categories.get(test.nodeid)
            label = category.value if category else test.outcome.value
            lines.append(
                annotation(
                    "error", test.message or test.outcome.value, **where, title=f"{name}: {label}"
                )
            )
    for finding in last.authenticity:
        if finding.nodeid not in seen:  # collection errors, or nothing collected at all
            seen.add(finding.nodeid)
            lines.append(
                annotation(
                    "error",
                    f"not really run ({finding.check}): {finding.evidence}",
                    title=f"{finding.nodeid or 'run'}: not real",
                )
            )
    for finding in last.authenticity_warnings:
        lines.append(
            annotation(
                "warning",
                f"weak authenticity evidence ({finding.check}): {finding.evidence}",
                title=f"{finding.nodeid or 'run'}: worth a look",
            )
        )
    for phase in last.phases:
        if phase.blocked_by:
            lines.append(
                annotation(
                    "error",
                    f"phase {phase.name} blocked: {phase.note or phase.blocked_by}",
                    title=f"blocked by {phase.blocked_by}",
                )
            )
    blocked = sum(1 for t in last.tests if t.outcome is Outcome.BLOCKED)
    if blocked and not any(p.blocked_by for p in last.phases):
        lines.append(annotation("warning", f"{blocked} tests were not run (blocked)"))
    return lines


def _path(file: str, tests_dir: Path | None) -> str:
    """The test file relative to the working folder, when it is found under `tests_dir`."""
    if tests_dir is None or Path(file).is_absolute() or not (tests_dir / file).is_file():
        return file
    return os.path.relpath(tests_dir / file)


def write_github(
    run: RunResult, summary_markdown: str, stream: TextIO, tests_dir: Path | None = None
) -> Path | None:
    """Print the annotations; append the summary to $GITHUB_STEP_SUMMARY when it is set."""
    for line in github_annotations(run, tests_dir):
        stream.write(line + "\n")
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(summary_markdown.rstrip("\n") + "\n\n")
    return path
