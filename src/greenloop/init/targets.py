"""What the suite talks to, from what `scan` found (pure).

Each environment variable the tests read, each pytest option a conftest adds
and each variable the project's CI sets is judged by its value (a URL's
scheme: http, ws, postgresql, redis...) and, when the value is only a host or
a port, by its name (REDIS_PORT, PGHOST). Variables that name the same server
make one `Target`; each target becomes a component with a probe of the
matching kind, and the variables and options become `environment.env` and
`execution.pytest_args` entries.

Evidence, strongest first: a variable set in init's own environment (its value
is the server; a comma-separated list gives several; passwords are never
written: they become `${secret:<VAR>_PASSWORD}`), a variable the suite reads
with a default, a URL literal the suite connects with, a client built with no
address (its library's default server), then a URL in the project's settings
files (only when nothing else names a server). A URL literal a test only parses
or compares, or one with placeholder credentials or port, is no server: it is
listed in a comment (`parsed_literals`). sqlite and file URLs are no servers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from greenloop.init.scan import SYSTEM_VARIABLES, SuiteScan
from greenloop.ports import DEFAULT_PORT

# URL scheme -> probe kind.
SCHEME_KIND = {
    "http": "http",
    "https": "http",
    "ws": "websocket",
    "wss": "websocket",
    "postgres": "postgres",
    "postgresql": "postgres",
    "redis": "redis",
    "rediss": "redis",
    "mysql": "tcp",
    "mongodb": "tcp",
    "amqp": "tcp",
    "amqps": "tcp",
    "tcp": "tcp",
}
# Words in a variable's name -> the server it points at, when its value is a bare host/port.
NAME_KIND = (
    (re.compile(r"REDIS|VALKEY|KEYDB|DRAGONFLY"), "redis", "redis"),
    # Server names, and the names of drivers a suite names its variables after.
    (re.compile(r"POSTGRES|\bPG|PSQL|^PG|PSYCOPG|ASYNCPG|LIBPQ"), "postgres", "postgresql"),
    (re.compile(r"MYSQL|MARIADB"), "tcp", "mysql"),
    (re.compile(r"MEMCACHE"), "tcp", "tcp"),
    (re.compile(r"MONGO"), "tcp", "mongodb"),
    (re.compile(r"RABBIT|AMQP"), "tcp", "amqp"),
    (re.compile(r"WS_|WEBSOCKET|_WS\b"), "websocket", "ws"),
)
URL_NAME = re.compile(r"(URL|URI|ENDPOINT)$")
TARGET_WORDS = re.compile(r"URL|URI|HOST|PORT|DSN|ENDPOINT|ADDR|SERVER|BASE")
# Kinds in the order a variable with several candidate values prefers them.
KIND_ORDER = ("postgres", "redis", "http", "websocket", "tcp")
# Hosts of documentation and examples, not servers the suite talks to.
NOT_TARGETS = re.compile(
    r"(^|\.)(example\.(com|org|net)|github\.com|githubusercontent\.com|python\.org|"
    r"readthedocs\.(io|org)|pypi\.org|w3\.org|wikipedia\.org|googleapis\.com|shields\.io)$"
)
TEMPLATE = re.compile(r"\$\{\{[^}]*\}\}|\$\{[^}]*\}|\$\([^)]*\)|\{\{[^}]*\}\}")
# Credentials of documentation and parser tests, not of a server (user, password).
PLACEHOLDER_USERS = frozenset({"username", "user", "name", "login"})
PLACEHOLDER_PASSWORDS = frozenset({"password", "pass", "passwd", "pwd", "********", "xxx"})
# Evidence strength of a target (see the module docstring).
SET_IN_ENV, SETTING, CONNECT, CLIENT_DEFAULT, SETTINGS_FILE = 4, 3, 2, 1, 0


@dataclass(frozen=True)
class Setting:
    """One way the tests are told where a target is."""

    kind: str  # "env" (a variable) or "option" (a pytest command-line option)
    name: str  # e.g. DATABASE_URL or --redis-url
    value: str  # what to pass: a URL, a host or a port, as the tests expect it
    files: tuple[str, ...] = ()  # the test files that read it ("" = settings files)
    # The value is written as it is (it holds `${secret:...}` for a password init saw
    # in its environment), not as `${NAME:-value}`.
    templated: bool = False


@dataclass
class Target:
    """A server the suite talks to: one component and one probe."""

    name: str  # component name, e.g. "redis", "postgres", "app"
    kind: str  # probe kind: http, websocket, postgres, redis, tcp
    url: str  # scheme://host:port[/path] to probe
    settings: list[Setting] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # where it was found, in words
    alternatives: list[str] = field(default_factory=list)  # other values seen for it
    strength: int = SETTINGS_FILE  # the strongest evidence (SET_IN_ENV ... SETTINGS_FILE)
    code_files: set[str] = field(default_factory=set)  # test files that connect to it

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORT.get(parts.scheme, 80)

    @property
    def files(self) -> set[str]:
        """Test files that read its settings or connect to it; empty when only settings
        files name it."""
        return {f for s in self.settings for f in s.files if f} | self.code_files


def clean_url(url: str) -> str | None:
    """A URL with CI template expressions (`${{ ... }}`, `$(...)`) replaced by defaults.

    None when what is left is not a usable URL.
    """
    scheme = url.split("://", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    port = str(DEFAULT_PORT.get(base, ""))
    text = re.sub(r":(" + TEMPLATE.pattern + r")", f":{port}" if port else "", url)
    text = TEMPLATE.sub("", text)
    try:
        parts = urlsplit(text)
        _ = parts.port
    except ValueError:
        return None
    if not parts.hostname and base not in ("postgres", "postgresql", "redis", "rediss"):
        return None
    return text


def url_kind(url: str) -> str | None:
    """The probe kind for a URL's scheme (postgresql+psycopg counts as postgresql)."""
    scheme = url.split("://", 1)[0].lower().split("+", 1)[0]
    return SCHEME_KIND.get(scheme)


