"""The libraries a suite imports, loaded by the warm pytest before its hand-over.

Collection imports the suite: its conftest.py files and test modules, and through them
the libraries they use (a database driver, an HTTP client, an ORM), often most of
collection's time. The warm pytest (warm.py) waits for its command line on the other
core while greenloop loads; in that wait it imports those libraries, so collection
after the hand-over finds them loaded. The suite's own code is never imported early:

- names come from the top-level `import x` / `from x import ...` lines of the tests
  folder's conftest.py files and test files (a bounded text scan, no parsing);
- only modules that resolve, from the tests folder with the run's environment, into
  the interpreter's standard library or site-packages are loaded; a name that also
  exists as a module or package of the project is left alone;
- nothing is loaded when the suite imports gevent or eventlet (their monkey-patching
  must come before everything else);
- loading stops as soon as the hand-over arrives (`stop()` turns true), and an
  import that fails is left for collection to report as usual.

    imported_names(files) -> [name, ...]           # pure: first-seen order
    preloadable(names, project_dirs) -> [name, ...]
    preload(names, stop) -> [name, ...]             # the names actually imported
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sysconfig
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

__all__ = ["imported_names", "preload", "preloadable", "scan_files"]

# A suite importing one of these is never preloaded: they must patch the standard library
# before anything else imports it.
PATCH_FIRST = frozenset({"gevent", "eventlet"})
MAX_FILES = 400  # test files read for import lines (conftest.py files always are)
MAX_BYTES = 64 * 1024  # of each file: imports sit at the top
SKIP_DIRS = frozenset(
    {"__pycache__", "node_modules", "venv", "site-packages", "build", "dist", "CVS", "_darcs"}
)


def scan_files(tests_dir: Path) -> list[Path]:
    """The conftest.py files under `tests_dir`, then up to MAX_FILES test files.

    Walks as pytest recurses by default: hidden folders, virtualenvs (a folder holding
    pyvenv.cfg), site-packages, build output and caches are not entered, so a tests
    folder that is the project root does not read the installed packages' tests.
    """
    conftests: list[Path] = []
    tests: list[Path] = []
    for folder, dirs, files in os.walk(tests_dir):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIP_DIRS
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            if name == "conftest.py":
                conftests.append(Path(folder, name))
            elif len(tests) < MAX_FILES and _is_test_file(name):
                tests.append(Path(folder, name))
    return [*conftests, *tests]


def _is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def imported_names(texts: Iterable[str]) -> list[str]:
    """Top-level module names of the unindented, absolute import lines, first seen first.

    Pure. `import a.b, c as d` gives a and c; `from a.b import x` gives a; relative
    imports (`from . import x`) and indented (conditional, in-function) ones are left
    out, as is anything after a line that ends with a backslash or opens a paren.
    """
    seen: dict[str, None] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith("import "):
                for part in line[len("import ") :].split("#", 1)[0].split(","):
                    name = part.strip().split(" ", 1)[0].split(".", 1)[0]
                    if name.isidentifier():
                        seen.setdefault(name)
            elif line.startswith("from "):
                target = line[len("from ") :].split(" ", 1)[0]
                name = target.split(".", 1)[0]
                if name and not target.startswith(".") and name.isidentifier():
                    seen.setdefault(name)
    return list(seen)


def _library_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    return [Path(paths[k]).resolve() for k in keys if paths.get(k)]


def _location(name: str) -> Path | None:
    """Where `name` would be imported from; None if it cannot be found or is built in."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def preloadable(names: Sequence[str], project_dirs: Sequence[Path]) -> list[str]:
    """The names to load ahead: libraries of this interpreter, not the project's own."""
    if PATCH_FIRST.intersection(names):
        return []
    libraries = _library_dirs()
    projects = [d.resolve() for d in project_dirs]
    chosen = []
    for name in names:
        if name == "__future__":
            continue
        if any((d / name).is_dir() or (d / f"{name}.py").is_file() for d in projects):
            continue  # a module of the project (or shadowing a library): never early
        where = _location(name)
        if where is None or any(where.is_relative_to(d) for d in projects):
            continue
        if any(where.is_relative_to(d) for d in libraries):
            chosen.append(name)
    return chosen


def preload(names: Sequence[str], stop: Callable[[], bool]) -> list[str]:
    """Import each name until `stop()` is true; the names imported."""
    done = []
    for name in names:
        if stop():
            break
        with contextlib.suppress(Exception):  # collection reports it, as usual
            importlib.import_module(name)
            done.append(name)
    return done


def read_heads(files: Iterable[Path]) -> list[str]:
    """The first MAX_BYTES of each file as text (unreadable files are skipped)."""
    texts = []
    for path in files:
        with contextlib.suppress(OSError), path.open("rb") as handle:
            texts.append(handle.read(MAX_BYTES).decode("utf-8", "replace"))
    return texts
