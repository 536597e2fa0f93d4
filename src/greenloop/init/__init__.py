"""`greenloop init`: a starter greenloop.toml from what a suite already says about itself.

The order is a pipeline of plain steps:

1. `scan.scan_suite`: test files, markers, the variables and pytest options the
   tests read, URLs in the suite and the project's settings (files only);
2. `greenloop.indexfile`: the team's test index (markdown table, TOML, YAML);
3. `collect.collect`: exact counts from `pytest --collect-only` in the
   project's interpreter, with a short time limit (said when it cannot run);
4. `targets.find_targets` and `plan`: servers, probes, phases (pure);
5. `render.render_config`: the commented TOML text.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from greenloop.errors import ConfigError
from greenloop.execute.interpreter import import_root
from greenloop.index import locate
from greenloop.indexfile import IndexRow, read_index_file
from greenloop.init.collect import Collection, collect
from greenloop.init.scan import SuiteScan, scan_suite
from greenloop.init.targets import SETTINGS_FILE, Target, find_targets

# Interpreters of a project's own virtualenv, relative to the project folder.
PROJECT_PYTHONS = (".venv/bin/python", "venv/bin/python", ".venv/Scripts/python.exe")


@dataclass(frozen=True)
class PhasePlan:
    """One proposed phase: what it selects and which components it needs."""

    name: str
    priorities: tuple[int, ...]  # empty: every test
    needs: tuple[str, ...]
    tests: int  # how many tests it selects (collected, or counted `def test`)
    min_pass_rate: float = 0.0
    files: tuple[str, ...] = ()  # relative to tests_dir; empty: every file


@dataclass
class Survey:
    """Everything init learned about a suite, and what it proposes."""

    tests_dir: Path
    config_dir: Path
    scan: SuiteScan
    collection: Collection
    python: str | None  # execution.python to write (relative to config_dir), None = own
    index_file: Path | None = None
    index_rows: list[IndexRow] = field(default_factory=list)  # paths relative to tests_dir
    index_problem: str | None = None
    targets: list[Target] = field(default_factory=list)
    phases: list[PhasePlan] = field(default_factory=list)

    def count(self, path: str) -> int:
        """Tests in one file: pytest's count when it collected, else the `def test` count."""
        if self.collection.error is None:
            return self.collection.counts.get(path, 0)
        return next((f.tests for f in self.scan.files if f.path == path), 0)

    @property
    def test_files(self) -> list[str]:
        if self.collection.error is None and self.collection.counts:
            return sorted(self.collection.counts)
        return [f.path for f in self.scan.files]

    def relative(self, path: Path) -> str:
        """A path as greenloop.toml writes it: relative to the config file's folder."""
        return Path(os.path.relpath(path.resolve(), self.config_dir.resolve())).as_posix()


def survey(
    tests_dir: Path,
    config_dir: Path,
    *,
    python: str | None = None,
    index: Path | None = None,
    run_collection: bool = True,
    environ: dict[str, str] | None = None,
) -> Survey:
    """Read the suite and propose a config (see module docstring).

    `python`: the interpreter to collect and run with; None looks for the
    project's own virtualenv and falls back to greenloop's. `index`: the index
    file; None looks for one near the tests. `environ`: the environment whose
    variables count as set (default: init's own, `os.environ`).
    """
    pre = scan_suite(tests_dir)
    index_file, rows, problem = _read_index(index, pre, tests_dir)
    named = tuple(r.path for r in rows if (tests_dir / r.path).is_file())
    scan = scan_suite(tests_dir, named) if named else pre
    interpreter = python or _project_python(scan.root)
    runner = _absolute_python(interpreter, config_dir) if interpreter else sys.executable
    if run_collection:
        # The folder `greenloop run` puts on the import path: both collect alike.
        root = import_root(tests_dir, config_dir)
        collection = collect(runner, tests_dir, root=root)
        if collection.error is None and not collection.counts and named:
            collection = collect(runner, tests_dir, sorted(set(named)), root=root)
    else:
        collection = Collection(error="collection was turned off (--no-collect)")
    result = Survey(
        tests_dir=tests_dir,
        config_dir=config_dir,
        scan=scan,
        collection=collection,
        python=_written_python(interpreter, config_dir) if interpreter else None,
        index_file=index_file,
        index_rows=rows,
        index_problem=problem,
    )
    result.targets = find_targets(scan, dict(os.environ) if environ is None else environ)
    result.phases = plan_phases(result)
    return result