def probe_url(url: str) -> str:
    """The URL a probe can use: no SQLAlchemy driver suffix, a host when none is given."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    netloc = parts.netloc or "127.0.0.1"
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def name_kind(name: str) -> tuple[str, str] | None:
    """(probe kind, URL scheme) that a variable's name implies, e.g. REDIS_PORT -> redis."""
    upper = name.upper()
    for pattern, kind, scheme in NAME_KIND:
        if pattern.search(upper):
            return kind, scheme
    return None


def find_targets(scan: SuiteScan, environ: Mapping[str, str] | None = None) -> list[Target]:
    """Targets from variables, options, connect calls, client defaults and settings files,
    one per (kind, host, port).

    `environ`: init's own environment (variables set there are the strongest evidence);
    None reads none.
    """
    environ = environ or {}
    targets: dict[tuple[str, str, int], Target] = {}
    defaults: list[tuple[str, str, str]] = []
    for setting, url, where, strength, file in _candidates(scan, environ):
        if strength == CLIENT_DEFAULT:
            defaults.append((url, where, file))
            continue
        _add(targets, setting, url, where, strength, file)
    for url, where, file in defaults:
        # The weakest evidence: only when nothing else names a server of that kind.
        kind = url_kind(url)
        same = [t for t in targets.values() if t.kind == kind and t.strength > SETTINGS_FILE]
        if not same or any(_key(t) == _key_of(url) for t in same):
            _add(targets, None, url, where, CLIENT_DEFAULT, file)
    _name_targets(list(targets.values()))
    return sorted(
        targets.values(),
        key=lambda t: (KIND_ORDER.index(t.kind) if t.kind in KIND_ORDER else 9, t.name),
    )


def _key_of(url: str) -> tuple[str, str, int]:
    return _key(Target(name="", kind=url_kind(url) or "", url=probe_url(url)))


def _key(target: Target) -> tuple[str, str, int]:
    host = "127.0.0.1" if target.host in ("localhost", "::1") else target.host
    return (target.kind, host, target.port)


def _add(
    targets: dict[tuple[str, str, int], Target],
    setting: Setting | None,
    url: str,
    where: str,
    strength: int,
    file: str = "",
) -> None:
    if url == "" and setting:  # a URL variable with no value anywhere: the user sets it
        target = Target(name="", kind="http", url="")
        key: tuple[str, str, int] = ("variable", setting.name, 0)
    else:
        kind = url_kind(url)
        if kind is None:
            return
        target = Target(name="", kind=kind, url=probe_url(url))
        key = _key(target)
    if key in targets:
        target = targets[key]
    else:
        targets[key] = target
    target.strength = max(target.strength, strength)
    if file and strength in (CONNECT, CLIENT_DEFAULT):
        target.code_files.add(file)
    if setting and setting not in target.settings:
        target.settings.append(setting)
    if where not in target.evidence:
        target.evidence.append(where)


