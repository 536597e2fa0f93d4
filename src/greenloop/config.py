"""greenloop.toml: the pydantic models and the loader.

`read_config` turns any mistake into one `ConfigError` naming the file, the key
path and what was expected. It imports no stage: `greenloop.load` (what commands
call) adds the checks of every stage's part, through the kinds' registries.
`${VAR}` in any string is replaced from the environment before validation
(`${VAR:-default}` gives a default, `${secret:VAR}` marks the value as a secret);
an unset variable is an error, never "". Every relative path in the file is relative
to the file's own folder.
docs/configuration.md is the reference for every key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from greenloop import DEFAULT_CONFIG
from greenloop.errors import ConfigError
from greenloop.kinds import validation_problem

# A count of parallel test processes: at least one, or "auto" (per CPU).
Workers = Annotated[int, Field(ge=1)] | Literal["auto"]
PositiveSeconds = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenSection(BaseModel):
    """A section whose extra keys belong to a pluggable kind (probe, tracker, log source...).

    The kind's own options model validates the extras (see `kind_options`).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EnvironmentConfig(Section):
    name: str = "staging"
    base_url: str = ""
    urls: dict[str, str] = Field(default_factory=dict)
    # Environment variables handed to the test processes (e.g. STAGING_URL).
    env: dict[str, str] = Field(default_factory=dict)


class IndexFileConfig(Section):
    path: str
    priority: int = Field(3, ge=0, le=5)
    category: str = "general"
    mrr_at_risk_usd: float = Field(0.0, ge=0)
    components: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    min_duration_ms: Annotated[float, Field(ge=0)] | None = None


class IndexConfig(Section):
    # A test index file (markdown table, TOML [[files]], YAML), relative to the config file.
    path: str | None = None
    files: list[IndexFileConfig] = Field(default_factory=list)
    # Test files the index does not list: "run" (priority 3, default category) or "skip".
    unlisted: Literal["run", "skip"] = "run"


class SelectConfig(Section):
    priorities: list[int] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    markers: str | None = None  # a pytest -m expression
    keyword: str | None = None  # a pytest -k expression


class PhaseConfig(Section):
    name: str
    select: SelectConfig = Field(default_factory=SelectConfig)
    # Components that must be healthy: None (not set) = every component, [] = none.
    needs: list[str] | None = None
    min_pass_rate: float = Field(0.0, ge=0.0, le=1.0)  # below it, later phases do not run
    runner: str = "pytest"  # a kind of execute.runners.RUNNERS (checked by greenloop.load)
    command: list[str] = Field(default_factory=list)  # runner = "command"
    junit: str | None = None  # JUnit XML the command writes
    cwd: str | None = None
    workers: Workers | None = None
    test_timeout_s: PositiveSeconds | None = None
    timeout_s: PositiveSeconds | None = None
    reruns: Annotated[int, Field(ge=0)] | None = None


class ComponentConfig(Section):
    name: str
    depends_on: list[str] = Field(default_factory=list)


class ProbeConfig(OpenSection):
    name: str
    component: str
    kind: str
    conditions: list[str] = Field(default_factory=list)
    timeout_s: float = Field(2.0, gt=0)
    retries: int = Field(0, ge=0)
    retry_delay_s: float = Field(0.2, ge=0)


class GateConfig(Section):
    fail_after: int = Field(1, ge=1)  # consecutive failed checks before a component is down
    recover_after: int = Field(1, ge=1)  # consecutive passes before it is back
    wait_timeout_s: float = Field(60.0, ge=0)
    wait_initial_s: float = Field(0.5, gt=0)
    wait_max_s: float = Field(5.0, gt=0)


class ExecutionConfig(Section):
    tests_dir: str = "tests"
    workers: Workers = 1
    test_timeout_s: float = Field(60.0, gt=0)
    phase_timeout_s: float = Field(900.0, gt=0)
    reruns: int = Field(1, ge=0)
    rerun_max_tests: int = Field(5, ge=0)  # more failures than this: systematic, no re-runs
    # A warning (never a verdict) when a test with no observed traffic passes faster than this.
    min_duration_ms: float | None = Field(None, ge=0)
    pytest_args: list[str] = Field(default_factory=list)
    order: Literal["risk", "index"] = "risk"
    target_hosts: list[str] = Field(default_factory=list)  # hosts tests must connect to
    # The interpreter that runs pytest (the project's own venv); None = greenloop's own.
    python: str | None = None


class LogSourceConfig(OpenSection):
    name: str
    kind: str


class RuleConfig(Section):
    """A user triage rule, tried before the built-in table."""

    name: str
    category: str
    pattern: str  # regular expression over message and traceback
    component: str | None = None
    confidence: float = Field(0.8, ge=0, le=1)


