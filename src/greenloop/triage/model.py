"""A small learned classifier for failures no rule decides: naive Bayes over words.

Consulted last (after the team's labels, every environment fact and every text rule), so
it never overrides hard evidence; it only turns some `unknown` answers into a category,
and only when its posterior probability reaches `MIN_PROBABILITY`; the probability and the
words that weighed most are the evidence. The weights (`model.json`, shipped with the
package) are trained reproducibly by `bench/train_triage_model.py` from the development
part of the labelled corpus only; the frozen test part never reaches training.

Features: the normalised words of the failure text (normalise.py), the short names of the
exceptions it names (`exc:keyerror`) and where the code raised (`frame:test`, `frame:app`,
`frame:library`). Multinomial naive Bayes with Laplace smoothing; words seen in fewer than
two training items are dropped at training time (no memorised one-offs).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from greenloop.triage.evidence import FailureEvidence, Frame, exception_types, parse_frames
from greenloop.triage.normalise import tokens

MODEL_PATH = Path(__file__).with_name("model.json")
# Below this posterior probability the model abstains: `unknown` stays honest.
MIN_PROBABILITY = 0.6


@dataclass(frozen=True, slots=True)
class Prediction:
    category: str
    probability: float
    words: tuple[str, ...]  # the features that weighed most for it


def features(text: str, frames: tuple[Frame, ...] | None = None) -> Counter[str]:
    """The model's features of one failure text."""
    out = tokens(text)
    for exc in dict.fromkeys(exception_types(text)):
        out[f"exc:{exc.lower()}"] += 1
    frames = parse_frames(text) if frames is None else frames
    for frame in frames:
        if frame.kind in ("app", "test", "library"):
            out[f"frame:{frame.kind}"] += 1
    return out


@dataclass(frozen=True)
class NaiveBayes:
    """Log priors and per-class log likelihoods; `predict` gives the posterior."""

    classes: tuple[str, ...]
    log_prior: dict[str, float]
    log_like: dict[str, dict[str, float]]
    log_unseen: dict[str, float]
    trained_on: str = ""

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every feature some class has a likelihood for."""
        return frozenset(f for c in self.classes for f in self.log_like[c])

    def predict(self, feats: Counter[str]) -> Prediction | None:
        vocabulary = self.vocabulary
        known = {f: n for f, n in feats.items() if f in vocabulary}
        if not known:
            return None
        scores = {
            c: self.log_prior[c]
            + sum(n * self.log_like[c].get(f, self.log_unseen[c]) for f, n in known.items())
            for c in self.classes
        }
        top = max(scores.values())
        total = sum(math.exp(s - top) for s in scores.values())
        best = max(scores, key=lambda c: scores[c])
        prob = 1.0 / total  # exp(best - top) == 1
        others = [c for c in self.classes if c != best]

        def weight(f: str) -> float:
            own = self.log_like[best].get(f, self.log_unseen[best])
            rest = max(self.log_like[c].get(f, self.log_unseen[c]) for c in others)
            return own - rest

        words = tuple(sorted(known, key=weight, reverse=True)[:4])
        return Prediction(best, prob, words)

    def to_json(self) -> dict[str, object]:
        return {
            "classes": list(self.classes),
            "log_prior": self.log_prior,
            "log_like": self.log_like,
            "log_unseen": self.log_unseen,
            "trained_on": self.trained_on,
        }


def train(
    docs: list[tuple[Counter[str], str]], min_docs: int = 2, alpha: float = 1.0, note: str = ""
) -> NaiveBayes:
    """Fit on (features, category) pairs; deterministic for the same input."""
    classes = tuple(sorted({c for _, c in docs}))
    df: Counter[str] = Counter()
    for feats, _ in docs:
        df.update(feats.keys())
    vocab = sorted(f for f, n in df.items() if n >= min_docs)
    counts: dict[str, Counter[str]] = {c: Counter() for c in classes}
    per_class = Counter(c for _, c in docs)
    for feats, c in docs:
        counts[c].update({f: n for f, n in feats.items() if df[f] >= min_docs})
    log_like: dict[str, dict[str, float]] = {}
    log_unseen: dict[str, float] = {}
    for c in classes:
        total = sum(counts[c].values()) + alpha * len(vocab)
        log_like[c] = {
            f: round(math.log((counts[c][f] + alpha) / total), 6) for f in vocab if counts[c][f]
        }
        log_unseen[c] = round(math.log(alpha / total), 6)
    log_prior = {c: round(math.log(per_class[c] / len(docs)), 6) for c in classes}
    return NaiveBayes(classes, log_prior, log_like, log_unseen, note)


# A model to use instead of the shipped one (cross-validation in bench/); empty: shipped.
_override: list[NaiveBayes | None] = []


def use(model: NaiveBayes | None) -> None:
    """Use `model` instead of the shipped one (None: no model at all) until `use_shipped`."""
    _override[:] = [model]


def use_shipped() -> None:
    _override.clear()


def shipped() -> NaiveBayes | None:
    """The model in use: the one shipped with the package unless `use` replaced it."""
    if _override:
        return _override[0]
    return _load()


@lru_cache(maxsize=1)
def _load() -> NaiveBayes | None:
    if not MODEL_PATH.exists():
        return None
    raw = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    return NaiveBayes(
        tuple(raw["classes"]),
        raw["log_prior"],
        raw["log_like"],
        raw["log_unseen"],
        raw.get("trained_on", ""),
    )


def predict(ev: FailureEvidence) -> Prediction | None:
    """The shipped model's prediction for one failure, None when there is no model or no
    feature it knows."""
    model = shipped()
    if model is None:
        return None
    return model.predict(features(ev.text, ev.frames))
