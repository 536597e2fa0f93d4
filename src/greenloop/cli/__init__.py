"""The `greenloop` command line (Typer + Rich).

Exit codes follow CONTRACT.md: 0 green, 1 failing, 2 usage or config error,
3 blocked, 4 not real, 70 a bug in greenloop. A user's mistake is one line on
stderr; a bug is a traceback plus the path of the full log.

One module per group of commands (`run.py`: run, probe, demo; `offline.py`: init,
triage; `store.py`: history, flaky, label, report, serve, issues); `common.py` holds
the Typer app they register on. The entry point is `greenloop.cli:main`.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import Abort, TyperException

from greenloop import __version__
from greenloop.cli.common import app, console
from greenloop.errors import UserError

# The command modules register their commands on `app`, in this order (`--help` lists it).
# isort: off
from greenloop.cli import run  # noqa: F401
from greenloop.cli import offline  # noqa: F401
from greenloop.cli import store  # noqa: F401

# isort: on

__all__ = ["app", "log_path", "main"]

log = logging.getLogger("greenloop")


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
    if argv is None:
        # greenloop's own process never uses trio; httpcore imports it when it is
        # installed (~70 ms of CPU per run). Only for the real process: in-process
        # callers (tests) may need trio later.
        sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
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
    import threading

    from greenloop.process import exit_without_teardown

    if threading.active_count() > 1:
        sys.exit(code)
    exit_without_teardown(code)
