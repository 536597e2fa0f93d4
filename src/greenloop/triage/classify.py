"""Give each non-passing test exactly one category, with the rule and evidence that decided it.

Pure: evidence in, `Decision` out. Blocked and skipped tests are decided by
their outcome; failures go through the rule table (user rules first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from greenloop.envskip import is_skipped_env
from greenloop.records import Category, Classification, Outcome
from greenloop.triage.evidence import FailureEvidence
from greenloop.triage.rules import BUILTIN_RULES, FALLBACK, Rule


@dataclass(frozen=True, slots=True)
class Decision:
    """A classification plus what clustering and root-cause analysis need from it."""

    classification: Classification
    reason: str
    rule: Rule | None
    evidence: FailureEvidence


def classify(ev: FailureEvidence, rules: Sequence[Rule] = BUILTIN_RULES) -> Decision:
    """The first rule whose predicate matches decides; `unknown` when none does."""
    if ev.outcome is Outcome.BLOCKED:
        component = ev.blocked_by or "environment"
        return Decision(
            Classification(
                ev.nodeid,
                Category.BLOCKED,
                1.0,
                "blocked-by-gate",
                f"not run: the gate found {component} unhealthy",
                component,
            ),
            "BLOCKED",
            None,
            ev,
        )
    if ev.outcome is Outcome.SKIPPED:
        reason = ev.skip_reason or ev.message or "no reason given"
        if is_skipped_env(reason):
            return Decision(
                Classification(
                    ev.nodeid, Category.SKIPPED_ENV, 0.9, "skipped-env", reason[:240], None
                ),
                "SKIPPED-ENV",
                None,
                ev,
            )
        return Decision(
            Classification(ev.nodeid, Category.TEST, 0.3, "skipped-by-test", reason[:240], None),
            "SKIPPED",
            None,
            ev,
        )
    for rule in rules:
        found = rule.match(ev)
        if found is not None:
            return _decided(ev, rule, found)
    return _decided(ev, FALLBACK, FALLBACK.match(ev) or "")


def _decided(ev: FailureEvidence, rule: Rule, found: str) -> Decision:
    return decided(ev, rule, found, rule.component(ev))


def decided(ev: FailureEvidence, rule: Rule, found: str, component: str | None) -> Decision:
    """The decision of `rule` matching `found` in `ev`: also how a decision made in a worker
    process is rebuilt from its compact parts (see parallel.py)."""
    return Decision(
        Classification(ev.nodeid, rule.category, rule.confidence, rule.name, found, component),
        rule.reason,
        rule,
        ev,
    )


def needs_triage(outcome: Outcome) -> bool:
    """Failed, errored, timed out, crashed, blocked or skipped: everything but a pass."""
    return outcome is not Outcome.PASSED