class TriageConfig(Section):
    rules: list[RuleConfig] = Field(default_factory=list)
    logs: list[LogSourceConfig] = Field(default_factory=list)
    flaky_window: int = Field(20, ge=2)
    log_window_s: float = Field(300.0, gt=0)


class TrackerConfig(OpenSection):
    kind: str = "local"
    # {category} and {priority} (e.g. P1, from the test index) are filled per issue.
    labels: list[str] = Field(default_factory=lambda: ["greenloop", "{category}", "{priority}"])
    close_after_green: int = Field(2, ge=1)


class StoreConfig(Section):
    url: str | None = None


class DeployConfig(Section):
    command: list[str] = Field(default_factory=list)
    rollback_command: list[str] = Field(default_factory=list)
    version_url: str | None = None
    revision_command: list[str] = Field(default_factory=list)
    revision_path: str = "revision"  # JSON path in the version reply or command output
    deployed_at_path: str = "deployed_at"
    max_age: str | None = None  # e.g. "24h", "30m"
    timeout_s: float = Field(300.0, gt=0)

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class ActionConfig(OpenSection):
    name: str
    kind: str
    timeout_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(1, ge=1)
    cooldown_s: float = Field(0.0, ge=0)


class MatchConfig(Section):
    component: str | None = None
    category: str | None = None
    fingerprint: str | None = None


class RunbookConfig(Section):
    name: str
    match: MatchConfig = Field(default_factory=MatchConfig)
    actions: list[ActionConfig]


class RemediationConfig(Section):
    enabled: bool = False
    approval: Literal["none", "tty", "flag"] = "none"
    runbooks: list[RunbookConfig] = Field(default_factory=list)


class ReportConfig(Section):
    out_dir: str = "greenloop-out"
    worklog_template: str | None = None
    redact_patterns: list[str] = Field(default_factory=list)
    junit: bool = True


class LoopConfig(Section):
    max_iterations: int = Field(5, ge=1)
    max_time_s: float = Field(1800.0, gt=0)


