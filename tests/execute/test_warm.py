"""A pytest process started ahead (execute/warm.py) runs a shared session exactly as a cold one.

Real processes: the warm process is started for a real test tree, handed the shared
session's command line, and the phases' results, the session's pid and what the tests
saw (working folder, environment, stdin) are checked against a cold start.
"""

from __future__ import annotations

import os
import sys

from greenloop.config import PhaseConfig, SelectConfig
from greenloop.execute import run_phase, select_tests
from greenloop.execute.interpreter import Interpreter, import_root
from greenloop.execute.runners.base import process_environment
from greenloop.execute.runners.shared import SharedSession, reap_closed
from greenloop.execute.warm import (
    discard_warm_pytest,
    start_warm_pytest,
    take_warm_pytest,
    warm_up,
)
from greenloop.records import Outcome

SMOKE = PhaseConfig(name="smoke", select=SelectConfig(files=["test_smoke.py"]))
FULL = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"]))

# What the test process saw, written where the test can read it back.
SMOKE_TEST = """
import os
from pathlib import Path

def test_where():
    seen = [os.getcwd(), os.environ.get("WARM_MARK", "-"), repr(os.read(0, 10))]
    Path(__file__).with_name("seen.txt").write_text("\\n".join(seen))
"""


def run_shared(config):
    smoke, full = (select_tests(config, p, []) for p in (SMOKE, FULL))
    shared = SharedSession.plan(config, [(SMOKE, smoke), (FULL, full)], {})
    assert shared is not None
    try:
        results = [
            run_phase(config, p, s, shared=shared) for p, s in ((SMOKE, smoke), (FULL, full))
        ]
    finally:
        shared.close()
        reap_closed()
    return shared, results


def test_the_shared_session_runs_in_the_warm_process(tree, make_config, monkeypatch) -> None:
    monkeypatch.setenv("WARM_MARK", "set-before-greenloop")
    tests = tree({"test_smoke.py": SMOKE_TEST, "test_full.py": "def test_one(): assert False\n"})
    config = make_config()
    # The environment warm_up gives it: the one the phases' pytest gets.
    env = Interpreter(sys.executable, own=True).environment(
        process_environment(config), import_root(tests, config.base_dir)
    )
    warm = start_warm_pytest(sys.executable, tests, env, ["anyio"])
    assert warm is not None
    shared, (smoke, full) = run_shared(config)
    assert shared.proc is warm.proc  # handed over, not started cold
    assert "started once, ahead, while greenloop loaded" in smoke.note  # said in the worklog
    assert [t.outcome for t in smoke.tests] == [Outcome.PASSED]
    assert [(t.nodeid, t.outcome) for t in full.tests] == [
        ("test_full.py::test_one", Outcome.FAILED)
    ]
    cwd, mark, stdin = (tests / "seen.txt").read_text().split("\n")
    assert os.path.samefile(cwd, tests)
    assert mark == "set-before-greenloop"
    assert stdin == "b''"  # /dev/null, as for a cold start

    # The same tree started cold gives the same results.
    (tests / "seen.txt").unlink()
    cold, (smoke2, full2) = run_shared(config)
    assert cold.proc is not warm.proc
    assert "ahead" not in smoke2.note
    assert [(t.nodeid, t.outcome) for t in (*smoke2.tests, *full2.tests)] == [
        (t.nodeid, t.outcome) for t in (*smoke.tests, *full.tests)
    ]


def test_a_warm_process_that_does_not_fit_is_discarded(tree, make_config) -> None:
    tests = tree({"test_smoke.py": "def test_up(): pass\n"})
    config = make_config()
    env = {**process_environment(config), "PYTHONSAFEPATH": "1"}
    warm = start_warm_pytest(sys.executable, tests, env)
    assert warm is not None
    other = {**env, "PYTHONHASHSEED": "7"}  # read when an interpreter starts: cannot be changed
    argv = [sys.executable, "-m", "pytest", "-q", "test_smoke.py"]
    assert take_warm_pytest(argv, cwd=tests, env=other, output=tests / "out.log") is None
    assert warm.proc.poll() is not None  # ended, not left behind
    assert take_warm_pytest(argv, cwd=tests, env=env, output=tests / "out.log") is None  # used once


