"""The test index: each test file's priority, category and the money it guards.

Read from `index.path` (a TOML file of [[files]] tables, paths relative to it)
and `index.files` in greenloop.toml. Paths come back relative to
`execution.tests_dir`, the folder pytest runs in, so they prefix node ids.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from greenloop.config import Config, IndexFileConfig
from greenloop.errors import ConfigError
from greenloop.records import IndexEntry


def load_index(config: Config) -> tuple[IndexEntry, ...]:
    """Every index entry, from the index file first and then the inline table."""
    tests_dir = config.resolve(config.execution.tests_dir)
    entries: list[IndexEntry] = []
    if config.index.path:
        index_file = config.resolve(config.index.path)
        for item in _read_index_file(index_file):
            entries.append(_entry(item, index_file.parent, tests_dir))
    for item in config.index.files:
        entries.append(_entry(item, config.base_dir, tests_dir))
    return tuple(entries)


def entry_for(nodeid: str, index: tuple[IndexEntry, ...] | list[IndexEntry]) -> IndexEntry | None:
    """The index entry whose file the node id belongs to."""
    file = nodeid.split("::", 1)[0]
    return next((e for e in index if e.path == file), None)


def _read_index_file(path: Path) -> list[IndexFileConfig]:
    if not path.is_file():
        raise ConfigError(str(path), "", "test index file not found (index.path)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    unknown = set(raw) - {"files"}
    if unknown:
        raise ConfigError(str(path), sorted(unknown)[0], "unknown key (expected [[files]])")
    items: list[IndexFileConfig] = []
    for i, item in enumerate(raw.get("files", [])):
        try:
            items.append(IndexFileConfig.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(str(path), f"files[{i}].{key}", err["msg"]) from None
    return items


def _entry(item: IndexFileConfig, relative_to: Path, tests_dir: Path) -> IndexEntry:
    absolute = (relative_to / item.path).resolve()
    try:
        path = absolute.relative_to(tests_dir.resolve()).as_posix()
    except ValueError:
        path = absolute.as_posix()
    return IndexEntry(
        path=path,
        priority=item.priority,
        category=item.category,
        mrr_at_risk_usd=item.mrr_at_risk_usd,
        components=tuple(item.components),
        tags=tuple(item.tags),
        min_duration_ms=item.min_duration_ms,
    )
