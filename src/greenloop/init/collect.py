"""Exact test counts from pytest's own collection (I/O: one short subprocess).

`pytest --collect-only -qqq` prints each file with its number of collected
tests, so parametrised tests count once per case. When it cannot run (pytest missing
from the interpreter, an import error, the time limit), `Collection.error`
says why in one line and `greenloop init` falls back to counting `def test`;
a file that does not import is listed with the first line of its error.

It imports the suite as the user's `python -m pytest <tests>` from the project
root does, and as `greenloop run` does (`execute.interpreter.import_root` picks
the folder): it goes on PYTHONPATH (after the user's own entries), so a suite that imports
its own `tests` package collects; PYTHONSAFEPATH=1 keeps the tests folder, the
working directory, off the front of sys.path.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from greenloop.process import run_argv

COLLECT_TIMEOUT_S = 60.0
_FILE_COUNT = re.compile(r"^(\S.*?\.py): (\d+)$")
_ERROR_SECTION = re.compile(r"^_+ ERROR collecting (\S.*?) _+$")


@dataclass(frozen=True)
class Collection:
    """Tests per file (paths relative to tests_dir), or why collection failed."""

    counts: dict[str, int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # files pytest could not import, with the error's last line
    error: str | None = None  # None when pytest collected

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def collect(
    python: str,
    tests_dir: Path,
    files: list[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = COLLECT_TIMEOUT_S,
    root: Path | None = None,
) -> Collection:
    """Run `python -m pytest --collect-only -q` in tests_dir over `files` (all when None).

    `root`: the project folder, put on PYTHONPATH as `python -m pytest` run from
    there would put it on sys.path (None: the tests folder's own imports only).
    """
    tests_dir = tests_dir.resolve()
    argv = [
        python,
        "-m",
        "pytest",
        "--collect-only",
        # Below -1 pytest prints "file: count" lines; three -q outweigh a -v in addopts.
        "-qqq",
        "--rootdir",
        str(tests_dir),
        "-p",
        "no:cacheprovider",
        "--continue-on-collection-errors",
        *(files or []),
    ]
    run_env = {**os.environ, **(env or {})}
    run_env.pop("PYTEST_ADDOPTS", None)
    run_env["PYTHONSAFEPATH"] = "1"
    if root is not None and root.resolve() != tests_dir:
        theirs = [
            p for p in run_env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(root)
        ]
        run_env["PYTHONPATH"] = os.pathsep.join([*theirs, str(root.resolve())])
    done = run_argv(
        argv,
        timeout_s=timeout_s,
        cwd=tests_dir,
        env=run_env,
        inherit_env=False,
        stderr_apart=True,
        output_limit=None,
    )
    if done.timed_out:
        return Collection(error=f"pytest did not finish collecting within {timeout_s:g} s")
    if done.error or done.exit_code is None:
        return Collection(error=f"could not start {python}: {done.error}")
    return parse_collect_output(done.output, done.stderr, done.exit_code)


def parse_collect_output(stdout: str, stderr: str, returncode: int) -> Collection:
    """Counts per file from `--collect-only -q` output (pure)."""
    counts: Counter[str] = Counter()
    errors: list[str] = []
    reasons = _error_reasons(stdout)
    for line in stdout.splitlines():
        per_file = _FILE_COUNT.match(line)
        if per_file:
            counts[per_file.group(1)] += int(per_file.group(2))
        elif "::" in line and not line.startswith((" ", "ERROR", "FAILED")):
            counts[line.split("::", 1)[0].strip()] += 1
        elif line.startswith("ERROR "):
            error = line.removeprefix("ERROR ").strip()
            path = error.split(" - ", 1)[0].strip()
            if " - " not in error and reasons.get(path):
                error = f"{path} - {reasons[path]}"
            errors.append(error)
    if returncode in (0, 5) or counts:
        return Collection(counts=dict(counts), errors=tuple(errors))
    text = (stderr.strip() or stdout.strip()).splitlines()
    last = text[-1].strip() if text else f"exit code {returncode}"
    if "No module named pytest" in stderr:
        last = "pytest is not installed in that interpreter"
    return Collection(errors=tuple(errors), error=f"pytest could not collect: {last[:300]}")


def _error_reasons(stdout: str) -> dict[str, str]:
    """File -> the first `E   ` line of its "ERROR collecting" section (the exception)."""
    reasons: dict[str, str] = {}
    current = None
    for line in stdout.splitlines():
        section = _ERROR_SECTION.match(line)
        if section:
            current = section.group(1)
            continue
        if line.startswith("=") or line.startswith("_"):
            current = None
        elif current and line.startswith("E ") and current not in reasons:
            reasons[current] = line[1:].strip()[:200]
    return reasons
