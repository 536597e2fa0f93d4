"""Where the store lives: its URL from the environment, the config or the default, checked."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from greenloop.errors import ConfigError

STORE_URL_ENV = "GREENLOOP_STORE_URL"
_SCHEMES = ("sqlite", "postgresql", "postgres")
_SQLITE_HEADER = b"SQLite format 3\x00"


def store_url(configured: str | None, base_dir: Path) -> str:
    """The URL to open: the environment wins, then the config, then SQLite beside the config."""
    url = os.environ.get(STORE_URL_ENV) or configured
    if not url:
        folder = base_dir / ".greenloop"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'store.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver we ship; plain URLs mean it.
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def store_url_problem(url: str) -> str | None:
    """What is wrong with a store URL, in words, or None when it can be opened as a store.

    Checks the form only (scheme, database name, that an existing SQLite path is a
    SQLite file); it connects to nothing and never echoes the URL (it may hold a password).
    """
    try:
        parsed = make_url(url)
        scheme, _, driver = parsed.drivername.partition("+")
        database = parsed.database
        port = parsed.port
    except (ArgumentError, ValueError):
        return "not a database URL (expected sqlite:///path/store.db or postgresql://host/db)"
    if scheme not in _SCHEMES:
        return (
            f"unsupported store scheme {parsed.drivername!r} "
            "(expected sqlite:///path/store.db or postgresql://user@host:5432/dbname)"
        )
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    if scheme != "sqlite":
        if driver not in ("", "psycopg"):
            return f"unsupported PostgreSQL driver {driver!r} (greenloop ships psycopg)"
        if not database:
            return (
                "a postgresql store URL must name a database "
                "(postgresql://user@host:5432/greenloop); none would mean the server's default"
            )
        return None
    if driver not in ("", "pysqlite"):
        return f"unsupported SQLite driver {driver!r}"
    if not database or database == ":memory:":
        return "a SQLite store needs a file path (sqlite:///path/store.db)"
    path = Path(database).expanduser()
    if path.is_dir():
        return f"{path} is a folder, not a SQLite database file"
    if path.is_file():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            return f"{path}: cannot read: {exc.strerror}"
        if header and header != _SQLITE_HEADER:
            return f"{path} exists and is not a SQLite database"
    return None


def validate_store(config: object) -> None:
    """Check the store URL (environment or config) at load time; ConfigError if unusable."""
    env_url = os.environ.get(STORE_URL_ENV)
    store = getattr(config, "store", None)
    url = env_url or getattr(store, "url", None)
    if not url:
        return
    problem = store_url_problem(store_url(url, Path(".")))
    if problem:
        key = f"environment variable {STORE_URL_ENV}" if env_url else "store.url"
        raise ConfigError(str(getattr(config, "source", "greenloop.toml")), key, problem)
