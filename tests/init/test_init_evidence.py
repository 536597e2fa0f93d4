"""What counts as a server for `greenloop init`, one kind of mistake per test.

Each synthetic suite reproduces a kind of wrong proposal the field trial of
`databases` 0.9.0 and huey 3.5.4 saw (docs/getting-started.md, "What init counts
as a server"); the comment over each test says what init proposed before. The
written configs are loaded as `greenloop run` loads them, and probed for real
against this machine's PostgreSQL and Redis where the test says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from greenloop.init import active_targets, survey
from greenloop.init.render import render_config
from greenloop.load import load_config


def write(root: Path, files: dict[str, str]) -> Path:
    """The suite's files under root (a project: pyproject.toml); its tests folder."""
    (root / "pyproject.toml").write_text('[project]\nname = "suite"\n')
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "tests"


def propose(root: Path, environ: dict[str, str] | None = None) -> tuple[str, dict]:  # type: ignore[type-arg]
    """init's config text and its TOML, without pytest (the scan decides the servers)."""
    found = survey(root / "tests", root, run_collection=False, environ=environ or {})
    text = render_config(found)
    (root / "greenloop.toml").write_text(text)
    return text, tomllib.loads(text)


def probes(raw: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(p["kind"], p.get("dsn") or p.get("url") or f"{p['host']}:{p['port']}")
            for p in raw.get("probes", [])]  # fmt: skip


def greenloop_probe(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in env}
    return subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "probe"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        env={**clean, **{k: v for k, v in env.items() if v}},
    )


PARSER_TESTS = """
from urllib.parse import urlsplit
from mylib import DatabaseURL, MySQLBackend

def test_repr():
    u = DatabaseURL("postgresql://username:password@localhost:123/mydatabase")
    assert repr(u) == "DatabaseURL('postgresql://username:********@localhost:123/mydatabase')"

def test_options():
    backend = MySQLBackend("mysql://localhost/database?min_size=1&max_size=20")
    assert backend.options == {"min_size": 1}

def test_split():
    assert urlsplit("postgres://localhost/database?ssl=true").port is None
    assert str(DatabaseURL("redis://localhost:6380/0")) == "redis://localhost:6380/0"
"""
CONNECTING_CONFTEST = """
import psycopg
import redis
import pytest

CACHE = "redis://127.0.0.1:6391/0"

@pytest.fixture
def db():
    with psycopg.connect("postgresql://shop@127.0.0.1:5433/shop") as conn:
        yield conn

@pytest.fixture
def cache():
    return redis.Redis.from_url(CACHE)
"""


def test_url_literals_a_test_only_parses_are_not_servers(tmp_path: Path) -> None:
    # Before: every URL literal was a candidate; with nothing better found, the parser
    # tests' URLs became three probes (postgres at localhost, postgres at port 123,
    # tcp 3306 for MySQL). Only the URLs the suite connects with are servers now.
    write(tmp_path, {"tests/test_url.py": PARSER_TESTS})
    text, raw = propose(tmp_path)
    assert "probes" not in raw or probes(raw) == [("http", "${STAGING_URL}")], probes(raw)
    assert "Not servers: 5 URL literals the tests only parse or compare" in text
    active = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any("localhost" in line or "3306" in line for line in active)

    (tmp_path / "tests" / "conftest.py").write_text(CONNECTING_CONFTEST)
    text, raw = propose(tmp_path)
    assert sorted(probes(raw)) == [
        ("postgres", "postgresql://shop@127.0.0.1:5433/shop"),
        ("redis", "redis://127.0.0.1:6391/0"),  # given to from_url through a name
    ]
    assert "mysql" not in raw["environment"]["urls"].values()


