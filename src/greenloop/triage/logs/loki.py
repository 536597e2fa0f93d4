"""Log source `loki`: Grafana Loki's HTTP API (`GET /loki/api/v1/query_range`).

Loki answers `{"status":"success","data":{"resultType":"streams","result":
[{"stream":{labels},"values":[["<ns epoch>","<line>"],...]}]}}`; each line is
parsed like a file line (JSON or text), and the entry's own timestamp wins.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from pydantic import Field

from greenloop.deadline import get_within
from greenloop.triage.logs.base import (
    LogBatch,
    LogRecord,
    LogSource,
    SourceOptions,
    parse_lines,
    record_from_line,
)


class LokiOptions(SourceOptions):
    url: str  # base URL, e.g. http://127.0.0.1:3100
    query: str = Field(min_length=1)  # LogQL, e.g. {app="api"} |= "error"
    limit: int = Field(5000, ge=1)
    timeout_s: float = Field(10.0, gt=0)
    org_id: str | None = None  # X-Scope-OrgID for multi-tenant Loki


class LokiSource(LogSource[LokiOptions]):
    Options = LokiOptions

    def read(self, start: datetime, end: datetime) -> LogBatch:
        params: dict[str, str | int] = {
            "query": self.options.query,
            "start": str(int(start.timestamp() * 1e9)),
            "end": str(int(end.timestamp() * 1e9)),
            "limit": self.options.limit,
            "direction": "forward",
        }
        headers = {"X-Scope-OrgID": self.options.org_id} if self.options.org_id else {}
        url = self.options.url.rstrip("/") + "/loki/api/v1/query_range"
        import httpx  # loaded when Loki is read, not when the kind is registered

        try:
            reply = get_within(url, self.options.timeout_s, params=params, headers=headers)
        except httpx.HTTPError as exc:
            return LogBatch(self.name, error=f"loki {url}: {type(exc).__name__}: {exc}")
        if reply.status_code != 200:
            return LogBatch(self.name, error=f"loki {url}: HTTP {reply.status_code}")
        try:
            streams = reply.json()["data"]["result"]
        except (ValueError, KeyError, TypeError):
            return LogBatch(self.name, error=f"loki {url}: reply is not a query_range result")
        records: list[LogRecord] = []
        malformed = 0
        for stream in streams:
            labels = stream.get("stream", {}) if isinstance(stream, dict) else {}
            for value in stream.get("values", []) if isinstance(stream, dict) else []:
                try:
                    ns, line = value
                    ts = datetime.fromtimestamp(int(ns) / 1e9, UTC)
                except (ValueError, TypeError):
                    malformed += 1
                    continue
                level = str(labels.get("level", "INFO"))
                if not str(line).lstrip().startswith("{"):
                    records.append(record_from_line(str(line), ts, self.name, level))
                    continue
                parsed, bad = parse_lines([line], self.name)
                malformed += bad
                records.extend(replace(rec, ts=ts, source=self.name) for rec in parsed)
        return LogBatch(self.name, tuple(records), malformed)
