"""Fixtures of the remediation tests: the staging stand-in, the SQLite store, a started run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from remediation_staging import Staging, start_run

from greenloop.store import Store


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[Staging]:
    server = Staging(tmp_path)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def run_id(store: Store) -> str:
    return start_run(store, "run-1")
