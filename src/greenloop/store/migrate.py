"""The schema's migrations: Alembic, run when a store is opened, one migrator at a time."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).parent / "migrations"
# Held (pg_advisory_xact_lock) while migrating, so two first runs on one fresh database
# take turns instead of both creating the tables. Any constant of our own; "gl15".
_MIGRATION_LOCK_ID = 0x676C3135


def migration_heads() -> set[str]:
    """The newest revision ids, read from the migration files' `revision =` lines.

    Importing Alembic costs more than the rest of a blocked run; reading the
    few files tells whether it is needed at all.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = re.search(r"^revision\s*=\s*[\"']([^\"']+)", source, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", source, re.M)
        if found:
            revisions.add(found.group(1))
        if down:
            revised.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return revisions - revised


def schema_is_current(engine: Engine) -> bool:
    """True when the database already stands at every migration head."""
    try:
        with engine.connect() as conn:
            versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:
        return False  # no table yet (a new store), or it cannot be read: let Alembic decide
    return bool(versions) and versions == migration_heads()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration with Alembic, one migrator at a time."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    with _migration_file_lock(engine), engine.begin() as conn:
        _migration_advisory_lock(conn)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _migration_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive flock on `<database>.lock` for SQLite; nothing for other databases.

    A separate file: locking the database file itself would fight SQLite's own locks.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database:
        yield
        return
    with open(f"{database}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _migration_advisory_lock(conn: Connection) -> None:
    """On PostgreSQL, wait for any other migrator; released when the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
