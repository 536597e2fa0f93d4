"""Log sources (`[[triage.logs]]`): base.py + one file per kind + this registry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from greenloop.config import Config, LogSourceConfig
from greenloop.errors import ConfigError
from greenloop.triage.logs.base import LogBatch, LogRecord, LogSource, parse_lines
from greenloop.triage.logs.command import CommandSource
from greenloop.triage.logs.file import FileSource
from greenloop.triage.logs.loki import LokiSource

KINDS: dict[str, type[LogSource]] = {
    FileSource.kind: FileSource,
    CommandSource.kind: CommandSource,
    LokiSource.kind: LokiSource,
}

__all__ = [
    "KINDS",
    "LogBatch",
    "LogRecord",
    "LogSource",
    "open_source",
    "parse_lines",
    "read_logs",
    "validate_log_sources",
]


def open_source(config: LogSourceConfig, base_dir: Path, file: str = "greenloop.toml") -> LogSource:
    kind = KINDS.get(config.kind)
    if kind is None:
        raise ConfigError(
            file,
            f"triage.logs[{config.name}].kind",
            f"unknown log source kind {config.kind!r} (expected one of {', '.join(sorted(KINDS))})",
        )
    return kind(config, base_dir, file)


def validate_log_sources(config: Config) -> None:
    """Build every `[[triage.logs]]` source once at load time (reads nothing)."""
    for source in config.triage.logs:
        open_source(source, config.base_dir, str(config.source))


def read_logs(
    configs: Sequence[LogSourceConfig],
    start: datetime,
    end: datetime,
    *,
    base_dir: Path,
    file: str = "greenloop.toml",
) -> list[LogBatch]:
    """Read every configured source for one window; a failing source reports, not raises."""
    return [open_source(cfg, base_dir, file).read(start, end) for cfg in configs]
