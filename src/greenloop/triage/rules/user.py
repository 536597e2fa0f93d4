"""User rules: `[[triage.rules]]` in greenloop.toml, tried before the built-in table."""

from __future__ import annotations

import re
from collections.abc import Sequence

from greenloop.config import RuleConfig
from greenloop.errors import ConfigError
from greenloop.records import Category
from greenloop.triage.evidence import FailureEvidence
from greenloop.triage.rules.combinators import ComponentOf, Matcher, Rule, excerpt
from greenloop.triage.rules.components import target_component

_CATEGORIES = {c.value for c in Category}


def user_rules(configs: Sequence[RuleConfig], source: str = "greenloop.toml") -> tuple[Rule, ...]:
    """Compile `[[triage.rules]]`: a bad category or regex is a ConfigError naming the rule."""
    rules: list[Rule] = []
    for i, cfg in enumerate(configs):
        if cfg.category not in _CATEGORIES:
            raise ConfigError(
                source,
                f"triage.rules[{i}].category",
                f"expected one of {', '.join(sorted(_CATEGORIES))}, got {cfg.category!r}",
            )
        try:
            compiled = re.compile(cfg.pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(
                source, f"triage.rules[{i}].pattern", f"not a valid regular expression: {exc}"
            ) from None
        rules.append(
            Rule(
                name=cfg.name,
                category=Category(cfg.category),
                reason=re.sub(r"[^A-Z0-9]+", "-", cfg.name.upper()).strip("-") or "USER-RULE",
                confidence=cfg.confidence,
                doc=f"user rule /{cfg.pattern}/",
                match=_pattern_matcher(compiled),
                component=_fixed(cfg.component) if cfg.component else target_component,
            )
        )
    return tuple(rules)


def _fixed(component: str) -> ComponentOf:
    def of(ev: FailureEvidence) -> str | None:
        return component

    return of


def _pattern_matcher(compiled: re.Pattern[str]) -> Matcher:
    def match(ev: FailureEvidence) -> str | None:
        m = compiled.search(ev.text)
        return excerpt(ev.text, m.start(), m.end()) if m else None

    return match