def test_a_probe_dsn_is_built_with_urllib_and_parses(tmp_path: Path) -> None:
    # Before: the database name was appended after the query string
    # ("...?min_size=1&max_size=20/postgres"), which psycopg refuses to parse.
    write(tmp_path, {
        "tests/conftest.py": "import asyncpg\n\n"
        "POOL = asyncpg.create_pool('postgres://127.0.0.1:5434?sslmode=disable&connect_timeout=3')\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })  # fmt: skip
    _, raw = propose(tmp_path)
    ((kind, dsn),) = probes(raw)
    assert (kind, dsn) == (
        "postgres",
        "postgres://${PGUSER:-postgres}@127.0.0.1:5434/postgres?sslmode=disable&connect_timeout=3",
    )
    config = load_config(tmp_path / "greenloop.toml")
    parsed = conninfo_to_dict(config.probes[0].options()["dsn"])
    assert parsed["dbname"] == "postgres" and parsed["sslmode"] == "disable"
    assert parsed["port"] == "5434" and parsed["user"] == os.environ.get("PGUSER", "postgres")

    # A default with no host (libpq's local socket, as huey's HUEY_PG_DSN): the probe, which
    # needs a host, gets the same server on 127.0.0.1; the suite keeps its own default.
    (tmp_path / "tests" / "conftest.py").write_text(
        "import os, psycopg\n\nDSN = os.environ.get('JOBS_PG_DSN') or 'postgresql:///jobs'\n"
        "CONN = psycopg.connect(DSN)\n"
    )
    _, raw = propose(tmp_path)
    assert probes(raw) == [("postgres", "${JOBS_PG_DSN:-postgresql://127.0.0.1/jobs}")]
    assert raw["environment"]["env"] == {"JOBS_PG_DSN": "${JOBS_PG_DSN:-postgresql:///jobs}"}
    config = load_config(tmp_path / "greenloop.toml")  # the probe's DSN validates
    assert config.probes[0].options()["dsn"] == "postgresql://127.0.0.1/jobs"


LIST_READER = """
import os
import pytest

URLS = [u.strip() for u in os.environ["APP_DATABASE_URLS"].split(",")]

@pytest.mark.parametrize("url", URLS)
def test_rows(url):
    assert url
"""


@pytest.mark.postgres
def test_a_variable_set_in_the_environment_is_the_server_and_its_password_stays_out(
    tmp_path: Path,
) -> None:
    # Before: the variable the tests read (a comma-separated list of URLs, set when init
    # ran) was left as a comment "set it in env if they need it", and no probe used it.
    write(tmp_path, {"tests/test_rows.py": LIST_READER})
    password = "s3cret-Pw"  # the machine's PostgreSQL trusts local connections
    value = (
        f"postgresql+asyncpg://postgres:{password}@127.0.0.1:5432/postgres,"
        f" postgresql+psycopg://postgres:{password}@127.0.0.1:5432/postgres"
    )
    text, raw = propose(tmp_path, {"APP_DATABASE_URLS": value})
    assert password not in text
    secret = "${secret:APP_DATABASE_URLS_PASSWORD}"
    assert probes(raw) == [("postgres", f"postgresql://postgres:{secret}@127.0.0.1:5432/postgres")]
    assert raw["environment"]["urls"] == {"postgres": "postgresql://127.0.0.1:5432/postgres"}
    written = raw["environment"]["env"]["APP_DATABASE_URLS"]
    assert written == value.replace(password, secret).replace(", ", ",")
    assert "set APP_DATABASE_URLS_PASSWORD (a secret)" in text

    # A bare port set in the environment is the server too; the file keeps the conventional
    # default (the variable is read at run time), as pg8000's PGPORT does.
    (tmp_path / "tests" / "test_port.py").write_text(
        "import os\n\ndef test_port():\n    assert os.environ['SHOP_POSTGRES_PORT']\n"
    )
    _, raw = propose(tmp_path, {"SHOP_POSTGRES_PORT": "5999"})
    assert probes(raw) == [
        (
            "postgres",
            "postgresql://${PGUSER:-postgres}@127.0.0.1:${SHOP_POSTGRES_PORT:-5432}/postgres",
        )
    ]
    (tmp_path / "tests" / "test_port.py").unlink()
    propose(tmp_path, {"APP_DATABASE_URLS": value})

    # The config works with only the password given, the list itself unset.
    done = greenloop_probe(
        tmp_path, {"APP_DATABASE_URLS": "", "APP_DATABASE_URLS_PASSWORD": password}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert password not in done.stdout + done.stderr


DEFAULT_CLIENTS = """
import psycopg
from redis import Redis
from fakeredis import FakeRedis
from jobs import RedisQueue

def test_enqueue():
    queue = RedisQueue("emails", retries=2)
    Redis().ping()

def test_fake():
    FakeRedis().ping()
    RedisContainer().start()  # a container a fixture starts: not the default server

def test_db():
    with psycopg.connect() as conn:
        conn.execute("select 1")
"""


@pytest.mark.redis
def test_a_client_built_with_no_address_reaches_its_librarys_default_server(
    tmp_path: Path,
) -> None:
    # Before: Redis() and RedisQueue("emails") named no URL, so init found no server at
    # all and proposed an http probe at ${STAGING_URL}.
    write(tmp_path, {"tests/test_jobs.py": DEFAULT_CLIENTS})
    text, raw = propose(tmp_path)
    assert sorted(probes(raw)) == [
        ("postgres", "postgresql://${PGUSER:-postgres}@127.0.0.1:5432/postgres"),
        ("redis", "redis://127.0.0.1:6379"),
    ]
    assert "RedisQueue() with no address (test_jobs.py)" in text
    assert "FakeRedis" not in text and "RedisContainer" not in text

    # A suite that names its Redis elsewhere: the default is not a second server.
    (tmp_path / "tests" / "conftest.py").write_text(
        "import os\nREDIS_URL = os.environ.get('JOBS_REDIS_URL', 'redis://127.0.0.1:6390/1')\n"
    )
    _, again = propose(tmp_path)
    assert [p for p in probes(again) if p[0] == "redis"] == [
        ("redis", "${JOBS_REDIS_URL:-redis://127.0.0.1:6390/1}")
    ]

    # The proposed Redis probe is right on this machine (postgres may need a password).
    (tmp_path / "tests" / "conftest.py").unlink()
    (tmp_path / "tests" / "test_jobs.py").write_text(
        DEFAULT_CLIENTS.replace("psycopg.connect()", "open('x')")
    )
    propose(tmp_path)
    done = greenloop_probe(tmp_path, {})
    assert done.returncode == 0, done.stdout + done.stderr


DEFAULTED_READS = """
import os

STORE_URL = os.environ.get("JOBS_STORE_URL") or "sqlite:////tmp/jobs-store.db"
CACHE_URL = os.getenv("JOBS_CACHE_URL") or "redis://127.0.0.1:6379/3"

def test_store():
    assert STORE_URL and CACHE_URL
"""


@pytest.mark.redis
def test_a_defaults_scheme_decides_the_kind_and_the_config_works_unset(tmp_path: Path) -> None:
    # Before: `os.environ.get(X) or "default"` was read as "no default", so a *_URL variable
    # became an http probe at "${X}", and `greenloop probe` exited 2 with X unset.
    write(tmp_path, {"tests/test_store.py": DEFAULTED_READS})
    text, raw = propose(tmp_path)
    assert probes(raw) == [("redis", "${JOBS_CACHE_URL:-redis://127.0.0.1:6379/3}")]
    assert "JOBS_STORE_URL" not in raw["environment"].get("env", {})
    assert "default sqlite:////tmp/jobs-store.db: a file, no server" in text
    done = greenloop_probe(tmp_path, {"JOBS_CACHE_URL": "", "JOBS_STORE_URL": ""})
    assert done.returncode == 0, done.stdout + done.stderr


def test_collects_as_python_m_pytest_from_the_project_root_and_says_why_not(
    tmp_path: Path,
) -> None:
    # Before: collection ran inside tests/ without the project root on the import path,
    # so files importing the suite's own `tests` package were "could not collect: FILE"
    # with no reason, and their tests were not counted.
    write(tmp_path, {
        "tests/helpers.py": "CASES = [1, 2, 3]\n",
        "tests/test_uses_helpers.py": "import pytest\nfrom tests.helpers import CASES\n\n"
        "@pytest.mark.parametrize('case', CASES)\ndef test_case(case):\n    pass\n",
        "tests/test_broken.py": "import module_nobody_installed\n\ndef test_x():\n    pass\n",
    })  # fmt: skip
    found = survey(tmp_path / "tests", tmp_path, environ={})
    assert found.collection.error is None
    assert found.collection.counts == {"test_uses_helpers.py": 3}
    (error,) = found.collection.errors
    assert error == (
        "test_broken.py - ModuleNotFoundError: No module named 'module_nobody_installed'"
    )
    text = render_config(found)
    assert "#   could not collect: test_broken.py - ModuleNotFoundError" in text
    assert not active_targets(found)
