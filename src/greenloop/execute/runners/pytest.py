"""The pytest runner: pytest in a subprocess with greenloop's plugin, read as it runs.

One phase may take several pytest processes: when pytest itself dies (a test
calls os._exit, segfaults, is OOM-killed) the running test is recorded as
crashed and pytest is launched again for the tests that had not run yet; failed
tests are then re-run in a fresh process to tell flaky from broken. At the phase
deadline the whole process group is killed and every unfinished test is
recorded as a timeout. No collected test is ever left without a result.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from greenloop import interrupt
from greenloop.config import Config, PhaseConfig
from greenloop.execute.events import EventFold
from greenloop.execute.interpreter import Interpreter, import_root, interpreter_for
from greenloop.execute.listing import collection_keys, collections_to_cache
from greenloop.execute.progress import Reporter
from greenloop.execute.runners.base import (
    CUT_SHORT,
    display_command,
    phase_status,
    process_environment,
    skipped_phase,
    tail,
)
from greenloop.execute.selection import Selection
from greenloop.execute.warm import take_warm_pytest
from greenloop.execute.wire import EVENTS_ENV, HEAVY_PLUGINS, ORDER_ENV, PARENT_ENV
from greenloop.kinds import NoOptions
from greenloop.process import ProcessEnd, follow_process, run_process
from greenloop.records import Outcome, PhaseResult, TestResult
from greenloop.redact import redactor_for

if TYPE_CHECKING:
    from greenloop.execute.runners.shared import SharedSession
    from greenloop.store import Store

PLUGIN = "greenloop.execute.plugin"
RERUN_OUTCOMES = (Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED)  # not TIMEOUT: see docs
# E2E tests mostly wait on the network; each xdist worker costs ~0.25 s of CPU to start.
AUTO_WORKERS_PER_CPU = 6
AUTO_WORKERS_MAX = 32
MAX_LAUNCHES = 50  # re-launches after crashes, per phase; each must make progress
PYTEST_EXIT = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}
TEST_DEF = re.compile(rb"^\s*(async\s+)?def test", re.M)


@dataclass(frozen=True, slots=True)
class PytestSettings:
    """The knobs of one pytest phase after config, phase and command line are merged."""

    workers: int
    test_timeout_s: float
    phase_timeout_s: float
    reruns: int


def resolve_workers(value: int | str | None, estimated_tests: int | None = None) -> int:
    """Worker processes: a number, or "auto" = 6 per CPU (max 32, max one per known test)."""
    if value is None:
        return 1
    if value == "auto":
        workers = min(AUTO_WORKERS_MAX, AUTO_WORKERS_PER_CPU * (os.cpu_count() or 1))
        if estimated_tests is not None:
            workers = min(workers, max(1, estimated_tests))
        return workers
    return max(1, int(value))


def estimate_tests(files: Sequence[str]) -> int:
    """A cheap lower bound of the tests in some files: their `def test...` lines."""
    count = 0
    for name in files:
        path = Path(name)
        paths = path.rglob("*.py") if path.is_dir() else [path]
        for p in paths:
            try:
                count += len(TEST_DEF.findall(p.read_bytes()))
            except OSError:
                continue
    return count


# A phase note: its pytest had started (and loaded the suite's libraries) while greenloop
# still loaded, instead of starting cold (execute/warm.py).
STARTED_AHEAD = "pytest started ahead, while greenloop loaded (execute/warm.py)"


# HEAVY_PLUGINS (wire.py): entry-point plugins that every pytest process (and xdist worker)
# loads at start-up, with a word their users' test code must contain. anyio's (installed
# with httpx; it imports trio when that is installed) costs 0.2-0.3 s of CPU per process:
# a tenth of a 2 s suite, and with 16 workers on 2 cores seconds before the first test runs.


def unused_plugin_opts(selection: Selection) -> list[str]:
    """`-p no:NAME` for heavy plugins no selected file or conftest.py mentions."""
    sources = [Path(f) for f in selection.files]
    if selection.tests_dir:
        sources += Path(selection.tests_dir).rglob("conftest.py")
    texts = []
    for source in sources:
        for path in source.rglob("*.py") if source.is_dir() else [source]:
            try:
                texts.append(path.read_bytes())
            except OSError:
                return []  # cannot tell: load everything
    unused = [n for n, word in HEAVY_PLUGINS.items() if not any(word in t for t in texts)]
    return [arg for name in unused for arg in ("-p", f"no:{name}")]


def resolve_settings(
    config: Config,
    phase: PhaseConfig,
    selection: Selection,
    history: Mapping[str, float] | None = None,
) -> PytestSettings:
    ex = config.execution
    workers_value = phase.workers if phase.workers is not None else ex.workers
    estimate = None
    if workers_value == "auto":
        # Parametrised tests hide behind one `def`: trust past runs when there are some.
        files = {_relative(f, selection.tests_dir) for f in selection.files}
        known = sum(1 for n in history or {} if n.split("::", 1)[0] in files)
        estimate = max(known, estimate_tests(selection.files)) if known else None
    return PytestSettings(
        workers=resolve_workers(workers_value, estimate),
        test_timeout_s=phase.test_timeout_s or ex.test_timeout_s,
        phase_timeout_s=phase.timeout_s or ex.phase_timeout_s,
        reruns=ex.reruns if phase.reruns is None else phase.reruns,
    )


def pytest_argv(
    config: Config,
    selection: Selection,
    settings: PytestSettings,
    targets: Sequence[str],
    *,
    workers: int | None = None,
    collect_only: bool = False,
    interpreter: Interpreter | None = None,
) -> list[str]:
    """The exact pytest command line of a phase (targets relative to tests_dir when inside).

    `interpreter`: execution.python's; what it lacks (xdist, pytest-timeout) is left out.
    """
    interpreter = interpreter or Interpreter(sys.executable, own=True)
    workers = settings.workers if workers is None else workers
    workers = workers if interpreter.has_xdist else 1
    python = interpreter.executable
    argv = [python, "-m", "pytest", "-p", PLUGIN, "--rootdir", selection.tests_dir, "-q"]
    # One broken file must not stop the others: its error is recorded and judged by verify.
    argv.append("--continue-on-collection-errors")
    if collect_only:
        argv.append("--collect-only")
    else:
        method = "thread" if workers > 1 else "signal"
        if interpreter.has_timeout:
            argv += ["--timeout", f"{settings.test_timeout_s:g}", "--timeout-method", method]
        if workers > 1:
            argv += ["-n", str(workers), "--dist", "worksteal"]
    argv += unused_plugin_opts(selection)
    argv += [*config.execution.pytest_args, *selection.pytest_args]
    return argv + [_relative(t, selection.tests_dir) for t in targets]


def _relative(target: str, tests_dir: str) -> str:
    path, sep, rest = target.partition("::")
    try:
        rel = Path(path).relative_to(tests_dir).as_posix()
    except ValueError:
        return target
    return f"{rel}{sep}{rest}"


class EventTail:
    """Reads the events file as it grows, whole lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]


