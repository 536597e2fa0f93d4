"""The one vocabulary of skip reasons, shared by verify (authenticity) and triage.

A skip reason says one of three things. The environment the suite targets was not there
(a staging host, a service, a database, a connection failing): `environment`, the only
kind verify's authenticity check counts. Something else the test needs was missing from
the machine it ran on (an optional module or tool, a daemon, credentials or a setting,
privileges, a display): `prerequisite`; triage files both under skipped_env. Or the test
decided not to run by design (a platform or version gate, an opt-in flag, a known bug):
`design`, checked first, because "only on Windows" must not count as a missing
environment.

Patterns speak of kinds (a service word next to "not running", an ALL_CAPS setting next
to "not set"), never of one project's message.
"""

from __future__ import annotations

import re

# What a test can need from its environment (used inside the patterns below).
_NEEDS = (
    r"(?:server|service|database|db|postgres(?:ql)?|pg|mysql|mariadb|redis|mongo(?:db)?|"
    r"elasticsearch|kafka|rabbitmq|broker|queue|docker(?:\s+daemon)?|daemon|container|"
    r"network|internet|connection|display|window\s+server|x11|gpu|cuda|browser|driver|"
    r"staging|environment|backend|api|host|cluster|credentials?|token|key|account)"
)

# The test chose not to run: platform and version gates, opt-in flags, known bugs.
BY_DESIGN_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"\bonly\b"  # "only on Windows", "Windows only", "available in v2 only"
        r"|\bsys\.(?:platform|version_info)\b|\bcondition:"
        r"|\brequires?\s+python\b|\bpython\s*[<>=]"
        r"|\b(?:short|quick|fast)\s+mode\b"
        r"|\b(?:disabled|deactivated)\b"
        r"|\bnot\s+(?:implemented|supported)\b|\bunsupported\b"
        r"|\bknown\s+(?:bug|issue|failure)\b|\bxfail\b|\bflaky\b"
        r"|\bfeature\s+flag\b|\bflag\b.{0,20}\bnot\s+set\b|\bopt-?in\b"
        # A capability the server that answered lacks ("server not configured for two
        # phase transactions", "database does not support JSONB", "server too old"):
        # the environment is there, the test chose not to run on it.
        r"|\bnot\s+configured\s+(?:for|to)\b"
        r"|\b(?:does\s+not|doesn't|do\s+not|don't|cannot|can't)\s+support\b"
        r"|\btoo\s+old\b",
        re.IGNORECASE,
    ),
)

# Skip reasons that name the environment the suite targets as not there (a staging host,
# a service, a database, a connection failing), so the test never ran. A missing feature
# ("SSL not available", "libpq not available") is not the environment: the reason must
# name the environment, not just something being absent. Verify's authenticity check
# counts only these.
_ENV_NOUN = (
    r"(staging|environment|env|server|service|backend|api|host|database|db|endpoint|target|"
    r"base[_ ]url|deployment|stack)"
)
_ABSENT = (
    r"(unavailable|unreachable|offline|down|missing|"
    r"not\s+(available|reachable|running|up|responding|deployed|configured|set))"
)
ENV_SKIP_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"\b{_ENV_NOUN}\b[^.;:\n]{{0,30}}\b{_ABSENT}\b",
        r"\bconnection\s+(refused|reset|error|failed)\b",
        r"\b(could\s+not|cannot|can't|unable\s+to)\s+(connect|reach|resolve)\b",
        r"\bno\s+(staging|environment|server|network|connection|base[_ ]url)\b",
        r"\btimed?\s*out\s+(connecting|waiting\s+for)\b",
        r"\b[A-Z_]*(URL|HOST|ENDPOINT|DSN)\b.{0,20}\b(not set|missing|unset|empty)\b",
    )
)

# Skip reasons that say a prerequisite of the test was missing from the machine it ran on
# (an optional module or tool, a daemon, credentials or a setting, privileges, a display,
# the network). Triage files these under skipped_env too: the test never ran because of
# where it ran, not because of the product. Verify does not count them (see above).
PREREQUISITE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bunavailable\b",
        r"\bnot\s+(?:available|reachable|running|up|responding|set|configured|deployed|"
        r"installed|present|found|started)\b",
        r"\bunreachable\b",
        rf"\b{_NEEDS}\b.{{0,30}}\b(?:down|offline|missing)\b",
        r"\b(?:could\s+not|cannot|can't|unable\s+to)\s+(?:import|find|start|load|open)\b",
        r"\bcould\s+not\s+be\s+(?:run|resolved|found|loaded|started|reached|imported)\b",
        rf"\bno\s+(?:(?:local|reachable|running|available|valid|usable)\s+)?{_NEEDS}\b",
        r"\boffline\b",
        r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b.{0,60}\b(?:not set|unset|empty|missing|are required|"
        r"is required|must be set)\b",
        r"\bno module named\b|\bmissing\b.{0,20}\b(?:lib|library|module|package|dependency|"
        r"binary|tool|plugin)\b",
        rf"\b(?:requires?|needs?|depends\s+on)\s+(?:an?\s+|the\s+)?(?:\w+\s+)?{_NEEDS}\b",
        r"\bfailed\s+to\s+start\b|\bnothing\s+reached\b",
    )
)


def skip_kind(reason: str) -> str | None:
    """`environment` when the reason names the targeted environment as not there,
    `prerequisite` when something else the test needs was missing from the machine,
    `design` when the test chose not to run, None when the reason says neither."""
    if any(p.search(reason) for p in BY_DESIGN_PATTERNS):
        return "design"
    if any(p.search(reason) for p in ENV_SKIP_PATTERNS):
        return "environment"
    if any(p.search(reason) for p in PREREQUISITE_PATTERNS):
        return "prerequisite"
    return None


def is_env_skip(reason: str) -> bool:
    """Does a skip reason say the targeted environment was not there (verify's question)?"""
    return skip_kind(reason) == "environment"


def is_skipped_env(reason: str) -> bool:
    """Did the test not run because of where it ran (triage's skipped_env category)?"""
    return skip_kind(reason) in ("environment", "prerequisite")
