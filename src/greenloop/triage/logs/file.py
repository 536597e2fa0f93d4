"""Log source `file`: a JSON-lines or text log file on this machine."""

from __future__ import annotations

from datetime import datetime

from greenloop.triage.logs.base import LogBatch, LogSource, SourceOptions, in_window, parse_lines


class FileOptions(SourceOptions):
    path: str


class FileSource(LogSource[FileOptions]):
    Options = FileOptions

    def read(self, start: datetime, end: datetime) -> LogBatch:
        path = self.base_dir / self.options.path
        if not path.is_file():
            return LogBatch(self.name, error=f"log file {path} not found")
        with path.open(encoding="utf-8", errors="replace") as fh:
            records, malformed = parse_lines(fh, self.name)
        return LogBatch(self.name, in_window(records, start, end), malformed)
