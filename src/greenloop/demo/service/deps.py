"""The service's dependencies: a SQL database (SQLite or PostgreSQL) and a cache (memory or Redis).

A dependency that is "down" is a real client pointed at a loopback port nothing listens on,
so the error the service reports is the driver's own connection-refused error.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url


class DependencyError(Exception):
    """A dependency could not serve a request; carries its name and address."""

    def __init__(self, dependency: str, address: str, cause: BaseException) -> None:
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        verb = "connection refused to" if "refused" in str(cause).lower() else "cannot reach"
        super().__init__(f"{verb} {dependency} at {address}: {type(cause).__name__}: {text}")
        self.dependency = dependency
        self.address = address


def refused_port() -> int:
    """A loopback port nothing listens on: bound once to reserve a number, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlalchemy_url(url: str) -> str:
    """Map ``postgresql://`` to the psycopg 3 driver; leave other URLs alone."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def with_port(url: str, port: int) -> str:
    """``url`` pointed at 127.0.0.1:``port`` (same driver, user and database)."""
    parsed = make_url(sqlalchemy_url(url))
    if parsed.drivername.startswith("sqlite"):
        parsed = make_url("postgresql+psycopg://postgres@127.0.0.1/greenloop")
    parsed = parsed.set(host="127.0.0.1", port=port, query={"connect_timeout": "2"})
    return parsed.render_as_string(hide_password=False)


metadata = sa.MetaData()
threads = sa.Table(
    "demo_threads",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)
messages = sa.Table(
    "demo_messages",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("thread_id", sa.String(36), nullable=False, index=True),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)
agent_runs = sa.Table(
    "demo_agent_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("tool_name", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

Row = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Database:
    """Threads, messages and agent runs in a SQL database, through SQLAlchemy Core."""

    name = "database"

    def __init__(self, url: str, delay: Callable[[], float] = lambda: 0.0) -> None:
        self.url = sqlalchemy_url(url)
        parsed = make_url(self.url)
        if parsed.drivername.startswith("sqlite"):
            self.address = parsed.database or ":memory:"
            args: dict[str, Any] = {"check_same_thread": False, "timeout": 10}
            self.engine = sa.create_engine(self.url, connect_args=args)
        else:
            self.address = f"{parsed.host}:{parsed.port or 5432}"
            self.engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=5)
        self._delay = delay
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A transaction; slow-db sleeps here, driver errors become DependencyError."""
        delay = self._delay()
        if delay > 0:
            time.sleep(delay)
        try:
            with self.engine.begin() as conn:
                yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise DependencyError(self.name, self.address, exc.orig or exc) from exc

    def _ready(self) -> None:
        """Create the tables on first use (so a database down at start does not stop us)."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                try:
                    metadata.create_all(self.engine)
                except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                    raise DependencyError(self.name, self.address, exc.orig or exc) from exc
                self._schema_ready = True

    def ping(self) -> None:
        """One round trip (``SELECT 1``)."""
        with self._connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def create_thread(self, owner: str, title: str) -> Row:
        """Insert a thread and return it."""
        self._ready()
        row = {"id": str(uuid.uuid4()), "owner": owner, "title": title, "created_at": _now()}
        with self._connect() as conn:
            conn.execute(threads.insert().values(**row))
        return row

    def get_thread(self, thread_id: str) -> Row | None:
        """The thread with ``thread_id``, or None."""
        self._ready()
        with self._connect() as conn:
            found = conn.execute(threads.select().where(threads.c.id == thread_id)).mappings()
            first = found.first()
        return dict(first) if first else None

    def list_threads(self, owner: str, limit: int) -> list[Row]:
        """The owner's threads, newest first."""
        self._ready()
        query = (
            threads.select()
            .where(threads.c.owner == owner)
            .order_by(threads.c.created_at.desc(), threads.c.id)
            .limit(limit)
        )
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def add_message(self, thread_id: str, author: str, content: str) -> Row:
        """Append a message to a thread and return it."""
        self._ready()
        row = {
            "id": str(uuid.uuid4()),
            "thread_id": thread_id,
            "author": author,
            "content": content,
            "created_at": _now(),
        }
        with self._connect() as conn:
            conn.execute(messages.insert().values(**row))
        return row

    def list_messages(self, thread_id: str) -> list[Row]:
        """A thread's messages in the order they were posted."""
        self._ready()
        query = messages.select().where(messages.c.thread_id == thread_id).order_by(messages.c.seq)
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def search_messages(self, owner: str, text: str, limit: int = 20) -> list[Row]:
        """The owner's messages containing ``text``."""
        self._ready()
        query = (
            sa.select(messages)
            .join(threads, threads.c.id == messages.c.thread_id)
            .where(threads.c.owner == owner, messages.c.content.contains(text, autoescape=True))
            .order_by(messages.c.seq)
            .limit(limit)
        )
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def record_run(self, run: Row) -> None:
        """Persist a finished agent run."""
        self._ready()
        with self._connect() as conn:
            conn.execute(agent_runs.insert().values(**run))

    def get_run(self, run_id: str) -> Row | None:
        """The agent run ``run_id``, or None."""
        self._ready()
        with self._connect() as conn:
            first = (
                conn.execute(agent_runs.select().where(agent_runs.c.run_id == run_id))
                .mappings()
                .first()
            )
        return dict(first) if first else None

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


