"""The commands that read (and label) what the store holds: `history`, `flaky`, `label`,
`report`, `serve`, and `issues list/show/sync`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from greenloop import DEFAULT_CONFIG
from greenloop.cli.common import (
    ConfigOption,
    app,
    console,
    issues_app,
    load,
    load_read_only,
    open_store,
)
from greenloop.errors import UserError


@app.command()
def history(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Recent runs with their verdicts.

    Example: `greenloop history --limit 5`
    """
    from greenloop.summary import render_history

    store = open_store(config)
    try:
        console().print(render_history(store.runs.recent_runs(limit)))
    finally:
        store.close()


@app.command()
def flaky(config: ConfigOption = Path(DEFAULT_CONFIG)) -> None:
    """Tests whose outcome flips on the same revision, with a flakiness score.

    Example: `greenloop flaky -c greenloop.toml`
    """
    from greenloop.summary import render_flaky
    from greenloop.triage.flaky import flaky_report

    cfg = load_read_only(config)
    store = open_store(config)
    try:
        console().print(
            render_flaky(
                flaky_report(store, cfg.triage.flaky_window, environment=cfg.environment.name)
            )
        )
    finally:
        store.close()


@app.command()
def label(
    target: Annotated[
        str,
        typer.Argument(
            help="A cluster id (or 8+ characters of its fingerprint) or a test node id."
        ),
    ],
    category: Annotated[
        str,
        typer.Argument(
            help="infrastructure, product, test, configuration, flaky, skipped_env or unknown."
        ),
    ],
    note: Annotated[str, typer.Option("--note", help="Why; shown as triage evidence.")] = "",
    config: ConfigOption = Path(DEFAULT_CONFIG),
) -> None:
    """Record a person's verdict on a cluster or a test; later triage of a similar failure
    uses it first and says so.

    Example: `greenloop label tests/test_api.py::test_login configuration --note "key rotated"`
    """
    from greenloop.redact import redactor_for
    from greenloop.triage.labels import categories

    if category not in categories():
        raise UserError(f"category {category!r}: expected one of {', '.join(categories())}")
    cfg = load(config)
    store = open_store(config)
    try:
        found = store.triage.label_target(target)
        if found is None:
            raise UserError(
                f"{target!r}: no cluster or failed test of that name in the store "
                "(see `greenloop history` and `greenloop report RUN_ID`)"
            )
        kind, text = found
        redact = redactor_for(cfg).redact
        store.triage.record_label(
            target, category, kind=kind, text=redact(text), note=redact(note), by=_who_labels()
        )
    finally:
        store.close()
    console().print(
        f"labelled {kind} {target} {category}: the next triage of a similar failure uses it",
        markup=False,
        highlight=False,
    )


def _who_labels() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="A run id from `greenloop history`.")],
    config: ConfigOption = Path(DEFAULT_CONFIG),
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write the run page as one self-contained HTML file."),
    ] = None,
) -> None:
    """Show a run's worklog in the terminal, or write it as one HTML file with --html.

    Example: `greenloop report 20261128-101500-ab12cd --html run.html`
    """
    from greenloop.redact import redactor_for
    from greenloop.report import render_run_for_terminal

    cfg = load(config)
    store = open_store(config)
    try:
        if store.runs.run(run_id) is None:
            raise UserError(f"run {run_id}: not in the store (see `greenloop history`)")
        if html is not None:
            from greenloop.serve import write_run_html

            written = write_run_html(store, run_id, html, redactor_for(cfg))
            console().print(f"wrote {written}", markup=False)
        else:
            console().print(render_run_for_terminal(store, run_id))
    finally:
        store.close()


@app.command()
def serve(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    token_env: Annotated[
        str,
        typer.Option(
            "--token-env", help="Variable holding the token that allows writes (else read-only)."
        ),
    ] = "GREENLOOP_SERVE_TOKEN",
) -> None:
    """Serve the dashboard over the store: runs, one run, clusters, flaky tests, probes, /api.

    Example: `greenloop serve -c greenloop-demo/greenloop.toml --port 8765`
    """
    from greenloop.serve.server import serve_dashboard

    cfg = load(config)
    store = open_store(config)
    try:
        serve_dashboard(
            cfg,
            store,
            host=host,
            port=port,
            token=os.environ.get(token_env) or None,
            say=lambda line: console().print(line, markup=False, highlight=False),
        )
    finally:
        store.close()


@issues_app.command("list")
def issues_list(config: ConfigOption = Path(DEFAULT_CONFIG)) -> None:
    """Every issue greenloop filed, open first.

    Example: `greenloop issues list`
    """
    from greenloop.summary import render_issues
    from greenloop.trackers.listing import list_issues

    cfg = load_read_only(config)
    store = open_store(config)
    try:
        console().print(render_issues(list_issues(store, cfg.tracker)))
    finally:
        store.close()


@issues_app.command("show")
def issues_show(
    key: Annotated[str, typer.Argument(help="Issue key or fingerprint.")],
    config: ConfigOption = Path(DEFAULT_CONFIG),
) -> None:
    """One issue with its body and comments.

    Example: `greenloop issues show GL-3`
    """
    from greenloop.trackers.listing import show_issue

    cfg = load(config)
    store = open_store(config)
    try:
        console().print(show_issue(store, cfg, key, out_dir=cfg.resolve(cfg.report.out_dir)))
    finally:
        store.close()


@issues_app.command("sync")
def issues_sync(config: ConfigOption = Path(DEFAULT_CONFIG)) -> None:
    """Deliver queued tracker operations, in order, exactly once.

    Example: `greenloop issues sync -c greenloop.toml`
    """
    from greenloop.trackers.filing import sync_outbox

    cfg = load(config)
    store = open_store(config)
    try:
        result = sync_outbox(cfg, store, cfg.resolve(cfg.report.out_dir))
    finally:
        store.close()
    console().print(str(result), markup=False)
