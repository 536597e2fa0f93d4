"""The probe stage: compile each configured probe against its kind, then check them all.

`run_probes` checks every configured probe at once and returns one
`ProbeResult` per probe. The kinds are in the registry (`__init__.py`).

Timing: a probe's `timeout_s` bounds the whole probe, retries included, and
all probes run concurrently; so against an environment where nothing answers,
`run_probes` returns after about the largest `timeout_s`. Given `decide`, it
stops waiting as soon as the answers still out cannot matter (the gate's call,
see `gate.settled`): those probes come back as not waited for, `attempts=0`.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from greenloop.errors import ConfigError
from greenloop.kinds import KindOptions
from greenloop.probes import PROBES
from greenloop.probes.base import Observation, ProbeKind
from greenloop.probes.conditions import Condition, ConditionError, parse
from greenloop.probes.modes import failure_mode
from greenloop.records import ProbeResult, utcnow
from greenloop.redact import Redactor
from greenloop.retry import retry_async

if TYPE_CHECKING:
    from greenloop.config import Config, ProbeConfig

__all__ = [
    "CompiledProbe",
    "Decide",
    "compile_probe",
    "not_waited",
    "run_probe",
    "run_probes",
    "validate_probes",
]

# Given the results so far (None: still running; config order), the reason per
# index of each probe no longer worth waiting for, or None to keep waiting.
Decide = Callable[[Sequence[ProbeResult | None]], Mapping[int, str] | None]


@dataclass(frozen=True, slots=True)
class CompiledProbe:
    """A probe's config with its kind resolved, options validated and conditions parsed."""

    config: ProbeConfig
    kind: ProbeKind[Any]
    options: KindOptions
    conditions: tuple[Condition, ...]

    @property
    def target(self) -> str:
        return self.kind.target(self.options)


def compile_probe(probe: ProbeConfig, index: int, file: str = "greenloop.toml") -> CompiledProbe:
    """Check one probe's kind, options and conditions; any mistake is a ConfigError."""
    where = f"probes[{index}]"
    kind, options = PROBES.resolve(probe.kind, probe.options(), file=file, section=where)
    explicit = [(f"{where}.conditions[{i}]", c) for i, c in enumerate(probe.conditions)]
    sources = explicit or [(f"{where} default condition", c) for c in kind.default_conditions]
    sources += [(f"{where} (implied by options)", c) for c in kind.implied_conditions(options)]
    conditions = []
    for key, text in sources:
        try:
            condition = parse(text)
        except (ConditionError, ValueError) as exc:  # ValueError: a number too long to read
            raise ConfigError(file, key, f"bad condition {text!r}: {exc}") from None
        except RecursionError:
            raise ConfigError(file, key, "bad condition: nested too deeply") from None
        for path in condition.paths:
            root = path.name.split(".", 1)[0].split("[", 1)[0]
            if root not in kind.variables:
                offered = ", ".join(kind.variables)
                raise ConfigError(
                    file,
                    key,
                    f"condition {text!r} reads {path.name!r} at column {path.column}, "
                    f"but {probe.kind} probes observe: {offered}",
                )
        conditions.append(condition)
    return CompiledProbe(probe, kind, options, tuple(conditions))


def validate_probes(config: Config) -> None:
    """Validate every probe's kind-specific options and conditions (called by load_config)."""
    for index, probe in enumerate(config.probes):
        compile_probe(probe, index, str(config.source))


