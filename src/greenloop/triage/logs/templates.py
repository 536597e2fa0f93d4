"""Group service log lines into templates with Drain3, so 14 "HTTP 503" lines read as one.

Drain3 keeps its state in memory (`MemoryBufferPersistence`, no file). Masking
is limited to what Drain's own numeric-token handling misses (UUIDs, IP:port,
long hex, ISO times); every extra regex costs time on every line. Exact repeat
lines (common in a burst) reuse the cluster Drain gave their first occurrence
instead of walking the tree again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from greenloop.triage.logs.base import LogRecord

if TYPE_CHECKING:
    from drain3.template_miner_config import TemplateMinerConfig

MASKS = (
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?", "TS"),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?", "IP"),
    (r"\b(?:0x)?[0-9a-fA-F]{12,}\b", "HEX"),
)


@dataclass(frozen=True, slots=True)
class LogTemplate:
    """One Drain3 template with how often and when it occurred."""

    template: str
    count: int
    level: str = ""
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    example: str = ""

    def line(self) -> str:
        """'14 x ERROR upstream returned HTTP <*> (12:00:01-12:58:40)' for the worklog."""
        when = ""
        if self.first_ts and self.last_ts:
            when = f" ({self.first_ts:%H:%M:%S}-{self.last_ts:%H:%M:%S})"
        level = f"{self.level} " if self.level else ""
        return f"{self.count} x {level}{self.template}{when}"


def miner_config() -> TemplateMinerConfig:
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.snapshot_compress_state = False
    config.snapshot_interval_minutes = 24 * 60
    config.drain_sim_th = 0.4
    config.drain_depth = 4
    config.drain_max_children = 100
    config.drain_max_clusters = 10_000
    config.parametrize_numeric_tokens = True
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
    return config


class TemplateCounter:
    """Feed lines, read templates with counts."""

    def __init__(self) -> None:
        # Drain3 (and jsonpickle, cachetools) only when there are log lines to group.
        from drain3 import TemplateMiner
        from drain3.memory_buffer_persistence import MemoryBufferPersistence

        self.miner = TemplateMiner(MemoryBufferPersistence(), miner_config())
        self.seen: dict[str, int] = {}  # exact line -> cluster id
        self.counts: dict[int, int] = {}
        self.meta: dict[int, tuple[str, datetime | None, datetime | None, str]] = {}

    def add(self, message: str, level: str = "", ts: datetime | None = None) -> int:
        cid = self.seen.get(message)
        if cid is None:
            cid = int(self.miner.add_log_message(message)["cluster_id"])
            if len(self.seen) < 200_000:
                self.seen[message] = cid
        self.counts[cid] = self.counts.get(cid, 0) + 1
        old = self.meta.get(cid)
        if old is None:
            self.meta[cid] = (level, ts, ts, message)
        elif ts is not None:
            first = old[1] if old[1] and old[1] <= ts else ts
            last = old[2] if old[2] and old[2] >= ts else ts
            self.meta[cid] = (old[0], first, last, old[3])
        return cid

    def templates(self, top: int | None = None) -> tuple[LogTemplate, ...]:
        """Most frequent first."""
        out = []
        for cid, count in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            cluster = self.miner.drain.id_to_cluster.get(cid)
            template = cluster.get_template() if cluster else ""
            level, first, last, example = self.meta[cid]
            out.append(LogTemplate(template, count, level, first, last, example))
            if top is not None and len(out) >= top:
                break
        return tuple(out)


def mine_templates(
    records: Iterable[LogRecord], *, top: int = 10, errors_only: bool = False
) -> tuple[LogTemplate, ...]:
    """The top templates of these records (errors only, if asked)."""
    counter = TemplateCounter()
    for record in records:
        if errors_only and not record.is_error:
            continue
        counter.add(template_text(record), record.level, record.ts)
    return counter.templates(top)


def template_text(record: LogRecord) -> str:
    """What a line says, for grouping: a structured request line is its message with the
    request, the status and the error it ended with ("error POST /threads/<*>/messages
    -> 500 KeyError: 'author_id'"), since the message of a JSON access log alone is just
    "request"."""
    if not record.path:
        return record.message
    status = f" -> {record.status}" if record.status is not None else ""
    error = f" {record.error_line}" if record.error_line else ""
    return f"{record.message} {record.method} {record.path}{status}{error}".strip()