@dataclass
class _Context:
    """One phase's run: where files go and when it must end."""

    config: Config
    selection: Selection
    settings: PytestSettings
    env: dict[str, str]
    workdir: Path
    deadline: float
    interpreter: Interpreter
    launches: int = 0
    first_command: str = ""
    command_shared: bool = False  # the first launch was a shared session's
    started_ahead: bool = False  # the first launch was the warm pytest (execute/warm.py)


class PytestRunner:
    """Runs a phase's selection with pytest (see module docstring)."""

    kind = "pytest"
    runs_pytest = True
    Options = NoOptions

    def validate(self, phase: PhaseConfig) -> None:
        """Nothing beyond the models: `select.files` is checked by `greenloop.load`."""

    def run(
        self,
        config: Config,
        phase: PhaseConfig,
        selection: Selection,
        *,
        store: Store | None,
        reporter: Reporter,
        run_env: Mapping[str, str] | None,
        shared: SharedSession | None = None,
    ) -> PhaseResult:
        """Run the phase; in `shared`'s pytest process when it serves this phase."""
        if not selection.files:
            return skipped_phase(phase, selection)
        started = time.monotonic()
        history = store.results.durations() if store is not None else {}
        settings = resolve_settings(config, phase, selection, history)
        reporter.on_phase_start(phase.name, workers=settings.workers, durations=history)
        with tempfile.TemporaryDirectory(prefix="greenloop-phase-") as tmp:
            interpreter = interpreter_for(config, Path(tmp))
            ctx = _Context(
                config=config,
                selection=selection,
                settings=settings,
                env=interpreter.environment(
                    process_environment(config, run_env),
                    import_root(Path(selection.tests_dir), config.base_dir),
                ),
                workdir=Path(tmp),
                deadline=started + settings.phase_timeout_s,
                interpreter=interpreter,
            )
            order = run_order(selection, history, settings.workers)
            (ctx.workdir / "order.txt").write_text("\n".join(order) + "\n", encoding="utf-8")
            ctx.env[ORDER_ENV] = str(ctx.workdir / "order.txt")
            fold = EventFold(phase.name, listener=reporter)
            notes = interpreter.notes(settings.workers)
            notes += run_until_done(ctx, fold, list(selection.files), shared)
            if shared is not None and ctx.command_shared:
                notes.insert(0, shared.note(phase.name))
            elif ctx.started_ahead:
                notes.insert(0, STARTED_AHEAD)
            results = dict(fold.results)
            if settings.reruns and time.monotonic() < ctx.deadline and not interrupt.requested():
                notes += rerun_failures(
                    ctx, fold, results, settings.reruns, config.execution.rerun_max_tests
                )
        if store is not None:
            cache_collection(store, config, selection, fold)
        tests = ordered(fold, results) + skipped_modules(fold, phase.name)
        errors = tuple(f"{n}: {e}" for n, e in fold.collection_errors.items())
        if fold.bad_lines:
            notes.append(f"{len(fold.bad_lines)} unreadable event line(s): {fold.bad_lines[0]}")
        result = PhaseResult(
            name=phase.name,
            status=phase_status(tests, errors),
            duration_s=time.monotonic() - started,
            tests=tests,
            command=ctx.first_command,
            note="; ".join(notes),
            collection_errors=errors,
        )
        reporter.on_phase_end(result)
        return result


