"""Log sources (`[[triage.logs]]`): the registry of kinds, and the reading of them all.

`base.py` says what a kind is (`LogSource`); each kind is one file (`file.py`,
`command.py`, `loki.py`) and adding one is one line below.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenloop.kinds import Registry
from greenloop.triage.logs.base import LogBatch, LogRecord, LogSource, parse_lines
from greenloop.triage.logs.command import CommandSource
from greenloop.triage.logs.file import FileSource
from greenloop.triage.logs.loki import LokiSource

if TYPE_CHECKING:
    from greenloop.config import Config, LogSourceConfig

LOG_SOURCES: Registry[type[LogSource[Any]]] = Registry("log source")
LOG_SOURCES.add("file", FileSource)
LOG_SOURCES.add("command", CommandSource)
LOG_SOURCES.add("loki", LokiSource)

__all__ = [
    "LOG_SOURCES",
    "LogBatch",
    "LogRecord",
    "LogSource",
    "open_source",
    "parse_lines",
    "read_logs",
    "validate_log_sources",
]


def open_source(
    config: LogSourceConfig, base_dir: Path, file: str = "greenloop.toml"
) -> LogSource[Any]:
    """The configured source, built (reads nothing); a mistake is a ConfigError naming the key."""
    kind, options = LOG_SOURCES.resolve(
        config.kind, config.options(), file=file, section=f"triage.logs[{config.name}]"
    )
    return kind.build(options, name=config.name, base_dir=base_dir)


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
