"""validate_probes: every mistake in a probe is one ConfigError naming probes[i].<key>."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenloop.errors import ConfigError
from greenloop.load import config_from_dict
from greenloop.probes import PROBES
from greenloop.probes.run import validate_probes


def config(*probes: dict[str, Any]) -> Any:
    return config_from_dict({"probes": list(probes)}, Path("staging.toml"))


def http(**extra: Any) -> dict[str, Any]:
    return {
        "name": "api",
        "component": "backend",
        "kind": "http",
        "url": "http://127.0.0.1:1/",
        **extra,
    }


def error_of(*probes: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        validate_probes(config(*probes))
    return str(info.value)


def test_valid_probes_of_every_kind_pass() -> None:
    validate_probes(
        config(
            http(conditions=["status == 200", 'body.status == "ok"']),
            {"name": "ws", "component": "backend", "kind": "websocket", "url": "ws://127.0.0.1:1/",
             "send": {"type": "ping"}, "expect_type": "pong", "conditions": ["close_code != 1011"]},
            {"name": "port", "component": "lb", "kind": "tcp", "host": "127.0.0.1", "port": 80},
            {"name": "name", "component": "lb", "kind": "dns", "host": "localhost"},
            {"name": "cert", "component": "lb", "kind": "tls", "host": "localhost",
             "conditions": ["cert_days_left > 14"]},
            {"name": "db", "component": "database", "kind": "postgres", "dsn": "postgresql://x@h/db"},
            {"name": "cache", "component": "cache", "kind": "redis", "url": "redis://h:6379/0"},
            {"name": "queue", "component": "queue", "kind": "command", "argv": ["true"],
             "conditions": ["json.depth < 100"]},
        )
    )  # fmt: skip


def test_unknown_kind_lists_the_known_ones() -> None:
    message = error_of(http(kind="htp"))
    assert message.startswith("staging.toml: probes[0].kind: unknown probe kind 'htp' (known: ")
    assert "postgres" in message


def test_unknown_option_is_named() -> None:
    assert (
        error_of(http(), http(name="b", urll="x"))
        == "staging.toml: probes[1].urll: http probe: unknown key"
    )


def test_missing_option_is_named() -> None:
    probe = {"name": "db", "component": "database", "kind": "postgres"}
    assert error_of(probe) == "staging.toml: probes[0].dsn: postgres probe: missing required key"


def test_bad_option_value_is_named() -> None:
    message = error_of({"name": "p", "component": "c", "kind": "tcp", "host": "h", "port": 70000})
    assert message.startswith("staging.toml: probes[0].port: tcp probe: ")


def test_bad_condition_points_at_probe_condition_and_column() -> None:
    message = error_of(http(conditions=["status == 200", "status = 200"]))
    assert message == (
        "staging.toml: probes[0].conditions[1]: bad condition 'status = 200': "
        "unexpected '=' (use '==' to compare) at column 8"
    )


def test_condition_reading_something_the_kind_does_not_observe() -> None:
    message = error_of(http(conditions=["stauts == 200"]))
    assert message == (
        "staging.toml: probes[0].conditions[0]: condition 'stauts == 200' reads 'stauts' "
        "at column 1, but http probes observe: connected, status, latency_ms, headers, body"
    )


def test_every_kind_has_a_valid_default_condition() -> None:
    from greenloop.probes.conditions import parse

    for name, kind in PROBES.items():
        for text in kind.default_conditions:
            paths = parse(text).paths
            assert all(p.name.split(".")[0] in kind.variables for p in paths), name
