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
from collections.abc import Mapping
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

    def environment(self, base: Mapping[str, str], import_root: Path | None) -> dict[str, str]:
        """`base` (the test processes' environment) with what this interpreter needs on top.

        PYTHONSAFEPATH=1 keeps the working folder (the tests folder) off the front of
        sys.path, where a test package such as ``tests/types/`` would hide the standard
        library's ``types``. `import_root` (see `import_root`) goes on PYTHONPATH instead,
        after the user's own entries, as ``python -m pytest tests`` from there would put
        it: suites that import ``tests.helpers`` need it. greenloop's plugin copy comes
        first for a foreign interpreter. A `base` made by this method before (a plugin copy,
        the same root) gives the same result, never doubled entries.
        """
        env = {**base, "PYTHONSAFEPATH": "1"}
        root = str(import_root) if import_root is not None else ""
        theirs = [
            p
            for p in base.get("PYTHONPATH", "").split(os.pathsep)
            if p and p != root and Path(p).name != PLUGIN_FOLDER
        ]
        entries = [p for p in (self.plugin_path, *theirs, root) if p]
        if entries:
            env["PYTHONPATH"] = os.pathsep.join(entries)
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


# Files that mark a project's root folder, the one its users run pytest from.
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def import_root(tests_dir: Path, config_dir: Path) -> Path | None:
    """The folder a user runs ``python -m pytest`` from, when it is not the tests folder.

    Walking up from the tests folder's parent: the first folder holding a project
    marker (pyproject.toml, setup.py, setup.cfg, .git), or the config file's folder,
    whichever comes first. None when the config sits in the tests folder itself, or
    nothing is found: then only pytest's own rootdir handling applies, as before.
    Sources: the field trial of `databases` 0.9.0, whose tests import ``tests.importer``
    and pass from the project root only.
    """
    tests_dir = tests_dir.resolve()
    config_dir = config_dir.resolve()
    if config_dir == tests_dir:
        return None
    for folder in tests_dir.parents:
        if folder == config_dir or any((folder / m).exists() for m in _PROJECT_MARKERS):
            return folder
    return None


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
    if path is None or same_interpreter(path, sys.executable):
        return  # greenloop's own interpreter has pytest: greenloop depends on it
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise ConfigError(file, "execution.python", f"{path}: no such interpreter")
    if not capabilities(path)[0]:
        raise ConfigError(
            file, "execution.python", f"{path} cannot import pytest (install pytest in it)"
        )


def interpreter_for(config: Config, workdir: Path) -> Interpreter:
    """The interpreter of this run; a foreign one gets the plugin copied under `workdir`."""
    path = python_path(config)
    if path is None or same_interpreter(path, sys.executable):
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


def same_interpreter(a: str, b: str) -> bool:
    """One interpreter in one environment: the same file once links are followed, named
    from the same folder. A virtualenv is its bin folder (pyvenv.cfg sits above it), so
    venv/bin/python and venv/bin/python3 are one; two virtualenvs' pythons, both links to
    one base interpreter, are not (plain samefile would call them one). Source: the
    redis-py field trial, whose `execution.python = "venv/bin/python"` beside a
    `greenloop` script run by venv/bin/python3 made greenloop treat its own interpreter
    as a foreign one (no warm pytest, a capability check and a plugin copy per run)."""
    a, b = os.path.abspath(a), os.path.abspath(b)
    if a == b:
        return True
    try:
        same_folder = os.path.samefile(os.path.dirname(a), os.path.dirname(b))
    except OSError:
        return False
    return same_folder and os.path.realpath(a) == os.path.realpath(b)
