"""A run's first gate check, started while the rest of greenloop loads.

`greenloop run` reads the config file and calls `start_early_check_for` before
`greenloop.load` imports every stage to check it; the first `gate.check_gate`
for an equal config then takes this check's answers instead of probing again
(docs/probes.md, "Not waiting for an answer that cannot matter").

Where it can (Linux, the process still single-threaded), the check runs in a
forked child process: the probes' client libraries (psycopg, redis-py, httpx,
the TLS context) load and the probes answer on the other core while this
process imports its stages, instead of taking turns with them under one GIL.
The child sends its answers back pickled through a pipe and ends; it prints
nothing and ignores Ctrl-C (the run decides about interrupts). Elsewhere the
check runs on a thread, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenloop.records import ProbeResult, utcnow

if TYPE_CHECKING:
    from greenloop.config import Config

log = logging.getLogger(__name__)

__all__ = ["EarlyCheck", "start_early_check", "start_early_check_for"]

# How long past its probes' largest timeout a child may take before it is given up on.
CHILD_MARGIN_S = 10.0


class EarlyCheck:
    """A run's first gate check, started in a child process (or on a thread).

    `start_early_check(config)` starts it; the first `check_gate` for the same
    config takes its answers (waiting for them if need be) and records and
    judges them as usual. It stops waiting for probes whose answer can no
    longer change the verdict (`settled`): a run whose cache is down does not
    wait out the timeout of a health check that hangs behind it.
    """

    def __init__(
        self,
        config: Config,
        when_healthy: Callable[[], object] | None = None,
        *,
        fork: bool | None = None,
        settle: bool = True,
    ) -> None:
        self.config = config
        self.settle = settle
        self.when_healthy = when_healthy
        self.started = time.perf_counter()
        self.stamp = utcnow()
        self._results: list[ProbeResult] = []
        self._error: BaseException | None = None
        self.took = 0.0  # seconds from the start to the last answer
        self.forked = can_fork() if fork is None else fork
        self._done = threading.Event()
        target: Callable[[], None] = self._probe_here
        if self.forked:
            try:
                target = self._start_child()
            except OSError:  # no fork now (process limit, memory): the thread does it
                self.forked = False
        self._thread = threading.Thread(target=target, name="greenloop-gate", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ in a child process

    def _start_child(self) -> Callable[[], None]:
        """Fork the child that probes; return what the reading thread runs."""
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child: probe, answer, end without any of the parent's exit work
            os.close(read_fd)
            _answer_and_exit(self.config, write_fd, self.settle)
        os.close(write_fd)
        child = _Child(pid)
        atexit.register(child.end)  # a run that ends before reading it: no orphan
        return functools.partial(self._read_child, child, read_fd)

    def _read_child(self, child: _Child, read_fd: int) -> None:
        """Take the child's answer; without a usable one, probe here after all."""
        try:
            answer = _answer_of(read_fd, self.config)
        finally:
            os.close(read_fd)
            child.end()
        if answer is None:  # it died, hung, or could not carry its error back
            log.warning("the early gate check's process gave no answer; probing here")
            self._probe_here()
            return
        results, error, took = answer
        self._results, self._error, self.took = results, error, took
        self._finish()

    # ------------------------------------------------------------------ on a thread

    def _probe_here(self) -> None:
        try:
            self._results = probe_once(self.config, self.settle)
        except BaseException as exc:  # handed to the thread that reads the results
            self._error = exc
        finally:
            self.took = time.perf_counter() - self.started
            self._finish()

    # ------------------------------------------------------------------ both

    def _finish(self) -> None:
        self._done.set()
        if self.when_healthy and not self.failed():
            with contextlib.suppress(Exception):  # an optional head start, never an error
                self.when_healthy()

    def failed(self) -> bool:
        """True once the answers are in and one failed (or the check raised); never waits."""
        if not self._done.is_set():
            return False
        return self._error is not None or not all(r.ok for r in self._results)

    def results(self) -> list[ProbeResult]:
        """The answers, in config order, once all are in; the check's exception, if any."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._results


def probe_once(config: Config, settle: bool = True) -> list[ProbeResult]:
    """Every probe of `config` once; with `settle`, not waiting for answers that cannot
    change the verdict (`gate.settled`)."""
    import asyncio

    from greenloop.gate import settled
    from greenloop.probes.run import run_probes
    from greenloop.redact import redactor_for

    decide = None
    if settle and max(config.gate.fail_after, config.gate.recover_after) == 1:
        # Without flapping rules no history is needed to judge the answers so far.
        decide = functools.partial(settled, config)
    return asyncio.run(
        run_probes(
            config.probes, file=str(config.source), redactor=redactor_for(config), decide=decide
        )
    )


def _answer_of(
    read_fd: int, config: Config
) -> tuple[list[ProbeResult], BaseException | None, float] | None:
    """The child's `(results, error, took)`, or None: no answer within its probes' largest
    timeout and a margin (then it is killed), or one that does not unpickle."""
    limit = max((p.timeout_s for p in config.probes), default=0.0) + CHILD_MARGIN_S
    deadline = time.monotonic() + limit
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_fd], [], [], left)[0]:
            return None
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    try:
        results, error, took = pickle.loads(b"".join(chunks))
        return list(results), error, float(took)
    except Exception:
        return None


def can_fork() -> bool:
    """Fork only where it is safe and cheap: Linux, and no other thread in this process."""
    return sys.platform == "linux" and threading.active_count() == 1


def _answer_and_exit(config: Config, write_fd: int, settle: bool) -> None:
    """The child's whole life: probe, write `(results, error, took)` pickled, `_exit`."""
    started = time.perf_counter()
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        results: list[ProbeResult] = []
        error: BaseException | None = None
        try:
            results = probe_once(config, settle)
        except BaseException as exc:
            error = exc
        payload = _pickled((results, error, time.perf_counter() - started))
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
    except BaseException:
        code = 1  # the parent reads no answer and says so
    finally:
        os._exit(code)


