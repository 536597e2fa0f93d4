"""`greenloop label`: a person's verdict changes the next triage of a similar failure.

Real stores (SQLite and PostgreSQL), the real command line in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from triage_helpers import failed

from greenloop.records import Category, Outcome, PhaseResult, PhaseStatus
from greenloop.store import Store, store_url
from greenloop.triage import triage
from greenloop.triage.labels import Label, LabelIndex, tokens

NODE = "tests/test_checkout.py::test_pay_with_card"
# A failure no built-in rule knows (at most the learned model guesses).
FIRST = (
    "tests/test_checkout.py:41: in test_pay_with_card\n"
    "    receipt = gateway.charge(card, 1999)\n"
    "E   RuntimeError: sandbox merchant acct_2931 rejected the charge: signature scheme v1 "
    "is retired for this merchant"
)
# The same fault on another test, another merchant and amount.
SIMILAR = (
    "tests/test_refunds.py:88: in test_refund_partial\n"
    "    refund = gateway.refund(receipt, 500)\n"
    "E   RuntimeError: sandbox merchant acct_7713 rejected the charge: signature scheme v1 "
    "is retired for this merchant"
)
UNRELATED = "E   AssertionError: assert 'EUR' == 'USD'"


def greenloop(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GREENLOOP_STORE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "greenloop.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def configured(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    """A config naming a fresh store of each kind, and that store with one failed test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    yield from _configured(url, tmp_path)


@pytest.fixture
def configured_sqlite(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    yield from _configured(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)


def _configured(url: str, tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    config = tmp_path / "greenloop.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    store = Store.open(store_url(url, tmp_path))
    store.runs.start_run(
        "run-1", environment="staging", focus="all", command_line="", config_path=""
    )
    test = failed(FIRST, nodeid=NODE)
    store.results.record_phase("run-1", 1, PhaseResult("smoke", PhaseStatus.FAILED, 1.0, (test,)))
    yield config, store
    store.close()


def test_a_label_decides_the_next_triage_of_a_similar_failure(
    configured: tuple[Path, Store],
) -> None:
    config, store = configured
    before = triage([failed(SIMILAR, nodeid="tests/test_refunds.py::t")], gate=None, store=store)
    first = before.classifications[0]
    assert first.category is not Category.CONFIGURATION and first.rule != "team-label"

    done = greenloop(
        "label", NODE, "configuration", "--note", "sandbox account on the old signing key",
        "-c", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "configuration" in done.stdout

    after = triage(
        [
            failed(SIMILAR, nodeid="tests/test_refunds.py::t"),
            failed(UNRELATED, nodeid="tests/test_money.py::t"),
        ],
        gate=None,
        store=store,
    )
    similar, unrelated = after.classifications
    assert similar.category is Category.CONFIGURATION
    assert similar.rule == "team-label"
    assert "labelled configuration" in similar.evidence
    assert "old signing key" in similar.evidence and "similarity" in similar.evidence
    assert unrelated.rule != "team-label"

    (row,) = store.triage.labels()  # it survived in the store, with the failure's text
    assert (row.target, row.target_kind, row.category) == (NODE, "test", "configuration")
    assert "signature scheme v1" in row.text


def test_bad_category_and_unknown_target_are_one_line_exit_2(
    configured_sqlite: tuple[Path, Store],
) -> None:
    config, store = configured_sqlite
    bad = greenloop("label", NODE, "weather", "-c", str(config))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "expected one of" in bad.stderr
    missing = greenloop("label", "tests/test_nope.py::t", "product", "-c", str(config))
    assert missing.returncode == 2 and "no cluster or failed test" in missing.stderr
    assert "Traceback" not in bad.stderr + missing.stderr
    assert store.triage.labels() == []


def test_nearest_label_weighs_shared_tokens_low_and_masks_ids() -> None:
    assert tokens("acct_2931 at 0xdeadbeef id 7f3e2a10-1111-2222-3333-444455556666") == tokens(
        "acct_7713 at 0x00ff id 00000000-aaaa-bbbb-cccc-ddddeeeeffff"
    )
    index = LabelIndex(
        [
            Label("a", "configuration", FIRST),
            Label("b", "product", "E   KeyError: 'total' in checkout/views.py line 12"),
        ]
    )
    found = index.nearest(SIMILAR)
    assert found is not None and found[0].target == "a" and found[1] > 0.75
    other = index.nearest(UNRELATED)
    assert other is None or other[1] < 0.75


def test_label_help_has_an_example() -> None:
    shown = greenloop("label", "--help")
    assert shown.returncode == 0 and "Example" in shown.stdout


def test_a_skipped_or_blocked_test_is_not_decided_by_labels() -> None:
    skipped = failed("skip: STAGING_URL not set", outcome=Outcome.SKIPPED)
    result = triage([skipped], gate=None)
    assert result.classifications[0].rule != "team-label"


def test_the_migrations_have_exactly_one_head() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from greenloop.store import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1


def test_junit_triage_with_a_config_uses_the_stores_labels(
    configured_sqlite: tuple[Path, Store], tmp_path: Path
) -> None:
    config, _store = configured_sqlite
    xml = tmp_path / "ci.xml"
    xml.write_text(
        '<testsuite name="ci" tests="1" failures="1">'
        '<testcase classname="tests.test_refunds" name="test_refund_partial">'
        f'<failure message="RuntimeError">{SIMILAR}</failure>'
        "</testcase></testsuite>"
    )
    labelled = greenloop("label", NODE, "configuration", "-c", str(config))
    assert labelled.returncode == 0, labelled.stderr
    report = tmp_path / "triage.json"
    greenloop("triage", str(xml), "-c", str(config), "--json", str(report))
    (test,) = json.loads(report.read_text())["tests"]
    assert test["category"] == "configuration"
