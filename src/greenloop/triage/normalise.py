"""Failure text as words: the normalisation team labels and the learned model share.

Numbers, hex ids and UUIDs are masked (they differ between two runs of one fault), words
are lower-cased; what is left is what two occurrences of a fault have in common.
"""

from __future__ import annotations

import re
from collections import Counter

_MASKS = (
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I),
    re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{10,}\b", re.I),
    re.compile(r"\d+"),
)
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_]+")


def tokens(text: str) -> Counter[str]:
    """Normalised word counts of a failure text: ids, numbers and hex masked, lower-cased."""
    for pattern in _MASKS:
        text = pattern.sub(" ", text)
    if text.isascii():  # lower-casing ASCII moves no token boundary: one call, not one a word
        return Counter(_TOKEN.findall(text.lower()))
    return Counter(t.lower() for t in _TOKEN.findall(text))
