"""execution.python: the suite runs in another interpreter, greenloop's plugin and checks intact.

The other interpreter is a real virtualenv (no pip, ~1 s to make) that has pytest and
nothing of greenloop's: not pydantic, not pytest-xdist, not pytest-timeout.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from greenloop.config import Config, PhaseConfig
from greenloop.errors import ConfigError
from greenloop.execute import run_phase, select_tests
from greenloop.records import Outcome

# The shapes of tests/execute/conftest.py's `tree` and `make_config` fixtures (a conftest
# is never imported by name: under xdist another folder's conftest may own that name).
Tree = Callable[[dict[str, str]], Path]
MakeConfig = Callable[..., Config]

# pytest and what it imports, linked from greenloop's own venv into the project's.
PYTEST_PARTS = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py")

TEST_FILE = """
import os
import urllib.request

import pytest

@pytest.mark.parametrize("path", ["/a", "/b"])
def test_target(path):
    with urllib.request.urlopen(os.environ["GREENLOOP_BASE_URL"] + path) as reply:
        assert reply.status == 200

def test_where():
    import sys
    assert "pydantic" not in sys.modules
    with pytest.raises(ImportError):
        import pydantic  # noqa: F401  greenloop's own dependencies are not here
"""


@pytest.fixture(scope="module")
def project_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    venv = tmp_path_factory.mktemp("project") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    ours = Path(pytest.__file__).parent.parent
    for name in PYTEST_PARTS:
        for source in ours.glob(f"{name}*"):
            if source.name == name or source.name.startswith(f"{name}-"):
                (site / source.name).symlink_to(source)
    return str(venv / "bin" / "python")


def test_suite_runs_in_the_project_interpreter_with_the_plugin(
    tree: Tree, make_config: MakeConfig, project_python: str, target: str
) -> None:
    tree({"test_api.py": TEST_FILE})
    config = make_config(execution={"python": project_python, "workers": 2})
    phase = PhaseConfig(name="all")
    result = run_phase(config, phase, select_tests(config, phase, []))
    by_id = {t.nodeid: t for t in result.tests}
    # The same node ids as with greenloop's own interpreter.
    assert sorted(by_id) == [
        "test_api.py::test_target[/a]",
        "test_api.py::test_target[/b]",
        "test_api.py::test_where",
    ]
    assert all(t.outcome is Outcome.PASSED for t in result.tests), result
    # The plugin ran there: it recorded each test's connection to the target.
    port = int(target.rsplit(":", 1)[1])
    assert {c.port for c in by_id["test_api.py::test_target[/a]"].connections} == {port}
    assert result.command.startswith(project_python)
    # What that interpreter lacks is said, and the run still worked.
    assert "no pytest-xdist" in result.note and "no pytest-timeout" in result.note


def test_an_interpreter_without_pytest_is_a_config_error(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(ConfigError, match="cannot import pytest"):
        make_config(execution={"python": str(bare / "bin" / "python")})
    with pytest.raises(ConfigError, match="no such interpreter"):
        make_config(execution={"python": "missing/bin/python"})


def test_the_configs_pythonpath_reaches_the_project_interpreter(
    tree: Tree, make_config: MakeConfig, project_python: str, tmp_path: Path
) -> None:
    # environment.env's PYTHONPATH was replaced by the plugin copy's path for a foreign
    # interpreter (found on the databases 0.9.0 field trial): the suite's own helpers
    # folder must stay importable beside greenloop's plugin.
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "suite_helpers.py").write_text("ANSWER = 42\n", encoding="utf-8")
    tree(
        {
            "test_uses_helpers.py": "import suite_helpers\n\ndef test_answer():\n"
            "    assert suite_helpers.ANSWER == 42\n"
        }
    )
    config = make_config(
        execution={"python": project_python}, environment={"env": {"PYTHONPATH": str(helpers)}}
    )
    phase = PhaseConfig(name="all")
    result = run_phase(config, phase, select_tests(config, phase, []))
    assert result.collection_errors == ()
    assert [(t.nodeid, t.outcome) for t in result.tests] == [
        ("test_uses_helpers.py::test_answer", Outcome.PASSED)
    ]
