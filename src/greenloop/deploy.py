"""The deploy stage: which revision is serving, deploy when asked or stale, wait until it serves.

The common path (nothing to deploy) costs at most one read of the revision: one
HTTP GET of `deploy.version_url`, or one run of `deploy.revision_command`, or
nothing when neither is configured. A deploy runs `deploy.command` (an argv
list, never a shell string) and waits, within `deploy.timeout_s` in all, for
the revision to change; waiting for the health gate is a request it returns
(`DeployStep.wait`), which the loop carries out (carry.py) before `after_health`
gives the final result. Commands run through `greenloop.process.run_argv`, the one
way greenloop runs a configured command.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from greenloop.config import Config, parse_duration
from greenloop.deadline import get_within
from greenloop.errors import ConfigError
from greenloop.probes.base import checked_url
from greenloop.probes.conditions import MISSING, lookup
from greenloop.process import run_argv
from greenloop.records import DeployResult, GateResult, WaitForHealth, utcnow
from greenloop.redact import redactor_for
from greenloop.retry import backoff, poll

# Output kept from a command: its tail, where the error usually is.
# A revision_command's JSON is kept whole up to this size.
REVISION_LIMIT = 4 * 1024 * 1024
# How long one read of the revision may take, at most.
READ_TIMEOUT_S = 10.0
# Polling for the new revision: start fast, settle at one read a second.
POLL_INITIAL_S = 0.1
POLL_MAX_S = 1.0


# --------------------------------------------------------------------------- commands


# --------------------------------------------------------------------------- reading the revision


@dataclass(frozen=True, slots=True)
class RevisionReading:
    """The serving revision and when it was deployed; `problem` says why either is unknown."""

    revision: str | None
    deployed_at: datetime | None
    problem: str = ""

    def describe(self) -> str:
        return self.revision if self.revision is not None else f"unknown ({self.problem})"


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path (`revision`, `items[0].name`, `0.metadata.name`) or MISSING."""
    return lookup({"document": document}, "document" + ("" if path.startswith("[") else ".") + path)


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 string (`Z` allowed) or epoch seconds, as an aware UTC datetime."""
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def revision_from_document(
    document: Any, revision_path: str, deployed_at_path: str
) -> RevisionReading:
    """Pure: pick the revision and deploy time out of a version reply or command output."""
    revision = dig(document, revision_path)
    if revision is MISSING or revision is None or isinstance(revision, dict | list):
        return RevisionReading(None, None, f"no {revision_path!r} in the reply")
    return RevisionReading(str(revision), parse_timestamp(dig(document, deployed_at_path)))


def read_revision_detail(config: Config, timeout_s: float = READ_TIMEOUT_S) -> RevisionReading:
    """Read the serving revision once (one GET or one command); never raises for I/O."""
    deploy = config.deploy
    timeout_s = max(0.1, min(timeout_s, READ_TIMEOUT_S))
    if deploy.version_url:
        import httpx  # only here: a run without a version_url never loads it

        try:
            response = get_within(deploy.version_url, timeout_s, verify=_tls_context())
        except httpx.HTTPError as exc:
            return RevisionReading(
                None, None, f"GET {deploy.version_url}: {exc or type(exc).__name__}"
            )
        if response.status_code != 200:
            return RevisionReading(
                None, None, f"GET {deploy.version_url}: HTTP {response.status_code}"
            )
        try:
            document = response.json()
        except ValueError:
            return RevisionReading(None, None, f"GET {deploy.version_url}: reply is not JSON")
    elif deploy.revision_command:
        # A cloud CLI's listing can be long, and cut JSON does not parse: keep it whole.
        run = run_argv(
            deploy.revision_command,
            timeout_s=timeout_s,
            output_limit=REVISION_LIMIT,
            stderr_apart=True,
        )
        if not run.ok:
            last = run.stderr.splitlines()[-1:] or [""]
            problem = f"revision_command: {run.describe()}" + (f": {last[0]}" if last[0] else "")
            return RevisionReading(None, None, redactor_for(config).redact(problem))
        try:
            document = json.loads(run.output)
        except ValueError:
            return RevisionReading(None, None, "revision_command: output is not JSON")
    else:
        return RevisionReading(None, None, "no deploy.version_url or deploy.revision_command")
    return revision_from_document(document, deploy.revision_path, deploy.deployed_at_path)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Building the default context (loading the CA bundle) costs ~20 ms; the revision is
    # read on every iteration and polled during a deploy, so build it once.
    import httpx

    return httpx.create_ssl_context()


def read_revision(config: Config) -> tuple[str | None, datetime | None]:
    """The serving revision and its deploy time; None for what cannot be read."""
    reading = read_revision_detail(config)
    return reading.revision, reading.deployed_at


def _can_read(config: Config) -> bool:
    return bool(config.deploy.version_url or config.deploy.revision_command)


# --------------------------------------------------------------------------- decisions


def deploy_reason(
    *, force: bool, max_age_s: float | None, reading: RevisionReading, now: datetime
) -> str | None:
    """Pure: why a deploy is due, in words, or None when the serving revision will do."""
    if force:
        return "deploy requested"
    if max_age_s is None:
        return None
    if reading.revision is None:
        return f"the serving revision is unknown ({reading.problem})"
    if reading.deployed_at is None:
        return f"revision {reading.revision} has no deploy time, so its age cannot be checked"
    age = (now - reading.deployed_at).total_seconds()
    if age > max_age_s:
        return (
            f"revision {reading.revision} is {_age(age)} old, older than max_age {_age(max_age_s)}"
        )
    return None


def is_new(before: RevisionReading, after: RevisionReading) -> bool:
    """Pure: a different revision, or the same one deployed again (a newer deploy time)."""
    if after.revision is None:
        return False
    if after.revision != before.revision:
        return True
    return (
        after.deployed_at is not None
        and before.deployed_at is not None
        and after.deployed_at > before.deployed_at
    )


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def validate_deploy(config: Config) -> None:
    """Deploy settings that cannot work together are a config error at load time."""
    deploy, file = config.deploy, str(config.source)
    if deploy.version_url:
        try:
            checked_url(deploy.version_url)
        except ValueError as exc:
            raise ConfigError(file, "deploy.version_url", str(exc)) from None
        if not deploy.version_url.startswith(("http://", "https://")):
            raise ConfigError(file, "deploy.version_url", "expected an http:// or https:// URL")
    if deploy.max_age and not deploy.command:
        raise ConfigError(file, "deploy.max_age", "a max_age needs a deploy.command to run")
    if deploy.max_age and not _can_read(config):
        raise ConfigError(
            file, "deploy.max_age", "a max_age needs deploy.version_url or deploy.revision_command"
        )


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True, slots=True)
class DeployStep:
    """What the deploy stage did, and the health wait it asks for.

    With `wait` None, `result` is final. Otherwise the command ran and the new revision
    serves; `after_health` turns the gate the loop waited for into the final result.
    """

    result: DeployResult
    wait: WaitForHealth | None = None
    what: str = "deploy"  # deploy | rollback
    why: str = ""
    serving: str = ""  # "revision r2" or "the new revision"
    was: str = ""  # the revision before, in words
    started: float = 0.0  # time.monotonic() when the step began
    timeout_s: float = 0.0


def deploy_if_due(config: Config, *, force: bool) -> DeployStep:
    """Deploy when forced or stale, and wait until the new revision serves.

    A failed or timed-out deploy comes back with ok=False, its output and a detail in
    words (no wait asked); the loop then stops the iteration. Nothing is recorded here.
    ConfigError when --deploy is given without a deploy command.
    """
    started = time.monotonic()
    validate_deploy(config)
    if force and not config.deploy.command:
        raise ConfigError(str(config.source), "deploy.command", "--deploy needs a deploy command")
    if not force and not (config.deploy.command and config.deploy.max_age):
        # The common path: at most one read, no deploy.
        reading = read_revision_detail(config) if _can_read(config) else RevisionReading(None, None)
        detail = (
            f"serving revision {reading.revision}"
            if reading.revision
            else "no deploy configured"
            + (f"; revision unknown ({reading.problem})" if reading.problem else "")
        )
        return DeployStep(
            DeployResult(
                reading.revision,
                reading.revision,
                False,
                True,
                detail,
                "",
                time.monotonic() - started,
            )
        )
    before = read_revision_detail(config) if _can_read(config) else RevisionReading(None, None)
    max_age = parse_duration(config.deploy.max_age) if config.deploy.max_age else None
    reason = deploy_reason(force=force, max_age_s=max_age, reading=before, now=utcnow())
    if reason is None:
        detail = f"serving revision {before.revision}"
        if before.deployed_at:
            detail += f", deployed {before.deployed_at:%Y-%m-%d %H:%M} UTC"
        return DeployStep(
            DeployResult(
                before.revision,
                before.revision,
                False,
                True,
                detail,
                "",
                time.monotonic() - started,
            )
        )
    return _run_command(config, config.deploy.command, before, what="deploy", why=reason)


def roll_back(config: Config) -> DeployStep:
    """Run `deploy.rollback_command` and wait until the previous revision serves."""
    started = time.monotonic()
    if not config.deploy.rollback_command:
        return DeployStep(
            DeployResult(
                None,
                None,
                False,
                False,
                "no deploy.rollback_command configured",
                "",
                time.monotonic() - started,
            )
        )
    before = read_revision_detail(config) if _can_read(config) else RevisionReading(None, None)
    return _run_command(
        config, config.deploy.rollback_command, before, what="rollback", why="rollback requested"
    )


def after_health(step: DeployStep, gate: GateResult | None, config: Config) -> DeployResult:
    """The final result of a step once the loop waited for health (`gate`, the last check).

    A step that asked for no wait is returned as it is.
    """
    if step.wait is None or gate is None:
        return step.result
    redact = redactor_for(config).redact
    if not gate.healthy:
        ok = False
        detail = (
            f"{step.what} ({step.why}): {step.serving} is serving but not healthy within "
            f"{step.timeout_s:g} s: deepest failure {gate.deepest_failure} "
            f"(unhealthy: {', '.join(gate.unhealthy())})"
        )
    else:
        ok = True
        detail = (
            f"{step.what} ({step.why}): {step.serving} serving and healthy "
            f"(was {step.was}) in {time.monotonic() - step.started:.1f} s"
        )
    return replace(
        step.result, ok=ok, detail=redact(detail), duration_s=time.monotonic() - step.started
    )


def _run_command(
    config: Config,
    argv: Sequence[str],
    before: RevisionReading,
    *,
    what: str,
    why: str,
) -> DeployStep:
    """Run a deploy or rollback command and wait for a new revision; ask to wait for health."""
    redact = redactor_for(config).redact
    started = time.monotonic()
    deadline = started + config.deploy.timeout_s
    shown = redact(" ".join(argv))
    run = run_argv(argv, timeout_s=config.deploy.timeout_s)
    output = redact(run.output)

    def done(ok: bool, detail: str, after: str | None) -> DeployResult:
        return DeployResult(
            before.revision, after, run.ok, ok, redact(detail), output, time.monotonic() - started
        )

    if not run.ok:
        return DeployStep(
            done(False, f"{what} failed ({why}): `{shown}` {run.describe()}", before.revision)
        )
    after = before
    if _can_read(config):
        after = _wait_for_new_revision(config, before, deadline)
        if not is_new(before, after):
            return DeployStep(
                done(
                    False,
                    f"{what} command succeeded but the serving revision is still "
                    f"{after.describe()} after {config.deploy.timeout_s:g} s "
                    f"(was {before.describe()})",
                    after.revision,
                )
            )
    serving = f"revision {after.revision}" if after.revision else "the new revision"
    return DeployStep(
        done(False, f"{what} ({why}): {serving} serving; waiting for health", after.revision),
        wait=WaitForHealth(deadline),
        what=what,
        why=why,
        serving=serving,
        was=before.describe(),
        started=started,
        timeout_s=config.deploy.timeout_s,
    )


def _wait_for_new_revision(
    config: Config, before: RevisionReading, deadline: float
) -> RevisionReading:
    """Poll the revision until it changes or the deadline passes; the last reading."""
    return poll(
        lambda: read_revision_detail(config, timeout_s=deadline - time.monotonic()),
        done=lambda reading: is_new(before, reading),
        deadline=deadline,
        wait=backoff(POLL_INITIAL_S, POLL_MAX_S),
    )
