"""A pytest process started ahead: interpreter up, pytest and its plugins imported.

A run's first pytest process pays for Python, pytest and every entry-point
plugin before it collects a single test (0.3-0.5 s of CPU). When the run's
first gate check finds the environment healthy, `greenloop run` starts this
process on the other core while greenloop itself is still loading; the shared
session (runners/shared.py) then hands it its command line instead of starting
pytest cold. Nothing of the suite is imported before the hand-over: collection,
conftest.py and the tests run exactly as in a pytest started then, with the same
arguments, environment, working folder and output file. While it waits it loads
the third-party libraries the suite's files import (preload.py), never the
suite's own modules. When pytest returns, it ends as greenloop's CLI does: exit
handlers run and output is flushed, without the interpreter's module-by-module
teardown that greenloop would otherwise wait for.

    python -m greenloop.execute.warm [--project DIR ...] [PLUGIN_TO_SKIP ...]
    warm_up(config, workers)                                   # greenloop's side
    start_warm_pytest(executable, cwd, env, skip, project)
    take_warm_pytest(argv, cwd, env, output) -> Popen | None
    discard_warm_pytest()

The hand-over is one JSON line on the process's stdin: `{"args", "cwd", "env",
"output"}`; end of input without it makes the process exit. It is used
only for `<the same interpreter> -m pytest ...` with the same interpreter-start
variables (PYTHON*, LD_*, locale) it was started with; anything else is started
cold, as before, and the warm process is discarded.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from greenloop.config import Config

# Variables read when the interpreter starts (paths, site, locale): they must not differ.
_STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "LANG")


def startup_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of `env` that an interpreter reads when it starts."""
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES)}


class WarmPytest:
    """greenloop's handle on one warm process (see the module docstring)."""

    def __init__(
        self,
        executable: str,
        cwd: Path,
        env: Mapping[str, str],
        skip: Sequence[str],
        project: Sequence[Path] = (),
    ) -> None:
        self.executable = executable
        self.startup = startup_variables(env)
        self.log = Path(tempfile.mkstemp(prefix="greenloop-warm-", suffix=".log")[1])
        with self.log.open("ab") as out:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                [
                    *(executable, "-m", "greenloop.execute.warm"),
                    *(arg for folder in project for arg in ("--project", str(folder))),
                    *skip,
                ],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def take(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path
    ) -> subprocess.Popen[bytes] | None:
        """Hand `argv` over and return the process, or None when it cannot run `argv`."""
        fits = (
            self.proc.poll() is None
            and len(argv) >= 3
            and argv[0] == self.executable
            and list(argv[1:3]) == ["-m", "pytest"]
            and startup_variables(env) == self.startup
        )
        if not fits or self.proc.stdin is None:
            return None
        order = {
            "args": list(argv[3:]),
            "cwd": str(cwd),
            "env": dict(env),
            "output": str(output),
        }
        try:
            self.proc.stdin.write(json.dumps(order).encode() + b"\n")
            self.proc.stdin.close()
        except OSError:  # it died meanwhile
            return None
        self._forget_log()
        return self.proc

    def discard(self) -> None:
        """End the process unused, at once: it has run nothing but pytest's own imports."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait()
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        self._forget_log()

    def _forget_log(self) -> None:
        with contextlib.suppress(OSError):
            self.log.unlink()


_warm: list[WarmPytest] = []


def start_warm_pytest(
    executable: str,
    cwd: Path,
    env: Mapping[str, str],
    skip: Sequence[str] = (),
    project: Sequence[Path] = (),
) -> WarmPytest | None:
    """Start the warm process (at most one per greenloop process); None if it cannot start.

    `project`: the folders whose modules are the suite's own, never loaded ahead
    (preload.py); the process's working folder `cwd` is always one."""
    if _warm:
        return _warm[0]
    try:
        warm = WarmPytest(executable, cwd, env, skip, project)
    except OSError:
        return None
    _warm.append(warm)
    atexit.register(discard_warm_pytest)  # a run that ends early: no process left behind
    return warm


