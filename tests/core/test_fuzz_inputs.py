"""Generated configs never end in a traceback (exit 70) or a hang.

Deterministic (fixed seed), bounded (a few hundred cases, a few seconds): each case is
a mutation of a valid config. It must load or be one ConfigError line; `greenloop probe`
on the ones that load must exit 0, 2 or 3. (Generated JUnit files are fuzzed through
`greenloop triage` in tests/test_junit_robustness.py.)
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from greenloop.cli import main
from greenloop.errors import UserError
from greenloop.load import load_config

CONFIG_CASES = 300
PROBED_CASES = 12

# Values that have broken loaders before: markup, format fields, huge and negative numbers,
# regex bombs, odd URLs, deep nesting, control characters.
NASTY: list[Any] = [
    "[/boom]",
    "[bold]x[/bold]",
    "{0}",
    "{category}",
    "${HOME}",
    "${GL_FUZZ_UNSET_VAR}",
    "x{99999999999}",
    "(" * 200,
    "::::",
    "http://::::",
    "http://h:99999/",
    "postgresql://",
    "sqlite://",
    "mysql://u@h/db",
    "",
    " ",
    "\x00\x07",
    "é" * 50,
    "9" * 400,
    -1,
    0,
    10**30,
    -(10**30),
    1e308,
    float("inf"),
    True,
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": {"c": {}}}},
    "auto",
    "status == 200 and " * 50 + "connected",
]

BASE: dict[str, Any] = {
    "environment": {"name": "staging", "base_url": "http://127.0.0.1:9"},
    "execution": {"tests_dir": "suite", "workers": 1, "reruns": 0, "test_timeout_s": 5},
    "components": [{"name": "api"}],
    "probes": [
        {
            "name": "health",
            "component": "api",
            "kind": "http",
            "url": "http://127.0.0.1:9/health",
            "conditions": ["status == 200"],
            "timeout_s": 0.5,
        },
        {"name": "port", "component": "api", "kind": "tcp", "host": "127.0.0.1", "port": 9},
    ],
    "phases": [{"name": "smoke", "needs": ["api"], "workers": 1}],
    "triage": {
        "rules": [{"name": "r", "category": "product", "pattern": "boom"}],
        "logs": [{"name": "app", "kind": "file", "path": "app.log"}],
    },
    "tracker": {"kind": "local", "labels": ["greenloop", "{category}"]},
    "report": {"out_dir": "out", "redact_patterns": ["ACME-\\d+"]},
    "store": {"url": "sqlite:///store.db"},
    "deploy": {"version_url": "http://127.0.0.1:9/version"},
}

KINDS = ["http", "tcp", "dns", "tls", "postgres", "redis", "websocket", "command", "nope"]


class Nested:
    """An array nested `depth` deep, written out directly (no recursion here)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def _toml(value: Any) -> str:
    if isinstance(value, Nested):
        return "[" * value.depth + '"x"' + "]" * value.depth
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "inf" if value == float("inf") else repr(value)
    if isinstance(value, str):
        return '"' + "".join(_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"


def _char(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    if ord(c) < 32 or ord(c) == 127:
        return f"\\u{ord(c):04x}"
    return c


def _document(tree: dict[str, Any]) -> str:
    return "".join(f'"{key}" = {_toml(value)}\n' for key, value in tree.items())


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(rng: random.Random) -> dict[str, Any]:
    import copy

    tree = copy.deepcopy(BASE)
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(_paths(tree))
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        roll = rng.random()
        if roll < 0.6:
            parent[last] = rng.choice(NASTY)
        elif roll < 0.75 and isinstance(parent, dict):
            del parent[last]
        elif roll < 0.85 and isinstance(parent, dict):
            parent[f"{last}x"] = rng.choice(NASTY)  # a typo'd key
        elif isinstance(parent, dict) and last == "kind":
            parent[last] = rng.choice(KINDS)
        else:
            parent[last] = _nest(rng.randint(50, 3000))
    return tree


def _nest(depth: int) -> Any:
    return Nested(depth)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GL_FUZZ_UNSET_VAR", raising=False)
    monkeypatch.delenv("GREENLOOP_STORE_URL", raising=False)
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_a.py").write_text("def test_a():\n    pass\n")
    (tmp_path / "app.log").write_text("2026-11-30T12:00:00Z ERROR boom\n")
    return tmp_path


def test_generated_configs_load_or_fail_in_one_line(project: Path) -> None:
    rng = random.Random(15)
    loaded: list[Path] = []
    for case in range(CONFIG_CASES):
        path = project / f"c{case}.toml"
        path.write_text(_document(_mutate(rng)), encoding="utf-8")
        try:
            load_config(path)
        except UserError as exc:
            text = str(exc)
            assert "\n" not in text and text.startswith(str(path)), (case, text)
        else:
            loaded.append(path)
    # Enough survive to exercise the probe verb too; each must end with a contract code.
    assert len(loaded) >= PROBED_CASES, len(loaded)
    for path in rng.sample(loaded, PROBED_CASES):
        code = main(["probe", "-c", str(path)])
        assert code in (0, 2, 3), (path.read_text(), code)
