"""The markdown worklog: the record of a run a team commits and reads in review.

The decisions (the verdict sentence, availability, what changed since the last
run, the next actions) are pure functions over records; Jinja2 only lays them
out. Users can replace the template (`report.worklog_template`); the model it
receives is documented in docs/reports.md.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from greenloop.errors import ConfigError, UserError
from greenloop.process import run_argv
from greenloop.records import (
    Category,
    Cluster,
    IterationResult,
    Outcome,
    PhaseStatus,
    RunResult,
    TestResult,
    Verdict,
)
from greenloop.report.context import PreviousRun, ReportContext
from greenloop.report.json_report import distinct_issues, mrr_at_risk, real_evidence
from greenloop.report.trend import Trend

PREFIX = "E2E-DEPLOY-REMEDIATE-WORKLOG"
TEMPLATES = Path(__file__).parent / "templates"
EXCERPT_LINES = 15


# What to do about each kind of "did not really run" finding (verify.LADDER's names).
# Only mocks, silence and impossible speed are fake tests; the rest never ran at all.
_FIX_FAKE = "Fix the fake tests listed"
_FIX = {
    "collection_error": "Make these test files importable (the phase table shows each error)",
    "nothing_collected": "Check the selection and the tests folder: no test was collected in",
    "skipped_env": "Give these tests the environment they skipped for, or drop their skip",
}


def worklog_name(run: RunResult) -> str:
    """`E2E-DEPLOY-REMEDIATE-WORKLOG-{focus}-{YYYYMMDD-HHMMSS}-{run}.md`, stable for the run.

    `{run}` is the random tail of the run id, so two runs started in the same second never
    write the same files.
    """
    focus = re.sub(r"[^A-Za-z0-9_.-]+", "-", run.focus).strip("-") or "all"
    tail = re.sub(r"[^A-Za-z0-9]+", "", run.run_id.rsplit("-", 1)[-1]) or "run"
    return f"{PREFIX}-{focus}-{run.started_at:%Y%m%d-%H%M%S}-{tail}.md"


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Availability:
    """Share of probe checks that passed, overall and per component."""

    ok: int
    total: int
    components: tuple[tuple[str, int, int], ...]  # (component, ok, total)

    @property
    def fraction(self) -> float | None:
        return self.ok / self.total if self.total else None

    def text(self) -> str:
        if not self.total:
            return "not measured (no probes ran)"
        parts = ", ".join(f"{name} {ok}/{total}" for name, ok, total in self.components)
        return f"{self.ok / self.total:.0%} of {self.total} probe checks passed ({parts})"


def availability(run: RunResult) -> Availability:
    """From every probe the gate ran in every iteration."""
    ok: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for iteration in run.iterations:
        for probe in iteration.gate.probes if iteration.gate else ():
            total[probe.component] += 1
            ok[probe.component] += int(probe.ok)
    components = tuple((name, ok[name], total[name]) for name in sorted(total))
    return Availability(sum(ok.values()), sum(total.values()), components)


def _executed(tests: Sequence[TestResult]) -> list[TestResult]:
    return [t for t in tests if t.outcome not in (Outcome.SKIPPED, Outcome.BLOCKED)]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def money(value: float) -> str:
    return f"${value:,.0f}"


def verdict_sentence(run: RunResult, mrr: float) -> str:
    """The verdict in the one line a person would write at the top of the worklog."""
    last = run.last
    env = run.environment
    if last is None:
        return f"Nothing ran against {env}: the run stopped before its first iteration."
    tests = last.tests
    if run.verdict is Verdict.GREEN:
        rev = f" at revision {run.revision}" if run.revision else ""
        not_run = [t for t in tests if t.outcome is Outcome.SKIPPED]
        xfailed = sum(1 for t in tests if t.xfailed)
        expected = f" ({xfailed} of them failed as their xfail marker expected)" if xfailed else ""
        if not not_run:
            selected = _plural(len(tests), "selected test")
            return f"All {selected} ran for real against {env}{rev} and passed{expected}."
        ran = _plural(len(tests) - len(not_run), "test")
        return (
            f"The {ran} that ran did so for real against {env}{rev} and passed{expected}; "
            f"{_plural(len(not_run), 'selected test')} skipped on the suite's own conditions"
            " (no skip said the environment was missing)."
        )
    if run.verdict is Verdict.NOT_REAL:
        checks = Counter(f.check for f in last.authenticity)
        how = ", ".join(f"{n} {check}" for check, n in checks.most_common())
        return (
            f"{_plural(len({f.nodeid for f in last.authenticity}), 'test')} "
            "did not really run "
            f"({how}); these results prove nothing about {env}."
        )
    if run.verdict is Verdict.BLOCKED:
        if last.deploy is not None and not last.deploy.ok:
            detail = last.deploy.detail
            return f"The deployment to {env} failed ({detail}); nothing was tested."
        blocked = [t for t in tests if t.outcome is Outcome.BLOCKED]
        phases = [p.name for p in last.phases if p.status is PhaseStatus.BLOCKED]
        down = (last.gate.deepest_failure if last.gate else None) or ", ".join(
            last.gate.unhealthy() if last.gate else ()
        )
        detail = _probe_detail(last, down)
        return (
            f"{down or 'the environment'} is unhealthy{detail}, so "
            f"{_plural(len(blocked), 'test')} in {', '.join(phases) or 'the selected phases'} "
            "were not run."
        )
    failed = [t for t in tests if t.outcome.is_failure]
    kinds = Counter(c.category.value for c in last.clusters)
    problems = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    risk = f"; {money(mrr)} MRR at risk" if mrr else ""
    return (
        f"{len(failed)} of {_plural(len(_executed(tests)), 'test')} failed for real, "
        f"from {_plural(len(last.clusters), 'distinct problem')}"
        f"{f' ({problems})' if problems else ''}{risk}."
    )


def _probe_detail(iteration: IterationResult, component: str) -> str:
    """Why the component is down, in one short clause: the blocked cluster's root cause
    when triage found one, else the first failing probe's detail."""
    for cluster in iteration.clusters:
        if cluster.category.value == "blocked" and cluster.root_cause.component == component:
            return f" ({_short(cluster.root_cause.summary)})"
    if iteration.gate is None or not component:
        return ""
    failing = [p for p in iteration.gate.probes if p.component == component and not p.ok]
    return f" ({failing[0].name}: {_short(failing[0].detail)})" if failing else ""


