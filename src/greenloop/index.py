"""The test index: each test file's priority, category and the money it guards.

Read from `index.path` (a markdown table, a TOML file of [[files]] tables or a
YAML list: see `greenloop.indexfile`) and `index.files` in greenloop.toml.
Paths written in greenloop.toml are relative to the config file's folder (when
no such file exists there, tests_dir is tried); paths inside an index file are
relative to that file's folder, like links in a markdown file (when no such
file exists there, the config folder and then tests_dir are tried). Paths come
back relative to `execution.tests_dir`, the folder pytest runs in, so they
prefix node ids.
"""

from __future__ import annotations

from pathlib import Path

from greenloop.config import Config, IndexFileConfig
from greenloop.indexfile import IndexRow, read_index_file
from greenloop.records import IndexEntry


def load_index(config: Config) -> tuple[IndexEntry, ...]:
    """Every index entry, from the index file first and then the inline table.

    Raises ConfigError for a missing or unreadable index file.
    """
    tests_dir = config.resolve(config.execution.tests_dir).resolve()  # once, not per entry
    entries: list[IndexEntry] = []
    if config.index.path:
        index_file = config.resolve(config.index.path)
        bases = (index_file.parent, config.base_dir, tests_dir)
        for row in read_index_file(index_file):
            entries.append(_row_entry(row, bases, tests_dir))
    for item in config.index.files:
        entries.append(_entry(item, (config.base_dir, tests_dir), tests_dir))
    return tuple(entries)


def entry_for(nodeid: str, index: tuple[IndexEntry, ...] | list[IndexEntry]) -> IndexEntry | None:
    """The index entry whose file the node id belongs to."""
    file = nodeid.split("::", 1)[0]
    return next((e for e in index if e.path == file), None)


def locate(path: str, bases: tuple[Path, ...]) -> Path:
    """The first base under which `path` exists, else the first base (absolute paths stay)."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    for base in bases:
        if (base / candidate).exists():
            return base / candidate
    return bases[0] / candidate


def _row_entry(row: IndexRow, bases: tuple[Path, ...], tests_dir: Path) -> IndexEntry:
    defaults = IndexEntry(path="")
    return IndexEntry(
        path=_tests_relative(locate(row.path, bases), tests_dir),
        priority=defaults.priority if row.priority is None else row.priority,
        category=row.category or defaults.category,
        mrr_at_risk_usd=row.mrr_at_risk_usd or 0.0,
        components=row.components,
        tags=row.tags,
        min_duration_ms=row.min_duration_ms,
    )


def _entry(item: IndexFileConfig, bases: tuple[Path, ...], tests_dir: Path) -> IndexEntry:
    return IndexEntry(
        path=_tests_relative(locate(item.path, bases), tests_dir),
        priority=item.priority,
        category=item.category,
        mrr_at_risk_usd=item.mrr_at_risk_usd,
        components=tuple(item.components),
        tags=tuple(item.tags),
        min_duration_ms=item.min_duration_ms,
    )


def _tests_relative(path: Path, tests_dir: Path) -> str:
    """`path` relative to `tests_dir` (already resolved), else absolute."""
    absolute = path.resolve()
    try:
        return absolute.relative_to(tests_dir).as_posix()
    except ValueError:
        return absolute.as_posix()
