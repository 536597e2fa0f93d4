"""Log source `command`: run a command (argv, no shell) that prints logs.

E.g. `["gcloud", "logging", "read", "severity>=ERROR", "--format=json", "--freshness=1h"]`.
Its output may be JSON lines, one JSON array (gcloud's --format=json) or text.
`{start}` and `{end}` in an argument are replaced by ISO 8601 times; nothing
from test output ever goes into the command.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import Field

from greenloop.process import run_argv
from greenloop.triage.logs.base import (
    LogBatch,
    LogRecord,
    LogSource,
    SourceOptions,
    in_window,
    parse_lines,
    record_from_json,
)


class CommandOptions(SourceOptions):
    argv: list[str] = Field(min_length=1)
    timeout_s: float = Field(30.0, gt=0)
    cwd: str | None = None


class CommandSource(LogSource[CommandOptions]):
    Options = CommandOptions

    def read(self, start: datetime, end: datetime) -> LogBatch:
        argv = [
            a.replace("{start}", start.isoformat()).replace("{end}", end.isoformat())
            for a in self.options.argv
        ]
        cwd = self.base_dir / self.options.cwd if self.options.cwd else self.base_dir
        done = run_argv(
            argv, timeout_s=self.options.timeout_s, cwd=cwd, stderr_apart=True, output_limit=None
        )
        if done.error:
            return LogBatch(self.name, error=done.error)
        if done.timed_out:
            return LogBatch(self.name, error=f"{argv[0]} timed out after {self.options.timeout_s}s")
        if done.exit_code != 0:
            tail = (done.stderr or done.output).strip().splitlines()[-1:] or [""]
            return LogBatch(self.name, error=f"{argv[0]} exited {done.exit_code}: {tail[0][:200]}")
        out = done.output
        if out.lstrip().startswith("["):
            return self._json_array(out, start, end)
        records, malformed = parse_lines(out.splitlines(), self.name)
        return LogBatch(self.name, in_window(records, start, end), malformed)

    def _json_array(self, out: str, start: datetime, end: datetime) -> LogBatch:
        try:
            entries = json.loads(out)
        except ValueError:
            return LogBatch(self.name, malformed=1, error="output is not valid JSON")
        records: list[LogRecord] = []
        malformed = 0
        for entry in entries if isinstance(entries, list) else []:
            try:
                records.append(record_from_json(entry, self.name))
            except (ValueError, TypeError, AttributeError):
                malformed += 1
        return LogBatch(self.name, in_window(records, start, end), malformed)
