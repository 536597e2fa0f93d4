"""Which calls in a test file connect to a server (pure: reads an AST).

A URL literal says a server exists only when the suite connects with it: passed
to a connect function or a client's constructor (directly, or through a name the
same file assigns it to). A literal that a test merely parses, compares or hands
to a class under test is no evidence (`databases`' URL-parsing tests name
``postgresql://username:password@localhost:123/...``).

A client constructed with no address at all reaches its library's default
server (``redis.Redis()`` is localhost:6379): `CLIENT_LIBRARIES` maps a library
to the scheme of that server, and its `DEFAULT_PORT` (greenloop.ports) gives the
port. A class named after a client (``RedisHuey``, ``PriorityRedisHuey``) is
taken as a wrapper of it with the same default.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# Library (top-level module) -> (the URL scheme of its server, its client classes/functions).
CLIENT_LIBRARIES: dict[str, tuple[str, frozenset[str]]] = {
    "redis": ("redis", frozenset({"Redis", "StrictRedis", "RedisCluster", "from_url"})),
    "valkey": ("redis", frozenset({"Valkey", "StrictValkey", "from_url"})),
    "aioredis": ("redis", frozenset({"Redis", "StrictRedis", "from_url", "create_redis_pool"})),
    "psycopg": ("postgresql", frozenset({"connect", "Connection", "AsyncConnection"})),
    "psycopg2": ("postgresql", frozenset({"connect"})),
    "psycopg_pool": ("postgresql", frozenset({"ConnectionPool", "AsyncConnectionPool"})),
    "asyncpg": ("postgresql", frozenset({"connect", "create_pool"})),
    "aiopg": ("postgresql", frozenset({"connect", "create_pool"})),
    "pg8000": ("postgresql", frozenset({"connect", "Connection"})),
    "pymysql": ("mysql", frozenset({"connect", "Connection"})),
    "MySQLdb": ("mysql", frozenset({"connect"})),
    "aiomysql": ("mysql", frozenset({"connect", "create_pool"})),
    "pymongo": ("mongodb", frozenset({"MongoClient"})),
    "motor": ("mongodb", frozenset({"AsyncIOMotorClient"})),
}
# A word in a class's CamelCase name -> the scheme of the client it is named after.
CLIENT_WORDS = {"Redis": "redis", "Valkey": "redis", "Mongo": "mongodb"}
# Names that are no client of an existing server even when named after one: errors, test
# doubles, and servers or containers a fixture starts (testcontainers' RedisContainer()).
NOT_CLIENT = re.compile(
    r"(Error|Exception|Warning|Fake|Mock|Stub|Dummy|Test|Container|Server|Settings|Config)"
)
# Functions and constructors that connect with the URL they are given, whatever the library.
CONNECT_CALLS = frozenset(
    {
        "connect",
        "create_engine",
        "create_async_engine",
        "create_pool",
        "from_url",
        "Database",
        "urlopen",
        "ws_connect",
        "create_connection",
        "request",
        "get",
        "post",
        "put",
        "delete",
        "head",
        "options",
        *(name for _, names in CLIENT_LIBRARIES.values() for name in names),
    }
)
# Constructor names that end like a client's (httpx.Client(base_url=...), SomePool(url)).
CLIENT_SUFFIX = re.compile(r"(Client|Pool|Session|Connection|Engine)$")
# Keyword arguments that give an address: a call with one of them is not "no address".
ADDRESS_KEYWORDS = frozenset(
    {
        "host",
        "hosts",
        "port",
        "url",
        "uri",
        "dsn",
        "conninfo",
        "address",
        "unix_socket_path",
        "unix_socket",
        "connection_pool",
        "pool",
        "server",
        "servers",
        "startup_nodes",
        "base_url",
        "database_url",
        "path",
        "client",
        "conn",
        "connection",
    }
)


@dataclass(frozen=True)
class ClientDefault:
    """A client built with no address: it reaches its library's default server."""

    scheme: str  # e.g. "redis"
    call: str  # the call as written, e.g. "RedisHuey()"
    file: str  # relative to the tests folder


def imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted thing it names, from the file's import statements."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, imported: dict[str, str]) -> str | None:
    """`a.b.c` for a call's function, with the first name resolved through the imports."""
    if isinstance(node, ast.Name):
        return imported.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, imported)
        return f"{owner}.{node.attr}" if owner else None
    return None


def call_name(node: ast.Call) -> str | None:
    """The last name of the called thing: `connect` for `psycopg.connect(...)`."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def is_connect_call(node: ast.Call) -> bool:
    """A call that connects with the address it is given (see CONNECT_CALLS)."""
    name = call_name(node)
    if name is None:
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and (
        (name == "get" and _is_environ_like(func.value)) or name == "getenv"
    ):
        return False
    if name in CONNECT_CALLS:
        return True
    return not NOT_CLIENT.search(name) and (
        bool(CLIENT_SUFFIX.search(name)) or _named_after_client(name) is not None
    )


def _named_after_client(name: str) -> str | None:
    """The scheme of the client a CamelCase class is named after (RedisHuey -> redis)."""
    if not name[:1].isupper():
        return None
    for word in re.findall(r"[A-Z][a-z0-9]+", name):
        if word in CLIENT_WORDS:
            return CLIENT_WORDS[word]
    return None


def _is_environ_like(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def connected_literals(tree: ast.AST) -> set[int]:
    """ids of the string constants a connect call is given, directly or through a name.

    `URL = "redis://..."` then `Redis.from_url(URL)` counts; so does
    `DSN = os.environ.get("X") or "postgresql://..."` then `connect(DSN)`.
    """
    assigned: dict[str, list[ast.Constant]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            strings = [
                n
                for n in ast.walk(node.value)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            for target in node.targets:
                if isinstance(target, ast.Name | ast.Attribute) and strings:
                    key = target.id if isinstance(target, ast.Name) else target.attr
                    assigned.setdefault(key, []).extend(strings)
    found: set[int] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and is_connect_call(node)):
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            for part in ast.walk(arg):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found.add(id(part))
                elif isinstance(part, ast.Name | ast.Attribute):
                    key = part.id if isinstance(part, ast.Name) else part.attr
                    found.update(id(c) for c in assigned.get(key, []))
    return found


def client_defaults(tree: ast.AST, rel: str) -> list[ClientDefault]:
    """Clients of `CLIENT_LIBRARIES` (or classes named after one) called with no address."""
    imported = imports(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node)
        dotted = _dotted(node.func, imported)
        if name is None or dotted is None:
            continue
        scheme, wrapper = _client_scheme(name, dotted)
        if scheme and _no_address(node, wrapper):
            found.append(ClientDefault(scheme, f"{name}()", rel))
    return found


def _client_scheme(name: str, dotted: str) -> tuple[str | None, bool]:
    """(scheme, whether it is only named after a client) for a called name."""
    library = dotted.split(".", 1)[0]
    if library in CLIENT_LIBRARIES:
        scheme, names = CLIENT_LIBRARIES[library]
        return (scheme, False) if name in names else (None, False)
    if NOT_CLIENT.search(name):
        return None, True
    return _named_after_client(name), True


def _no_address(node: ast.Call, wrapper: bool) -> bool:
    """True when the call names no server: no address keyword, no `**kwargs`, and no
    positional argument (a wrapper may take a plain name such as a queue's)."""
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg in ADDRESS_KEYWORDS:
            return False
    for arg in node.args:
        if isinstance(arg, ast.Constant) and arg.value in ("", None):
            continue  # psycopg.connect(""): libpq's defaults
        if not wrapper:
            return False
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return False
        if "://" in arg.value or "." in arg.value or ":" in arg.value or arg.value == "localhost":
            return False
    return True
