"""Triage accuracy on the labelled corpus: the development part and the frozen test part.

    .venv/bin/python bench/triage_accuracy.py                 # both parts, side by side
    .venv/bin/python bench/triage_accuracy.py --split dev --misses

PATH defaults to tests/data/triage_labelled.jsonl. The side-by-side table is the one in
docs/triage.md, which quotes the test part. Rules and models are tuned on the development
part only: list the misses of the test part only to report them, never to change a rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from greenloop.triage.evaluate import SPLITS, load_labelled, score, side_by_side, table

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "data" / "triage_labelled.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--split", choices=SPLITS, help="one part only (default: both)")
    parser.add_argument("--misses", action="store_true", help="list the misclassified items")
    args = parser.parse_args()
    if args.split is None:
        dev = score(load_labelled(args.path, "dev"))
        test = score(load_labelled(args.path, "test"))
        print(side_by_side(dev, test))
        print()
        print(
            f"frozen test part: accuracy {test.accuracy:.1%}, lowest recall {test.min_recall:.2f}"
        )
        return
    scores = score(load_labelled(args.path, args.split))
    print(table(scores))
    if args.misses:
        print()
        for item, label, predicted, rule in scores.misses:
            print(f"- {item}: labelled {label}, predicted {predicted} (rule {rule})")


if __name__ == "__main__":
    main()
