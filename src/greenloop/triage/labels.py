"""Learning from the team: triage consults the project's own labelled failures first.

`greenloop label CLUSTER_OR_TEST CATEGORY --note ...` stores a person's verdict with the
failure's text. Before the rule table, triage compares each new failure with every
labelled one (nearest neighbour over normalised failure text, as ReportPortal's analyzer
does): when the closest labelled failure is similar enough, the person's category decides
and the evidence says so ("labelled configuration by ana on 2026-11-30 ... similarity
0.92"). Similarity is TF-IDF cosine over normalised tokens (numbers, hex ids, UUIDs,
paths' variable parts and quoted values masked), with the weights computed over the
labelled texts, so tokens every label shares weigh little.

Pure: labels in, rules out. The rules go first in the table (user rules aside), so a
verdict a person gave on a near-identical failure outranks the built-in text rules.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from greenloop.records import Category
from greenloop.triage.evidence import FailureEvidence
from greenloop.triage.normalise import tokens
from greenloop.triage.rules import Rule

# A labelled failure this similar (cosine, 0..1) or more decides the category.
MIN_SIMILARITY = 0.75
# Fewer distinct tokens than this is too little text to compare with.
MIN_TOKENS = 3


@dataclass(frozen=True, slots=True)
class Label:
    """One person's verdict, as triage uses it."""

    target: str
    category: str
    text: str
    note: str = ""
    by: str = ""
    at: datetime | None = None


class LabelIndex:
    """TF-IDF vectors of the labelled failures; `nearest` finds the closest one."""

    def __init__(self, labels: Sequence[Label]) -> None:
        seen: set[str] = set()
        kept: list[Label] = []
        for label in labels:  # newest first: a later verdict on the same text wins
            key = " ".join(sorted(tokens(label.text)))
            if key and key not in seen:
                seen.add(key)
                kept.append(label)
        self.labels = tuple(kept)
        counts = [tokens(lbl.text) for lbl in self.labels]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(counts)
        self._idf = {t: math.log((1 + n) / (1 + d)) + 1.0 for t, d in df.items()}
        self._vectors = [self._vector(c) for c in counts]

    def __bool__(self) -> bool:
        return bool(self.labels)

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        # Tokens no label has get the highest weight: they are what is new in the text.
        top = max(self._idf.values(), default=1.0)
        vec = {t: (1 + math.log(c)) * self._idf.get(t, top) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def nearest(self, text: str) -> tuple[Label, float] | None:
        """The most similar labelled failure and its cosine similarity, or None."""
        counts = tokens(text)
        if len(counts) < MIN_TOKENS or not self.labels:
            return None
        vec = self._vector(counts)
        best: tuple[Label, float] | None = None
        for label, other in zip(self.labels, self._vectors, strict=True):
            sim = sum(w * other.get(t, 0.0) for t, w in vec.items())
            if best is None or sim > best[1]:
                best = (label, sim)
        return best


def describe(label: Label, similarity: float) -> str:
    """The evidence line: who said what, when, and how close this failure is."""
    who = f" by {label.by}" if label.by else ""
    when = f" on {label.at:%Y-%m-%d}" if label.at else ""
    note = f": {label.note}" if label.note else ""
    return (
        f"labelled {label.category}{who}{when} for {label.target}{note} "
        f"(team label; similarity {similarity:.2f} to that failure)"
    )


def label_matcher(
    index: LabelIndex, category: str, min_similarity: float = MIN_SIMILARITY
) -> Callable[[FailureEvidence], str | None]:
    """A rule predicate: the closest labelled failure has `category` and is close enough."""
    last: list[tuple[str, tuple[Label, float] | None]] = []

    def match(ev: FailureEvidence) -> str | None:
        text = ev.text
        if last and last[0][0] is text:
            found = last[0][1]
        else:
            found = index.nearest(text)
            last[:] = [(text, found)]
        if found is None:
            return None
        label, sim = found
        if label.category != category or sim < min_similarity:
            return None
        return describe(label, sim)

    return match


def categories() -> tuple[str, ...]:
    """Categories a person may give (`blocked` is the gate's to say, not a label's)."""
    return tuple(c.value for c in Category if c is not Category.BLOCKED)


def team_rules(labels: Sequence[Label]) -> tuple[Rule, ...]:
    """One rule per labelled category, all sharing one nearest-neighbour index: the first
    rows of the table when the project has labels."""
    index = LabelIndex(labels)
    if not index:
        return ()
    present = dict.fromkeys(lbl.category for lbl in index.labels)
    return tuple(
        Rule(
            "team-label",
            Category(category),
            "TEAM-LABEL",
            0.9,
            "a person labelled a near-identical failure (greenloop label)",
            label_matcher(index, category),
        )
        for category in present
        if category in categories()
    )


def labels_from_rows(rows: Sequence[object]) -> tuple[Label, ...]:
    """Labels from the store's LabelRow objects (newest first)."""
    return tuple(
        Label(
            target=str(getattr(r, "target", "")),
            category=str(getattr(r, "category", "")),
            text=str(getattr(r, "text", "")),
            note=str(getattr(r, "note", "") or ""),
            by=str(getattr(r, "labelled_by", "") or ""),
            at=getattr(r, "labelled_at", None),
        )
        for r in rows
    )
