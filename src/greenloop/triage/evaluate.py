"""Measure the classifier against the labelled corpus (tests/data/triage_labelled.jsonl).

Each item's `context` becomes the environment facts a real run would have:
`probes_failing` -> a gate whose listed components fail (an empty list -> a
gate where everything is green; no key -> no gate at all), `rerun_passed` ->
a re-run that passed. The text becomes the test's failure text, or its skip
reason when the item's `outcome` is `skipped`. Nothing of the item's id,
label, source or split reaches the classifier.

The corpus is split by repository into a development part (rules and models
are tuned on it) and a frozen test part (only measured): `split_of(repo)` is a
hash of the repository name, written into each item's `split` field when the
item was added and checked against the hash by the test suite, so an item can
never move between parts. Five categories are scored
(`infrastructure`, `product`, `test`, `configuration`, `skipped_env`);
`flaky` and `unknown` items are scored apart: one failure text rarely says
"nondeterministic", a re-run or the history does.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from greenloop.records import ComponentState, GateResult, Outcome, ProbeResult, TestResult
from greenloop.triage.classify import classify
from greenloop.triage.evidence import gather_evidence

CATEGORIES = ("infrastructure", "product", "test", "configuration", "skipped_env")
APART = ("flaky", "unknown")
LABELS = CATEGORIES + APART
SPLITS = ("dev", "test")
TEST_SHARE = 30  # percent of repositories in the frozen test part


def split_of(repo: str) -> str:
    """`dev` or `test` for a repository `owner/name` (case-insensitive), fixed forever:
    the first 32 bits of SHA-256 of the lower-cased name, modulo 100, below TEST_SHARE."""
    digest = hashlib.sha256(repo.lower().encode("utf-8")).hexdigest()
    return "test" if int(digest[:8], 16) % 100 < TEST_SHARE else "dev"


@dataclass(frozen=True, slots=True)
class LabelledItem:
    id: str
    label: str
    text: str
    context: dict[str, object]
    repo: str = ""
    split: str = "dev"
    outcome: str = "failed"  # failed | skipped


@dataclass(frozen=True, slots=True)
class Scores:
    """Scores of one part of the corpus.

    `per_label` holds (precision, recall, support) for the five categories, computed over
    the items labelled with one of them; `apart` holds (recall, support) for `flaky` and
    `unknown` items, which are not in `accuracy`.
    """

    total: int  # items labelled with one of the five categories
    correct: int
    per_label: dict[str, tuple[float, float, int]]
    confusion: Counter[tuple[str, str]]  # (label, predicted) -> count, all items
    misses: tuple[tuple[str, str, str, str], ...]  # (id, label, predicted, rule)
    apart: dict[str, tuple[float, int]] = field(default_factory=dict)
    abstained: int = 0  # five-category items predicted `unknown`

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def min_recall(self) -> float:
        recalls = [r for _, r, n in self.per_label.values() if n]
        return min(recalls) if recalls else 0.0


def load_labelled(path: Path, split: str | None = None) -> list[LabelledItem]:
    """The corpus items, all of them or those of one part (`dev` / `test`)."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        item = LabelledItem(
            raw["id"],
            raw["label"],
            raw["text"],
            raw.get("context", {}),
            raw.get("repo", ""),
            raw.get("split", "dev"),
            raw.get("outcome", "failed"),
        )
        if split is None or item.split == split:
            items.append(item)
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


def result_for(item: LabelledItem, nodeid: str) -> TestResult:
    """The test result a run would have recorded for the item (failure or skip)."""
    if item.outcome == "skipped":
        return TestResult(
            nodeid=nodeid, outcome=Outcome.SKIPPED, message=item.text, skip_reason=item.text
        )
    reruns = (Outcome.PASSED,) if item.context.get("rerun_passed") else ()
    lines = item.text.strip().splitlines()
    return TestResult(
        nodeid=nodeid,
        outcome=Outcome.FAILED,
        message=lines[-1] if lines else "",
        longrepr=item.text,
        reruns=reruns,
    )


def predict(item: LabelledItem, nodeid: str) -> tuple[str, str]:
    """(predicted category, rule name) for one labelled item."""
    test = result_for(item, nodeid)
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
    return scores_of(pairs, tuple(misses))


def scores_of(
    pairs: Iterable[tuple[str, str]], misses: tuple[tuple[str, str, str, str], ...] = ()
) -> Scores:
    """Scores from (label, predicted) pairs: five-category accuracy, the rest apart."""
    pairs = list(pairs)
    confusion = Counter(pairs)
    scored = [(t, p) for t, p in pairs if t in CATEGORIES]
    per: dict[str, tuple[float, float, int]] = {}
    for label in CATEGORIES:
        tp = sum(1 for t, p in scored if t == p == label)
        predicted = sum(1 for _, p in scored if p == label)
        support = sum(1 for t, _ in scored if t == label)
        per[label] = (
            tp / predicted if predicted else 0.0,
            tp / support if support else 0.0,
            support,
        )
    apart: dict[str, tuple[float, int]] = {}
    for label in APART:
        support = sum(1 for t, _ in pairs if t == label)
        hit = sum(1 for t, p in pairs if t == p == label)
        apart[label] = (hit / support if support else 0.0, support)
    correct = sum(1 for t, p in scored if t == p)
    abstained = sum(1 for _, p in scored if p == "unknown")
    return Scores(len(scored), correct, per, confusion, misses, apart, abstained)


def table(scores: Scores) -> str:
    """The markdown table docs/triage.md shows for one part."""
    rows = ["| category | precision | recall | items |", "| --- | ---: | ---: | ---: |"]
    for label, (precision, recall, support) in scores.per_label.items():
        rows.append(f"| {label} | {precision:.2f} | {recall:.2f} | {support} |")
    overall = f"**{scores.accuracy:.1%}** ({scores.correct}/{scores.total})"
    rows.append(f"| **accuracy, five categories** | | {overall} | |")
    rows.append(f"| abstained (`unknown`) | | {scores.abstained} | |")
    for label, (recall, support) in scores.apart.items():
        rows.append(f"| {label} (scored apart) | | {recall:.2f} | {support} |")
    return "\n".join(rows)


def side_by_side(dev: Scores, test: Scores) -> str:
    """One markdown table with both parts: the figures docs/triage.md quotes."""
    rows = [
        "| category | dev precision | dev recall | dev items "
        "| test precision | test recall | test items |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in CATEGORIES:
        dp, dr, dn = dev.per_label[label]
        tp, tr, tn = test.per_label[label]
        rows.append(f"| {label} | {dp:.2f} | {dr:.2f} | {dn} | {tp:.2f} | {tr:.2f} | {tn} |")
    rows.append(
        f"| **accuracy** | | **{dev.accuracy:.1%}** | {dev.correct}/{dev.total} "
        f"| | **{test.accuracy:.1%}** | {test.correct}/{test.total} |"
    )
    rows.append(f"| abstained | | | {dev.abstained} | | | {test.abstained} |")
    for label in APART:
        dr, dn = dev.apart[label]
        tr, tn = test.apart[label]
        rows.append(f"| {label} (apart) | | {dr:.2f} | {dn} | | {tr:.2f} | {tn} |")
    return "\n".join(rows)
