"""Progressive phases in one pytest session: started and collected once, run phase by phase."""

from __future__ import annotations

from greenloop.config import PhaseConfig, SelectConfig
from greenloop.execute import run_phase, select_tests
from greenloop.execute.runners.shared import SharedSession, reap_closed
from greenloop.records import Outcome, PhaseStatus

# Each session start appends its pid: one line per pytest session that set the suite up.
CONFTEST = """
import os
from pathlib import Path

import pytest

@pytest.fixture(scope="session", autouse=True)
def backend():
    with Path(__file__).with_name("sessions.log").open("a") as f:
        f.write(f"{os.getpid()}\\n")
    yield
"""

SMOKE = PhaseConfig(name="smoke", select=SelectConfig(files=["test_smoke.py"]))
FULL = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"]))


def run_phases(config, *, second: bool = True):
    """smoke, then full when `second`, through one SharedSession; the phase results."""
    smoke, full = (select_tests(config, p, []) for p in (SMOKE, FULL))
    shared = SharedSession.plan(config, [(SMOKE, smoke), (FULL, full)], {})
    assert shared is not None
    try:
        results = [run_phase(config, SMOKE, smoke, shared=shared)]
        if second:
            results.append(run_phase(config, FULL, full, shared=shared))
    finally:
        shared.close()  # when not `second`: the loop decided not to expand
    return results


def test_consecutive_phases_run_in_one_pytest_session(tree, make_config) -> None:
    tests = tree(
        {
            "conftest.py": CONFTEST,
            "test_smoke.py": "import os\ndef test_up(): pass\n",
            "test_full.py": "def test_one(): pass\ndef test_two(): assert False, 'broken'\n",
        }
    )
    first, second = run_phases(make_config())
    assert [(t.nodeid, t.outcome) for t in first.tests] == [
        ("test_smoke.py::test_up", Outcome.PASSED)
    ]
    assert [(t.nodeid, t.outcome) for t in second.tests] == [
        ("test_full.py::test_one", Outcome.PASSED),
        ("test_full.py::test_two", Outcome.FAILED),
    ]
    assert "broken" in second.tests[1].message
    assert first.status is PhaseStatus.PASSED and second.status is PhaseStatus.FAILED
    assert "shared with phase(s) full" in first.note
    assert "greenloop.execute.phased" in first.command
    # One pytest process set the suite up once for both phases.
    assert len((tests / "sessions.log").read_text().split()) == 1


def test_a_phase_not_asked_for_is_never_run(tree, make_config) -> None:
    tests = tree(
        {
            "conftest.py": CONFTEST,
            "test_smoke.py": "def test_up(): assert False\n",
            "test_full.py": (
                "from pathlib import Path\n"
                "def test_side_effect():\n"
                "    Path(__file__).with_name('full.ran').write_text('ran')\n"
            ),
        }
    )
    [first] = run_phases(make_config(), second=False)
    assert [t.outcome for t in first.tests] == [Outcome.FAILED]
    assert not (tests / "full.ran").exists()


def test_a_crash_ends_the_shared_session_and_later_phases_run_on_their_own(
    tree, make_config
) -> None:
    tests = tree(
        {
            "conftest.py": CONFTEST,
            "test_smoke.py": (
                "import os\ndef test_before(): pass\n"
                "def test_dies(): os._exit(3)\ndef test_after(): pass\n"
            ),
            "test_full.py": "def test_one(): pass\n",
        }
    )
    first, second = run_phases(make_config())
    assert {t.nodeid: t.outcome for t in first.tests} == {
        "test_smoke.py::test_before": Outcome.PASSED,
        "test_smoke.py::test_dies": Outcome.CRASHED,
        "test_smoke.py::test_after": Outcome.PASSED,
    }
    assert [t.outcome for t in second.tests] == [Outcome.PASSED]
    assert "shared" not in second.note
    # the shared session, the re-launch after the crash, and the second phase's own pytest
    assert len((tests / "sessions.log").read_text().split()) == 3


def test_only_plain_single_worker_phases_share(tree, make_config) -> None:
    tree({"test_smoke.py": "def test_up(): pass\n", "test_full.py": "def test_one(): pass\n"})
    config = make_config()
    marked = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"], markers="slow"))
    parallel = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"]), workers=4)
    smoke = select_tests(config, SMOKE, [])
    for other in (marked, parallel):
        pair = [(SMOKE, smoke), (other, select_tests(config, other, []))]
        assert SharedSession.plan(config, pair, {}) is None
    assert SharedSession.plan(config, [(SMOKE, smoke)], {}) is None


def test_collection_errors_reach_the_phase_that_owns_the_file(tree, make_config) -> None:
    tree(
        {
            "test_smoke.py": "def test_up(): pass\n",
            "test_full.py": "import not_a_module_anywhere\ndef test_one(): pass\n",
        }
    )
    first, second = run_phases(make_config())
    assert first.status is PhaseStatus.PASSED and not first.collection_errors
    assert second.status is PhaseStatus.FAILED
    assert "not_a_module_anywhere" in " ".join(second.collection_errors)


def test_close_waits_for_the_session_teardown_and_the_exit_is_reaped(tree, make_config) -> None:
    # A slow session teardown with an effect outside: close() returns after it, never before.
    tests = tree(
        {
            "conftest.py": (
                "import time\nfrom pathlib import Path\n\nimport pytest\n\n"
                "@pytest.fixture(scope='session', autouse=True)\n"
                "def backend():\n"
                "    yield\n"
                "    time.sleep(0.5)\n"
                "    Path(__file__).with_name('torn.down').write_text('done')\n"
            ),
            "test_smoke.py": "def test_up(): pass\n",
            "test_full.py": "def test_one(): pass\n",
        }
    )
    config = make_config()
    smoke, full = (select_tests(config, p, []) for p in (SMOKE, FULL))
    shared = SharedSession.plan(config, [(SMOKE, smoke), (FULL, full)], {})
    assert shared is not None
    try:
        [result] = [run_phase(config, SMOKE, smoke, shared=shared)]
    finally:
        shared.close()
    assert [t.outcome for t in result.tests] == [Outcome.PASSED]
    assert (tests / "torn.down").read_text() == "done"
    assert shared.proc is not None
    reap_closed()
    assert shared.proc.poll() is not None  # exited, and waited for
    assert not shared.workdir.exists()
