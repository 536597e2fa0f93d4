"""dogpile.cache's Redis backend suite: init, a trusted first run (real_suites.py)."""

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
def redis_server() -> Iterator[int]:
    yield from rs.redis_server()


DOGPILE_INDEX = """\
# What our cache tests guard

| File | Priority | Revenue at risk | Area |
|------|----------|-----------------|------|
| cache/test_redis_backend.py | P1 | $12,000/mo | cache |
| cache/test_valkey_backend.py | P2 | 3k | cache |
"""


def test_dogpile_cache_redis_suite_from_install_to_green(
    tmp_path: Path, greenloop_cli: Path, redis_server: int
) -> None:
    project = rs.sdist("dogpile.cache", "1.5.0", tmp_path)
    (project / "tests" / "INDEX.md").write_text(DOGPILE_INDEX)
    python = rs.venv("dogpile", ["dogpile.cache==1.5.0", "redis>=5", "valkey", "pytest",
                              "pytest-xdist"])  # fmt: skip
    env = {**os.environ, "DOGPILE_REDIS_PORT": str(redis_server),
           "DOGPILE_VALKEY_PORT": str(redis_server)}  # fmt: skip

    raw = rs.greenloop_init(greenloop_cli, project, "tests", python, env)
    text = (project / "greenloop.toml").read_text()
    assert [p["kind"] for p in raw["probes"]] == ["redis"]
    active = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any("example.com" in line or "min_duration_ms" in line for line in active)
    assert raw["execution"]["python"].endswith("/bin/python")
    rs.check_index(project, env, {"cache/test_redis_backend.py": (1, 12000.0),
                               "cache/test_valkey_backend.py": (2, 3000.0)})  # fmt: skip
    smoke = rs.collected(python, project / "tests", "cache/test_redis_backend.py", env)
    assert f"P1: 1 files, {smoke} tests" in text and smoke > 50

    # The first run, as init wrote the config (P1 only, to keep this test short; the
    # suite shares one Redis database between tests, so it runs in one worker).
    first = rs.greenloop_run(greenloop_cli, project, "out", env, "--focus", "p1")
    flagged = rs.not_real(first)
    failed = [t["nodeid"] for t in first["tests"] if t["outcome"] not in ("passed", "skipped")]
    assert not failed, failed
    # Each test it calls not real (if any: traffic other tests leave on pooled sockets may
    # vouch for them) is in the class init named as patching a client with a mock, with
    # a ready keyword to leave it out (docs/getting-started.md uses it).
    assert {n.split("::")[1] for n in flagged} <= {"RedisConnectionTest"}
    assert (first["exit_code"], first["verdict"]) == ((4, "not_real") if flagged else (0, "green"))
    assert '# select = { priorities = [1], keyword = "not RedisConnectionTest" }' in text
    checks = {f["check"] for f in first["authenticity"]}
    assert checks <= {"no_connection"}, checks

    # Trusted, checked without greenloop: what it flagged passes with no Redis there,
    # what it trusted does not.
    gone = {**env, "DOGPILE_REDIS_PORT": str(rs.free_port())}
    tests_dir = project / "tests"
    assert not flagged or rs.passes_alone(python, tests_dir, flagged, gone)
    trusted = [t["nodeid"] for t in first["tests"] if "::RedisTest::" in t["nodeid"]][:3]
    assert len(trusted) == 3 and not rs.passes_alone(python, tests_dir, trusted, gone)