def cache_collection(store: Store, config: Config, selection: Selection, fold: EventFold) -> None:
    """Keep what this phase collected, per file content, so a blocked phase can name it."""
    if not fold.collected and not fold.sessions_finished:
        return  # pytest never got through collection: nothing learnt
    keys = collection_keys(selection, config.execution.pytest_args)
    troubled = [*fold.collection_errors, *fold.collection_skips]
    collections = collections_to_cache(keys, fold.collected, troubled)
    # Node ids as every other table holds them: a secret in a test's name is masked. The
    # cache only names blocked tests, which the reports show redacted anyway.
    redact = redactor_for(config).redact
    store.collections.save_collections(
        {key: (file, [redact(n) for n in nodeids]) for key, (file, nodeids) in collections.items()}
    )


def run_order(selection: Selection, history: Mapping[str, float], workers: int) -> list[str]:
    """Serial: the selection's risk order. Parallel: slowest first, so no worker ends last alone."""
    if workers <= 1 or not history:
        return list(selection.order)
    files = set(selection.order)
    slow = sorted((n for n in history if n.split("::", 1)[0] in files), key=lambda n: -history[n])
    return [*slow, *selection.order]


def run_until_done(
    ctx: _Context, fold: EventFold, targets: list[str], shared: SharedSession | None = None
) -> list[str]:
    """Launch pytest, and again for the tests left when it died, until all have a result.

    With `shared` serving this phase, the first launch is the shared session's.
    """
    notes: list[str] = []
    while targets:
        before = len(fold.results)
        if shared is not None and ctx.launches == 0 and shared.serves(fold.phase):
            ctx.launches += 1
            ctx.command_shared = True
            end = shared.serve(ctx, fold, fold.phase)
            output = ctx.workdir / f"output-{ctx.launches}.log"
        else:
            end, output = launch(ctx, fold, targets)
        if end.interrupted:
            fold.end_running(Outcome.SKIPPED, "interrupted: the run was stopped while it ran")
            fold.end_not_started(Outcome.SKIPPED, "not run: the run was interrupted")
            notes.append(f"{CUT_SHORT}pytest was stopped; unfinished tests are skipped")
            break
        if end.timed_out:
            limit = f"{ctx.settings.phase_timeout_s:g}s"
            fold.end_running(Outcome.TIMEOUT, f"the phase deadline of {limit} passed while it ran")
            fold.end_not_started(Outcome.TIMEOUT, f"not run: the phase deadline of {limit} passed")
            uncollected = timed_out_collecting(ctx, fold, targets, limit)
            notes.append(
                f"phase deadline of {limit} exceeded; pytest was stopped"
                + (f" while collecting {len(uncollected)} target(s)" if uncollected else "")
            )
            break
        code = end.returncode
        crashed = fold.end_running(Outcome.CRASHED, f"pytest died (exit code {code}) while it ran")
        for r in crashed:
            if not r.longrepr:
                fold.results[r.nodeid] = replace(r, longrepr=tail(output))
        # Exit 1 with nothing collected is a pytest that failed to start (an import error
        # before collection): say so with its output, never "nothing collected".
        if code not in (0, 5) and not fold.collected:
            why = PYTEST_EXIT.get(code or 0, f"exited with code {code} before collecting a test")
            fold.collection_errors.setdefault("pytest", f"pytest {why}:\n{tail(output)}")
        remaining = fold.not_started()
        if not remaining:
            break
        progressed = len(fold.results) > before
        if not progressed or ctx.launches >= MAX_LAUNCHES:
            fold.end_not_started(
                Outcome.CRASHED, f"not run: pytest stopped before reaching it (exit code {code})"
            )
            break
        notes.append(f"pytest exited with code {code}; re-launched for {len(remaining)} test(s)")
        targets = [fold.collected[n].arg for n in remaining]
    return notes