def take_warm_pytest(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path
) -> subprocess.Popen[bytes] | None:
    """The warm process running `argv`, or None (start pytest cold); it is used once."""
    if not _warm:
        return None
    warm = _warm.pop()
    proc = warm.take(argv, cwd=cwd, env=env, output=output)
    if proc is None:
        warm.discard()
    return proc


def warm_up(config: Config, workers: int | None = None) -> WarmPytest | None:
    """Start the warm process for a run of `config` whose phases run pytest with one
    worker in greenloop's own interpreter (the only process it can stand in for): the
    shared session of two or more phases, or else the first launch of the first phase."""
    from greenloop.execute.interpreter import (
        Interpreter,
        import_root,
        python_path,
        same_interpreter,
    )
    from greenloop.execute.runners.base import process_environment
    from greenloop.execute.wire import HEAVY_PLUGINS

    own = python_path(config)
    if own is not None and not same_interpreter(own, sys.executable):
        return None
    phases = config.phases
    if (phases and all(p.runner != "pytest" for p in phases)) or workers not in (None, 1):
        return None
    if config.execution.workers != 1 or any(p.workers not in (None, 1) for p in phases):
        return None
    tests_dir = config.resolve(config.execution.tests_dir)
    if not tests_dir.is_dir():
        return None
    from greenloop.execute.preload import read_heads, scan_files

    # Plugins none of the suite's files mention are not imported ahead (a guess: pytest
    # loads any it needs itself). Pruned as pytest recurses: never a virtualenv's files.
    texts = read_heads(scan_files(tests_dir))
    words = {name: word.decode() for name, word in HEAVY_PLUGINS.items()}
    skip = [name for name, word in words.items() if not any(word in t for t in texts)]
    root = import_root(tests_dir, config.base_dir)
    env = Interpreter(sys.executable, own=True).environment(process_environment(config), root)
    project = [config.base_dir, *([root, root / "src"] if root else [])]
    return start_warm_pytest(sys.executable, tests_dir, env, skip, project)


def discard_warm_pytest() -> None:
    """End a warm process nobody took (a blocked run, a run without a shared session)."""
    while _warm:
        _warm.pop().discard()


# --------------------------------------------------------------------------- the process


def main() -> None:
    """Import pytest, its plugins and the suite's libraries, wait for the hand-over,
    then be that pytest."""
    args, project, skip = sys.argv[1:], [Path.cwd()], set()
    while args:
        arg = args.pop(0)
        if arg == "--project" and args:
            project.append(Path(args.pop(0)))
        else:
            skip.add(arg)
    import pytest

    import greenloop.execute.phased
    import greenloop.execute.plugin  # noqa: F401  (imported now, loaded by -p later)

    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        from importlib.metadata import entry_points

        for point in entry_points(group="pytest11"):
            if point.name not in skip:
                with contextlib.suppress(Exception):  # pytest reports it, as usual
                    point.load()
    from greenloop.execute import preload
    from greenloop.process import exit_without_teardown  # loaded now, while waiting

    names = preload.imported_names(preload.read_heads(preload.scan_files(Path.cwd())))
    loaded = preload.preload(preload.preloadable(names, project), stop=_order_arrived)
    print(f"greenloop warm: loaded ahead: {', '.join(loaded) or 'nothing'}", flush=True)
    line = sys.stdin.buffer.readline()
    if not line.strip():
        os._exit(0)  # not needed
    order = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    out = os.open(order["output"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(order["cwd"])
    os.environ.clear()
    os.environ.update(order["env"])
    sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *order["args"]]
    code = pytest.console_main()
    # As greenloop's CLI ends (cli._leave): without the interpreter tearing ~1,000 modules
    # down one by one (0.1-0.2 s greenloop would wait for), unless a normal exit must wait.
    if not _suite_threads_running():
        exit_without_teardown(int(code))
    raise SystemExit(code)  # other threads still run: the interpreter's own exit waits for them


def _suite_threads_running() -> bool:
    """A non-daemon thread the suite started is still running: a normal exit waits for it."""
    import threading

    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _order_arrived() -> bool:
    """The hand-over line is waiting on stdin (or stdin closed): stop loading ahead."""
    import select

    return bool(select.select([sys.stdin.buffer], [], [], 0)[0])


if __name__ == "__main__":
    main()
