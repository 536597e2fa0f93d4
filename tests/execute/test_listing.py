"""Blocked phases name their tests without importing the suite: source or cached collection."""

from __future__ import annotations

import textwrap
from pathlib import Path

from greenloop.config import PhaseConfig, SelectConfig
from greenloop.execute import blocked_phase, run_phase, select_tests
from greenloop.execute.listing import static_tests
from greenloop.records import Outcome
from greenloop.store import Store

PHASE = PhaseConfig(name="all")

SOURCE = """
import pytest

pytestmark = [pytest.mark.api]

def test_plain(): pass

async def test_async(): pass

@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2, 3])
def test_many(n): pass

def helper(): pass

@pytest.mark.payments
class TestCheckout:
    def test_pay(self): pass

    def not_a_test(self): pass

    class TestNested:
        def test_deep(self): pass

class Helper:
    def test_ignored(self): pass
"""

# Imported by pytest before any test is collected: proves whether the suite was imported.
CONFTEST = """
from pathlib import Path
Path(__file__).with_name("imported.flag").write_text("conftest imported")
"""


def test_static_tests_follow_pytest_default_names_and_markers() -> None:
    tests = static_tests(SOURCE, "test_x.py")
    assert tests is not None
    by_id = {t.nodeid: t for t in tests}
    assert list(by_id) == [
        "test_x.py::test_plain",
        "test_x.py::test_async",
        "test_x.py::test_many",
        "test_x.py::TestCheckout::test_pay",
        "test_x.py::TestCheckout::TestNested::test_deep",
    ]
    assert by_id["test_x.py::test_many"].parametrized
    assert by_id["test_x.py::test_many"].markers == {"api", "slow", "parametrize"}
    assert by_id["test_x.py::TestCheckout::TestNested::test_deep"].markers == {"api", "payments"}
    assert static_tests("def test_(:\n", "broken.py") is None


def test_blocked_phase_lists_from_source_without_importing_the_suite(tree, make_config) -> None:
    tests = tree({"conftest.py": CONFTEST, "test_x.py": SOURCE})
    config = make_config()
    selection = select_tests(config, PHASE, [])
    result = blocked_phase(config, PHASE, selection, "cache", "not run: cache is unhealthy")
    assert not (tests / "imported.flag").exists()
    assert len(result.tests) == 5
    assert {t.outcome for t in result.tests} == {Outcome.BLOCKED}
    assert "listed without running pytest: 1 file(s) read from the source" in result.note
    assert "1 parametrised test(s) listed once each" in result.note


def test_blocked_phase_applies_markers_and_keywords_from_the_source(tree, make_config) -> None:
    tree({"test_x.py": SOURCE})
    config = make_config()
    phase = PhaseConfig(name="pay", select=SelectConfig(markers="payments and not slow"))
    result = blocked_phase(config, phase, select_tests(config, phase, []), "db", "not run")
    assert [t.nodeid for t in result.tests] == [
        "test_x.py::TestCheckout::test_pay",
        "test_x.py::TestCheckout::TestNested::test_deep",
    ]
    phase = PhaseConfig(name="k", select=SelectConfig(keyword="plain or DEEP"))
    result = blocked_phase(config, phase, select_tests(config, phase, []), "db", "not run")
    assert [t.nodeid for t in result.tests] == [
        "test_x.py::test_plain",
        "test_x.py::TestCheckout::TestNested::test_deep",
    ]


def test_blocked_phase_uses_the_collection_of_the_last_run_until_a_file_changes(
    tree, make_config, tmp_path: Path
) -> None:
    tests = tree(
        {
            "test_p.py": """
                import pytest

                @pytest.mark.parametrize("n", ["a", "b"])
                def test_p(n): pass
            """,
            "test_q.py": "def test_q(): pass\n",
            "test_r.py": "def test_q(): pass\n",  # same content, another file
        }
    )
    config = make_config()
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        selection = select_tests(config, PHASE, [])
        ran = run_phase(config, PHASE, selection, store=store)
        assert {t.outcome for t in ran.tests} == {Outcome.PASSED}

        blocked = blocked_phase(config, PHASE, selection, "db", "not run", store=store)
        assert sorted(t.nodeid for t in blocked.tests) == [
            "test_p.py::test_p[a]",
            "test_p.py::test_p[b]",
            "test_q.py::test_q",
            "test_r.py::test_q",
        ]
        assert "3 file(s) from the collection cached for unchanged files" in blocked.note

        # A changed conftest.py may parametrise differently: the cache no longer holds.
        (tests / "conftest.py").write_text("# changed\n", encoding="utf-8")
        blocked = blocked_phase(config, PHASE, selection, "db", "not run", store=store)
        assert sorted(t.nodeid for t in blocked.tests) == [
            "test_p.py::test_p",
            "test_q.py::test_q",
            "test_r.py::test_q",
        ]
        assert "3 file(s) read from the source" in blocked.note
    finally:
        store.close()


def test_the_source_scan_follows_unittest_cases_and_inherited_methods() -> None:
    source = textwrap.dedent(
        """
        import unittest

        class Base(unittest.TestCase):
            def test_a(self): pass
            def helper(self): pass

        class Redis(Base):
            def test_b(self): pass

        class Mixin:
            def test_m(self): pass

        class TestX(Mixin):
            def test_x(self): pass
            class TestInner:
                def test_i(self): pass

        class NotATest:
            def test_no(self): pass
        """
    )
    found = static_tests(source, "t.py")
    assert found is not None
    assert sorted(t.nodeid for t in found) == [
        "t.py::Base::test_a",
        "t.py::Redis::test_a",
        "t.py::Redis::test_b",
        "t.py::TestX::TestInner::test_i",
        "t.py::TestX::test_m",
        "t.py::TestX::test_x",
    ]