def timed_out_collecting(
    ctx: _Context, fold: EventFold, targets: Sequence[str], limit: str
) -> list[TestResult]:
    """One `timeout` result per target pytest had not collected when the deadline hit.

    A slow environment (a conftest that waits on a server, a huge parametrisation) is a
    timeout, never "nothing collected": that would call real tests fake.
    """
    seen = {item.file for item in fold.collected.values()}
    seen |= {nodeid.split("::", 1)[0] for nodeid in fold.results}
    out = []
    for target in targets:
        nodeid = _relative(target, ctx.selection.tests_dir)
        file = nodeid.split("::", 1)[0].rstrip("/")
        if file in seen or any(f.startswith(file + "/") for f in seen) or nodeid in fold.results:
            continue
        result = TestResult(
            nodeid=nodeid,
            outcome=Outcome.TIMEOUT,
            duration_s=ctx.settings.phase_timeout_s,
            phase=fold.phase,
            file=file,
            message=f"not run: the phase deadline of {limit} passed while pytest was collecting",
            when="collect",
        )
        fold.results[nodeid] = result
        if fold.listener is not None:
            fold.listener.on_test(result)
        out.append(result)
    return out


def launch(ctx: _Context, fold: EventFold, targets: Sequence[str]) -> tuple[ProcessEnd, Path]:
    """One pytest process over `targets`, its events folded in as they arrive."""
    ctx.launches += 1
    events = ctx.workdir / f"events-{ctx.launches}.jsonl"
    output = ctx.workdir / f"output-{ctx.launches}.log"
    workers = min(ctx.settings.workers, max(1, len(targets))) if ctx.launches > 1 else None
    argv = pytest_argv(
        ctx.config,
        ctx.selection,
        ctx.settings,
        targets,
        workers=workers,
        interpreter=ctx.interpreter,
    )
    ctx.first_command = ctx.first_command or display_command(argv)
    if len(targets) > 200:  # keep the command line short: pytest reads @file arguments
        argsfile = ctx.workdir / f"args-{ctx.launches}.txt"
        argsfile.write_text("\n".join(argv[-len(targets) :]) + "\n", encoding="utf-8")
        argv = [*argv[: -len(targets)], f"@{argsfile}"]
    reader = EventTail(events)
    cwd = Path(ctx.selection.tests_dir)
    env = {**ctx.env, EVENTS_ENV: str(events), PARENT_ENV: str(os.getpid())}
    on_poll = lambda: fold.feed_lines(reader.read())  # noqa: E731
    # A pytest started ahead (execute/warm.py) when one fits this first launch, else cold.
    warm = take_warm_pytest(argv, cwd=cwd, env=env, output=output) if ctx.launches == 1 else None
    if warm is not None:
        ctx.started_ahead = True
        return follow_process(warm, deadline=ctx.deadline, on_poll=on_poll), output
    end = run_process(argv, cwd=cwd, env=env, deadline=ctx.deadline, output=output, on_poll=on_poll)
    return end, output