def _short(text: str, limit: int = 160) -> str:
    """The first clause of a detail, for a one-line summary; the tables keep it whole."""
    first = text.split("; body:", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def changes_since(previous: PreviousRun | None, run: RunResult) -> list[str]:
    """What changed since the last finished run, as short lines."""
    if previous is None:
        return ["No earlier finished run in the store to compare with."]
    last = run.last
    failing = {t.nodeid for t in last.tests if t.outcome.is_failure} if last else set()
    # Only a test that ran and passed is "no longer failing"; blocked or skipped did not run.
    passed = {t.nodeid for t in last.tests if t.outcome is Outcome.PASSED} if last else set()
    lines = [
        f"Previous run `{previous.run_id}` ({previous.started_at:%Y-%m-%d %H:%M} UTC) "
        f"was {previous.verdict or 'unfinished'}; this one is {run.verdict.value}."
    ]
    if previous.revision != run.revision:
        lines.append(
            f"Revision changed: {previous.revision or 'unknown'} → {run.revision or 'unknown'}."
        )
    new = sorted(failing - previous.failing)
    fixed = sorted(previous.failing & passed)
    not_run = sorted(previous.failing - failing - passed)
    if new:
        lines.append(f"Newly failing ({len(new)}): " + ", ".join(f"`{n}`" for n in new[:10]))
    if fixed:
        lines.append(
            f"No longer failing ({len(fixed)}): " + ", ".join(f"`{n}`" for n in fixed[:10])
        )
    if not_run:
        lines.append(
            f"Not run this time, so still unknown ({len(not_run)}): "
            + ", ".join(f"`{n}`" for n in not_run[:10])
        )
    if not new and not fixed and failing:
        lines.append("The same tests are failing as last time.")
    return lines


def next_actions(run: RunResult) -> list[str]:
    """A small decision tree from the verdict and the clusters to what a person should do next."""
    rerun = f"`{run.command_line}`" if run.command_line else "greenloop run"
    last = run.last
    actions: list[str] = []
    if run.interrupted:
        actions.append(f"The run was interrupted; rerun {rerun} to finish it.")
    if last is None:
        return [*actions, f"Nothing ran: check the configuration, then rerun {rerun}."]
    if run.verdict is Verdict.GREEN:
        rev = f"revision {run.revision}" if run.revision else "this revision"
        return [
            *actions,
            f"Nothing to fix: {rev} is green on {run.environment}; it can be promoted.",
        ]
    if run.verdict is Verdict.NOT_REAL:
        by_check: dict[str, list[str]] = {}
        for f in last.authenticity:
            by_check.setdefault(f.check, []).append(f.nodeid)
        for check, nodeids in by_check.items():
            names = ", ".join(f"`{n}`" for n in nodeids[:5])
            more = f" and {len(nodeids) - 5} more" if len(nodeids) > 5 else ""
            actions.append(f"{_FIX.get(check, _FIX_FAKE)} ({check}): {names}{more}.")
        return [*actions, f"Then rerun {rerun}; a green verdict needs tests that really ran."]
    if run.verdict is Verdict.BLOCKED:
        if last.deploy is not None and not last.deploy.ok:
            return [*actions, f"Fix the deployment ({last.deploy.detail}), then rerun {rerun}."]
        cause = next((c.root_cause for c in last.clusters if c.root_cause.mode is not None), None)
        if cause is not None and cause.category is Category.CONFIGURATION:
            # Restarting a database that rejects the password changes nothing.
            said = cause.summary.rstrip(".")
            return [*actions, f"Fix the configuration of {cause.component}: {said}; "
                    f"then rerun {rerun}."]  # fmt: skip
        down = (last.gate.deepest_failure if last.gate else None) or ", ".join(
            last.gate.unhealthy() if last.gate else ()
        )
        how = f" ({cause.mode.value})" if cause is not None and cause.mode is not None else ""
        return [*actions, f"Restore {down or 'the unhealthy components'}{how}, then rerun {rerun}."]
    keys = {i.fingerprint: i.key for i in distinct_issues(run.iterations) if i.key}
    for cluster in last.clusters:
        actions.append(_cluster_action(cluster, run, keys.get(cluster.fingerprint)))
    return [*actions, f"Then rerun {rerun}."]


def _cluster_action(cluster: Cluster, run: RunResult, key: str | None) -> str:
    ref = f" (issue {key})" if key else ""
    tests = ", ".join(f"`{t.split('::')[-1]}`" for t in cluster.tests[:3])
    component = cluster.root_cause.component or "the failing component"
    match cluster.category:
        case Category.PRODUCT:
            rev = f"revision {run.revision}" if run.revision else "the deployed revision"
            return f"Fix or roll back {rev}: {cluster.reason} breaks {tests}{ref}."
        case Category.INFRASTRUCTURE | Category.BLOCKED:
            return f"Restore {component}: {cluster.reason} fails {tests}{ref}."
        case Category.TEST:
            return (
                f"Fix the test code of {tests}: {cluster.root_cause.summary or cluster.title}{ref}."
            )
        case Category.CONFIGURATION:
            return f"Fix the configuration: {cluster.root_cause.summary or cluster.title}{ref}."
        case Category.FLAKY:
            return f"Stabilise or quarantine the flaky tests {tests}{ref}."
        case Category.SKIPPED_ENV:
            return f"Make {component} reachable for {tests}: they skip instead of testing{ref}."
        case _:
            return f"Investigate {cluster.reason} in {tests}: no rule explained it{ref}."


def excerpt(test: TestResult, lines: int = EXCERPT_LINES) -> str:
    """The failure's own words: the message and the tail of the traceback."""
    body = test.longrepr.strip().splitlines()
    tail = body[-lines:]
    text = "\n".join(tail)
    if test.message and test.message not in text:
        text = f"{test.message}\n{text}" if text else test.message
    return text.strip()


def git_commit(base_dir: Path | None) -> str | None:
    """The test repository's commit, when the config lives in a git checkout."""
    if base_dir is None:
        return None
    done = run_argv(
        ["git", "-C", str(base_dir), "rev-parse", "--short", "HEAD"], timeout_s=5, stderr_apart=True
    )
    return done.output.strip() or None if done.ok else None


# --------------------------------------------------------------------------- rendering


def fence(text: str, lang: str = "") -> str:
    """A fenced block that survives backticks inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def cell(value: Any) -> str:
    """A markdown table cell: one line, pipes escaped."""
    text = str(value if value is not None else "")
    return " ".join(text.split()).replace("|", "\\|")


@functools.cache
def _builtin_template() -> jinja2.Template:
    """The built-in template, compiled once per process (a run renders the worklog after
    each iteration and at the end; compiling it took ~50 ms each time)."""
    return _environment().get_template("worklog.md.j2")


@functools.cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja2's own cache of compiled templates, in its per-user temporary folder: a run
    loads the worklog template compiled (~1 ms) instead of compiling it (~35 ms of CPU).
    Entries are checked against the template's source. None when that folder is unsafe
    (another user's) or cannot be made: templates are then compiled as before."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (RuntimeError, OSError):
        return None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fence=fence, cell=cell, money=money)
    return env


def worklog_model(
    run: RunResult,
    context: ReportContext,
    *,
    previous: PreviousRun | None,
    trend: Trend | None,
    commit: str | None = None,
) -> dict[str, Any]:
    """Everything the template may use (documented in docs/reports.md)."""
    last = run.last
    mrr = (
        context.mrr_at_risk_usd
        if context.mrr_at_risk_usd is not None
        else mrr_at_risk(last.clusters if last else ())
    )
    issues = distinct_issues(run.iterations)
    findings = {f.nodeid: f for f in last.authenticity} if last else {}
    tests = last.tests if last else ()
    return {
        "run": run,
        "last": last,
        "iterations": run.iterations,
        "verdict": run.verdict.value,
        "verdict_line": verdict_sentence(run, mrr),
        "availability": availability(run),
        "mrr": mrr,
        "changes": changes_since(previous, run),
        "previous": previous,
        "selections": {
            phase.name: context.selection_reason(phase.name)
            for it in run.iterations
            for phase in it.phases
        },
        "issues": issues,
        "issue_counts": Counter(i.action.value for i in issues),
        "next_actions": next_actions(run),
        "trend": trend.text() if trend else "",
        "commit": commit,
        "excerpt": excerpt,
        "real_evidence": lambda t: real_evidence(t, findings.get(t.nodeid)),
        "real_count": sum(1 for t in _executed(tests) if t.nodeid not in findings),
        "executed_count": len(_executed(tests)),
        "log_templates": [_log_template(t) for t in context.log_templates],
        "index": {e.path: e for e in context.index},
    }


def _log_template(template: Any) -> str:
    text = getattr(template, "template", None) or str(template)
    count = getattr(template, "count", None)
    return f"{count} x {text}" if count else text


def render_worklog(
    run: RunResult,
    context: ReportContext,
    *,
    previous: PreviousRun | None = None,
    trend: Trend | None = None,
    template: Path | None = None,
    commit: str | None = None,
) -> str:
    """Render the worklog markdown; a broken user template is a UserError naming the file."""
    model = worklog_model(run, context, previous=previous, trend=trend, commit=commit)
    tpl = load_template(template)
    try:
        return tpl.render(**model)
    except jinja2.TemplateError as exc:
        where = f"{template}:{getattr(exc, 'lineno', '?')}" if template else "worklog.md.j2"
        raise UserError(f"report.worklog_template: {where}: {exc}") from None


def load_template(template: Path | None) -> jinja2.Template:
    """The built-in worklog template, or the user's; a missing or broken file is a UserError."""
    if template is None:
        return _builtin_template()
    env = _environment()
    try:
        if not template.is_file():
            raise UserError(f"report.worklog_template: {template} not found", hint="check the path")
        env.loader = jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(template.parent)), env.loader]  # type: ignore[list-item]
        )
        return env.get_template(template.name)
    except jinja2.TemplateNotFound:
        raise UserError(
            f"report.worklog_template: {template} not found", hint="check the path"
        ) from None
    except (jinja2.TemplateError, UnicodeDecodeError, RecursionError) as exc:
        where = f"{template}:{getattr(exc, 'lineno', '?')}" if template else "worklog.md.j2"
        raise UserError(f"report.worklog_template: {where}: {exc}") from None


def validate_template(config: Any) -> None:
    """Compile the configured worklog template at load time (renders nothing)."""
    if config.report.worklog_template:
        path = config.resolve(config.report.worklog_template)
        try:
            load_template(path)
        except UserError as exc:
            detail = str(exc).removeprefix("report.worklog_template: ")
            raise ConfigError(str(config.source), "report.worklog_template", detail) from None
