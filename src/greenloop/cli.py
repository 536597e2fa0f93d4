"""The `greenloop` command line (Typer + Rich).

Exit codes follow CONTRACT.md: 0 green, 1 failing, 2 usage or config error,
3 blocked, 4 not real, 70 a bug in greenloop. A user's mistake is one line on
stderr; a bug is a traceback plus the path of the full log.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.exceptions import Abort, TyperException

from greenloop import DEFAULT_CONFIG, __version__
from greenloop.errors import UserError

# Everything else is imported by the verb that needs it: `greenloop --help` and a
# blocked run should not pay for pydantic, SQLAlchemy, httpx or Rich's renderers
# they never use (bench/bench_overhead.py measures it).
if TYPE_CHECKING:
    from rich.console import Console

    from greenloop.config import Config
    from greenloop.store import Store

app = typer.Typer(
    name="greenloop",
    help="Deploy, verify, triage and remediate a staging environment until it is green.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: Rich's renderers double `--help`'s start-up time
    pretty_exceptions_enable=False,
)
issues_app = typer.Typer(help="Read and sync the issues greenloop filed.", no_args_is_help=True)
app.add_typer(issues_app, name="issues")

log = logging.getLogger("greenloop")


@functools.cache
def console(stderr: bool = False) -> Console:
    """The Rich console of stdout (or stderr), made on first use."""
    from rich.console import Console

    if stderr:
        return Console(stderr=True, soft_wrap=True)
    # Logs (CI, files) are read later in wide viewers: do not wrap lines at 80 columns there.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
    return Console(soft_wrap=True, width=width)


ConfigOption = Annotated[
    Path, typer.Option("-c", "--config", help="The config file.", show_default=True)
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write the JSON report (CONTRACT.md) here.")
]


def _config(path: Path) -> Config:
    from greenloop.load import load_config

    return load_config(path)


def _read_config(path: Path) -> Config:
    """The config for commands that only read the store: no ${VAR} is required."""
    from greenloop.load import load_config

    return load_config(path, read_only=True)


def _command_line() -> str:
    return shlex.join(["greenloop", *sys.argv[1:]])


# --------------------------------------------------------------------------- run


@app.command()
def run(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    focus: Annotated[
        str | None, typer.Option(help="Only tests with this tag, category, priority or file.")
    ] = None,
    json_path: JsonOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for worklogs, reports and local issues.")
    ] = None,
    until_green: Annotated[
        bool, typer.Option("--until-green", help="Go round until green or out of budget.")
    ] = False,
    max_iterations: Annotated[int | None, typer.Option(min=1)] = None,
    max_time: Annotated[float | None, typer.Option(help="Time budget in seconds.")] = None,
    allow_remediation: Annotated[
        bool, typer.Option("--allow-remediation", help="Run runbook actions (else dry-run).")
    ] = False,
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve actions when approval = 'flag'.")
    ] = False,
    deploy: Annotated[bool, typer.Option("--deploy", help="Deploy even if not stale.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last interrupted run.")
    ] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Parallel test workers.")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="text, or github for Actions annotations.")
    ] = "text",
) -> None:
    """Run the loop against the environment in the config.

    Example: `greenloop run -c greenloop.toml --focus websocket --json report.json`
    """
    from greenloop.gate import start_early_check_for

    # The probes answer while the config's validation imports every stage.
    start_early_check_for(config, deploy_forced=deploy)
    from greenloop.loop import RunOptions

    cfg = _config(config)
    options = RunOptions(
        focus=focus,
        out_dir=out_dir or cfg.resolve(cfg.report.out_dir),
        json_path=json_path,
        until_green=until_green,
        max_iterations=max_iterations,
        max_time_s=max_time,
        allow_remediation=allow_remediation or cfg.remediation.enabled,
        approve=approve,
        force_deploy=deploy,
        resume=resume,
        workers=workers,
        output_format=output_format,
        command_line=_command_line(),
    )
    from greenloop.session import execute_run

    result = execute_run(cfg, options, console())
    raise typer.Exit(int(result.exit_code))


# --------------------------------------------------------------------------- probe


@app.command()
def probe(config: ConfigOption = Path(DEFAULT_CONFIG), json_path: JsonOption = None) -> None:
    """Run every probe once: a table and a verdict (exit 0 healthy, 3 not).

    Example: `greenloop probe -c greenloop.toml --json probes.json`
    """
    from rich.markup import escape

    from greenloop.gate import check_gate, probes_json, render_probe_table
    from greenloop.records import ExitCode
    from greenloop.store import Store, store_url

    cfg = _config(config)
    store = Store.open(store_url(cfg.store.url, cfg.base_dir))
    try:
        gate = check_gate(cfg, store)
    finally:
        store.close()
    console().print(render_probe_table(gate))
    if gate.healthy:
        console().print("[bold green]healthy[/]: every probe passed")
    else:
        console().print(
            f"[bold red]blocked[/]: deepest failing component is "
            f"[bold]{escape(str(gate.deepest_failure))}[/]"
        )
    if json_path:
        _write_json(json_path, {"schema": "greenloop.probes/v1", "probes": probes_json(gate)})
    raise typer.Exit(int(ExitCode.GREEN if gate.healthy else ExitCode.BLOCKED))


# --------------------------------------------------------------------------- triage


@app.command()
def triage(
    files: Annotated[list[Path], typer.Argument(help="JUnit XML files.", show_default=False)],
    json_path: JsonOption = None,
    config: Annotated[
        Path | None, typer.Option("-c", "--config", help="Optional config (rules, index).")
    ] = None,
) -> None:
    """Classify and cluster the failures in JUnit XML files produced elsewhere; runs nothing.

    Example: `greenloop triage results/*.xml --json triage.json`
    """
    from dataclasses import replace

    from greenloop.records import ExitCode
    from greenloop.redact import Redactor, redactor_for
    from greenloop.summary import print_triage
    from greenloop.triage import triage_junit, triage_report

    cfg = _config(config) if config else None
    result = triage_junit(files, config=cfg)
    # Test output may hold secrets: what is printed or written passes the one redactor.
    redactor = redactor_for(cfg) if cfg else Redactor()
    print_triage(console(), replace(result, clusters=redactor.redact_obj(result.clusters)))
    if json_path:
        _write_json(json_path, redactor.redact_obj(triage_report(result, files, cfg)))
    failing = any(c.category.value != "skipped_env" for c in result.clusters)
    raise typer.Exit(int(ExitCode.FAILING if failing else ExitCode.GREEN))


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    scenario: Annotated[str, typer.Option(help="Which fault to inject (see --list).")] = "healthy",
    json_path: JsonOption = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the demo's store, worklogs and issues.")
    ] = Path("greenloop-demo"),
    until_green: Annotated[bool, typer.Option("--until-green")] = False,
    allow_remediation: Annotated[bool, typer.Option("--allow-remediation")] = False,
    max_iterations: Annotated[int | None, typer.Option(min=1)] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list", help="List the scenarios and exit.")
    ] = False,
    real_deps: Annotated[
        bool,
        typer.Option(
            "--real-deps",
            help="Run on throwaway PostgreSQL and Redis (this machine's binaries) behind "
            "HTTPS, with faults made on the real processes (see --real-deps --list).",
        ),
    ] = False,
) -> None:
    """Run the whole loop against the built-in demo environment on this machine.

    Example: `greenloop demo --scenario outage --until-green --allow-remediation`,
    `greenloop demo --real-deps --scenario db-password`
    """
    from greenloop.demo.runner import list_lines, run_demo

    if list_scenarios:
        for line in list_lines(real_deps):
            console().print(line, markup=False)
        raise typer.Exit(0)
    code = run_demo(
        scenario,
        out_dir=out_dir,
        json_path=json_path,
        until_green=until_green,
        allow_remediation=allow_remediation,
        max_iterations=max_iterations,
        command_line=_command_line(),
        console=console(),
        real_deps=real_deps,
    )
    raise typer.Exit(int(code))


# --------------------------------------------------------------------------- init


@app.command()
def init(
    tests_dir: Annotated[Path, typer.Argument(help="The pytest tree to test with.")] = Path(
        "tests"
    ),
    output: Annotated[Path, typer.Option("--output", "-o")] = Path(DEFAULT_CONFIG),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    python: Annotated[
        str | None,
        typer.Option(help="The project's interpreter (default: its .venv, else greenloop's)."),
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option(help="The test index (markdown, TOML, YAML); default: found near the tests."),
    ] = None,
    collect: Annotated[
        bool, typer.Option("--collect/--no-collect", help="Count tests with pytest's collection.")
    ] = True,
) -> None:
    """Write a commented starter config from what the test tree already says.

    Reads the test index, markers, the variables and options the tests read and
    the servers they talk to; counts tests with `pytest --collect-only`.
    Example: `greenloop init tests/e2e`
    """
    from greenloop.init.render import phase_summary
    from greenloop.starter import starter_survey

    if output.exists() and not force:
        raise UserError(f"{output}: already exists (use --force to overwrite)")
    if not tests_dir.is_dir():
        raise UserError(f"{tests_dir}: not a folder of tests")
    if index is not None and not index.is_file():
        raise UserError(f"{index}: no such index file")
    text, found = starter_survey(
        tests_dir, output.parent, python=python, index=index, run_collection=collect
    )
    output.write_text(text, encoding="utf-8")
    for line in phase_summary(found):
        console().print(line, markup=False, highlight=False)
    console().print(
        f"wrote {output}: check it, then `greenloop probe` and `greenloop run`", markup=False
    )


# --------------------------------------------------------------------------- store readers


@app.command()
def history(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Recent runs with their verdicts.

    Example: `greenloop history --limit 5`
    """
    from greenloop.summary import render_history

    store = _store(config)
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

    cfg = _read_config(config)
    store = _store(config)
    try:
        console().print(render_flaky(flaky_report(store, cfg.triage.flaky_window)))
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
    cfg = _config(config)
    store = _store(config)
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

    cfg = _config(config)
    store = _store(config)
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

    cfg = _config(config)
    store = _store(config)
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

    cfg = _read_config(config)
    store = _store(config)
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

    cfg = _config(config)
    store = _store(config)
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

    cfg = _config(config)
    store = _store(config)
    try:
        result = sync_outbox(cfg, store, cfg.resolve(cfg.report.out_dir))
    finally:
        store.close()
    console().print(str(result), markup=False)


