"""One registry shape for every pluggable kind, and adding a kind is one class and one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from greenloop.errors import ConfigError
from greenloop.execute.runners import RUNNERS
from greenloop.kinds import KindOptions, Registry
from greenloop.load import load_config
from greenloop.probes import PROBES
from greenloop.probes.base import Observation, ProbeKind, ProbeOptions
from greenloop.remediate.kinds import ACTIONS
from greenloop.trackers import TRACKERS
from greenloop.triage.logs import LOG_SOURCES

FAMILIES: list[tuple[str, Registry[Any], set[str]]] = [
    ("probe", PROBES, {"http", "https", "websocket", "tcp", "dns", "tls", "postgres", "redis"}),
    ("tracker", TRACKERS, {"local", "github", "gitlab"}),
    ("log source", LOG_SOURCES, {"file", "command", "loki"}),
    ("runner", RUNNERS, {"pytest", "command"}),
    ("action", ACTIONS, {"command", "http", "restart", "rollback", "redeploy"}),
]


@pytest.mark.parametrize(("noun", "registry", "some"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_is_one_registry_of_kinds_with_a_strict_options_model(
    noun: str, registry: Registry[Any], some: set[str]
) -> None:
    assert registry.noun == noun
    assert some <= set(registry.names())
    for name, kind in registry.items():
        assert issubclass(kind.Options, KindOptions), name
        assert kind.Options.model_config.get("extra") == "forbid", name


# Each family's section with an unknown kind, and where the one error must point.
UNKNOWN = [
    ("probe", '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "gopher"\n', "probes[0].kind"),
    ("tracker", '[tracker]\nkind = "gopher"\n', "tracker.kind"),
    ("log source", '[[triage.logs]]\nname = "svc"\nkind = "gopher"\n', "triage.logs[svc].kind"),
    ("runner", '[[phases]]\nname = "a"\nrunner = "gopher"\n', "phases[0].runner"),
    (
        "action",
        '[[remediation.runbooks]]\nname = "r"\nmatch = { component = "c" }\n'
        '[[remediation.runbooks.actions]]\nname = "a"\nkind = "gopher"\n',
        "remediation.runbooks[0].actions[0].kind",
    ),
]


@pytest.mark.parametrize(("noun", "toml", "key"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_an_unknown_kind_is_the_same_one_line_in_every_family(
    tmp_path: Path, noun: str, toml: str, key: str
) -> None:
    config = tmp_path / "greenloop.toml"
    config.write_text(toml, encoding="utf-8")
    registry = {family: registry for family, registry, _ in FAMILIES}[noun]
    with pytest.raises(ConfigError) as error:
        load_config(config)
    known = ", ".join(registry.names())
    assert str(error.value) == (f"{config}: {key}: unknown {noun} kind 'gopher' (known: {known})")


class EchoOptions(ProbeOptions):
    word: str = Field(min_length=1)


class EchoProbe(ProbeKind[EchoOptions]):
    """A kind written in a test: observes its own option."""

    name = "echo"
    Options = EchoOptions
    variables = ("said",)
    default_conditions = ("said == 'hello'",)

    def target(self, options: EchoOptions) -> str:
        return f"echo {options.word}"

    async def check(self, options: EchoOptions, timeout_s: float) -> Observation:
        return Observation({"said": options.word}, f"said {options.word}")


def test_a_kind_added_with_one_line_is_checked_at_load_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from greenloop.probes.run import run_probes

    config = tmp_path / "greenloop.toml"
    probe = '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "echo"\n'
    config.write_text(probe + 'word = "hello"\nwrod = "hello"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert "unknown probe kind 'echo'" in str(error.value)

    monkeypatch.setattr(PROBES, "_kinds", dict(PROBES._kinds))  # the line, undone after
    PROBES.add("echo", EchoProbe())
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert str(error.value) == f"{config}: probes[0].wrod: echo probe: unknown key"

    config.write_text(probe + 'word = "hello"\n', encoding="utf-8")
    loaded = load_config(config)
    (result,) = asyncio.run(run_probes(loaded.probes))
    assert result.ok and result.detail == "said hello" and result.target == "echo hello"
    config.write_text(probe + 'word = "bye"\n', encoding="utf-8")
    (result,) = asyncio.run(run_probes(load_config(config).probes))
    assert not result.ok and "said == 'hello'" in result.detail


def test_a_kind_cannot_be_registered_twice() -> None:
    registry: Registry[Any] = Registry("probe")
    registry.add("echo", EchoProbe())
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("echo", EchoProbe())
