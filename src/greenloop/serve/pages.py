"""The dashboard's HTML: Jinja2 templates over the (already redacted) views of queries.py.

Each page is one self-contained document: its CSS is inlined and its charts are
inline SVG, so the run page served by `greenloop serve` and the file written by
`greenloop report RUN_ID --html` are the same markup. In `standalone` mode links
to other pages are left out, since a file on its own has nowhere to go.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from greenloop import __version__
from greenloop.serve import charts
from greenloop.serve.queries import (
    ComponentAvailability,
    FlakyView,
    IssueStats,
    Page,
    ProblemsInRun,
    RunDetail,
    TrendPoint,
)

NOTHING = "\u2013"  # an en dash: no value to show

# Outcomes in the order the bars and tables list them.
OUTCOME_ORDER = ("passed", "failed", "error", "timeout", "crashed", "blocked", "skipped")


@cache
def environment() -> Environment:
    """The template environment: autoescaped HTML, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("greenloop.serve", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        seconds=format_seconds,
        money=format_money,
        pct=format_pct,
        when=format_when,
        short=short_id,
    )
    env.globals["version"] = __version__
    return env


def render(template: str, *, standalone: bool = False, **context: Any) -> str:
    """Render one page. `standalone` drops links to the other pages of the dashboard."""
    return environment().get_template(template).render(standalone=standalone, **context)


# --------------------------------------------------------------------------- formatting


def format_seconds(value: float | None) -> str:
    """12.3 s, 4 min 05 s, 2 h 03 min; an en dash for nothing."""
    if value is None:
        return NOTHING
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def format_money(value: float | None) -> str:
    return NOTHING if not value else f"${value:,.0f}"


def format_pct(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.0%}"


def format_when(value: datetime | str | None) -> str:
    """UTC, to the second: 2026-11-30 12:44:08Z."""
    if value is None:
        return NOTHING
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def short_id(value: str | None, length: int = 12) -> str:
    return "" if value is None else value[:length]


# --------------------------------------------------------------------------- charts of pages


def trend_charts(
    points: Sequence[TrendPoint], *, link: bool = True, highlight: str | None = None
) -> list[Markup]:
    """Pass rate and availability on one chart, time to verdict on another."""

    def href(run_id: str) -> str | None:
        return f"/runs/{run_id}" if link else None

    rates = charts.line_chart(
        [
            charts.Series(
                "pass rate",
                tuple(charts.Point(p.run_id, p.pass_rate, href(p.run_id)) for p in points),
                colour="#2e7d32",
            ),
            charts.Series(
                "availability",
                tuple(charts.Point(p.run_id, p.availability, href(p.run_id)) for p in points),
                colour="#1565c0",
            ),
        ],
        title=f"pass rate and availability, last {len(points)} runs",
        highlight=highlight,
    )
    durations = charts.line_chart(
        [
            charts.Series(
                "time to verdict",
                tuple(charts.Point(p.run_id, p.duration_s, href(p.run_id)) for p in points),
                colour="#6a1b9a",
            )
        ],
        title="time to verdict (s)",
        unit="s",
        highlight=highlight,
    )
    return [rates, durations]


def outcome_bar(counts: dict[str, int]) -> Markup:
    ordered = [(o, counts.get(o, 0)) for o in OUTCOME_ORDER]
    ordered += [(o, n) for o, n in sorted(counts.items()) if o not in OUTCOME_ORDER]
    return charts.stacked_bar(ordered, title="tests of the last iteration by outcome")


# --------------------------------------------------------------------------- pages


def runs_page(
    runs: Page[Any], trend: Sequence[TrendPoint], *, verdict: str | None, title: str
) -> str:
    return render(
        "runs.html.j2",
        page_title=title,
        active="runs",
        runs=runs,
        verdict=verdict,
        charts=trend_charts(trend),
    )


def run_page(
    detail: RunDetail, trend: Sequence[TrendPoint], *, title: str, standalone: bool = False
) -> str:
    """The run page; the same markup is the one-file HTML report with `standalone`."""
    iterations = sorted({p.iteration for p in detail.phases} | {t.iteration for t in detail.tests})
    return render(
        "run.html.j2",
        standalone=standalone,
        page_title=title,
        active="runs",
        d=detail,
        r=detail.run,
        iterations=iterations,
        charts=trend_charts(trend, link=not standalone, highlight=detail.run.run_id),
        outcome_bar=outcome_bar(detail.outcome_counts),
        failing=[t for t in detail.tests if t.outcome not in ("passed", "skipped")],
    )


def clusters_page(
    clusters: Page[Any],
    issues: Page[Any],
    stats: IssueStats,
    per_run: Sequence[ProblemsInRun],
    *,
    title: str,
) -> str:
    chart = charts.line_chart(
        [
            charts.Series(
                "problems",
                tuple(
                    charts.Point(p.run_id, float(p.problems), f"/runs/{p.run_id}") for p in per_run
                ),
                colour="#ef6c00",
            )
        ],
        title=f"distinct problems per run, last {len(per_run)} runs",
        unit="",
    )
    return render(
        "clusters.html.j2",
        page_title=title,
        active="clusters",
        clusters=clusters,
        issues=issues,
        stats=stats,
        chart=chart,
    )


def flaky_page(flaky: Page[FlakyView], *, window: int, title: str) -> str:
    strips = {
        f.nodeid: charts.outcome_strip(
            [(o, f"{o}: run {run} at {format_when(at)}") for o, run, at in f.history],
            title=f"last {len(f.history)} outcomes of {f.nodeid}",
        )
        for f in flaky.items
    }
    return render(
        "flaky.html.j2",
        page_title=title,
        active="flaky",
        flaky=flaky,
        strips=strips,
        window=window,
    )


def probes_page(components: Sequence[ComponentAvailability], *, runs: int, title: str) -> str:
    chart_of = {}
    for c in components:
        chart_of[c.component] = charts.line_chart(
            [
                charts.Series(
                    "availability",
                    tuple(
                        charts.Point(run_id, ok / total if total else None, f"/runs/{run_id}")
                        for run_id, ok, total in c.per_run
                    ),
                )
            ],
            title=f"{c.component}: availability per run",
            height=110,
        )
    return render(
        "probes.html.j2",
        page_title=title,
        active="probes",
        components=components,
        chart_of=chart_of,
        runs=runs,
    )


def not_found_page(what: str, *, title: str) -> str:
    return render("not_found.html.j2", page_title=title, active="", what=what)