class Cache(Protocol):
    """Session storage: what the service needs from a cache."""

    name: str
    address: str

    def ping(self) -> None: ...
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl_s: int) -> None: ...
    def delete(self, key: str) -> None: ...
    def close(self) -> None: ...


@dataclass
class MemoryCache:
    """An in-process cache with expiry, the default when no Redis URL is given."""

    name: str = "cache"
    address: str = "in-process"

    def __post_init__(self) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def ping(self) -> None:
        """Always reachable."""

    def get(self, key: str) -> str | None:
        """The value under ``key`` unless expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[1] < time.monotonic():
                self._items.pop(key, None)
                return None
            return item[0]

    def set(self, key: str, value: str, ttl_s: int) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds."""
        with self._lock:
            self._items[key] = (value, time.monotonic() + ttl_s)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._items.pop(key, None)

    def close(self) -> None:
        """Nothing to release."""


class RedisCache:
    """A Redis-backed cache; keys live under ``prefix`` so tests can share a server."""

    name = "cache"

    def __init__(self, url: str, prefix: str = "greenloop-demo:") -> None:
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True
        )
        kwargs = self._client.connection_pool.connection_kwargs
        self.address = f"{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"
        self.prefix = prefix

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise DependencyError(self.name, self.address, exc) from exc

    def ping(self) -> None:
        """One round trip (``PING``)."""
        self._call(self._client.ping)

    def get(self, key: str) -> str | None:
        """The value under ``key``."""
        value = self._call(lambda: self._client.get(self.prefix + key))
        return None if value is None else str(value)

    def set(self, key: str, value: str, ttl_s: int) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds."""
        self._call(lambda: self._client.set(self.prefix + key, value, ex=ttl_s))

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._call(lambda: self._client.delete(self.prefix + key))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def make_cache(url: str | None, prefix: str) -> Cache:
    """The in-process cache, or Redis when ``url`` is a redis:// URL."""
    if not url:
        return MemoryCache()
    return RedisCache(url, prefix)


def refused_cache(url: str | None, prefix: str) -> Cache:
    """A Redis client pointed at a loopback port nothing listens on."""
    db = "0"
    if url and "/" in url.split("://", 1)[-1]:
        db = url.rsplit("/", 1)[-1] or "0"
    return RedisCache(f"redis://127.0.0.1:{refused_port()}/{db}", prefix)


def refused_database(url: str, delay: Callable[[], float]) -> Database:
    """A PostgreSQL client (same database name as ``url``) pointed at a refused port."""
    return Database(with_port(url, refused_port()), delay)