def _pickled(answer: tuple[list[ProbeResult], BaseException | None, float]) -> bytes:
    """The answer pickled; nothing (the parent then probes itself) when it would not
    come back whole, e.g. an exception whose constructor takes other arguments."""
    try:
        data = pickle.dumps(answer)
        pickle.loads(data)
        return data
    except Exception:
        return b""


class _Child:
    """The forked child, reaped exactly once (its pid may be reused after that)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._lock = threading.Lock()
        self.reaped = False

    def end(self) -> None:
        """Reap the child, killing it first if it is still running."""
        with self._lock:
            if self.reaped:
                return
            self.reaped = True
            with contextlib.suppress(ChildProcessError, ProcessLookupError):
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done == 0:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)


def start_early_check(
    config: Config, when_healthy: Callable[[], object] | None = None, **kwargs: Any
) -> EarlyCheck:
    """Start the first gate check of a run now (see `EarlyCheck`); `when_healthy`
    runs, on a thread, when every probe passed.

    Only for a run whose first check would come before anything changes the
    environment: the caller makes sure no deploy runs first.
    """
    early = EarlyCheck(config, when_healthy, **kwargs)
    from greenloop import gate  # after the fork: the child need not wait for it

    gate._early.append(early)
    return early


def start_early_check_for(
    config: Config,
    *,
    deploy_forced: bool = False,
    when_healthy: Callable[[], object] | None = None,
    settle: bool = True,
) -> EarlyCheck | None:
    """`start_early_check` for a config as `config.read_config` reads it, before
    `load.load_config` has imported every stage to check it (the probes then answer
    while that happens).

    None (nothing started) when a deploy may come before the first check
    (`deploy_forced`, or a deploy with a max_age), or when a probe runs a command:
    nothing is run before the whole config is known to be valid. The check is used
    only if the full load gives an equal config. `settle=False` waits for every probe.
    """
    if deploy_forced or (config.deploy.command and config.deploy.max_age):
        return None
    if not config.probes or any(p.kind == "command" for p in config.probes):
        return None
    return start_early_check(config, when_healthy, settle=settle)