def _read_index(
    given: Path | None, scan: SuiteScan, tests_dir: Path
) -> tuple[Path | None, list[IndexRow], str | None]:
    """The first index file that yields rows; paths made relative to tests_dir."""
    candidates = [given] if given else scan.index_files
    problems = []
    for path in candidates:
        try:
            rows = read_index_file(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if not rows:
            continue
        bases = (path.parent, scan.root, tests_dir)
        fixed = []
        for row in rows:
            absolute = locate(row.path, bases).resolve()
            try:
                rel = absolute.relative_to(tests_dir.resolve()).as_posix()
            except ValueError:
                rel = row.path
            fixed.append(_with_path(row, rel))
        return path, fixed, None
    if given and not problems:
        problems.append(f"{given}: no table of test files with a priority, money or category")
    return None, [], "; ".join(problems) or None


def _with_path(row: IndexRow, path: str) -> IndexRow:
    return replace(row, path=path)


def _project_python(root: Path) -> str | None:
    for candidate in PROJECT_PYTHONS:
        if (root / candidate).is_file():
            return str(root / candidate)
    return None


def _absolute_python(python: str, config_dir: Path) -> str:
    path = Path(python).expanduser()
    if "/" in python and not path.is_absolute():
        return str((config_dir / path).absolute())
    return str(path.absolute()) if "/" in python else python


def _written_python(python: str, config_dir: Path) -> str:
    if "/" not in python:
        return python
    path = Path(_absolute_python(python, config_dir))
    try:
        return Path(os.path.relpath(path, config_dir.resolve())).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- the plan (pure)


def plan_phases(s: Survey) -> list[PhasePlan]:
    """Phases that select something: smoke = the highest priority the index has, then the rest.

    Without an index (or with one priority only), one phase runs every test.
    """
    rows = [r for r in s.index_rows if r.priority is not None]
    levels = sorted({r.priority for r in rows if r.priority is not None})
    if not levels:
        return [PhasePlan("all", (), _needs(s, None), sum(s.count(f) for f in s.test_files))]
    first = levels[0]
    smoke_files = {r.path for r in rows if r.priority == first}
    smoke = PhasePlan(
        "smoke",
        (first,),
        _needs(s, smoke_files),
        sum(s.count(f) for f in smoke_files),
        min_pass_rate=0.95,
        files=tuple(sorted(smoke_files)),
    )
    if len(levels) == 1:
        return [smoke]
    rest_files = {r.path for r in rows if r.priority != first}
    rest = PhasePlan(
        "expansion",
        tuple(levels[1:]),
        _needs(s, rest_files),
        sum(s.count(f) for f in rest_files),
        files=tuple(sorted(rest_files)),
    )
    return [smoke, rest]


def _needs(s: Survey, files: set[str] | None) -> tuple[str, ...]:
    """Components whose settings these files (or a conftest.py, or the project) read."""
    needed = []
    for target in active_targets(s):
        read_by = target.files
        if (
            files is None
            or not read_by
            or read_by & files
            or any(f.endswith("conftest.py") for f in read_by)
        ):
            needed.append(target.name)
    return tuple(needed)


def active_targets(s: Survey) -> list[Target]:
    """Targets to probe: those the indexed (else all) test files, a conftest or settings use.

    A variable or option the tests read, a URL a test connects with, and a client
    built with no address (see `targets`) are evidence; a URL seen only in the
    project's settings files is kept only when nothing better was found.
    """
    indexed = {r.path for r in s.index_rows}
    chosen = []
    for target in s.targets:
        if not target.settings and target.strength <= SETTINGS_FILE:
            continue
        read_by = target.files
        global_ = not read_by or any(f.endswith("conftest.py") for f in read_by)
        if global_ or not indexed or read_by & indexed:
            chosen.append(target)
    if not chosen and not any(t.settings or t.strength > SETTINGS_FILE for t in s.targets):
        chosen = list(s.targets)
    return chosen
