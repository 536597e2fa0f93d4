"""Train the triage model (src/greenloop/triage/model.json) from the corpus's development part.

    .venv/bin/python bench/train_triage_model.py        # write model.json
    .venv/bin/python bench/train_triage_model.py --cv   # grouped 5-fold estimate on dev

Reproducible: the same corpus gives the same file. Only items with `split == "dev"`, a
failed outcome and one of the five categories are used; the frozen test part is never
read here. See greenloop/triage/model.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from greenloop.triage import model as learned
from greenloop.triage.evaluate import CATEGORIES, LabelledItem, load_labelled, score
from greenloop.triage.model import MODEL_PATH, features, train

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "triage_labelled.jsonl"


def trainable(items: list[LabelledItem]) -> list[LabelledItem]:
    return [
        i
        for i in items
        if i.outcome == "failed" and i.label in CATEGORIES and i.label != "skipped_env"
    ]


def fold_of(repo: str, folds: int = 5) -> int:
    return int(hashlib.sha256(f"cv:{repo.lower()}".encode()).hexdigest()[:8], 16) % folds


def cross_validate(folds: int = 5) -> None:
    """Rules plus a model trained without the held-out repositories, per fold: an estimate
    of the development accuracy that the model did not see (grouped by repository)."""
    dev = load_labelled(CORPUS, "dev")
    correct = total = 0
    for k in range(folds):
        train_items = trainable([i for i in dev if fold_of(i.repo, folds) != k])
        learned.use(train([(features(i.text), i.label) for i in train_items]))
        held = score([i for i in dev if fold_of(i.repo, folds) == k])
        correct += held.correct
        total += held.total
    learned.use_shipped()
    print(f"development part, grouped {folds}-fold: {correct}/{total} = {correct / total:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="estimate; write nothing")
    if parser.parse_args().cv:
        cross_validate()
        return
    items = trainable(load_labelled(CORPUS, "dev"))
    docs = [(features(i.text), i.label) for i in items]
    model = train(docs, note=f"development part of the labelled corpus, {len(docs)} failures")
    MODEL_PATH.write_text(json.dumps(model.to_json(), sort_keys=True) + "\n", encoding="utf-8")
    words = len({w for like in model.log_like.values() for w in like})
    print(f"{MODEL_PATH}: {len(docs)} items, {len(model.classes)} classes, {words} features")


if __name__ == "__main__":
    main()
