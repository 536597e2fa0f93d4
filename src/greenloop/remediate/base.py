"""What every remediation action kind is: an options model, a description, and one run.

A kind runs one configured action (a command, an HTTP call, a rollback...) and
says how it went as an `ActionOutcome`. It never decides whether it may run:
`guardrails.py` does, before the kind is asked. Kinds are registered in
`ACTIONS` (`kinds.py`, one line per kind); the runbooks name them, and a kind
not in the registry is a config error.

Text from test output or logs never reaches an action: the only values an
action's strings may contain are the fixed `PLACEHOLDERS`, taken from the config.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from greenloop.kinds import KindOptions, OptionError

if TYPE_CHECKING:
    from greenloop.config import Config
    from greenloop.records import Cluster
    from greenloop.store import Store

__all__ = [
    "PLACEHOLDERS",
    "ActionContext",
    "ActionKind",
    "ActionOptions",
    "ActionOutcome",
    "OptionError",
    "check_placeholders",
    "substitute",
    "substitutions",
]

# The only substitutions an action's strings may use: values from the config, never
# from the clusters being remediated (their text comes from test output and logs).
PLACEHOLDERS = ("environment", "base_url")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ActionOptions(KindOptions):
    """Base of every action kind's options: unknown keys are errors."""


OptionsT = TypeVar("OptionsT", bound=ActionOptions)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a running action may use: the config, the store, and its own limits."""

    config: Config
    store: Store
    run_id: str
    timeout_s: float
    # Whether the action set its own timeout_s (else rollback/redeploy use deploy.timeout_s).
    timeout_explicit: bool = False
    scope: str = ""  # the component a per-component kind (restart) acts on


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """How a run went, in words; `detail` is redacted by the caller."""

    ok: bool
    detail: str


class ActionKind(ABC, Generic[OptionsT]):
    """One kind of action (command, http, restart...), typed by its options. Stateless."""

    name: ClassVar[str]
    Options: ClassVar[type[ActionOptions]]

    def validate(self, options: OptionsT, config: Config) -> None:
        """Raise OptionError for options that cannot work with this config."""

    def scope(self, options: OptionsT, cluster: Cluster) -> str:
        """What this action acts on for a cluster; one run per runbook action and scope."""
        return ""

    def unavailable(self, options: OptionsT, scope: str) -> str | None:
        """Why the action cannot act on this scope (nothing configured for it), or None."""
        return None

    def secrets(self, options: OptionsT) -> tuple[str, ...]:
        """Values read at run time (environment) that must be redacted from details."""
        return ()

    @abstractmethod
    def describe(self, options: OptionsT, context: ActionContext) -> str:
        """What would run, for people: the argv or the request (secrets are redacted later)."""

    @abstractmethod
    def run(self, options: OptionsT, context: ActionContext) -> ActionOutcome:
        """Do it once. Failures become an ActionOutcome, not an exception."""


# --------------------------------------------------------------------------- placeholders


def substitutions(config: Config) -> dict[str, str]:
    """The fixed set of values an action's strings may name, all from the config."""
    return {"environment": config.environment.name, "base_url": config.environment.base_url}


def check_placeholders(key: str, text: str) -> None:
    """Refuse `{name}` unless it is one of PLACEHOLDERS (catches `{title}`, `{message}`)."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise OptionError(
                key,
                f"unknown placeholder {{{match.group(1)}}} (allowed: {allowed}; "
                "text from tests or logs is never substituted)",
            )


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace the allowed placeholders; anything else is left exactly as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