class Config(Section):
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    phases: list[PhaseConfig] = Field(default_factory=list)
    components: list[ComponentConfig] = Field(default_factory=list)
    probes: list[ProbeConfig] = Field(default_factory=list)
    gate: GateConfig = Field(default_factory=GateConfig)
    triage: TriageConfig = Field(default_factory=TriageConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    remediation: RemediationConfig = Field(default_factory=RemediationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    # Where the file was read from; relative paths in it are resolved against its folder.
    source: Path = Field(default=Path(DEFAULT_CONFIG), exclude=True)
    # Values that came from ${secret:VAR}, or from ${VAR} unless plainly public (a URL
    # without a password): redacted from all output.
    secrets: tuple[str, ...] = Field(default=(), exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.source.resolve().parent

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """'90s', '30m', '24h', '7d' -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like '30m' or '24h', got {text!r}")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# ${VAR}, ${VAR:-default} and ${secret:VAR} (also ${secret:VAR:-default}).
_VAR = re.compile(r"\$\{(secret:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Interpolation:
    """What `interpolate` substituted: every value, and those marked ${secret:VAR}.

    `require_env = False` (read-only commands) leaves an unset ${VAR} as written
    instead of failing, and records its name in `unset`.
    """

    require_env: bool = True
    values: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)

    def secrets(self) -> tuple[str, ...]:
        """${secret:VAR} values, and ${VAR} values that could be credentials (`plainly_public`)."""
        chosen = [*self.marked, *(v for v in self.values if not plainly_public(v))]
        return tuple(sorted({v for v in chosen if len(v) >= 4}))


def plainly_public(value: str) -> bool:
    """A number, or a URL without a password or query string: not a credential.

    Such values from a plain ${VAR} stay readable in reports (a staging URL masked
    everywhere hides what was tested); ${secret:VAR} masks them anyway.
    """
    if value.strip().isdigit():
        return True
    try:
        parts = urlsplit(value.strip())
        return bool(
            parts.scheme and parts.hostname and not parts.password and not parts.query
        ) and not any(c.isspace() for c in value.strip())
    except ValueError:
        return False


_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def host_span(text: str) -> tuple[int, int]:
    """Where a URL's host and port are in `text` (start, end), or (-1, -1) if not a URL.

    Read on the config's own text, before `${VAR}` values are put in (as `userinfo_end`).
    """
    start = _URL_START.match(text)
    if start is None:
        return (-1, -1)
    end = len(text)
    for stop in "/?#":
        found = text.find(stop, start.end())
        if found != -1:
            end = min(end, found)
    at = text.rfind("@", start.end(), end)
    return (at + 1 if at != -1 else start.end(), end)


def userinfo_end(text: str) -> int:
    """Where the `user:password@` part of a URL ends (the index of its '@'), else -1.

    Read on the config's own text, before `${VAR}` values are put in, so a password
    holding '@', '/' or a space cannot move the boundary.
    """
    start = _URL_START.match(text)
    if start is None:
        return -1
    authority_end = len(text)
    for stop in "/?#":
        found = text.find(stop, start.end())
        if found != -1:
            authority_end = min(authority_end, found)
    return text.rfind("@", start.end(), authority_end)


def interpolate(
    value: Any,
    file: str,
    key: str = "",
    env: Mapping[str, str] | None = None,
    used: list[str] | Interpolation | None = None,
) -> Any:
    """Replace ${VAR} in every string of a parsed TOML tree; unset variables are errors.

    `${VAR:-default}` uses `default` when VAR is unset or empty; `${secret:VAR}`
    marks the value as a secret. Substituted values are recorded in `used` (a
    list of values, or an `Interpolation`), so they can be redacted later.
    A value put into the user or password part of a URL
    (`postgresql://app:${PGPASSWORD}@db/app`) is percent-encoded, so any character in a
    password is safe there.
    """
    env = os.environ if env is None else env
    record = used if isinstance(used, Interpolation) else Interpolation()
    sink = record if used is None else used
    if isinstance(value, str):
        userinfo = userinfo_end(value)
        host_start, host_end = host_span(value)

        def sub(m: re.Match[str]) -> str:
            secret, name, default = m.group(1), m.group(2), m.group(3)
            found = env.get(name)
            if not found and default is not None:
                found = default
            if found is None:
                if record.require_env:
                    raise ConfigError(file, key, f"environment variable {name} is not set")
                record.unset.append(name)
                return m.group(0)
            # A URL's host or port is where it points, never a credential: a plain ${VAR}
            # there stays readable (an unresolvable host is the fact a DNS failure needs).
            at_host = host_start <= m.start() and m.end() <= host_end
            if (default is None or found != default) and (secret or not at_host):
                record.values.append(found)
                if isinstance(used, list):
                    used.append(found)
                if secret:
                    record.marked.append(found)
            return quote(found, safe="") if m.end() <= userinfo else found

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: interpolate(v, file, f"{key}.{k}" if key else k, env, sink) for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, file, f"{key}[{i}]", env, sink) for i, v in enumerate(value)]
    return value


def parse_config(raw: dict[str, Any], source: Path, *, read_only: bool = False) -> Config:
    """Validate an already parsed config tree against the models (no stage is asked).

    `read_only` is for commands that only read the store (`history`, `issues list`):
    an unset ${VAR} stays as written, so they work without the run's credentials.
    `greenloop.load.config_from_dict` also checks every stage's part.
    """
    file = str(source)
    used = Interpolation(require_env=not read_only)
    raw = interpolate(raw, file, used=used)
    for reserved in ("source", "secrets"):
        if reserved in raw:
            raise ConfigError(file, reserved, "unknown key")
    secrets = used.secrets()
    try:
        config = Config.model_validate({**raw, "source": source, "secrets": secrets})
    except ValidationError as exc:
        raise ConfigError(file, *validation_problem(exc)) from None
    _check_references(config, file)
    return config


def read_config(path: str | Path = DEFAULT_CONFIG, *, read_only: bool = False) -> Config:
    """Read greenloop.toml and validate it against the models; every failure is a ConfigError.

    `read_only`: see `parse_config`. `greenloop.load.load_config` also checks every
    stage's part (kinds, store URL, index...): what commands use.
    """
    source = Path(path)
    if not source.is_file():
        raise ConfigError(
            str(source), "", "config file not found (create one with `greenloop init`)"
        )
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(source), "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(source), "", "not UTF-8 text") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise ConfigError(str(source), "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(str(source), "", "not valid TOML: nested too deeply") from None
    try:
        return parse_config(raw, source, read_only=read_only)
    except RecursionError:
        raise ConfigError(str(source), "", "nested too deeply") from None


def _check_references(config: Config, file: str) -> None:
    """Names that must refer to something declared elsewhere in the file."""
    components = {c.name for c in config.components} | {p.component for p in config.probes}
    for i, comp in enumerate(config.components):
        for dep in comp.depends_on:
            if dep not in components:
                raise ConfigError(file, f"components[{i}].depends_on", f"unknown component {dep!r}")
    for i, phase in enumerate(config.phases):
        for need in phase.needs or ():
            if need not in components:
                raise ConfigError(file, f"phases[{i}].needs", f"unknown component {need!r}")
    names = [p.name for p in config.phases]
    if len(names) != len(set(names)):
        raise ConfigError(file, "phases", "phase names must be unique")
    probe_names = [p.name for p in config.probes]
    if len(probe_names) != len(set(probe_names)):
        raise ConfigError(file, "probes", "probe names must be unique")
