"""`execution.python`: run the suite with the project's own interpreter, plugin included.

greenloop's pytest plugins (`greenloop.execute.plugin` and its parts in
`.pytestplugin`, `.phased`, and the names they share in `.wire`) need only
the standard library and pytest, so they can load in any interpreter that
has pytest: they are copied into a folder of their own (a `greenloop`
package holding just the plugins) that is put first on the test processes'
PYTHONPATH, and loaded with the same
`-p greenloop.execute.plugin` as always. Node ids, the socket and mock
records and every authenticity check stay the same whichever interpreter
runs. pytest-xdist and pytest-timeout are used when that interpreter has
them; without them the phase runs in one process and only the phase deadline
bounds a test, and the phase note says so.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from greenloop.config import Config
from greenloop.errors import ConfigError
from greenloop.process import run_argv

PLUGIN_FOLDER = "greenloop-plugin"
_PROBE = (
    "import importlib.util as u\n"
    "try:\n"
    "    import pytest\n"
    "    print('pytest', True)\n"
    "except Exception:\n"
    "    print('pytest', False)\n"
    "for m in ('xdist', 'pytest_timeout'):\n"
    "    print(m, u.find_spec(m) is not None)\n"
)


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs pytest, and what it can do."""

    executable: str
    own: bool  # greenloop's own interpreter (its venv has every plugin)
    has_xdist: bool = True
    has_timeout: bool = True
    plugin_path: str | None = None  # prepended to PYTHONPATH for a foreign interpreter

    @property
    def env(self) -> dict[str, str]:
        """Environment entries the test processes need: greenloop's plugin on the path.

        PYTHONSAFEPATH=1 makes ``python -m pytest`` import like the ``pytest`` command: the
        working directory (the tests folder) is not put first on sys.path, where a test
        package such as ``tests/types/`` would hide the standard library's ``types``.
        pytest still puts each test's own root on sys.path (its import mode).
        """
        env = {"PYTHONSAFEPATH": "1"}
        if self.plugin_path:
            rest = os.environ.get("PYTHONPATH", "")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.plugin_path, rest) if p)
        return env

    def notes(self, workers: int) -> list[str]:
        """What this interpreter cannot do, in words for the phase note."""
        out = []
        if workers > 1 and not self.has_xdist:
            out.append(f"{self.executable} has no pytest-xdist: ran in one process")
        if not self.has_timeout:
            out.append(
                f"{self.executable} has no pytest-timeout: only the phase deadline bounds a test"
            )
        return out


def python_path(config: Config) -> str | None:
    """execution.python as an absolute path (a bare name is looked up on PATH), or None."""
    value = config.execution.python
    if not value:
        return None
    if "/" in value or os.sep in value:
        return str(config.resolve(value))
    return shutil.which(value) or value


def check_python(config: Config, file: str) -> None:
    """Raise ConfigError when execution.python is not an interpreter that has pytest."""
    path = python_path(config)
    if path is None:
        return
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise ConfigError(file, "execution.python", f"{path}: no such interpreter")
    if not capabilities(path)[0]:
        raise ConfigError(
            file, "execution.python", f"{path} cannot import pytest (install pytest in it)"
        )


def interpreter_for(config: Config, workdir: Path) -> Interpreter:
    """The interpreter of this run; a foreign one gets the plugin copied under `workdir`."""
    path = python_path(config)
    if path is None or _same(path, sys.executable):
        return Interpreter(executable=sys.executable, own=True)
    has_pytest, has_xdist, has_timeout = capabilities(path)
    if not has_pytest:
        raise ConfigError(str(config.source), "execution.python", f"{path} cannot import pytest")
    return Interpreter(
        executable=path,
        own=False,
        has_xdist=has_xdist,
        has_timeout=has_timeout,
        plugin_path=str(plugin_copy(workdir / PLUGIN_FOLDER)),
    )


def plugin_copy(folder: Path) -> Path:
    """A folder holding greenloop's pytest plugins (`plugin.py` with its `pytestplugin/`
    package, `phased.py`, `wire.py`) alone."""
    from greenloop.execute import phased, plugin, pytestplugin, wire

    package = folder / "greenloop" / "execute"
    package.mkdir(parents=True, exist_ok=True)
    (folder / "greenloop" / "__init__.py").write_text(
        '"""greenloop\'s pytest plugin alone, for a project\'s own interpreter."""\n',
        encoding="utf-8",
    )
    (package / "__init__.py").write_text("", encoding="utf-8")
    for module in (plugin, phased, wire):
        shutil.copyfile(str(module.__file__), package / Path(str(module.__file__)).name)
    parts = Path(str(pytestplugin.__file__)).parent
    shutil.copytree(
        parts,
        package / parts.name,
        ignore=shutil.ignore_patterns("__pycache__"),
        dirs_exist_ok=True,
    )
    return folder


@functools.lru_cache(maxsize=8)
def capabilities(path: str) -> tuple[bool, bool, bool]:
    """(pytest, pytest-xdist, pytest-timeout) importable by that interpreter."""
    done = run_argv([path, "-c", _PROBE], timeout_s=30, stderr_apart=True, output_limit=None)
    if done.error or done.timed_out:
        return (False, False, False)
    found = dict(line.split() for line in done.output.splitlines() if line.count(" ") == 1)
    return (
        found.get("pytest") == "True",
        found.get("xdist") == "True",
        found.get("pytest_timeout") == "True",
    )


def _same(a: str, b: str) -> bool:
    # Not samefile: every venv's python links to the same base interpreter.
    return os.path.abspath(a) == os.path.abspath(b)