def _store(config_path: Path) -> Store:
    from greenloop.store import Store, store_url

    cfg = _read_config(config_path)
    return Store.open(store_url(cfg.store.url, cfg.base_dir))


def _write_json(path: Path, payload: dict[str, object]) -> None:
    """Write a JSON report; a path that cannot be written is the user's error (exit 2).
    NaN and infinity are refused: they are not JSON, and the report builders never make them."""
    from greenloop.report.json_report import json_text

    text = json_text(payload)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"{path}: cannot write the JSON report ({exc.strerror or exc})",
            hint="give --json a file path in a writable folder",
        ) from None


def _version(value: bool) -> None:
    if value:
        console().print(f"greenloop {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """greenloop: deploy -> verify -> triage -> remediate until staging is green."""


# --------------------------------------------------------------------------- entry point


def log_path() -> Path:
    return Path(tempfile.gettempdir()) / "greenloop" / "greenloop.log"


def main(argv: list[str] | None = None) -> int:
    """Run a verb and turn every way it can end into the contract's exit code."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=path, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="greenloop", standalone_mode=False)
    except TyperException as exc:  # usage errors: unknown option, bad value
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            print(f"greenloop: {exc}", file=sys.stderr)
        code = exc.exit_code
    except Abort:
        console(stderr=True).print("aborted")
        code = 130
    except UserError as exc:
        print(f"greenloop: {exc}", file=sys.stderr)
        code = exc.exit_code
    except Exception:
        text = traceback.format_exc()
        log.error("internal error\n%s", text)
        print(text, file=sys.stderr, end="")
        print(f"greenloop: internal error (a bug); full log: {path}", file=sys.stderr)
        from greenloop.records import ExitCode

        code = ExitCode.INTERNAL
    if argv is None:
        _leave(int(code or 0))
    return int(code or 0)


def _leave(code: int) -> None:
    """End the process with `code`, skipping the interpreter's module-by-module teardown.

    Tearing down the ~2,000 modules a run imports (SQLAlchemy, pydantic, Rich...)
    costs 0.2-0.5 s of CPU after the verdict is printed (bench/bench_overhead.py).
    Everything a normal exit does that has an effect still happens first: exit
    handlers (logging's flush, temporary folders' finalizers) and the flush of
    stdout/stderr. With other threads still running, the normal exit joins them.
    """
    import atexit
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe: nothing more can be said there.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
