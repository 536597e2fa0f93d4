"""One whole run from a loaded config: open the store, run the loop, print the summary.

Shared by `greenloop run` and `greenloop demo`, so neither imports the other's module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape

from greenloop import execute
from greenloop.index import load_index
from greenloop.loop import Loop, RunOptions, run
from greenloop.redact import redactor_for
from greenloop.store import Store, store_url
from greenloop.summary import print_summary

if TYPE_CHECKING:
    from rich.console import Console

    from greenloop.config import Config
    from greenloop.records import RunResult

__all__ = ["RunOptions", "execute_run"]


def execute_run(cfg: Config, options: RunOptions, console: Console) -> RunResult:
    """Run the loop against the store `cfg` names; progress and summary go to `console`."""
    redactor = redactor_for(cfg)
    store = Store.open(store_url(cfg.store.url, cfg.base_dir))
    try:
        loop = Loop(
            config=cfg,
            options=options,
            store=store,
            index=load_index(cfg),
            reporter=execute.make_reporter(console, redactor),
            say=lambda line: console.print(f"[dim]greenloop:[/] {escape(redactor.redact(line))}"),
            redactor=redactor,
        )
        result = run(loop)
    finally:
        store.close()
    print_summary(console, redactor.redact_obj(result))
    return result
