"""Pages of the dashboard's lists: a bounded page size, one count and one page query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from greenloop.records import Outcome

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_FAILURES = tuple(o.value for o in Outcome if o.is_failure)
_EXECUTED = ("passed", *_FAILURES)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list: `items`, and where it sits in the `total`."""

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + self.limit
        return end if end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(self.offset - self.limit, 0) if self.offset > 0 else None


def clamp_limit(limit: int | None) -> int:
    """A page size the store can afford: 1..MAX_LIMIT, DEFAULT_LIMIT when not given."""
    if limit is None:
        return DEFAULT_LIMIT
    return min(max(int(limit), 1), MAX_LIMIT)


def page_rows(
    s: Session, table: Any, where: list[Any], order: tuple[Any, ...], limit: int, offset: int
) -> tuple[int, list[Any]]:
    """(rows matching `where` in all, one page of them in `order`)."""
    total = int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)
    rows = list(s.scalars(select(table).where(*where).order_by(*order).limit(limit).offset(offset)))
    return total, rows


def seconds_between(start: datetime, end: datetime) -> float:
    """Seconds from start to end (never negative); naive SQLite times are UTC."""
    return max(
        (
            end.replace(tzinfo=end.tzinfo or UTC) - start.replace(tzinfo=start.tzinfo or UTC)
        ).total_seconds(),
        0.0,
    )
