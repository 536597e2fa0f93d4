"""The classification rule table: ordered data, first match wins.

Each `Rule` names a category, a REASON (names.py), a confidence and a pure
predicate over `FailureEvidence` that returns the excerpt that convinced it
(or None). Order matters and is deliberate: environment facts that override
the text (re-runs, probe failures) come first, then failures whose text is
unambiguous (a missing fixture is a test bug whatever the environment), then
the network family where probe states decide between infrastructure and
configuration, then product signals, and "unknown" last. User rules from
`[[triage.rules]]` are tried before all of them. docs/triage.md lists the table.

The package, by concern: combinators.py (`Rule`, `rx`, `both`, `when`, `once_per_text`),
components.py (which component a failure points at), predicates.py (the named questions
rules ask), table.toml (the built-in table as data), build.py (reads and checks the
table and makes its entries `Rule`s, once at import) and user.py (`[[triage.rules]]`).
"""

from __future__ import annotations

from greenloop.triage.rules.build import FALLBACK, TABLE_PATH, build_rules, load_table
from greenloop.triage.rules.combinators import (
    RX_PATTERNS,
    ComponentOf,
    Matcher,
    Rule,
    both,
    excerpt,
    once_per_text,
    rx,
    when,
)
from greenloop.triage.rules.components import (
    auth_component,
    failing_component,
    slow_component,
    target_component,
)
from greenloop.triage.rules.user import user_rules

BUILTIN_RULES: tuple[Rule, ...] = build_rules(load_table())

__all__ = [
    "BUILTIN_RULES",
    "FALLBACK",
    "RX_PATTERNS",
    "TABLE_PATH",
    "ComponentOf",
    "Matcher",
    "Rule",
    "auth_component",
    "both",
    "build_rules",
    "excerpt",
    "failing_component",
    "load_table",
    "once_per_text",
    "rx",
    "slow_component",
    "target_component",
    "user_rules",
    "when",
]
