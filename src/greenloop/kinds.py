"""One registry shape for every pluggable kind: probes, trackers, log sources, runners, actions.

A kind is a class (or a stateless instance) with

- `Options`: a pydantic model of the keys its config section adds (a subclass of
  `KindOptions`: unknown keys are errors, values are frozen);
- methods that take those options typed (each family's base class is generic in them);
- `validate`: load-time checks beyond the model, raising `OptionError` (an action
  against the whole config, a tracker's token, a runner's phase keys);
- `build`: the working object, where a kind needs one (a tracker client, a log
  source); stateless kinds (probes, runners, actions) are used as registered, and a
  probe's conditions are compiled against its kind by `probes.run.compile_probe`.

Each family keeps one `Registry` of its kinds, filled by one line per kind in the
family's registry module (`probes/__init__.py`, `trackers/__init__.py`,
`triage/logs/__init__.py`, `execute/runners/__init__.py`, `remediate/kinds.py`), so
adding a kind is one new file and one line (beside its import). `Registry.resolve`
turns the config's `kind` and extra keys into the kind and its validated options;
every mistake is one `ConfigError` naming the key, worded by `validation_problem`
like every other config mistake.

This module imports nothing of greenloop but `errors`, so `config` can use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from greenloop.errors import ConfigError

__all__ = [
    "Kind",
    "KindOptions",
    "NoOptions",
    "OptionError",
    "Registry",
    "key_path",
    "validation_problem",
]


class KindOptions(BaseModel):
    """Base of every kind's `Options`: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(KindOptions):
    """The options of a kind that takes none."""


class OptionError(Exception):
    """An option that validates alone but cannot work with this config.

    `key` is relative to the kind's section (`command[0]`, `components.api.url`).
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def key_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """A pydantic error location as a config key: ('probes', 0, 'url') -> 'probes[0].url'."""
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problem(exc: ValidationError, prefix: str = "") -> tuple[str, str]:
    """The first mistake of a pydantic validation as (key, what was expected).

    The one wording of every config mistake: "unknown key", "missing required key",
    or pydantic's own message without its "Value error, " prefix. `prefix` is the key
    of the section that was validated (`tracker`, `probes[0]`).
    """
    error = exc.errors()[0]
    kind = error["type"]
    if kind == "extra_forbidden":
        expected = "unknown key"
    elif kind == "missing":
        expected = "missing required key"
    else:
        expected = str(error["msg"]).removeprefix("Value error, ")
    return key_path(tuple(error["loc"]), prefix), expected


class Kind(Protocol):
    """What a registry needs of a kind: its options model. (`build` and `validate`
    differ in arguments per family and are declared by each family's base class.)"""

    @property
    def Options(self) -> type[KindOptions]: ...


K = TypeVar("K", bound=Kind)


class Registry(Generic[K]):
    """The kinds of one family by name; also the allowlist config is checked against.

    `noun` names the family in messages ("probe", "tracker", "log source").
    """

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self._kinds: dict[str, K] = {}

    def add(self, name: str, kind: K) -> K:
        """Register `kind` under `name` (the value of `kind = ...` in the config)."""
        if name in self._kinds:
            raise ValueError(f"{self.noun} kind {name!r} is registered twice")
        self._kinds[name] = kind
        return kind

    def get(self, name: str) -> K | None:
        return self._kinds.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._kinds))

    def items(self) -> Iterator[tuple[str, K]]:
        return iter(sorted(self._kinds.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __getitem__(self, name: str) -> K:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._kinds)

    def kind(self, name: str, *, file: str, key: str) -> K:
        """The kind named `name`; else a ConfigError at `key` listing the known ones."""
        kind = self._kinds.get(name)
        if kind is None:
            raise ConfigError(
                file,
                key,
                f"unknown {self.noun} kind {name!r} (known: {', '.join(self.names())})",
            )
        return kind

    def resolve(
        self, name: str, raw: Mapping[str, Any], *, file: str, section: str
    ) -> tuple[K, KindOptions]:
        """The kind and its validated options from a config section.

        `section` is the section's key (`tracker`, `probes[2]`); mistakes are one
        ConfigError at `<section>.kind` or `<section>.<option key>`.
        """
        kind = self.kind(name, file=file, key=f"{section}.kind")
        options = parse_options(
            kind.Options, raw, file=file, section=section, label=f"{name} {self.noun}"
        )
        return kind, options


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def parse_options(
    model: type[OptionsT], raw: Mapping[str, Any], *, file: str, section: str, label: str = ""
) -> OptionsT:
    """`raw` validated by `model`; a mistake is one ConfigError at `<section>.<key>`.

    `label` names the kind in the message: `probes[1].urll: http probe: unknown key`.
    """
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        key, expected = validation_problem(exc, section)
        raise ConfigError(file, key, f"{label}: {expected}" if label else expected) from None
