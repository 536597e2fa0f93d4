"""Loading a config for a run: the file against the models, then every stage's part of it.

`load_config` is what commands call: `config.read_config` (TOML, ${VAR}, the models,
references between sections) and then `check_config`, which builds every pluggable
kind once through its registry (probes, trackers, log sources, runners, remediation
actions) and checks the store URL, the test index, the component graph, the deploy
settings, the triage rules, the worklog template, the redaction patterns, the
interpreter and the selected test files. So a mistake anywhere stops the command
before anything runs, as one `ConfigError` naming the key.

This module sits above `config` and the stages: `config` imports none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenloop import DEFAULT_CONFIG
from greenloop.config import Config, parse_config, read_config
from greenloop.deploy import validate_deploy
from greenloop.errors import ConfigError
from greenloop.execute.interpreter import check_python
from greenloop.execute.runners import RUNNERS
from greenloop.execute.selection import (
    config_relative_files,
    discover_test_files,
    path_matches,
)
from greenloop.gate import validate_components
from greenloop.index import load_index
from greenloop.kinds import OptionError
from greenloop.probes.run import validate_probes
from greenloop.redact import redactor_for
from greenloop.remediate.kinds import validate_actions
from greenloop.report.worklog import validate_template
from greenloop.store import validate_store
from greenloop.trackers import validate_tracker
from greenloop.triage.logs import validate_log_sources
from greenloop.triage.rules import user_rules

__all__ = ["check_config", "config_from_dict", "load_config"]


def load_config(path: str | Path = DEFAULT_CONFIG, *, read_only: bool = False) -> Config:
    """Read greenloop.toml and check every part of it; every failure is a ConfigError.

    `read_only` is for commands that only read the store (`history`, `issues list`):
    an unset ${VAR} stays as written and no stage's part is checked, so they work
    without the run's credentials.
    """
    config = read_config(path, read_only=read_only)
    if not read_only:
        check_config(config)
    return config


def config_from_dict(raw: dict[str, Any], source: Path, *, read_only: bool = False) -> Config:
    """`load_config` for an already parsed config tree (used by `demo` and tests)."""
    config = parse_config(raw, source, read_only=read_only)
    if not read_only:
        check_config(config)
    return config


def check_config(config: Config) -> None:
    """Build every pluggable part once, check every stage's settings; ConfigError on a mistake."""
    file = str(config.source)
    _check_runners(config, file)
    _check_selected_files(config, file)
    validate_store(config)
    load_index(config)
    validate_components(config)
    validate_probes(config)
    validate_deploy(config)
    validate_actions(config)
    validate_tracker(config)
    validate_log_sources(config)
    user_rules(config.triage.rules, file)
    validate_template(config)
    redactor_for(config)
    check_python(config, file)


def _check_runners(config: Config, file: str) -> None:
    """Each phase's `runner` is a registered kind, and its settings suit it."""
    for i, phase in enumerate(config.phases):
        runner = RUNNERS.kind(phase.runner, file=file, key=f"phases[{i}].runner")
        try:
            runner.validate(phase)
        except OptionError as exc:
            raise ConfigError(file, f"phases[{i}].{exc.key}", exc.problem) from None


def _check_selected_files(config: Config, file: str) -> None:
    """Each pytest phase's `select.files` entry must match a test file under tests_dir.

    Otherwise the phase quietly selects nothing and the run can end green with tests
    never run (a typo, a path from the wrong folder). Paths are relative to the
    config file's folder; older configs wrote them relative to tests_dir, which
    still matches.
    """
    wanted = [
        (i, j, pattern)
        for i, phase in enumerate(config.phases)
        if RUNNERS[phase.runner].runs_pytest
        for j, pattern in enumerate(phase.select.files)
    ]
    if not wanted:
        return
    tests_dir = config.resolve(config.execution.tests_dir)
    if not tests_dir.is_dir():
        raise ConfigError(file, "execution.tests_dir", f"{tests_dir} is not a folder")
    files = discover_test_files(tests_dir)
    for i, j, written in wanted:
        select = config.phases[i].select.model_copy(update={"files": [written]})
        (pattern,) = config_relative_files(select, config.base_dir, tests_dir).files
        exists = not Path(pattern).is_absolute() and (tests_dir / pattern).exists()
        if not exists and not any(path_matches(f, pattern, tests_dir) for f in files):
            raise ConfigError(
                file,
                f"phases[{i}].select.files[{j}]",
                f"{written!r} matches no test file under execution.tests_dir ({tests_dir}); "
                "these paths are relative to the config file's folder",
            )
