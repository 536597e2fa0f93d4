"""What the CLI prints at the end of a verb: short Rich tables over records and store rows.

Every name, test id, detail and title comes from config, tests or servers: it is escaped
(`e`) or wrapped in `Text`, never read as Rich markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape as e
from rich.table import Table
from rich.text import Text

from greenloop.records import Category, Outcome, RunResult, Verdict
from greenloop.store.stored import StoredRun
from greenloop.trackers.listing import IssueSummary
from greenloop.triage import TriageResult
from greenloop.triage.flaky import FlakyTest

# The phase table's count columns, in order; those in _WHEN_ANY only when a phase has one.
PHASE_COUNTS = ("passed", "failed", "error", "timeout", "crashed", "skipped", "blocked", "flaky")
_WHEN_ANY = frozenset({"timeout", "crashed"})

VERDICT_STYLE = {
    Verdict.GREEN: "bold green",
    Verdict.FAILING: "bold red",
    Verdict.BLOCKED: "bold yellow",
    Verdict.NOT_REAL: "bold magenta",
}

VERDICT_WORDS = {
    Verdict.GREEN: "every selected test really ran and passed",
    Verdict.FAILING: "tests ran for real and some failed",
    Verdict.BLOCKED: "the environment was not healthy enough to test",
    Verdict.NOT_REAL: "tests did not really run",
}


def print_summary(console: Console, run: RunResult) -> None:
    """Verdict, per-phase counts, clusters and where the files are."""
    style = VERDICT_STYLE[run.verdict]
    console.print()
    stopped = " [bold]INTERRUPTED[/] (partial)" if run.interrupted else ""
    console.rule(f"[{style}]{run.verdict.value.upper()}[/]{stopped} run {e(run.run_id)}")
    words = VERDICT_WORDS[run.verdict]
    skipped = sum(1 for t in run.last.tests if t.outcome is Outcome.SKIPPED) if run.last else 0
    if run.verdict is Verdict.GREEN and skipped:
        # "every selected test really ran" only when it is true
        words = (
            f"every test that ran really ran and passed; {skipped} selected skipped"
            " on the suite's own conditions"
        )
    console.print(
        f"[{style}]{run.verdict.value}[/]: {words} "
        f"(exit {int(run.exit_code)}, {len(run.iterations)} iteration(s), "
        f"{run.duration_s:.1f}s)"
    )
    last = run.last
    if last is None:
        return
    if last.gate and not last.gate.healthy:
        console.print(
            f"gate: deepest failing component [bold]{e(str(last.gate.deepest_failure))}[/]"
        )
    phases = Table(title="phases", title_justify="left")
    # Timeouts and crashes get a column when a phase has any (PhaseResult.counts decides).
    shown = [
        k for k in PHASE_COUNTS if k not in _WHEN_ANY or any(p.counts()[k] for p in last.phases)
    ]
    for col in ("phase", "status", *shown, "s"):
        phases.add_column(col)
    for p in last.phases:
        counts = p.counts()
        phases.add_row(
            Text(p.name), p.status.value, *(str(counts[k]) for k in shown), f"{p.duration_s:.1f}"
        )
    console.print(phases)
    if last.clusters:
        clusters = Table(title="problems (one per cluster)", title_justify="left")
        for col in ("cluster", "category", "tests", "root cause", "at risk"):
            clusters.add_column(col)
        for c in last.clusters:
            clusters.add_row(
                Text(c.id),
                c.category.value,
                str(c.count),
                Text(c.root_cause.summary),
                f"${c.impact_usd:,.0f}",
            )
        console.print(clusters)
    for finding in last.authenticity:
        console.print(
            f"[magenta]not real[/] {e(finding.nodeid)}: {e(finding.check)}: {e(finding.evidence)}"
        )
    for finding in last.authenticity_warnings:
        console.print(
            f"[yellow]warning[/] {e(finding.nodeid)}: {e(finding.check)}: {e(finding.evidence)}"
        )
    for action in last.actions:
        console.print(
            f"action {e(action.name)} ({e(action.kind)}): {action.status.value}: {e(action.detail)}"
        )
    for issue in last.issues:
        console.print(f"issue {e(str(issue.key))} {issue.action.value}: {e(issue.title)}")
    if run.worklog:
        console.print(f"worklog: {e(str(run.worklog))}")
    if run.json_report:
        console.print(f"json report: {e(str(run.json_report))}")


def render_history(runs: Sequence[StoredRun]) -> Table:
    table = Table(title="recent runs", title_justify="left")
    for col in ("run", "started", "status", "verdict", "exit", "revision", "focus"):
        table.add_column(col, no_wrap=col in ("run", "started"))
    for r in runs:
        table.add_row(
            r.id,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.status,
            r.verdict or "-",
            "-" if r.exit_code is None else str(r.exit_code),
            Text(r.revision or "-"),
            Text(r.focus),
        )
    return table


def render_issues(issues: Sequence[IssueSummary]) -> Table:
    """`greenloop issues list`: open issues first, each with its occurrence count."""
    table = Table(title="issues", title_justify="left")
    for col in ("key", "state", "category", "seen", "green", "queued", "title"):
        table.add_column(col)
    for i in sorted(issues, key=lambda i: (i.state != "open", i.key or "")):
        state = i.state + (" (needs a person)" if i.needs_person else "")
        table.add_row(
            Text(i.key or "(queued)"),
            state,
            i.category,
            str(i.occurrences),
            str(i.green_streak),
            str(i.pending_ops),
            Text(i.title),
        )
    return table


def triage_headline(result: TriageResult) -> str:
    """`154 tests read: 29 passed, 119 failed (119 infrastructure), 6 skipped`: the outcomes
    add up to the tests read; the failures (failed, error, timeout, crashed) are split by
    category; skips and blocks are said apart, since they are no failures (environment
    skips, which form clusters, are named in brackets)."""
    outcomes = Counter(t.outcome for t in result.tests)
    failures = sum(n for outcome, n in outcomes.items() if outcome.is_failure)
    failing = {t.nodeid for t in result.tests if t.outcome.is_failure}
    categories = Counter(c.category.value for c in result.classifications if c.nodeid in failing)
    parts = [f"{outcomes[Outcome.PASSED]} passed", f"{failures} failed"]
    if categories:
        parts[-1] += f" ({', '.join(f'{n} {cat}' for cat, n in categories.most_common())})"
    if outcomes[Outcome.SKIPPED]:
        env = sum(1 for c in result.classifications if c.category is Category.SKIPPED_ENV)
        parts.append(
            f"{outcomes[Outcome.SKIPPED]} skipped" + (f" ({env} skipped_env)" if env else "")
        )
    if outcomes[Outcome.BLOCKED]:
        parts.append(f"{outcomes[Outcome.BLOCKED]} blocked")
    return f"{len(result.tests)} tests read: " + ", ".join(parts)


def print_triage(console: Console, result: TriageResult) -> None:
    """`greenloop triage`: the outcomes counted (`triage_headline`), then one row per cluster."""
    console.print(Text(triage_headline(result)))
    if not result.clusters:
        return
    table = Table(title="problems (one per cluster)", title_justify="left")
    for col in ("cluster", "category", "tests", "reason", "root cause", "at risk"):
        table.add_column(col)
    for c in result.clusters:
        table.add_row(
            Text(c.id),
            c.category.value,
            str(c.count),
            Text(c.reason),
            Text(c.root_cause.summary),
            f"${c.impact_usd:,.0f}",
        )
    console.print(table)
    console.print(f"money at risk: ${result.mrr_at_risk_usd:,.0f} MRR")


def render_flaky(tests: Sequence[FlakyTest]) -> Table | str:
    """`greenloop flaky`: tests whose outcome flips, worst first."""
    shown = [t for t in tests if t.verdict != "stable"]
    if not shown:
        return "no flaky or failing tests in the recent history"
    table = Table(title="flakiness (recent history)", title_justify="left")
    for col in ("test", "verdict", "score", "runs", "failures", "flips", "retry-pass", "env"):
        table.add_column(col)
    for t in sorted(shown, key=lambda t: (-t.score, t.nodeid)):
        table.add_row(
            Text(t.nodeid),
            t.verdict,
            f"{t.score:.2f}",
            str(t.runs),
            str(t.failures),
            str(t.flips),
            str(t.passed_on_retry),
            str(t.env_failures),
        )
    return table
