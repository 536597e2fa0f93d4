"""The ORM (store/schema.py) and the Alembic migrations describe the same schema.

A fresh database upgraded to head by the migrations must match `Base.metadata` in every
table, column, type, nullability, index and unique constraint, on SQLite and on the real
PostgreSQL: a column added to schema.py without a migration (or the reverse) fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from greenloop.store import Store, store_url
from greenloop.store.schema import Base


def _drift(url: str) -> tuple[list[Any], set[str]]:
    """What autogenerate would change on a freshly migrated database, and its tables."""
    store = Store.open(url)  # runs every migration on the fresh database
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata)), set(
                inspect(conn).get_table_names()
            )
    finally:
        store.close()


def test_a_fresh_sqlite_store_matches_the_orm(tmp_path: Path) -> None:
    diff, tables = _drift(f"sqlite:///{tmp_path / 'store.db'}")
    assert diff == [], f"schema.py and the migrations disagree on SQLite: {diff}"
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


@pytest.mark.postgres
def test_a_fresh_postgresql_store_matches_the_orm(pg_database: str) -> None:
    diff, tables = _drift(store_url(pg_database, Path(".")))
    assert diff == [], f"schema.py and the migrations disagree on PostgreSQL: {diff}"
    assert set(Base.metadata.tables) | {"alembic_version"} == tables
