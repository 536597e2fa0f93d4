"""The demo scenarios: which fault or bad revision to stage, and what greenloop should conclude.

``prepare`` stages one on a state directory (deploying revisions and setting faults) and
returns the base URL; the ``greenloop demo`` verb then runs the loop and compares the outcome
with ``expected_exit`` and ``expected_conclusion``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from greenloop.demo import control

SuiteName = Literal["suite", "bad_tests"]
DEMO_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Scenario:
    """One staged situation and the verdict greenloop should reach on it."""

    name: str
    description: str
    faults: tuple[str, ...] = ()  # fault specs active from the start of the deployed revision
    bug: str | None = None  # fault spec baked into the deployed revision
    previous_good: bool = False  # deploy a good revision 1 first, then the bad one as 2
    suite: SuiteName = "suite"
    expected_exit: int = 0
    expected_conclusion: str = ""
    # --real-deps only: a fault made on the real processes after the deploy (see
    # realdeps.RealEnvironment.break_it), the certificate the service presents, and the
    # host name the service is told its database has.
    real_fault: str | None = None
    certificate: str = "good"
    database_host: str = "127.0.0.1"
    # What a blocked run's root cause must say: component, mode and category.
    expected_cause: tuple[str, str, str] | None = None

    @property
    def suite_path(self) -> Path:
        """The test directory greenloop runs for this scenario."""
        return DEMO_DIR / self.suite

    @property
    def index_path(self) -> Path:
        """The test index of that directory."""
        return self.suite_path / "index.toml"


_TABLE: tuple[Scenario, ...] = (
    Scenario(
        "healthy",
        "Everything works; the suite passes.",
        expected_exit=0,
        expected_conclusion="green: all tests passed",
    ),
    Scenario(
        "outage",
        "The cache refuses connections: health is 503 and every authenticated call fails.",
        faults=("dependency-down:dependency=cache",),
        expected_exit=3,
        expected_conclusion=(
            "environment outage: the cache is down (connection refused to cache at "
            "127.0.0.1:<port>); root cause component: cache; remediation: restart the cache"
        ),
    ),
    Scenario(
        "lb-503",
        "The load balancer answers 503 'upstream connect error' for every endpoint.",
        faults=("lb-503",),
        expected_exit=3,
        expected_conclusion=(
            "environment outage: the load balancer returns 503 for every endpoint "
            "(upstream connect error); root cause component: load_balancer"
        ),
    ),
    Scenario(
        "bad-deploy",
        "Revision 2 ships a bug: posting and listing messages raise KeyError (HTTP 500).",
        bug="app-bug",
        previous_good=True,
        expected_exit=1,
        expected_conclusion=(
            "product bug introduced by revision 2: message endpoints return 500 with "
            "KeyError: 'author_id'; remediation: roll back to revision 1"
        ),
    ),
    Scenario(
        "flaky",
        "GET /search fails on every other call, so its one test fails and passes on rerun.",
        faults=("flaky:path=/search,every=2",),
        expected_exit=1,
        expected_conclusion=(
            "flaky: test_search_finds_posted_message failed, then passed on rerun "
            "(GET /search intermittently returns 500)"
        ),
    ),
    Scenario(
        "auth-broken",
        "Tokens are verified with the wrong key: every valid token is rejected with 401.",
        faults=("auth-broken",),
        expected_exit=1,
        expected_conclusion=(
            "configuration: valid bearer tokens are rejected with 401 "
            "(signature verification failed); component: auth"
        ),
    ),
    Scenario(
        "slow-db",
        "Every database query takes 3 s: database calls exceed the demo's 2 s client timeout.",
        faults=("slow-db:seconds=3",),
        expected_exit=1,
        expected_conclusion=(
            "infrastructure: the database is slow (health reports ~3000 ms latency); "
            "database-backed tests time out; component: database"
        ),
    ),
    Scenario(
        "tls-mismatch",
        "HTTPS with a self-signed certificate for wrong.example.test.",
        faults=("tls-mismatch",),
        expected_exit=3,
        expected_conclusion=(
            "environment: TLS certificate problem: the certificate is self-signed and "
            "issued for wrong.example.test, not 127.0.0.1; the gate's TLS probe fails"
        ),
    ),
    Scenario(
        "fake-tests",
        "The service is healthy but the tests cannot fail: they skip, mock or never run.",
        suite="bad_tests",
        expected_exit=4,
        expected_conclusion=(
            "the test suite is not trustworthy: skips when staging is unavailable, mocked "
            "HTTP client, no connection, broken import, coroutine never awaited"
        ),
    ),
)


SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _TABLE})
"""Every scenario by name, in table order (read-only)."""


def _blocked(
    name: str,
    what: str,
    component: str,
    mode: str,
    category: str,
    *,
    real_fault: str | None = None,
    certificate: str = "good",
    database_host: str = "127.0.0.1",
) -> Scenario:
    """A real-deps scenario whose run is blocked, with the cause it must name."""
    return Scenario(
        name,
        what,
        expected_exit=3,
        expected_conclusion=(
            f"blocked by {component}: mode {mode}, category {category} (the tests stay blocked)"
        ),
        real_fault=real_fault,
        certificate=certificate,
        database_host=database_host,
        expected_cause=(component, mode, category),
    )


# Faults made on real PostgreSQL, Redis, TLS and app processes (`greenloop demo --real-deps`):
# each is made the way it happens in production, and each blocked verdict names its mode.
_REAL_TABLE: tuple[Scenario, ...] = (
    _blocked("db-down", "PostgreSQL is stopped: connections are refused.",
             "database", "refused", "infrastructure", real_fault="postgres-stop"),
    _blocked("db-hung", "PostgreSQL is SIGSTOPped: connections open, nothing answers.",
             "database", "timeout", "infrastructure", real_fault="postgres-pause"),
    _blocked("db-password", "The app role's password was rotated on the server only.",
             "database", "credentials", "configuration", real_fault="postgres-password"),
    _blocked("db-connections", "Every connection slot is taken by another client.",
             "database", "connection_limit", "infrastructure",
             real_fault="postgres-connections"),
    _blocked("db-slow", "A migration holds an exclusive lock on the messages table.",
             "database", "slow", "infrastructure", real_fault="postgres-lock"),
    _blocked("db-dns", "The service's database host name does not resolve (.invalid).",
             "database", "dns", "infrastructure", database_host="db.greenloop.invalid"),
    _blocked("cache-down", "redis-server is stopped: connections are refused.",
             "cache", "refused", "infrastructure", real_fault="redis-stop"),
    _blocked("cache-hung", "redis-server is SIGSTOPped: connections open, nothing answers.",
             "cache", "timeout", "infrastructure", real_fault="redis-pause"),
    _blocked("cache-requirepass", "requirepass was turned on; the app has no password.",
             "cache", "credentials", "configuration", real_fault="redis-requirepass"),
    _blocked("tls-expired", "The service presents a certificate that expired 3 days ago.",
             "load_balancer", "expired_certificate", "infrastructure", certificate="expired"),
    _blocked("tls-untrusted", "The service presents a certificate from an unknown CA.",
             "load_balancer", "untrusted_certificate", "configuration",
             certificate="untrusted"),
    _blocked("tls-wrong-host", "The service presents a certificate for wrong.example.test.",
             "load_balancer", "hostname_mismatch", "configuration", certificate="wrong-host"),
    _blocked("app-killed", "The service process was killed (SIGKILL).",
             "load_balancer", "refused", "infrastructure", real_fault="app-kill"),
    Scenario(
        "app-500",
        "Revision 2 raises KeyError on message endpoints; the traceback is in its log.",
        bug="app-bug",
        previous_good=True,
        expected_exit=1,
        expected_conclusion="product: the service's ERROR line with KeyError is cited",
    ),
    Scenario(
        "wrong-result",
        "Revision 2 leaves the newest message out of listings: HTTP 200, nothing logged.",
        bug="wrong-result",
        previous_good=True,
        expected_exit=1,
        expected_conclusion="product: a wrong answer with no log line; component from the index",
    ),
    Scenario(
        "ws-1011",
        "The agent WebSocket closes with 1011 after a server-side exception.",
        faults=("ws-1011",),
        expected_exit=1,
        expected_conclusion="product: WebSocket 1011; the server's ERROR line is cited",
    ),
)  # fmt: skip

REAL_DEPS_SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {s.name: s for s in (*_TABLE, *_REAL_TABLE)}
)
"""What `--real-deps` can run: every scenario above on real dependencies, then the faults
that need real processes (read-only)."""


def names() -> tuple[str, ...]:
    """Every scenario name, in table order."""
    return tuple(SCENARIOS)


def get(name: str) -> Scenario:
    """The scenario called ``name``; KeyError lists the known ones."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(names())}")
    return SCENARIOS[name]


def prepare(
    scenario: Scenario,
    state_dir: Path,
    *,
    database_url: str | None = None,
    cache_url: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> str:
    """Stage ``scenario`` on a clean ``state_dir`` and return the service's base URL.

    Returns once the service listens; it may be unhealthy on purpose (greenloop probes it).
    """
    control.reset(state_dir)
    if scenario.previous_good:
        control.deploy(
            state_dir,
            database_url=database_url,
            cache_url=cache_url,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
    revision = control.deploy(
        state_dir,
        bug=scenario.bug,
        faults=scenario.faults,
        database_url=database_url,
        cache_url=cache_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    return revision.base_url
