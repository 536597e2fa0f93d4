"""Which components answered slowly: from the probes' own answer times and the dependency
latencies a health body reported (the probe's structured `dependencies`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from greenloop.records import ProbeResult


@dataclass(frozen=True, slots=True)
class Slowness:
    """A component a probe saw answering slowly, though it may have passed."""

    component: str
    latency_ms: float
    probe: ProbeResult
    said: str  # what shows it: '"database":{"ok":true,"latency_ms":3001.2}', '... in 3020 ms'


# A probe answer slower than this (or a dependency whose reported latency is) is slow.
SLOW_MS = 1000.0
_ALIASES = {"db": "database", "postgres": "database", "postgresql": "database", "redis": "cache"}


@lru_cache(maxsize=64)
def slow_components(
    probes: tuple[ProbeResult, ...], known: tuple[str, ...] = ()
) -> tuple[Slowness, ...]:
    """Which components answered slowly, slowest first.

    A health body that reports each dependency's `latency_ms` (the probe's structured
    `dependencies`) names the slow one itself (every probe of that endpoint is slow,
    whichever component it belongs to); otherwise a slow probe's own component is.
    """
    found: dict[str, Slowness] = {}
    for probe in probes:
        for dependency in probe.dependencies:
            latency = dependency.latency_ms
            if latency < SLOW_MS:
                continue
            name = dependency.name
            name = name if name in known else _ALIASES.get(name.lower(), name)
            # Several probes read the same body: cite the component's own probe.
            if name not in found or (
                probe.component == name and found[name].probe.component != name
            ):
                found[name] = Slowness(name, latency, probe, dependency.said)
    if not found:
        for probe in probes:
            if probe.latency_ms is not None and probe.latency_ms >= SLOW_MS:
                current = found.get(probe.component)
                if current is None or current.latency_ms < probe.latency_ms:
                    found[probe.component] = Slowness(
                        probe.component,
                        probe.latency_ms,
                        probe,
                        f"probe {probe.name!r} answered in {probe.latency_ms:.0f} ms",
                    )
    return tuple(sorted(found.values(), key=lambda s: -s.latency_ms))
