"""The labelled corpus and triage accuracy on its frozen test part.

The corpus (tests/data/triage_labelled.jsonl, README there) is split by repository into a
development part, on which rules are written, and a frozen test part, only measured here
and by bench/triage_accuracy.py. The rules never see an item's id, label, source or split
(see greenloop/triage/evaluate.py).
"""

from __future__ import annotations

import re

import pytest
from triage_helpers import LABELLED

from greenloop.triage.evaluate import CATEGORIES, LABELS, load_labelled, score, split_of

# The target on the frozen test part (docs/triage.md quotes the measured figure).
TARGET = 0.80
MIN_RECALL = 0.6


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    return load_labelled(LABELLED)


def test_corpus_is_large_real_and_sourced(corpus) -> None:  # type: ignore[no-untyped-def]
    assert len(corpus) >= 400
    assert len({i.repo.lower() for i in corpus}) >= 300
    assert len({i.id for i in corpus}) == len(corpus)
    assert {i.label for i in corpus} <= set(LABELS)
    for item in corpus:
        assert item.text.strip(), item.id
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", item.repo), item.id


def test_split_is_frozen_by_repository_hash(corpus) -> None:  # type: ignore[no-untyped-def]
    for item in corpus:
        assert item.split == split_of(item.repo), item.id
    test_part = [i for i in corpus if i.split == "test"]
    assert 0.25 <= len(test_part) / len(corpus) <= 0.35
    for label in CATEGORIES:
        assert any(i.label == label for i in test_part), label


def test_frozen_test_part_meets_the_target(corpus) -> None:  # type: ignore[no-untyped-def]
    scores = score([i for i in corpus if i.split == "test"])
    assert scores.accuracy >= TARGET, f"{scores.accuracy:.1%}"
    assert scores.min_recall >= MIN_RECALL, scores.per_label
    assert scores.apart["flaky"][1] > 0  # flaky items exist and are reported apart
