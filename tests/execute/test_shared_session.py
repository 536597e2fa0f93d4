"""Progressive phases in one pytest session: started and collected once, run phase by phase."""

from __future__ import annotations

import sys

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


def test_only_single_worker_phases_share_and_filters_only_in_greenloops_pytest(
    tree, make_config, tmp_path
) -> None:
    tree({"test_smoke.py": "def test_up(): pass\n", "test_full.py": "def test_one(): pass\n"})
    config = make_config()
    marked = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"], markers="slow"))
    bad = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"], keyword="a and"))
    parallel = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"]), workers=4)
    smoke = select_tests(config, SMOKE, [])
    pair = [(SMOKE, smoke), (marked, select_tests(config, marked, []))]
    assert SharedSession.plan(config, pair, {}) is not None  # -m applied by the plugin
    for other in (bad, parallel):  # an expression that does not compile; xdist workers
        pair = [(SMOKE, smoke), (other, select_tests(config, other, []))]
        assert SharedSession.plan(config, pair, {}) is None
    assert SharedSession.plan(config, [(SMOKE, smoke)], {}) is None
    # Another environment's interpreter: its pytest's private matching API is unknown.
    (tmp_path / "other" / "bin").mkdir(parents=True)
    (tmp_path / "other" / "bin" / "python").symlink_to(sys.executable)
    foreign = make_config(execution={"python": str(tmp_path / "other" / "bin" / "python")})
    pair = [(SMOKE, select_tests(foreign, SMOKE, [])), (marked, select_tests(foreign, marked, []))]
    assert SharedSession.plan(foreign, pair, {}) is None


MARKED = """
import pytest

@pytest.mark.smoke
def test_login(): pass

def test_report(): pass

@pytest.mark.smoke
@pytest.mark.slow
def test_export(): assert False, "export broken"
"""


def test_phases_with_their_own_markers_and_keywords_share_one_session(tree, make_config) -> None:
    """smoke = `-m "smoke and not slow"` over every file, then a `-k` phase, then the rest:
    one pytest session; each phase runs exactly what `-m`/`-k` would select, a test
    selected by two phases runs in both (as in separate sessions)."""
    tests = tree({"conftest.py": CONFTEST, "test_app.py": MARKED, "test_more.py": MARKED})
    config = make_config()
    phases = [
        PhaseConfig(name="smoke", select=SelectConfig(markers="smoke and not slow")),
        PhaseConfig(name="reports", select=SelectConfig(keyword="report and more")),
        PhaseConfig(name="all", select=SelectConfig(files=["test_app.py"])),
    ]
    selections = [(p, select_tests(config, p, [])) for p in phases]
    shared = SharedSession.plan(config, selections, {})
    assert shared is not None and set(shared.filters) == {"smoke", "reports"}
    try:
        results = [run_phase(config, p, s, shared=shared) for p, s in selections]
    finally:
        shared.close()
        reap_closed()
    smoke, reports, whole = results
    assert sorted(t.nodeid for t in smoke.tests) == [
        "test_app.py::test_login",
        "test_more.py::test_login",
    ]
    assert smoke.status is PhaseStatus.PASSED and len(smoke.tests) == 2
    assert [t.nodeid for t in reports.tests] == ["test_more.py::test_report"]
    assert {t.nodeid: t.outcome for t in whole.tests} == {
        "test_app.py::test_login": Outcome.PASSED,
        "test_app.py::test_report": Outcome.PASSED,
        "test_app.py::test_export": Outcome.FAILED,
    }
    assert "-m 'smoke and not slow'" in smoke.command
    assert len((tests / "sessions.log").read_text().split()) == 1  # one session for all


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