def test_an_unused_warm_process_ends(tree, make_config) -> None:
    tests = tree({"test_smoke.py": "def test_up(): pass\n"})
    config = make_config()
    warm = start_warm_pytest(sys.executable, tests, {**process_environment(config)})
    assert warm is not None
    discard_warm_pytest()
    # Ended at once (it ran nothing of the suite), reaped, its log removed.
    assert warm.proc.poll() is not None
    assert not warm.log.exists()
    discard_warm_pytest()  # nothing left: a second call is harmless


def test_warm_up_only_for_pytest_with_one_worker_in_this_interpreter(tree, make_config) -> None:
    tree({"test_smoke.py": "def test_up(): pass\n", "test_full.py": "def test_one(): pass\n"})
    phases = [{"name": "smoke", "select": {"files": ["tests/test_smoke.py"]}}, {"name": "full"}]
    try:
        assert warm_up(make_config(phases=phases), workers=4) is None  # workers: xdist
        assert warm_up(make_config(phases=phases, execution={"workers": 2})) is None
        junit = {"name": "j", "runner": "command", "command": ["true"], "junit": "x.xml"}
        assert warm_up(make_config(phases=[junit])) is None  # no pytest phase
        assert warm_up(make_config(phases=phases)) is not None
        discard_warm_pytest()
        assert warm_up(make_config(phases=[phases[0]])) is not None  # one phase: its launch
    finally:
        discard_warm_pytest()


ATEXIT_CONFTEST = """
import atexit
import threading
import time
from pathlib import Path

atexit.register(lambda: Path(__file__).with_name("atexit.txt").write_text("ran"))
if Path(__file__).with_name("linger").exists():  # a non-daemon thread still running at exit
    threading.Thread(target=lambda: (time.sleep(0.5), Path(__file__).with_name(
        "thread.txt").write_text("done"))).start()
"""


def test_the_warm_pytest_exits_with_pytests_code_after_the_suites_exit_handlers(
    tree, make_config
) -> None:
    """It skips the interpreter's module teardown, not what a normal exit does: the exit
    code is pytest's, exit handlers run, and a non-daemon thread is waited for."""
    tests = tree({"conftest.py": ATEXIT_CONFTEST, "test_x.py": "def test_no(): assert False\n"})
    config = make_config()
    env = Interpreter(sys.executable, own=True).environment(
        process_environment(config), import_root(tests, config.base_dir)
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_x.py"]
    for linger in (False, True):
        if linger:
            (tests / "linger").write_text("")
        warm = start_warm_pytest(sys.executable, tests, env)
        assert warm is not None
        proc = take_warm_pytest(argv, cwd=tests, env=env, output=tests / "out.log")
        assert proc is not None
        assert proc.wait(timeout=60) == 1  # pytest's "tests failed"
        assert (tests / "atexit.txt").read_text() == "ran"
        assert (tests / "thread.txt").exists() is linger
        (tests / "atexit.txt").unlink()


def test_a_single_phase_runs_in_the_warm_process(tree, make_config) -> None:
    """Without a shared session (one phase) the phase's first launch takes it."""
    tests = tree({"test_smoke.py": SMOKE_TEST})
    config = make_config()
    env = Interpreter(sys.executable, own=True).environment(
        process_environment(config), import_root(tests, config.base_dir)
    )
    warm = start_warm_pytest(sys.executable, tests, env, ["anyio"])
    assert warm is not None
    result = run_phase(config, SMOKE, select_tests(config, SMOKE, []))
    assert [t.outcome for t in result.tests] == [Outcome.PASSED]
    assert result.note.startswith("pytest started ahead")
    assert warm.proc.poll() is not None  # it ran the phase and ended
    assert not warm.log.exists()  # handed over
    assert take_warm_pytest(["x"], cwd=tests, env=env, output=tests / "o.log") is None
