"""The warm pytest loads the suite's libraries ahead, never the suite's own modules.

Pure: which names the import lines give. Real: which of them resolve into this
interpreter's libraries from a project tree, and a warm process handed a real session
whose conftest.py sees its library already loaded and its own helper module not.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from greenloop.config import PhaseConfig, SelectConfig
from greenloop.execute import run_phase, select_tests
from greenloop.execute.interpreter import Interpreter, import_root
from greenloop.execute.preload import imported_names, preload, preloadable, scan_files
from greenloop.execute.runners.base import process_environment
from greenloop.execute.runners.shared import SharedSession, reap_closed
from greenloop.execute.warm import start_warm_pytest
from greenloop.records import Outcome


def test_import_lines_give_top_level_names_first_seen_first() -> None:
    text = "\n".join(
        [
            "import os, sys as system  # a comment, b",
            "from jinja2.sandbox import SandboxedEnvironment",
            "from . import sibling",
            "from .helpers import make",
            "    import indented_only_when_needed",
            "import xml.etree.ElementTree as ET",
            "from __future__ import annotations",
            "if True: import not_at_line_start",
        ]
    )
    names = imported_names([text, "import os\nimport sqlalchemy\n"])
    assert names == ["os", "sys", "jinja2", "xml", "__future__", "sqlalchemy"]


def test_only_libraries_of_this_interpreter_are_loaded_ahead(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "myapp").mkdir(parents=True)
    (project / "helpers.py").write_text("X = 1\n")
    (project / "jinja2").mkdir()  # the project's own folder shadowing a library's name
    names = ["json", "sqlalchemy", "jinja2", "helpers", "myapp", "no_such_module_here"]
    chosen = preloadable(names, [project, project / "src"])
    assert chosen == ["json", "sqlalchemy"]
    # A suite that monkey-patches the standard library first: nothing ahead.
    assert preloadable(["gevent", "sqlalchemy"], [project]) == []


def test_loading_ahead_stops_when_the_hand_over_arrives() -> None:
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1

    assert preload(["json", "no_such_module_here", "csv"], stop) == ["json"]
    assert preload(["json", "no_such_module_here"], lambda: False) == ["json"]  # failure left


def test_scan_reads_conftests_then_test_files_and_skips_what_pytest_skips(
    tmp_path: Path,
) -> None:
    for folder in ("sub", ".tox/py", "env/lib", "node_modules/x"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")  # a virtualenv
    names = ["conftest.py", "sub/conftest.py", "test_a.py", "sub/b_test.py", "helper.py"]
    names += [".tox/py/test_t.py", "env/lib/test_v.py", "node_modules/x/test_n.py"]
    for name in names:
        (tmp_path / name).write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in scan_files(tmp_path)]
    assert found == ["conftest.py", "sub/conftest.py", "test_a.py", "sub/b_test.py"]


CONFTEST = """
import sys
from pathlib import Path

# What was loaded before this file ran: the library yes, the suite's helper no.
SEEN = {name: name in sys.modules for name in ("sqlalchemy", "suite_helper")}
Path(__file__).with_name("seen.txt").write_text(repr(sorted(SEEN.items())))

import sqlalchemy  # noqa: E402,F401
import suite_helper  # noqa: E402,F401
"""


def test_a_warm_session_finds_the_suites_library_loaded_and_its_own_module_not(
    tree, make_config
) -> None:
    tests = tree(
        {
            "conftest.py": CONFTEST,
            "suite_helper.py": "import sqlalchemy\n",
            "test_smoke.py": "def test_up(): pass\n",
            "test_full.py": "def test_two(): pass\n",
        }
    )
    config = make_config()
    env = Interpreter(sys.executable, own=True).environment(
        process_environment(config), import_root(tests, config.base_dir)
    )
    warm = start_warm_pytest(sys.executable, tests, env, ["anyio"], [config.base_dir])
    assert warm is not None
    # Hand over once it has loaded ahead (an order that comes sooner stops the loading).
    deadline = time.monotonic() + 60
    while "loaded ahead" not in warm.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "sqlalchemy" in warm.log.read_text().split("loaded ahead:")[1]
    smoke_phase = PhaseConfig(name="smoke", select=SelectConfig(files=["test_smoke.py"]))
    full_phase = PhaseConfig(name="full", select=SelectConfig(files=["test_full.py"]))
    smoke, full = (select_tests(config, p, []) for p in (smoke_phase, full_phase))
    shared = SharedSession.plan(config, [(smoke_phase, smoke), (full_phase, full)], {})
    assert shared is not None
    try:
        results = [
            run_phase(config, p, s, shared=shared)
            for p, s in ((smoke_phase, smoke), (full_phase, full))
        ]
    finally:
        shared.close()
        reap_closed()
    assert shared.proc is warm.proc  # handed over, not started cold
    assert [t.outcome for r in results for t in r.tests] == [Outcome.PASSED, Outcome.PASSED]
    seen = (tests / "seen.txt").read_text()
    assert seen == "[('sqlalchemy', True), ('suite_helper', False)]"
