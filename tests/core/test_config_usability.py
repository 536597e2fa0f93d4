"""Config usability: ${VAR:-default}, ${secret:VAR}, read-only verbs, needs = [], one path base."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenloop.errors import ConfigError
from greenloop.execute.selection import select_tests
from greenloop.index import load_index
from greenloop.load import config_from_dict


def load(raw: dict[str, object], env: dict[str, str], tmp_path: Path, **kw: bool):  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as mp:
        for k in ("GL_T_URL", "GL_T_TOKEN", "GL_T_UNSET", "GL_T_PORT"):
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        return config_from_dict(raw, tmp_path / "greenloop.toml", **kw)


def test_default_is_used_when_the_variable_is_unset_or_empty(tmp_path: Path) -> None:
    raw = {"environment": {"base_url": "http://127.0.0.1:${GL_T_PORT:-8000}/api"}}
    assert load(raw, {}, tmp_path).environment.base_url == "http://127.0.0.1:8000/api"
    assert load(raw, {"GL_T_PORT": ""}, tmp_path).environment.base_url.endswith(":8000/api")
    assert load(raw, {"GL_T_PORT": "9001"}, tmp_path).environment.base_url.endswith(":9001/api")


def test_which_values_are_secrets(tmp_path: Path) -> None:
    raw = {
        "environment": {
            "base_url": "${GL_T_URL}",
            "env": {
                "TOKEN": "${GL_T_TOKEN}",
                "MARKED": "${secret:GL_T_PORT}",
                "DSN": "${GL_T_UNSET:-postgresql://u:from-the-file@h/db}",
            },
        }
    }
    env = {
        "GL_T_URL": "http://staging.internal:8080/v1",
        "GL_T_TOKEN": "tok-12345",
        "GL_T_PORT": "https://a.b",
    }
    config = load(raw, env, tmp_path)
    # A URL without a password stays readable; an opaque value and a marked one are secrets;
    # a default written in the file is no secret of the environment's.
    assert "http://staging.internal:8080/v1" not in config.secrets
    assert {"tok-12345", "https://a.b"} <= set(config.secrets)
    assert not any("from-the-file" in s for s in config.secrets)
    with_password = load(raw, {**env, "GL_T_URL": "http://u:pw-1234@h/"}, tmp_path)
    assert "http://u:pw-1234@h/" in with_password.secrets


def test_unset_variable_is_an_error_except_for_read_only_commands(tmp_path: Path) -> None:
    raw = {"tracker": {"kind": "local"}, "environment": {"base_url": "${GL_T_UNSET}"}}
    with pytest.raises(ConfigError, match="GL_T_UNSET is not set"):
        load(raw, {}, tmp_path)
    assert load(raw, {}, tmp_path, read_only=True).environment.base_url == "${GL_T_UNSET}"


def test_history_and_issues_list_work_without_the_run_secrets(tmp_path: Path) -> None:
    (tmp_path / "greenloop.toml").write_text(
        '[environment]\nbase_url = "${GL_T_UNSET}"\n'
        '[[probes]]\nname = "api"\ncomponent = "api"\nkind = "http"\nurl = "${GL_T_UNSET}/health"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "GL_T_UNSET"}
    for verb in (["history"], ["issues", "list"], ["flaky"], ["probe"]):
        done = subprocess.run(
            [sys.executable, "-m", "greenloop.cli", *verb],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if verb == ["probe"]:  # it talks to the environment: it needs the variable
            assert done.returncode == 2 and "GL_T_UNSET is not set" in done.stderr
        else:
            assert done.returncode == 0, (verb, done.stderr)


def test_empty_needs_is_kept_apart_from_no_needs(tmp_path: Path) -> None:
    raw = {
        "components": [{"name": "db"}],
        "phases": [{"name": "unit", "needs": []}, {"name": "e2e"}],
    }
    unit, e2e = load(raw, {}, tmp_path).phases
    assert unit.needs == [] and e2e.needs is None


def test_select_files_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "api").mkdir(parents=True)
    for name in ("api/test_a.py", "test_b.py"):
        (tests / name).write_text("def test_x():\n    pass\n")
    raw = {
        "execution": {"tests_dir": "tests"},
        "phases": [
            {"name": "new", "select": {"files": ["tests/api"]}},  # from the config folder
            {"name": "old", "select": {"files": ["test_b.py"]}},  # written for tests_dir
            {"name": "all", "select": {"files": ["tests"]}},
        ],
    }
    config = load(raw, {}, tmp_path)
    chosen = {
        p.name: {Path(f).relative_to(tests).as_posix() for f in select_tests(config, p, ()).files}
        for p in config.phases
    }
    assert chosen == {
        "new": {"api/test_a.py"},
        "old": {"test_b.py"},
        "all": {"api/test_a.py", "test_b.py"},
    }
    assert load_index(config) == ()
