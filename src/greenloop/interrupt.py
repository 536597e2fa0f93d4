"""Ctrl-C, SIGTERM and SIGHUP: the first asks the run to stop cleanly, the second stops it now.

A clean stop ends the running phase (its pytest process group is stopped, the
tests it did not finish are recorded as skipped "interrupted"), skips the
stages that act on the world (filing, remediation), writes the partial
worklog and marks the run interrupted in the store.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_stop = threading.Event()


class Interrupted(Exception):
    """A second signal: stop now, wherever the run is."""


def requested() -> bool:
    """Has the user asked the run to stop?"""
    return _stop.is_set()


def request() -> None:
    """Ask the run to stop at the next safe point (what the first signal does)."""
    _stop.set()


def reset() -> None:
    _stop.clear()


@contextmanager
def handling_signals() -> Iterator[None]:
    """Install the two-step handler for SIGINT, SIGTERM and SIGHUP while a run is in progress."""
    reset()
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; embedded callers use request()
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if _stop.is_set():
            raise Interrupted()
        _stop.set()

    # SIGHUP too: a closed terminal or tmux session should stop the run cleanly, not kill it.
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