def rerun_failures(
    ctx: _Context,
    fold: EventFold,
    results: dict[str, TestResult],
    reruns: int,
    max_tests: int,
) -> list[str]:
    """Re-run failed tests, each in a fresh pytest, until they pass or `reruns` is used up.

    When more than `max_tests` failed, the failure is systematic rather than flaky and
    re-running would only repeat every timeout: no re-runs, and the note says why.
    """
    notes = []
    for attempt in range(1, reruns + 1):
        failing = [
            n
            for n, r in results.items()
            if r.outcome in RERUN_OUTCOMES
            and Outcome.PASSED not in r.reruns
            and n in fold.collected
        ]
        if attempt == 1 and len(failing) > max_tests:
            notes.append(
                f"{len(failing)} tests failed: systematic, not flaky; re-runs skipped "
                f"(execution.rerun_max_tests = {max_tests})"
            )
            break
        if not failing or time.monotonic() >= ctx.deadline:
            break
        again = EventFold(fold.phase)
        again.collected = {}
        run_until_done(ctx, again, [fold.collected[n].arg for n in failing])
        for n in failing:
            outcome = again.results[n].outcome if n in again.results else Outcome.CRASHED
            results[n] = replace(results[n], reruns=(*results[n].reruns, outcome))
        passed = sum(1 for n in failing if results[n].reruns[-1] is Outcome.PASSED)
        notes.append(f"re-run {attempt}: {len(failing)} failed test(s), {passed} passed")
    return notes


def ordered(fold: EventFold, results: Mapping[str, TestResult]) -> tuple[TestResult, ...]:
    return tuple(results[r.nodeid] for r in fold.ordered_results())


def skipped_modules(fold: EventFold, phase: str) -> tuple[TestResult, ...]:
    """Modules skipped while collecting (module-level pytest.skip): one result each."""
    return tuple(
        TestResult(
            nodeid=nodeid,
            outcome=Outcome.SKIPPED,
            phase=phase,
            file=nodeid.split("::", 1)[0],
            skip_reason=reason,
            message=reason,
            when="collect",
        )
        for nodeid, reason in fold.collection_skips.items()
        if nodeid not in fold.results
    )
