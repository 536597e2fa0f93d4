"""`greenloop init`: a commented starter greenloop.toml for an existing pytest tree.

The work is done by `greenloop.init` (scan, index, collection, targets, render);
this module keeps the one-call entry point.
"""

from __future__ import annotations

from pathlib import Path

from greenloop.init import Survey, survey
from greenloop.init.render import render_config


def starter_config(tests_dir: Path, config_dir: Path, **options: object) -> str:
    """The text of a starter config for `tests_dir` (options: see `starter_survey`)."""
    return starter_survey(tests_dir, config_dir, **options)[0]  # type: ignore[arg-type]


def starter_survey(
    tests_dir: Path,
    config_dir: Path,
    *,
    python: str | None = None,
    index: Path | None = None,
    run_collection: bool = True,
) -> tuple[str, Survey]:
    """The text of a starter config for `tests_dir`, and the survey it was written from."""
    found = survey(tests_dir, config_dir, python=python, index=index, run_collection=run_collection)
    return render_config(found), found
