"""`greenloop init` on synthetic suites: what it reads and what it proposes.

Collection runs the real `pytest --collect-only` in a subprocess (about a second each).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from greenloop.execute.selection import select_tests
from greenloop.index import load_index
from greenloop.init import survey
from greenloop.init.render import render_config
from greenloop.load import load_config

CONFTEST = """
import os
import pytest

def pytest_addoption(parser):
    parser.addoption("--redis-url", default="redis://localhost:6379/0", help="cache")

@pytest.fixture
def app_url():
    return os.environ["APP_URL"]

@pytest.fixture
def db_dsn():
    return os.getenv("ORDERS_DSN", "postgresql://app@127.0.0.1:5432/orders")
"""
TEST_CHECKOUT = """
import os
import pytest

@pytest.mark.payments
@pytest.mark.parametrize("amount", [1, 5, 10])
def test_pay(app_url, amount):
    assert app_url

def test_refund(app_url):
    assert os.environ.get("FEATURE_FLAGS", "") == ""
"""
TEST_SEARCH = """
def test_search(db_dsn):
    assert db_dsn

def test_suggest(db_dsn):
    assert db_dsn
"""
TEST_CACHE = """
from unittest.mock import patch

def test_hit(request):
    assert request.config.getoption("--redis-url")

@patch("socket.create_connection")
def test_mocked(conn):
    assert conn is not None
