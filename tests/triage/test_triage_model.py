"""The learned model: reproducible training, honest abstention, evidence that shows why."""

from __future__ import annotations

import json
from collections import Counter

from triage_helpers import failed

from greenloop.records import Category
from greenloop.triage import model as learned
from greenloop.triage.classify import classify
from greenloop.triage.evidence import gather_evidence
from greenloop.triage.model import MIN_PROBABILITY, features, train

DOCS = [
    (Counter({"redis": 2, "refused": 1}), "infrastructure"),
    (Counter({"redis": 1, "refused": 2, "cache": 1}), "infrastructure"),
    (Counter({"keyerror": 1, "views": 2}), "product"),
    (Counter({"keyerror": 2, "views": 1, "cache": 1}), "product"),
]


def test_training_is_deterministic_and_drops_one_off_words() -> None:
    a = train([*DOCS, (Counter({"once": 1}), "product")])
    b = train([*DOCS, (Counter({"once": 1}), "product")])
    assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
    assert all("once" not in like for like in a.log_like.values())


def test_prediction_names_the_words_that_weighed_and_abstains_on_nothing_known() -> None:
    model = train(DOCS)
    p = model.predict(Counter({"redis": 1, "refused": 1}))
    assert p is not None and p.category == "infrastructure" and p.probability > 0.5
    assert "redis" in p.words or "refused" in p.words
    assert model.predict(Counter({"nothing": 3})) is None


def test_the_model_decides_only_when_no_rule_does_and_shows_its_probability() -> None:
    model = train(DOCS)
    learned.use(model)
    try:
        text = "E   CustomError: redis refused the cache warmup"
        decision = classify(gather_evidence(failed(text), gate=None))
        c = decision.classification
        assert c.category is Category.INFRASTRUCTURE and c.rule == "model-infrastructure"
        assert "probability" in c.evidence
        # a rule decides first whenever one matches, whatever the model says
        ruled = classify(gather_evidence(failed("fixture 'db' not found"), gate=None))
        assert ruled.classification.rule == "missing-fixture"
    finally:
        learned.use_shipped()


def test_features_hold_words_exceptions_and_where_code_raised() -> None:
    text = "File \"tests/test_x.py\", line 3, in test_x\nKeyError: 'id'"
    f = features(text)
    assert f["exc:keyerror"] == 1 and f["frame:test"] == 1 and f["keyerror"] >= 1


def test_shipped_model_abstains_below_its_threshold() -> None:
    model = learned.shipped()
    assert model is not None and model.trained_on.startswith("development part")
    assert 0.5 < MIN_PROBABILITY < 1
