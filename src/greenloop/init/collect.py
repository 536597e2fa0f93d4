"""Exact test counts from pytest's own collection (I/O: one short subprocess).

`pytest --collect-only -qqq` prints each file with its number of collected
tests, so parametrised tests count once per case. When it cannot run (pytest missing
from the interpreter, an import error, the time limit), `Collection.error`
says why in one line and `greenloop init` falls back to counting `def test`.
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
) -> Collection:
    """Run `python -m pytest --collect-only -q` in tests_dir over `files` (all when None)."""
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
    for line in stdout.splitlines():
        per_file = _FILE_COUNT.match(line)
        if per_file:
            counts[per_file.group(1)] += int(per_file.group(2))
        elif "::" in line and not line.startswith((" ", "ERROR", "FAILED")):
            counts[line.split("::", 1)[0].strip()] += 1
        elif line.startswith("ERROR "):
            errors.append(line.removeprefix("ERROR ").strip())
    if returncode in (0, 5) or counts:
        return Collection(counts=dict(counts), errors=tuple(errors))
    text = (stderr.strip() or stdout.strip()).splitlines()
    last = text[-1].strip() if text else f"exit code {returncode}"
    if "No module named pytest" in stderr:
        last = "pytest is not installed in that interpreter"
    return Collection(errors=tuple(errors), error=f"pytest could not collect: {last[:300]}")