"""
INDEX = """\
| File | Priority | MRR at risk | Category |
|------|----------|-------------|----------|
| test_checkout.py | P2 | $12,000/mo | payments |
| api/test_search.py | P3 | 2.5k | search |
| test_cache.py | P3 | $300/mo | cache |
"""


def make_suite(root: Path) -> Path:
    tests = root / "tests"
    (tests / "api").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "test_checkout.py").write_text(TEST_CHECKOUT)
    (tests / "api" / "test_search.py").write_text(TEST_SEARCH)
    (tests / "test_cache.py").write_text(TEST_CACHE)
    (tests / "test_unlisted.py").write_text("def test_x():\n    pass\n")
    (tests / "INDEX.md").write_text(INDEX)
    return tests


def greenloop(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def active_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_init_reads_index_variables_options_and_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_suite(tmp_path)
    result = greenloop("init", "tests", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "greenloop.toml").read_text()
    active = active_lines(text)
    raw = tomllib.loads(text)

    # pytest's own count: the parametrised test counts three times (9 tests, not 7).
    assert "pytest collected 9 tests in 4 files" in text
    # The index is read, not replaced by defaults; the unlisted file is said.
    assert raw["index"]["path"] == "tests/INDEX.md"
    assert "[[index.files]]" not in text and "test_unlisted.py" in text
    # Servers of the kinds the suite uses, with the variables and options it reads.
    kinds = {p["name"]: p["kind"] for p in raw["probes"]}
    assert sorted(kinds.values()) == ["http", "postgres", "redis"], kinds
    assert "staging.example.com" not in active
    assert raw["environment"]["env"]["ORDERS_DSN"].startswith("${ORDERS_DSN:-postgresql://")
    assert raw["environment"]["env"]["APP_URL"] == "${APP_URL}"
    assert raw["execution"]["pytest_args"] == ["--redis-url", "redis://localhost:6379/0"]
    assert "FEATURE_FLAGS" in text  # read by the tests, pointed out, not guessed at
    # No P1 in the index: smoke is the highest priority present, and every phase selects.
    smoke, expansion = raw["phases"]
    assert smoke["select"] == {"priorities": [2]} and expansion["select"] == {"priorities": [3]}
    assert "test_mocked" in text  # tests that patch a client are pointed out
    # No speed floor; the revision source is mentioned.
    assert raw["execution"].get("min_duration_ms", 0) == 0
    assert "version_url" in text
    assert "payments (1)" in text  # markers are reported, not turned into categories

    # The written config loads, its index matches the table, and its phases select tests.
    monkeypatch.setenv("APP_URL", "http://127.0.0.1:8000")
    config = load_config(tmp_path / "greenloop.toml")
    index = {e.path: e for e in load_index(config)}
    assert (index["test_checkout.py"].priority, index["test_checkout.py"].mrr_at_risk_usd) == (
        2,
        12000.0,
    )
    assert index["api/test_search.py"].category == "search"
    selected = []
    for phase in config.phases:
        files = select_tests(config, phase, load_index(config)).files
        assert files, phase.name
        selected += [Path(f).name for f in files]
    # P3 in the index does not sweep in the file the index leaves out (index.unlisted).
    assert sorted(selected) == ["test_cache.py", "test_checkout.py", "test_search.py"]
    assert {c.name for c in config.components} >= set(config.phases[0].needs)


def test_init_says_when_pytest_cannot_collect(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text("import module_that_is_not_installed\n")
    (tests / "test_a.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('x', [1, 2])\ndef test_a(x):\n    pass\n"
    )
    found = survey(tests, tmp_path)
    assert found.collection.error and "module_that_is_not_installed" in found.collection.error
    text = render_config(found)
    assert "Could not collect with pytest" in text
    assert "Counted 1 `def test` functions in 1 files" in text
    # Without an index: one phase over every test, no made-up priorities or money.
    raw = tomllib.loads(text)
    assert [p["name"] for p in raw["phases"]] == ["all"] and "index" not in raw


def test_init_with_a_yaml_index_and_ci_settings(tmp_path: Path) -> None:
    tests = tmp_path / "t"
    tests.mkdir()
    (tmp_path / "setup.py").write_text("")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "jobs:\n  test:\n    steps:\n      - env:\n"
        '          DATABASE_URL: "sqlite:///:memory:"\n'
        "      - env:\n"
        '          DATABASE_URL: "postgresql://u:pw@127.0.0.1:'
        '${{ job.services.pg.ports[5432] }}/d"\n'
    )
    (tests / "test_rows.py").write_text("def test_r():\n    pass\n")
    (tests / "tests.yaml").write_text("- module: test_rows.py\n  priority: critical\n  mrr: 4k\n")
    found = survey(tests, tmp_path)
    assert found.index_rows and found.index_rows[0].priority == 1
    (target,) = found.targets
    assert (target.kind, target.port) == ("postgres", 5432)
    text = render_config(found)
    raw = tomllib.loads(text)
    # A URL with a password is marked secret; the probe gets a plain postgresql:// DSN.
    assert raw["environment"]["env"]["DATABASE_URL"].startswith("${secret:DATABASE_URL:-postgresql")
    assert raw["phases"][0]["select"] == {"priorities": [1]}
    assert re.search(r"P1: 1 files, 1 tests", text)


def test_init_says_why_an_index_could_not_be_read(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text("def test_a():\n    pass\n")
    (tests / "INDEX.md").write_text("| File | Priority |\n|---|---|\n| test_a.py | someday |\n")
    found = survey(tests, tmp_path, run_collection=False)
    assert found.index_file is None and found.index_problem
    text = render_config(found)
    assert "No test index read:" in text and "line 3" in text and "priority" in text
    assert [p["name"] for p in tomllib.loads(text)["phases"]] == ["all"]


def test_init_reads_a_root_conftest_and_variables_named_after_a_driver(tmp_path: Path) -> None:
    # As in SQLAlchemy-Utils (variables read in the project's root conftest.py) and psycopg2
    # (host and port in PSYCOPG2_TESTDB_*): a PostgreSQL server, probed and needed.
    tests = tmp_path / "tests"
    tests.mkdir()
    (tmp_path / "setup.py").write_text("")
    (tmp_path / "conftest.py").write_text(
        "import os\n\n"
        "HOST = os.environ.get('PSYCOPG2_TESTDB_HOST', '127.0.0.1')\n"
        "PORT = os.environ.get('PSYCOPG2_TESTDB_PORT', '5432')\n"
    )
    (tests / "test_db.py").write_text("def test_db():\n    pass\n")
    found = survey(tests, tmp_path)
    assert [(t.kind, t.port) for t in found.targets] == [("postgres", 5432)]
    raw = tomllib.loads(render_config(found))
    assert [p["kind"] for p in raw["probes"]] == ["postgres"]
    assert raw["environment"]["env"].keys() >= {"PSYCOPG2_TESTDB_HOST", "PSYCOPG2_TESTDB_PORT"}
