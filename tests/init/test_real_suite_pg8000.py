"""pg8000's PostgreSQL suite: init and a trusted, green first run (real_suites.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import real_suites as rs

# Minutes on a loaded machine: installs, a real suite, its own server.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def greenloop_cli() -> Path:
    return rs.install_greenloop()


@pytest.fixture
def postgres_server() -> Iterator[rs.PostgresCluster]:
    yield from rs.postgres_server()


PG8000_INDEX = """\
| Test file | Priority | MRR at risk | Category |
|-----------|----------|-------------|----------|
| native/test_copy.py | P1 | $20,000/mo | copy |
| native/test_prepared_statement.py | P1 | $4,000/mo | statements |
| dbapi/test_copy.py | P2 | $5k/mo | dbapi |
| legacy/test_prepared_statement.py | P3 | 1.5k | legacy |
"""


def test_pg8000_suite_first_run_is_trusted(
    tmp_path: Path, greenloop_cli: Path, postgres_server: rs.PostgresCluster
) -> None:
    project = rs.sdist("pg8000", "1.31.6", tmp_path)
    (project / "test" / "INDEX.md").write_text(PG8000_INDEX)
    python = rs.venv("pg8000", ["pg8000==1.31.6", "pytest", "pytest-mock", "pytz"])
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(postgres_server.port)}

    raw = rs.greenloop_init(greenloop_cli, project, "test", python, env)
    text = (project / "greenloop.toml").read_text()
    assert [p["kind"] for p in raw["probes"]] == ["postgres"]
    assert raw["environment"]["env"] == {"PGHOST": "${PGHOST:-127.0.0.1}",
                                         "PGPORT": "${PGPORT:-5432}"}  # fmt: skip
    rs.check_index(project, env, {
        "native/test_copy.py": (1, 20000.0),
        "native/test_prepared_statement.py": (1, 4000.0),
        "dbapi/test_copy.py": (2, 5000.0),
        "legacy/test_prepared_statement.py": (3, 1500.0),
    })  # fmt: skip
    assert [p["select"] for p in raw["phases"]] == [{"priorities": [1]}, {"priorities": [2, 3]}]
    p1 = sum(rs.collected(python, project / "test", f, env)
             for f in ("native/test_copy.py", "native/test_prepared_statement.py"))  # fmt: skip
    assert f"P1: 2 files, {p1} tests" in text

    first = rs.greenloop_run(greenloop_cli, project, "out", env)
    assert first["exit_code"] == 0 and first["verdict"] == "green", rs.not_real(first)
    ran = {t["nodeid"].split("::")[0] for t in first["tests"]}
    # The P3 phase did not sweep in the 40-odd files the index does not list.
    assert ran == {"native/test_copy.py", "native/test_prepared_statement.py",
                   "dbapi/test_copy.py", "legacy/test_prepared_statement.py"}  # fmt: skip

    # Trusted, checked without greenloop: with PostgreSQL stopped these tests fail.
    postgres_server.stop()
    sample = [t["nodeid"] for t in first["tests"] if t["outcome"] == "passed"][:3]
    assert not rs.passes_alone(python, project / "test", sample, env)
    postgres_server.start()  # the fixture stops it again
