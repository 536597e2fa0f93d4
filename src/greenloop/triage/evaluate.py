"""Measure the classifier against a labelled set (tests/data/triage_labelled.jsonl).

Each item's `context` becomes the environment facts a real run would have:
`probes_failing` -> a gate whose listed components fail (an empty list -> a
gate where everything is green; no key -> no gate at all), `rerun_passed` ->
a re-run that passed. The text becomes the test's failure text. Nothing of the
item's id, label or source reaches the classifier.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenloop.records import ComponentState, GateResult, Outcome, ProbeResult, TestResult
from greenloop.triage.classify import classify
from greenloop.triage.evidence import gather_evidence

LABELS = ("infrastructure", "product", "test", "configuration", "flaky", "unknown")


@dataclass(frozen=True, slots=True)
class LabelledItem:
    id: str
    label: str
    text: str
    context: dict[str, object]


@dataclass(frozen=True, slots=True)
class Scores:
    total: int
    correct: int
    per_label: dict[str, tuple[float, float, int]]  # label -> (precision, recall, support)
    confusion: Counter[tuple[str, str]]  # (label, predicted) -> count
    misses: tuple[tuple[str, str, str, str], ...]  # (id, label, predicted, rule)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def load_labelled(path: Path) -> list[LabelledItem]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            items.append(LabelledItem(raw["id"], raw["label"], raw["text"], raw.get("context", {})))
    return items


def gate_for(context: dict[str, object]) -> GateResult | None:
    if "probes_failing" not in context:
        return None
    failing = [str(c) for c in context["probes_failing"]]  # type: ignore[attr-defined]
    probes = [ProbeResult(c, f"{c}-probe", "tcp", "", False, None, "probe failed") for c in failing]
    probes.append(ProbeResult("app", "app-probe", "http", "", True, 5.0, "200"))
    components = [
        ComponentState(c, False, probes=(p,)) for c, p in zip(failing, probes, strict=False)
    ]
    components.append(ComponentState("app", True, probes=(probes[-1],)))
    return GateResult(not failing, tuple(components), tuple(probes))


def predict(item: LabelledItem, nodeid: str) -> tuple[str, str]:
    """(predicted category, rule name) for one labelled item."""
    reruns = (Outcome.PASSED,) if item.context.get("rerun_passed") else ()
    lines = item.text.strip().splitlines()
    test = TestResult(
        nodeid=nodeid,
        outcome=Outcome.FAILED,
        message=lines[-1] if lines else "",
        longrepr=item.text,
        reruns=reruns,
    )
    decision = classify(gather_evidence(test, gate=gate_for(item.context)))
    return decision.classification.category.value, decision.classification.rule


def score(items: Sequence[LabelledItem]) -> Scores:
    pairs: list[tuple[str, str]] = []
    misses = []
    for n, item in enumerate(items):
        predicted, rule = predict(item, f"tests/test_labelled.py::test_item[{n}]")
        pairs.append((item.label, predicted))
        if predicted != item.label:
            misses.append((item.id, item.label, predicted, rule))
    return _scores(pairs, tuple(misses))


def _scores(
    pairs: Iterable[tuple[str, str]], misses: tuple[tuple[str, str, str, str], ...]
) -> Scores:
    pairs = list(pairs)
    confusion = Counter(pairs)
    per: dict[str, tuple[float, float, int]] = {}
    for label in LABELS:
        tp = confusion[(label, label)]
        predicted = sum(v for (_, p), v in confusion.items() if p == label)
        support = sum(v for (t, _), v in confusion.items() if t == label)
        per[label] = (
            tp / predicted if predicted else 0.0,
            tp / support if support else 0.0,
            support,
        )
    correct = sum(1 for t, p in pairs if t == p)
    return Scores(len(pairs), correct, per, confusion, misses)


def table(scores: Scores) -> str:
    """The markdown table docs/triage.md shows."""
    rows = ["| category | precision | recall | items |", "| --- | ---: | ---: | ---: |"]
    for label, (precision, recall, support) in scores.per_label.items():
        rows.append(f"| {label} | {precision:.2f} | {recall:.2f} | {support} |")
    overall = f"**{scores.accuracy:.1%}** ({scores.correct}/{scores.total})"
    rows.append(f"| **overall accuracy** | | {overall} | |")
    return "\n".join(rows)
