"""The building blocks of rules: the `Rule` record and the matcher combinators.

A matcher is a pure function of `FailureEvidence` that returns the excerpt that convinced
it, or None. `rx` matches a regex over the text behind a cheap literal filter, `both`
needs two matchers, `when` adds an environment condition, `once_per_text` shares one
answer among the rules that ask the same question of one text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from greenloop.records import Category
from greenloop.triage.evidence import FailureEvidence

Matcher = Callable[[FailureEvidence], str | None]
# Every pattern rx() compiled, with its flags: the literal check in the test suite splits
# each into its alternatives and counts the labelled items each one matches.
RX_PATTERNS: list[tuple[str, int]] = []
ComponentOf = Callable[[FailureEvidence], str | None]
Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table."""

    name: str
    category: Category
    reason: str
    confidence: float
    doc: str
    match: Matcher
    component: ComponentOf = lambda ev: None


# --------------------------------------------------------------------------- building blocks


def excerpt(text: str, start: int, end: int, width: int = 240) -> str:
    """The line holding a match, trimmed: what a person checks against the rule."""
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    line = text[lo : hi if hi != -1 else len(text)].strip()
    return line if len(line) <= width else line[: width - 3] + "..."


def rx(pattern: str, *needles: str, flags: int = 0) -> Matcher:
    """Match a regex over the text; `needles` are literal substrings one of which must occur
    (a cheap filter run before the regex). Start every alternative with a plain character,
    `Connection refused|connection refused` rather than `[Cc]onnection refused`, and
    `401(?<!\\w401)` rather than `\\b401`: see PLAIN_START in evidence.py for why."""
    compiled = re.compile(pattern, flags)
    RX_PATTERNS.append((pattern, flags))

    def match(ev: FailureEvidence) -> str | None:
        text = ev.text
        # A plain loop in place: cheaper than any() or a helper, and this runs ~20 times
        # per failure.
        for needle in needles:
            if needle in text:
                break
        else:
            if needles:
                return None
        m = compiled.search(text)
        return excerpt(text, m.start(), m.end()) if m else None

    return match


def both(first: Matcher, second: Matcher) -> Matcher:
    def match(ev: FailureEvidence) -> str | None:
        a = first(ev)
        if a is None:
            return None
        b = second(ev)
        return None if b is None else (a if a == b else f"{a} | {b}")

    return match


def when(
    predicate: Callable[[FailureEvidence], bool],
    matcher: Matcher,
    note: str | Callable[[FailureEvidence], str] = "",
) -> Matcher:
    """`matcher`, but only when an environment fact holds; the fact is added to the evidence."""

    def match(ev: FailureEvidence) -> str | None:
        if not predicate(ev):
            return None
        found = matcher(ev)
        if found is None:
            return None
        return f"{found} ({note(ev) if callable(note) else note})" if note else found

    return match


def once_per_text(
    question: Callable[[FailureEvidence], Answer],
) -> Callable[[FailureEvidence], Answer]:
    """`question`, a function of `ev.text` alone that several rules ask: the answer for the
    last text asked is kept, so a failure that reaches all of those rules pays once."""
    last: list[tuple[str, Answer]] = []  # (text, answer), the text held so `is` is safe

    def ask(ev: FailureEvidence) -> Answer:
        text = ev.text
        if last:
            seen, answer = last[0]
            if seen is text:
                return answer
        answer = question(ev)
        last[:] = [(text, answer)]
        return answer

    return ask