def _candidates(
    scan: SuiteScan, environ: Mapping[str, str]
) -> Iterable[tuple[Setting | None, str, str, int, str]]:
    """(how the tests are told, a URL, where it was seen, strength, the test file that
    connects with it or "") for each candidate target."""
    reads: dict[str, list[str]] = {}
    defaults: dict[str, str | None] = {}
    for read in scan.env_reads:
        if read.name in SYSTEM_VARIABLES or read.name in scan.env_writes:
            continue
        reads.setdefault(read.name, []).append(read.file)
        if read.default is not None or read.name not in defaults:
            defaults[read.name] = read.default
    # Variables only the project's settings (CI, tox, compose) set for the tests.
    for name, assigned in scan.assignments.items():
        if name not in reads and any("://" in v for v in assigned):
            reads[name] = [""]
            defaults[name] = None

    def value_of(name: str) -> str | None:
        return environ.get(name) or defaults.get(name) or best_value(scan.assignments.get(name, []))

    for name, files in reads.items():
        files_t = tuple(dict.fromkeys(files))
        where = f"{name} ({', '.join(f for f in files_t if f) or 'project settings'})"
        suite_value = defaults.get(name) or best_value(scan.assignments.get(name, []))
        env_value = environ.get(name) or None
        if env_value:
            where += ", set when init ran"
        for part in split_urls(env_value or suite_value):
            url = _as_url(name, part, value_of)
            if url is None:
                continue
            if env_value:
                url = redact(url, name)
            setting = _setting(name, url, suite_value, env_value, files_t)
            yield setting, url, where, SET_IN_ENV if env_value else SETTING, ""
    for option in scan.options:
        default = option.default or ""
        if "://" in default:
            url = clean_url(default)
            if url:
                setting = Setting("option", option.flag, url, ("",))
                yield setting, url, f"{option.flag} ({option.file})", SETTING, ""
    for seen in scan.urls:
        url = clean_url(seen.url)
        if url and seen.connects and _is_server(url) and not is_placeholder(url):
            code = seen.where.endswith(".py")
            strength = CONNECT if code else SETTINGS_FILE
            yield None, url, f"{seen.url} ({seen.where})", strength, seen.where if code else ""
    for client in scan.client_defaults:
        port = DEFAULT_PORT.get(client.scheme)
        url = f"{client.scheme}://127.0.0.1:{port}" if port else f"{client.scheme}://127.0.0.1"
        where = f"{client.call} with no address ({client.file})"
        yield None, url, where, CLIENT_DEFAULT, client.file


def _setting(
    name: str, url: str, suite_value: str | None, env_value: str | None, files: tuple[str, ...]
) -> Setting:
    """What env entry the config writes: the suite's own default when it has one (so the
    config works unset, as the suite does), else init's environment's value (redacted) when
    it is a URL (it names a user and database nothing else gives). A bare host or port keeps
    the conventional default (`${PGPORT:-5432}`): the variable is still read at run time."""
    if suite_value:
        return Setting("env", name, suite_value, files)
    if env_value and "://" in env_value:
        written = redact(env_value, name)
        return Setting("env", name, written, files, templated=written != env_value)
    if env_value:
        url = _as_url(name, None, lambda _: None) or ""
    return Setting("env", name, _setting_value(name, url) if url else "", files)


def split_urls(value: str | None) -> list[str | None]:
    """A comma-separated list of URLs as its URLs; any other value as itself."""
    if value and "," in value:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if parts and all("://" in p for p in parts):
            return list(dict.fromkeys(parts))
    return [value]


def password_variable(name: str) -> str:
    """The variable a config reads for the password of the URL(s) in `name`."""
    return f"{name}_PASSWORD"


