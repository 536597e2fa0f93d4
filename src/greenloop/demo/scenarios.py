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
) -> str:
    """Stage ``scenario`` on a clean ``state_dir`` and return the service's base URL.

    Returns once the service listens; it may be unhealthy on purpose (greenloop probes it).
    """
    control.reset(state_dir)
    if scenario.previous_good:
        control.deploy(state_dir, database_url=database_url, cache_url=cache_url)
    revision = control.deploy(
        state_dir,
        bug=scenario.bug,
        faults=scenario.faults,
        database_url=database_url,
        cache_url=cache_url,
    )
    return revision.base_url
