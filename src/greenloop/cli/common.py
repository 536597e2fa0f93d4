"""What every command of the command line shares: the Typer apps, the console, the
options, reading the config, opening the store and writing a JSON report.

Everything else is imported by the verb that needs it: `greenloop --help` and a
blocked run should not pay for pydantic, SQLAlchemy, httpx or Rich's renderers
they never use (bench/bench_overhead.py measures it).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from greenloop.errors import UserError

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


def load(path: Path) -> Config:
    from greenloop.load import load_config

    return load_config(path)


def read_early(path: Path) -> Config | None:
    """The config as `config.read_config` reads it, for what starts before the full load
    (the early gate check); None when it does not read cleanly: the full load then says
    what is wrong, in its own words."""
    from greenloop.config import read_config

    try:
        return read_config(path)
    except Exception:
        return None


def load_read_only(path: Path) -> Config:
    """The config for commands that only read the store: no ${VAR} is required."""
    from greenloop.load import load_config

    return load_config(path, read_only=True)


def command_line() -> str:
    return shlex.join(["greenloop", *sys.argv[1:]])


def open_store(config_path: Path) -> Store:
    from greenloop.store import Store, store_url

    cfg = load_read_only(config_path)
    return Store.open(store_url(cfg.store.url, cfg.base_dir))


def write_json(path: Path, payload: dict[str, object]) -> None:
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


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector off for the block, back as it was after (even on errors).

    A large batch (`greenloop triage` of 100,000 failures) allocates millions of objects
    that live to the end: records, evidence, report rows. The collector would walk them
    all again and again as they pile up (a third of the CPU time of a 100,000-failure
    triage) and find almost nothing (~1,300 objects in cycles on that batch); without it,
    reference counting frees everything that is not in a cycle, and the few cycles wait
    for the next collection after the block.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