def redact(value: str, name: str) -> str:
    """`value` (a URL or a comma-separated list of URLs) with each password replaced by
    `${secret:<name>_PASSWORD}`; built with urllib.parse, never by hand."""
    out = []
    for part in value.split(","):
        try:
            parts = urlsplit(part.strip())
            password = parts.password
        except ValueError:
            out.append(part)
            continue
        if not password:
            out.append(part.strip())
            continue
        host = parts.netloc.rpartition("@")[2]
        user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
        netloc = f"{user}:${{secret:{password_variable(name)}}}@{host}"
        out.append(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
    return ",".join(out)


def is_placeholder(url: str) -> bool:
    """A URL of documentation or a parser test: placeholder credentials, or a low port
    that is no scheme's default (`postgresql://username:password@localhost:123/db`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return True
    if (parts.username or "").lower() in PLACEHOLDER_USERS or (
        (parts.password or "").lower() in PLACEHOLDER_PASSWORDS
    ):
        return True
    return port is not None and port < 1024 and port not in DEFAULT_PORT.values()


def parsed_literals(scan: SuiteScan) -> list[str]:
    """URL literals in the code that no connect call is given (or with placeholder parts):
    seen, not probed, with the file, for a comment."""
    seen = []
    for literal in scan.urls:
        url = clean_url(literal.url)
        if not url or not literal.where.endswith(".py") or not _is_server(url):
            continue
        if not literal.connects or is_placeholder(url):
            text = f"{literal.url} ({literal.where})"
            if text not in seen:
                seen.append(text)
    return seen


def best_value(values: list[str]) -> str | None:
    """Of the values settings files give a variable, the one of the most specific probe kind.

    CI often runs one suite against several servers (SQLite, PostgreSQL, MySQL):
    a PostgreSQL or Redis URL says more than a TCP one, and any URL more than none.
    """
    ranked = []
    for value in values:
        url = clean_url(value) if "://" in value else None
        kind = url_kind(url) if url else None
        rank = KIND_ORDER.index(kind) if kind else len(KIND_ORDER)
        ranked.append((rank, value if url is None else url))
    return min(ranked)[1] if ranked else None


def _as_url(name: str, value: str | None, value_of: Callable[[str], str | None]) -> str | None:
    """A variable's value as a URL: itself, or built from a host/port and its name's kind.

    `value_of` gives a sibling variable's value (PGHOST beside PGPORT).
    """
    if value and "://" in value:
        return clean_url(value)
    implied = name_kind(name)
    if implied is None and not value and URL_NAME.search(name.upper()):
        return ""  # an HTTP(S) URL nobody wrote down: the config will ask for it
    if implied is None or not TARGET_WORDS.search(name.upper()):
        return None
    scheme = implied[1]
    host, port = "127.0.0.1", DEFAULT_PORT.get(scheme)
    upper = name.upper()
    if upper.endswith("PORT") and value and value.isdigit():
        port = int(value)
        host = value_of(upper[: -len("PORT")] + "HOST") or host
    elif upper.endswith("HOST") and value:
        host = value
        sibling = value_of(upper[: -len("HOST")] + "PORT") or ""
        port = int(sibling) if sibling.isdigit() else port
    elif value:
        return None
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _setting_value(name: str, url: str) -> str:
    """What a variable with no default should be given: the port, the host, or the URL."""
    parts = urlsplit(url)
    if name.upper().endswith("PORT"):
        port = parts.port or DEFAULT_PORT.get(parts.scheme)
        return str(port) if port else ""
    if name.upper().endswith("HOST"):
        return parts.hostname or "127.0.0.1"
    return url


def _is_server(url: str) -> bool:
    """A URL literal that looks like a server of the suite's own, not a doc or example link."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or NOT_TARGETS.search(host):
        return False
    return host in ("localhost", "127.0.0.1", "::1") or parts.port is not None


def _name_targets(targets: list[Target]) -> None:
    """Component names: the kind ("redis", "postgres"), numbered when a kind repeats."""
    by_kind: dict[str, list[Target]] = {}
    for target in targets:
        by_kind.setdefault(target.kind, []).append(target)
    for kind, group in by_kind.items():
        base = {"http": "app", "websocket": "websocket", "tcp": "service"}.get(kind, kind)
        for i, target in enumerate(group):
            if len(group) == 1:
                target.name = base
                continue
            target.name = _specific_name(target, base, i)
        names = [t.name for t in group]
        for i, target in enumerate(group):
            if names.count(target.name) > 1:
                target.name = f"{target.name}_{i + 1}"


def _specific_name(target: Target, base: str, i: int) -> str:
    """A name from the variable that points at it (APP_URL -> app), else base_N."""
    for setting in target.settings:
        if setting.kind == "env":
            words = re.sub(r"_?(URL|URI|HOST|PORT|DSN|ENDPOINT|ADDR|SERVER)$", "", setting.name)
            if words:
                return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_") or f"{base}_{i + 1}"
    return f"{base}_{i + 1}"
