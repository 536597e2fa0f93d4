"""The two ways a phase ends up in the record: run by its runner, or blocked by the gate."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from greenloop.config import Config, PhaseConfig
from greenloop.execute.listing import TestListing, collection_keys, list_tests
from greenloop.execute.progress import NullReporter, Reporter
from greenloop.execute.runners import runner_for
from greenloop.execute.runners.pytest import PytestRunner
from greenloop.execute.selection import Selection
from greenloop.records import Outcome, PhaseResult, PhaseStatus, TestResult

if TYPE_CHECKING:
    from greenloop.execute.runners.shared import SharedSession
    from greenloop.store import Store


def run_phase(
    config: Config,
    phase: PhaseConfig,
    selection: Selection,
    *,
    store: Store | None = None,
    reporter: Reporter | None = None,
    run_env: Mapping[str, str] | None = None,
    shared: SharedSession | None = None,
) -> PhaseResult:
    """Run one phase with its runner (`phase.runner`): every selected test gets a result.

    `shared` (pytest phases only): a pytest session started once for several
    phases (runners/shared.py); the phase runs there when the session serves it.
    """
    runner = runner_for(phase.runner)
    run = runner.run
    if shared is not None and isinstance(runner, PytestRunner):
        run = functools.partial(runner.run, shared=shared)
    return run(
        config,
        phase,
        selection,
        store=store,
        reporter=reporter or NullReporter(),
        run_env=run_env,
    )


def blocked_phase(
    config: Config,
    phase: PhaseConfig,
    selection: Selection,
    component: str,
    note: str,
    *,
    store: Store | None = None,
) -> PhaseResult:
    """The phase's tests, each named and recorded BLOCKED by `component`, none run.

    The tests are named without running pytest (execute/listing.py): from the
    collection the store cached for unchanged files, else from the source. The
    phase note says which.
    """
    started = time.monotonic()
    if not runner_for(phase.runner).runs_pytest:
        names: tuple[str, ...] = (f"{phase.name}::command",)
    else:
        listing = blocked_listing(config, selection, store)
        names = listing.nodeids
        note = f"{note}; {listing.how}"
    tests = tuple(
        TestResult(
            nodeid=name,
            outcome=Outcome.BLOCKED,
            phase=phase.name,
            file=name.split("::", 1)[0],
            message=note,
            blocked_by=component,
        )
        for name in names
    )
    return PhaseResult(
        name=phase.name,
        status=PhaseStatus.BLOCKED,
        duration_s=time.monotonic() - started,
        tests=tests,
        blocked_by=component,
        note=note,
    )


def blocked_listing(config: Config, selection: Selection, store: Store | None) -> TestListing:
    """A selection's tests named without importing the suite (cache first, then the source)."""
    extra = tuple(config.execution.pytest_args)
    keys = collection_keys(selection, extra)
    cached = store.collections.cached_collections(keys) if store is not None else {}
    return list_tests(selection, cached, keys, extra)
