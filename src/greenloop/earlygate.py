"""A run's first gate check, started on a thread while the rest of greenloop loads.

`greenloop run` reads the config file and calls `start_early_check_for` before
`greenloop.load` imports every stage to check it; the first `gate.check_gate`
for an equal config then takes this check's answers instead of probing again
(docs/probes.md, "Not waiting for an answer that cannot matter").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable

from greenloop import gate
from greenloop.config import Config
from greenloop.gate import settled
from greenloop.probes.run import run_probes
from greenloop.records import ProbeResult, utcnow
from greenloop.redact import redactor_for

__all__ = ["EarlyCheck", "start_early_check", "start_early_check_for"]


class EarlyCheck:
    """A run's first gate check, started on a thread while the rest of greenloop loads.

    `start_early_check(config)` starts it; the first `check_gate` for the same
    config takes its answers (waiting for them if need be) and records and
    judges them as usual. It stops waiting for probes whose answer can no
    longer change the verdict (`settled`): a run whose cache is down does not
    wait out the timeout of a health check that hangs behind it.
    """

    def __init__(self, config: Config, when_healthy: Callable[[], object] | None = None) -> None:
        self.config = config
        self.when_healthy = when_healthy
        self.started = time.perf_counter()
        self.stamp = utcnow()
        self._results: list[ProbeResult] = []
        self._error: BaseException | None = None
        self.took = 0.0  # seconds from the start to the last answer
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="greenloop-gate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        config = self.config
        decide = None
        if max(config.gate.fail_after, config.gate.recover_after) == 1:
            # Without flapping rules no history is needed to judge the answers so far.
            decide = functools.partial(settled, config)
        try:
            self._results = asyncio.run(
                run_probes(
                    config.probes,
                    file=str(config.source),
                    redactor=redactor_for(config),
                    decide=decide,
                )
            )
        except BaseException as exc:  # handed to the thread that reads the results
            self._error = exc
        finally:
            self.took = time.perf_counter() - self.started
            self._done.set()
        if self._error is None and self.when_healthy and all(r.ok for r in self._results):
            with contextlib.suppress(Exception):  # an optional head start, never an error
                self.when_healthy()

    def results(self) -> list[ProbeResult]:
        """The answers, in config order, once all are in; the check's exception, if any."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._results


def start_early_check(
    config: Config, when_healthy: Callable[[], object] | None = None
) -> EarlyCheck:
    """Start the first gate check of a run now, on a thread (see `EarlyCheck`);
    `when_healthy` runs on that thread when every probe passed.

    Only for a run whose first check would come before anything changes the
    environment: the caller makes sure no deploy runs first.
    """
    early = EarlyCheck(config, when_healthy)
    gate._early.append(early)
    return early


def start_early_check_for(
    config: Config,
    *,
    deploy_forced: bool = False,
    when_healthy: Callable[[], object] | None = None,
) -> EarlyCheck | None:
    """`start_early_check` for a config as `config.read_config` reads it, before
    `load.load_config` has imported every stage to check it (the probes then answer
    while that happens).

    None (nothing started) when a deploy may come before the first check
    (`deploy_forced`, or a deploy with a max_age), or when a probe runs a command:
    nothing is run before the whole config is known to be valid. The check is used
    only if the full load gives an equal config.
    """
    if deploy_forced or (config.deploy.command and config.deploy.max_age):
        return None
    if not config.probes or any(p.kind == "command" for p in config.probes):
        return None
    return start_early_check(config, when_healthy)
