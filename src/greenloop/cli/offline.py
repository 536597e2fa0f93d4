"""`greenloop init` and `triage`: commands that read files and touch no environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from greenloop import DEFAULT_CONFIG
from greenloop.cli.common import (
    JsonOption,
    app,
    console,
    cycle_collection_paused,
    load,
    write_json,
)
from greenloop.errors import UserError


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
    from greenloop.report.rows import redacted_rows
    from greenloop.summary import print_triage
    from greenloop.triage import triage_junit, triage_report

    with cycle_collection_paused():
        cfg = load(config) if config else None
        result = triage_junit(files, config=cfg)
        # Test output may hold secrets: what is printed or written passes the one redactor.
        redactor = redactor_for(cfg) if cfg else Redactor()
        seen: dict[str, str] = {}  # the summary and the report name the same tests: redact once
        clusters = redactor.redact_obj(result.clusters, seen=seen)
        print_triage(console(), replace(result, clusters=clusters))
        if json_path:
            report = triage_report(result, files, cfg)
            rows, report["tests"] = report["tests"], []
            report = redactor.redact_obj(report, seen=seen)
            report["tests"] = redacted_rows(rows, redactor, seen)  # one row per test
            write_json(json_path, report)
    failing = any(c.category.value != "skipped_env" for c in result.clusters)
    raise typer.Exit(int(ExitCode.FAILING if failing else ExitCode.GREEN))