def judge(probe: CompiledProbe, seen: Observation) -> tuple[bool, tuple[str, ...], str]:
    """Pass/fail of one observation: (ok, failed conditions, detail)."""
    failed = tuple(c.explain(seen.values) for c in probe.conditions if not c.holds(seen.values))
    detail = seen.summary if not failed else f"{seen.summary}; failed: {'; '.join(failed)}"
    return not failed, failed, detail


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One check of a probe and its judgement."""

    seen: Observation
    ok: bool
    failed: tuple[str, ...]
    detail: str


async def run_probe(probe: CompiledProbe, redactor: Redactor | None = None) -> ProbeResult:
    """Check one probe, retrying failures, all within the probe's `timeout_s`.

    Target, detail and failed conditions pass through `redactor` (plus the probe's own
    passwords) before they leave: a health body or header may hold any secret.
    """
    cfg = probe.config
    redact = _redact_for(probe, redactor)
    checked_at = utcnow()
    deadline = time.perf_counter() + cfg.timeout_s

    async def attempt() -> _Attempt:
        remaining = deadline - time.perf_counter()
        try:
            async with asyncio.timeout(remaining):
                seen = await probe.kind.check(probe.options, remaining)
        except TimeoutError:
            seen = Observation({}, f"timed out after {cfg.timeout_s:g} s")
        except Exception as exc:  # a client library's surprise must not sink the whole gate
            seen = Observation({}, f"{type(exc).__name__}: {exc}")
        return _Attempt(seen, *judge(probe, seen))

    last, attempts = await retry_async(
        attempt,
        ok=lambda tried: tried.ok,
        attempts=cfg.retries + 1,
        delay_s=cfg.retry_delay_s,
        within_s=cfg.timeout_s,
    )
    ok, failed, detail = last.ok, last.failed, last.detail
    value = last.seen.values.get("latency_ms")
    latency = float(value) if isinstance(value, int | float) else None
    mode = failure_mode(detail, failed, ok)
    if attempts > 1:
        detail += f" (after {attempts} attempts)"
    return ProbeResult(
        component=cfg.component,
        name=cfg.name,
        kind=cfg.kind,
        target=redact(probe.target),
        ok=ok,
        latency_ms=latency,
        detail=redact(detail),
        checked_at=checked_at,
        failed_conditions=tuple(redact(f) for f in failed),
        attempts=attempts,
        mode=mode,
        dependencies=tuple(
            replace(d, name=redact(d.name), said=redact(d.said)) for d in last.seen.dependencies
        ),
    )


def _redact_for(probe: CompiledProbe, redactor: Redactor | None) -> Callable[[str], str]:
    """The redactor plus the probe's own passwords."""
    return Redactor(
        redactor.extra_patterns if redactor else (),
        secrets=(*(redactor.secrets if redactor else ()), *probe.kind.secrets(probe.options)),
    ).redact


def not_waited(probe: CompiledProbe, reason: str, redactor: Redactor | None = None) -> ProbeResult:
    """The result of a probe that was stopped unanswered: not ok, `attempts=0`, `reason`
    (why its answer could not matter) as the detail. No check happened: the gate judges
    its component as if unprobed and the store does not keep it in the history."""
    redact = _redact_for(probe, redactor)
    return ProbeResult(
        component=probe.config.component,
        name=probe.config.name,
        kind=probe.config.kind,
        target=redact(probe.target),
        ok=False,
        latency_ms=None,
        detail=redact(reason),
        checked_at=utcnow(),
        attempts=0,
    )


async def run_probes(
    probes: Sequence[ProbeConfig],
    *,
    file: str = "greenloop.toml",
    redactor: Redactor | None = None,
    decide: Decide | None = None,
) -> list[ProbeResult]:
    """Check every probe concurrently; results come back in config order, redacted.

    With `decide`, asked after each answer, the probes it names are cancelled
    and come back as `not_waited` with its reason.
    """
    compiled = [compile_probe(p, i, file) for i, p in enumerate(probes)]
    for module in sorted({m for p in compiled for m in p.kind.client_modules}):
        importlib.import_module(module)
    if decide is None:
        results: list[Any] = await asyncio.gather(*(run_probe(p, redactor) for p in compiled))
        return results
    tasks = [asyncio.ensure_future(run_probe(p, redactor)) for p in compiled]
    index: dict[asyncio.Future[ProbeResult], int] = {task: i for i, task in enumerate(tasks)}
    answers: list[ProbeResult | None] = [None] * len(tasks)
    pending: set[asyncio.Future[ProbeResult]] = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                answers[index[task]] = task.result()
            reasons = decide(answers) if pending else None
            if not reasons:
                continue
            stop = {task for task in pending if index[task] in reasons}
            for task in stop:
                task.cancel()
            await asyncio.gather(*stop, return_exceptions=True)
            for task in stop:
                i = index[task]
                answers[i] = not_waited(compiled[i], reasons[i], redactor)
            pending -= stop
    finally:
        for task in pending:
            task.cancel()
    return [a for a in answers if a is not None]
