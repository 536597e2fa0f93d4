"""Accuracy of the classifier on the labelled set of real failure texts (target: >= 90%).

The set was gathered by someone else from public issue threads; the rules
never see an item's id, label or source (see greenloop/triage/evaluate.py).
bench/triage_accuracy.py prints the same numbers as a table.
"""

from __future__ import annotations

from triage_helpers import LABELLED

from greenloop.triage.evaluate import LABELS, load_labelled, score

TARGET = 0.90


def test_overall_accuracy_meets_the_target() -> None:
    items = load_labelled(LABELLED)
    assert len(items) >= 100
    scores = score(items)
    misses = "\n".join(f"{i}: {label} -> {pred} ({rule})" for i, label, pred, rule in scores.misses)
    assert scores.accuracy >= TARGET, f"accuracy {scores.accuracy:.1%}; misses:\n{misses}"


def test_every_category_is_recognised_and_precise() -> None:
    scores = score(load_labelled(LABELLED))
    for label in LABELS:
        precision, recall, support = scores.per_label[label]
        assert support > 0
        assert recall > 0, label  # no category is never predicted
        assert precision >= 0.5, label
