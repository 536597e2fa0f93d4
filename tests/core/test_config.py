"""greenloop.toml loading: good files validate, every mistake names file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenloop.config import parse_duration
from greenloop.errors import ConfigError
from greenloop.load import load_config

GOOD = """
[environment]
name = "staging"
base_url = "http://127.0.0.1:8000"

[[components]]
name = "backend"
depends_on = ["database"]

[[components]]
name = "database"

[[probes]]
name = "health"
component = "backend"
kind = "http"
url = "http://127.0.0.1:8000/health"
conditions = ["status == 200"]

[[phases]]
name = "smoke"
needs = ["backend"]
select = { priorities = [1] }
min_pass_rate = 0.95
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "greenloop.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.environment.base_url == "http://127.0.0.1:8000"
    assert config.phases[0].select.priorities == [1]
    assert config.components[0].depends_on == ["database"]
    assert config.tracker.kind == "local"
    assert config.remediation.enabled is False
    assert config.base_dir == tmp_path.resolve()
    assert config.resolve("tests") == tmp_path.resolve() / "tests"


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found.*greenloop init"):
        load_config(tmp_path / "nope.toml")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[environment\nname = 1"))
    assert "greenloop.toml" in str(err.value) and "not valid TOML" in str(err.value)


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD + "\n[execution]\nworkerz = 3\n"))
    assert err.value.key == "execution.workerz"
    assert err.value.expected == "unknown key"


def test_wrong_type_names_list_position(tmp_path: Path) -> None:
    text = GOOD.replace("min_pass_rate = 0.95", 'min_pass_rate = "high"')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert err.value.key == "phases[0].min_pass_rate"
    assert "number" in err.value.expected


def test_unknown_component_reference(tmp_path: Path) -> None:
    text = GOOD.replace('needs = ["backend"]', 'needs = ["frontend"]')
    with pytest.raises(ConfigError, match=r"phases\[0\]\.needs: unknown component 'frontend'"):
        load_config(write(tmp_path, text))


def test_env_interpolation_and_secret_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_TOKEN", "s3cret-token-value")
    text = GOOD + '\n[environment.env]\nAPI_TOKEN = "Bearer ${STAGING_TOKEN}"\n'
    text = text.replace("[environment]\n", "[environment]\n", 1)
    config = load_config(write(tmp_path, text))
    assert config.environment.env["API_TOKEN"] == "Bearer s3cret-token-value"
    assert "s3cret-token-value" in config.secrets


def test_a_variable_at_a_urls_host_or_port_is_no_secret_but_in_its_password_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pg8000 field trial: `postgresql://postgres:${PGPW}@${PGH}:55433/postgres` with
    PGH=x.invalid masked the host a DNS failure is about."""
    from greenloop.config import Interpolation, interpolate

    env = {"PGPW": "pw-value-1", "PGH": "db.x.invalid", "PGPORT": "55433", "HOOK": "t0k3n-abc"}
    used = Interpolation()
    text = "postgresql://postgres:${PGPW}@${PGH}:${PGPORT}/app"
    assert interpolate(text, "f", "dsn", env, used) == (
        "postgresql://postgres:pw-value-1@db.x.invalid:55433/app"
    )
    assert used.secrets() == ("pw-value-1",)
    # In a path (a webhook's token) or outside any URL it stays a secret; marked, always.
    used = Interpolation()
    interpolate("https://hooks.example/services/${HOOK}", "f", "url", env, used)
    interpolate("${PGH}", "f", "env.HOST", env, used)
    interpolate("https://${secret:PGH}/", "f", "url", env, used)
    assert used.secrets() == ("db.x.invalid", "t0k3n-abc")


def test_unset_env_variable_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    text = GOOD.replace('name = "staging"', 'name = "${NOT_SET_ANYWHERE}"')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert err.value.key == "environment.name"
    assert "NOT_SET_ANYWHERE is not set" in err.value.expected


def test_durations() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("24h") == 86400
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_bad_duration_in_deploy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD + '\n[deploy]\nmax_age = "a while"\n'))
    assert err.value.key == "deploy.max_age"
