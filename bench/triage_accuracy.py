"""Per-category precision/recall and overall accuracy of triage on the labelled set.

    .venv/bin/python bench/triage_accuracy.py [--misses] [PATH]

PATH defaults to tests/data/triage_labelled.jsonl. The table is the one in docs/triage.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from greenloop.triage.evaluate import load_labelled, score, table

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "data" / "triage_labelled.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--misses", action="store_true", help="list the misclassified items")
    args = parser.parse_args()
    scores = score(load_labelled(args.path))
    print(table(scores))
    if args.misses:
        print()
        for item, label, predicted, rule in scores.misses:
            print(f"- {item}: labelled {label}, predicted {predicted} (rule {rule})")


if __name__ == "__main__":
    main()
