"""Cached test collections: a file's node ids under a key over its content (execute/listing.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, select

from greenloop.records import utcnow
from greenloop.store.base import Repository
from greenloop.store.schema import CollectionRow


class CollectionRepository(Repository):
    """The `collections` table."""

    def cached_collections(self, keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """{key: node ids} of the cached collections among `keys`."""
        wanted = list(keys)
        if not wanted:
            return {}
        with self.session() as s:
            rows = s.execute(
                select(CollectionRow.key, CollectionRow.nodeids).where(
                    CollectionRow.key.in_(wanted)
                )
            )
            return {key: tuple(nodeids) for key, nodeids in rows}

    def save_collections(self, collections: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        """Keep {key: (file, node ids)}; older entries of the same files are dropped."""
        if not collections:
            return
        now = utcnow()
        with self.session() as s:
            files = {file for file, _ in collections.values()}
            s.execute(
                delete(CollectionRow).where(
                    CollectionRow.file.in_(files) | CollectionRow.key.in_(list(collections))
                )
            )
            s.add_all(
                CollectionRow(key=key, file=file, nodeids=list(nodeids), collected_at=now)
                for key, (file, nodeids) in collections.items()
            )
