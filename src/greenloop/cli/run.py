"""`greenloop run`, `probe` and `demo`: the commands that check the environment."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from greenloop import DEFAULT_CONFIG
from greenloop.cli.common import (
    ConfigOption,
    JsonOption,
    app,
    command_line,
    console,
    load,
    read_early,
    write_json,
)


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
    from greenloop.earlygate import start_early_check_for
    from greenloop.execute.warm import discard_warm_pytest, warm_up
    from greenloop.process import process_started_at

    # The probes answer (in a child process: earlygate.py) while the config's validation
    # imports every stage; when all pass, a pytest process starts loading (execute/warm.py).
    # Started only then: in a blocked run it would be CPU spent for nothing (measured in
    # docs/benchmarks.md, run H).
    early = read_early(config)
    if early is not None:
        warm = functools.partial(warm_up, early, workers)
        start_early_check_for(early, deploy_forced=deploy, when_healthy=warm)
    try:
        from greenloop.loop import RunOptions

        cfg = load(config)
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
            command_line=command_line(),
            started_at=process_started_at(),
        )
        from greenloop.session import execute_run

        result = execute_run(cfg, options, console())
    finally:
        discard_warm_pytest()  # one nobody took: a blocked run, no shared session
    raise typer.Exit(int(result.exit_code))


@app.command()
def probe(config: ConfigOption = Path(DEFAULT_CONFIG), json_path: JsonOption = None) -> None:
    """Run every probe once: a table and a verdict (exit 0 healthy, 3 not).

    Example: `greenloop probe -c greenloop.toml --json probes.json`
    """
    from greenloop.earlygate import start_early_check_for

    # As in `run`: the probes answer in a child process while the full load imports every
    # stage; here every probe is waited for (settle=False), as `probe` always did.
    early = read_early(config)
    if early is not None:
        start_early_check_for(early, settle=False)

    from rich.markup import escape

    from greenloop.gate import check_gate, probes_json, render_probe_table
    from greenloop.records import ExitCode
    from greenloop.store import Store, store_url

    cfg = load(config)
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
        write_json(json_path, {"schema": "greenloop.probes/v1", "probes": probes_json(gate)})
    raise typer.Exit(int(ExitCode.GREEN if gate.healthy else ExitCode.BLOCKED))


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
        command_line=command_line(),
        console=console(),
        real_deps=real_deps,
    )
    raise typer.Exit(int(code))
