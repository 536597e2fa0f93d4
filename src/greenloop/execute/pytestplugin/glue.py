"""pytest-xdist and pytest-timeout glue, the end-of-teardown mark, and the watchdog on
greenloop itself.

The hooks are optional: either plugin may be absent from the interpreter that runs
the suite.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from greenloop.execute.pytestplugin.sink import EventSink


class XdistTimeoutGlue:
    """Says which test crashed a worker or timed out before the process is gone."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        self.sink.emit("crashed", nodeid=crashitem, worker=worker_id(report))

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        """Thread-method timeouts end the process: say which test it was first."""
        main = threading.current_thread() is threading.main_thread()
        import pytest_timeout

        if settings.method == "signal" and main:
            # pytest-timeout's SIGALRM runs its handler only when Python gets control
            # back; a test blocked inside C (libpq's connect to a hung server) never
            # gives it. Past the timeout plus a grace, end the process as the thread
            # method does: the test is a timeout, not a 15-minute phase deadline.
            def backstop() -> None:
                self.sink.emit(
                    "timeout", nodeid=item.nodeid, timeout_s=settings.timeout, uninterruptible=True
                )
                pytest_timeout.timeout_timer(item, settings)

            grace_s = max(1.0, 0.1 * settings.timeout)
            guard = threading.Timer(settings.timeout + grace_s, backstop)
            guard.daemon = True
            guard.name = f"greenloop timeout backstop {item.nodeid}"
            item.greenloop_backstop = guard  # type: ignore[attr-defined]
            guard.start()
            return None  # pytest-timeout sets its signal as usual

        def expire() -> None:
            self.sink.emit("timeout", nodeid=item.nodeid, timeout_s=settings.timeout)
            pytest_timeout.timeout_timer(item, settings)

        timer = threading.Timer(settings.timeout, expire)
        timer.daemon = True
        timer.name = f"greenloop timeout {item.nodeid}"

        def cancel() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel  # type: ignore[attr-defined]
        timer.start()
        return True

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> None:
        """The test ended in time (or its signal fired): the backstop is not needed."""
        guard = getattr(item, "greenloop_backstop", None)
        if guard is not None:
            guard.cancel()


class TeardownMark:
    """Writes `torn_down` once pytest has torn the session's fixtures down.

    pytest tears session fixtures down in its own `pytest_sessionfinish`; this one
    runs after it (trylast). What follows (the terminal summary, the interpreter's
    exit) changes nothing outside, so a runner that waits for teardown before going
    on (runners/shared.py) need not wait for it.
    """

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.sink.emit("torn_down")


def worker_id(report: Any) -> str | None:
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    return getattr(gateway, "id", None)


def watch_parent(parent: int, interval_s: float = 0.5) -> None:
    """Stop this pytest (and its xdist workers) when greenloop itself is gone.

    pytest runs in its own session so Ctrl-C reaches greenloop first; if greenloop is
    killed outright (SIGKILL, OOM) nothing else would stop tests from running on
    against the environment, unobserved.
    """

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                try:
                    os.killpg(os.getpgrp(), signal.SIGKILL)
                finally:
                    os._exit(1)

    threading.Thread(target=watch, name="greenloop-parent-watch", daemon=True).start()
