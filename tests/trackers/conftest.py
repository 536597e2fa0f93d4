"""Stores for the tracker tests: a SQLite file and a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from greenloop.store import Store, store_url


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(store_url(f"sqlite:///{tmp_path / 'store.db'}", tmp_path))
    yield store
    store.close()


@pytest.fixture
def pg_store(pg_database: str) -> Iterator[Store]:
    store = Store.open(store_url(pg_database, Path(".")))
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    name = "sqlite_store" if request.param == "sqlite" else "pg_store"
    return request.getfixturevalue(name)
