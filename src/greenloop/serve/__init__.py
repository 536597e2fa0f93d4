"""The dashboard: `greenloop serve` (pages and a JSON API) and the one-file HTML report.

`queries` reads typed views from the store a page at a time, `charts` draws them
as inline SVG, `pages` renders the HTML and `app` serves both HTML and JSON.
`write_run_html` is `greenloop report RUN_ID --html FILE`: the run page as one
file that opens offline (CSS inlined, charts as SVG, no script, no fetch).
"""

from __future__ import annotations

from pathlib import Path

from greenloop.errors import UserError
from greenloop.redact import Redactor
from greenloop.serve import pages, queries
from greenloop.store import Store

__all__ = ["render_run_html", "write_run_html"]


def render_run_html(store: Store, run_id: str, redactor: Redactor) -> str:
    """The run page as one self-contained, redacted HTML document.

    Raises UserError when the store has no such run.
    """
    detail = queries.run_detail(store, run_id)
    if detail is None:
        raise UserError(f"run {run_id}: not in the store (see `greenloop history`)")
    trend = queries.run_trend_points(store, until=run_id)
    text = pages.run_page(
        redactor.redact_obj(detail),
        redactor.redact_obj(trend),
        title=f"greenloop run {run_id}",
        standalone=True,
    )
    return redactor.redact(text)


def write_run_html(store: Store, run_id: str, path: Path, redactor: Redactor) -> Path:
    """Write `render_run_html` to `path` (folders created); the path written."""
    text = render_run_html(store, run_id, redactor)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot write the HTML report: {exc.strerror}") from None
    return path
