"""Live progress of a phase: counts, the running test and an ETA.

`Reporter` is the small protocol the runners talk to; `RichReporter` draws a
live line on a terminal, `PlainReporter` prints one line per test when output
is a file or a CI log, `NullReporter` stays silent (tests, benchmarks).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.text import Text

from greenloop.records import Outcome, PhaseResult, TestResult
from greenloop.redact import Redactor

STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "red",
    Outcome.ERROR: "red",
    Outcome.TIMEOUT: "red",
    Outcome.CRASHED: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.BLOCKED: "magenta",
}


class Reporter(Protocol):
    """What a runner tells whoever watches a phase."""

    def on_phase_start(
        self, phase: str, *, workers: int, durations: Mapping[str, float]
    ) -> None: ...
    def on_collected(self, n: int) -> None: ...
    def on_running(self, nodeid: str) -> None: ...
    def on_test(self, result: TestResult) -> None: ...
    def on_phase_end(self, phase: PhaseResult) -> None: ...


class NullReporter:
    """Hears everything, shows nothing."""

    def on_phase_start(self, phase: str, *, workers: int, durations: Mapping[str, float]) -> None:
        pass

    def on_collected(self, n: int) -> None:
        pass

    def on_running(self, nodeid: str) -> None:
        pass

    def on_test(self, result: TestResult) -> None:
        pass

    def on_phase_end(self, phase: PhaseResult) -> None:
        pass


class Tally:
    """Counts of a phase so far and a rough ETA from historical durations."""

    def __init__(self, workers: int = 1, durations: Mapping[str, float] | None = None) -> None:
        self.workers = max(1, workers)
        self.durations = dict(durations or {})
        self.typical = statistics.median(self.durations.values()) if self.durations else None
        self.total = 0
        self.counts = {"passed": 0, "failed": 0, "blocked": 0, "skipped": 0}
        self.done: set[str] = set()

    def add(self, result: TestResult) -> None:
        self.done.add(result.nodeid)
        if result.outcome is Outcome.PASSED:
            self.counts["passed"] += 1
        elif result.outcome is Outcome.SKIPPED:
            self.counts["skipped"] += 1
        elif result.outcome is Outcome.BLOCKED:
            self.counts["blocked"] += 1
        else:
            self.counts["failed"] += 1

    def eta_s(self) -> float | None:
        """Seconds left: remaining tests times the typical past duration, over the workers."""
        if self.typical is None or self.total <= len(self.done):
            return None
        return (self.total - len(self.done)) * self.typical / self.workers

    def line(self) -> str:
        c = self.counts
        text = (
            f"{len(self.done)}/{self.total or '?'}  passed {c['passed']}  failed {c['failed']}"
            f"  blocked {c['blocked']}  skipped {c['skipped']}"
        )
        eta = self.eta_s()
        return text + (f"  ETA ~{eta:.0f}s" if eta is not None else "")


class PlainReporter:
    """One line per test: readable in CI logs and when output is piped."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tally = Tally()
        self.phase = ""

    def on_phase_start(self, phase: str, *, workers: int, durations: Mapping[str, float]) -> None:
        self.phase, self.tally = phase, Tally(workers, durations)
        self.console.print(
            f"phase {phase}: starting ({workers} worker(s))", highlight=False, markup=False
        )

    def on_collected(self, n: int) -> None:
        self.tally.total = n
        self.console.print(
            f"phase {self.phase}: {n} test(s) collected", highlight=False, markup=False
        )

    def on_running(self, nodeid: str) -> None:
        pass

    def on_test(self, result: TestResult) -> None:
        self.tally.add(result)
        self.console.print(
            f"{(result.xfail or result.outcome.value).upper():8} {result.nodeid} "
            f"({result.duration_s:.2f}s)",
            highlight=False,
            markup=False,
        )

    def on_phase_end(self, phase: PhaseResult) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in phase.counts().items() if v)
        by = f" by {phase.blocked_by}" if phase.blocked_by else ""
        self.console.print(
            f"phase {phase.name}: {phase.status.value}{by} in {phase.duration_s:.1f}s"
            + (f" ({counts})" if counts else ""),
            highlight=False,
            markup=False,
        )


class RichReporter:
    """A live status line per phase; each failure is printed above it as it happens."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tally = Tally()
        self.phase = ""
        self.current = ""
        self.started = time.monotonic()
        self.live: Live | None = None

    def _render(self) -> Text:
        text = Text(f"{self.phase} ", style="bold")
        text.append(self.tally.line())
        text.append(f"  {time.monotonic() - self.started:.0f}s", style="dim")
        if self.current:
            text.append(f"\n  running {self.current}", style="dim")
        return text

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def on_phase_start(self, phase: str, *, workers: int, durations: Mapping[str, float]) -> None:
        self.phase, self.tally, self.current = phase, Tally(workers, durations), ""
        self.started = time.monotonic()
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def on_collected(self, n: int) -> None:
        self.tally.total = n
        self._refresh()

    def on_running(self, nodeid: str) -> None:
        self.current = nodeid
        self._refresh()

    def on_test(self, result: TestResult) -> None:
        self.tally.add(result)
        if result.outcome.is_failure:
            style = STYLE.get(result.outcome, "red")
            self.console.print(
                Text.assemble((f"{result.outcome.value.upper():8} ", style), result.nodeid)
            )
        self._refresh()

    def on_phase_end(self, phase: PhaseResult) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        counts = ", ".join(f"{k} {v}" for k, v in phase.counts().items() if v)
        style = "green" if phase.status.value == "passed" else "red"
        self.console.print(
            Text.assemble(
                (f"{phase.name} ", "bold"),
                (phase.status.value, style),
                f" by {phase.blocked_by}" if phase.blocked_by else "",
                f" in {phase.duration_s:.1f}s" + (f" ({counts})" if counts else ""),
            )
        )


class RedactingReporter:
    """Passes everything on with secrets masked: test ids and phase names are printed, and a
    test id can hold a token (`test_login[ghp_...]`)."""

    def __init__(self, inner: Reporter, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def on_phase_start(self, phase: str, *, workers: int, durations: Mapping[str, float]) -> None:
        self.inner.on_phase_start(self.redactor.redact(phase), workers=workers, durations=durations)

    def on_collected(self, n: int) -> None:
        self.inner.on_collected(n)

    def on_running(self, nodeid: str) -> None:
        self.inner.on_running(self.redactor.redact(nodeid))

    def on_test(self, result: TestResult) -> None:
        self.inner.on_test(self.redactor.redact_obj(result))

    def on_phase_end(self, phase: PhaseResult) -> None:
        self.inner.on_phase_end(replace(phase, name=self.redactor.redact(phase.name)))


def make_reporter(console: Console | None = None, redactor: Redactor | None = None) -> Reporter:
    """A live display on a terminal, one line per test otherwise; redacted when asked."""
    console = console or Console()
    inner: Reporter = RichReporter(console) if console.is_terminal else PlainReporter(console)
    return RedactingReporter(inner, redactor) if redactor is not None else inner
