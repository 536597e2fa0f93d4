"""Which tests a phase runs, and in what order.

`select_tests` filters the test index by the phase's `select` table and the
command line's `--focus`, then orders the files so the tests most likely to
fail run first: those linked to open issues, then recently failing ones, then
the ones without history, recently green ones last (`execution.order = "risk"`).
The filtering and ordering are pure functions over records; only the store
read is I/O.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from greenloop.config import Config, PhaseConfig, SelectConfig
from greenloop.records import IndexEntry, Outcome

if TYPE_CHECKING:
    from greenloop.store import Store

TEST_FILE_PATTERNS = ("test_*.py", "*_test.py")
SKIP_DIRS = {"__pycache__", "node_modules", "venv", "site-packages"}
FAILURES = {o.value for o in Outcome if o.is_failure}

# Risk ranks: lower runs earlier.
OPEN_ISSUE, FAILING, UNKNOWN, GREEN = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Selection:
    """The tests one phase runs: files, pytest filters, their order and why, in words."""

    phase: str
    files: tuple[str, ...]  # absolute paths
    pytest_args: tuple[str, ...] = ()  # -m / -k from the phase's select table
    order: tuple[str, ...] = ()  # node ids, then files (relative to tests_dir), first first
    reason: str = ""
    entries: tuple[IndexEntry, ...] = ()
    tests_dir: str = ""  # absolute; where pytest runs and what node ids are relative to


def risk_history(store: Store) -> tuple[dict[str, tuple[str, ...]], set[str]]:
    """What risk ordering reads from the store: recent outcomes, open-issue node ids."""
    return store.results.recent_outcomes(), store.results.open_issue_nodeids()


def select_tests(
    config: Config,
    phase: PhaseConfig,
    index: Sequence[IndexEntry],
    *,
    focus: str | None = None,
    store: Store | None = None,
    risk: tuple[Mapping[str, tuple[str, ...]], set[str]] | None = None,
) -> Selection:
    """Filter the index for a phase and order it by risk (see module docstring).

    `risk`: the store's recent outcomes and open-issue node ids, when the caller read
    them once for several phases (`risk_history`); else they are read from `store`."""
    tests_dir = config.resolve(config.execution.tests_dir)
    unlisted = discover_test_files(tests_dir) if config.index.unlisted == "run" else []
    candidates = with_unindexed_files(index, unlisted)
    # A stale index row (its file renamed or deleted) is left out and said, never handed
    # to pytest: "file or directory not found" would fail the whole phase unrun.
    absent = {e.path for e in candidates if not (tests_dir / e.path).exists()}
    candidates = [e for e in candidates if e.path not in absent]
    missing = sorted(absent)
    select = config_relative_files(phase.select, config.base_dir, tests_dir)
    chosen = [e for e in candidates if matches_select(e, select, tests_dir)]
    if focus and focus.strip().lower() not in ("", "all"):
        chosen = [e for e in chosen if matches_focus(e, focus)]
    history: Mapping[str, tuple[str, ...]] = {}
    open_issues: set[str] = set()
    if risk is not None:
        history, open_issues = risk
    elif store is not None and config.execution.order == "risk":
        history, open_issues = risk_history(store)
    order = (
        risk_order(chosen, history, open_issues)
        if config.execution.order == "risk"
        else tuple(e.path for e in chosen)
    )
    by_path = {e.path: e for e in chosen}
    entries = tuple(by_path[p] for p in order if p in by_path)
    return Selection(
        phase=phase.name,
        files=tuple(str(tests_dir / e.path) for e in entries),
        pytest_args=pytest_filter_args(phase.select),
        order=order,
        reason=describe(phase, focus, entries, order, history, tests_dir) + _stale(missing),
        entries=entries,
        tests_dir=str(tests_dir),
    )


def _stale(missing: Sequence[str]) -> str:
    if not missing:
        return ""
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    entries = "index entry" if len(missing) == 1 else "index entries"
    return f"; left out {len(missing)} {entries} naming no file: {shown}"


# --------------------------------------------------------------------------- candidates


def discover_test_files(tests_dir: Path) -> list[str]:
    """Test files under tests_dir (pytest's default names), relative, sorted."""
    if not tests_dir.is_dir():
        return []
    found: set[str] = set()
    for pattern in TEST_FILE_PATTERNS:
        for path in tests_dir.rglob(pattern):
            parts = path.relative_to(tests_dir).parts
            if any(p.startswith(".") or p in SKIP_DIRS for p in parts[:-1]):
                continue
            found.add(path.relative_to(tests_dir).as_posix())
    return sorted(found)


def with_unindexed_files(index: Sequence[IndexEntry], files: Sequence[str]) -> list[IndexEntry]:
    """The index, plus default entries for test files it does not mention (they still run)."""
    known = {e.path for e in index}
    return [*index, *(IndexEntry(path=f) for f in files if f not in known)]


# --------------------------------------------------------------------------- filters


def config_relative_files(select: SelectConfig, base_dir: Path, tests_dir: Path) -> SelectConfig:
    """`select.files` rewritten from the config file's folder (the one path base) to tests_dir.

    A pattern that lands outside tests_dir is kept as written: configs older than
    the one-base rule wrote them relative to tests_dir, and those still match.
    """
    rewritten = []
    tests_dir = Path(os.path.normpath(tests_dir))
    for pattern in select.files:
        if Path(pattern).is_absolute():
            rewritten.append(pattern)
            continue
        absolute = Path(os.path.normpath(base_dir / pattern))
        try:
            relative = absolute.relative_to(tests_dir).as_posix()
            rewritten.append("*" if relative == "." else relative)
        except ValueError:
            rewritten.append(pattern)
    return select.model_copy(update={"files": rewritten})


def matches_select(entry: IndexEntry, select: SelectConfig, tests_dir: Path) -> bool:
    """Every non-empty filter must match (any of its values)."""
    if select.priorities and entry.priority not in select.priorities:
        return False
    if select.tags and not set(select.tags) & set(entry.tags):
        return False
    if select.categories and entry.category not in select.categories:
        return False
    return not select.files or any(path_matches(entry.path, f, tests_dir) for f in select.files)


def path_matches(path: str, pattern: str, tests_dir: Path) -> bool:
    """Does a `select.files` entry (path, folder or glob; relative to tests_dir) match `path`?"""
    candidate = Path(pattern)
    if candidate.is_absolute():
        try:
            pattern = candidate.relative_to(tests_dir).as_posix()
        except ValueError:
            return False
    pattern = pattern.removeprefix("./").rstrip("/")
    return path == pattern or path.startswith(pattern + "/") or fnmatch.fnmatch(path, pattern)


def matches_focus(entry: IndexEntry, focus: str) -> bool:
    """--focus TAG: a tag, a category, p1 / priority:1, or part of the file name."""
    token = focus.strip().lower()
    for prefix in ("priority:", "priority=", "p"):
        rest = token.removeprefix(prefix)
        if rest != token and rest.isdigit():
            return entry.priority == int(rest)
    return (
        token in (t.lower() for t in entry.tags)
        or token == entry.category.lower()
        or token in entry.path.lower()
    )


def pytest_filter_args(select: SelectConfig) -> tuple[str, ...]:
    args: list[str] = []
    if select.markers:
        args += ["-m", select.markers]
    if select.keyword:
        args += ["-k", select.keyword]
    return tuple(args)


# --------------------------------------------------------------------------- order


def risk_of(outcomes: Sequence[str], open_issue: bool) -> int:
    """A test's rank from its recent outcomes (newest first)."""
    if open_issue:
        return OPEN_ISSUE
    if not outcomes:
        return UNKNOWN
    if any(o in FAILURES for o in outcomes):
        return FAILING
    return GREEN


def risk_order(
    entries: Sequence[IndexEntry],
    history: Mapping[str, Sequence[str]],
    open_issues: set[str],
) -> tuple[str, ...]:
    """Risky node ids first, then files by (risk, priority, money at risk, path)."""
    file_risk: dict[str, int] = {}
    risky: list[tuple[int, str]] = []
    paths = {e.path for e in entries}
    for nodeid in sorted(set(history) | open_issues):
        file = nodeid.split("::", 1)[0]
        if file not in paths:
            continue
        risk = risk_of(history.get(nodeid, ()), nodeid in open_issues)
        file_risk[file] = min(file_risk.get(file, GREEN), risk)
        if risk < UNKNOWN and "::" in nodeid:
            risky.append((risk, nodeid))
    files = sorted(
        entries,
        key=lambda e: (file_risk.get(e.path, UNKNOWN), e.priority, -e.mrr_at_risk_usd, e.path),
    )
    return (*(n for _, n in sorted(risky)), *(e.path for e in files))


def describe(
    phase: PhaseConfig,
    focus: str | None,
    entries: Sequence[IndexEntry],
    order: Sequence[str],
    history: Mapping[str, Sequence[str]],
    tests_dir: Path,
) -> str:
    """The selection in words, for the worklog."""
    s = phase.select
    filters = [
        f"{name} {values}"
        for name, values in (
            ("priorities", s.priorities),
            ("tags", s.tags),
            ("categories", s.categories),
            ("files", s.files),
        )
        if values
    ]
    if s.markers:
        filters.append(f"-m {s.markers!r}")
    if s.keyword:
        filters.append(f"-k {s.keyword!r}")
    if focus and focus.lower() != "all":
        filters.append(f"focus {focus!r}")
    what = "; ".join(filters) or "every test file"
    if not entries:
        return f"phase {phase.name!r}: {what}: no test file in {tests_dir} matches"
    names = ", ".join(e.path for e in entries[:5]) + (
        f" (+{len(entries) - 5} more)" if len(entries) > 5 else ""
    )
    risky = sum(1 for n in order if "::" in n)
    file_risks: dict[str, int] = {}
    for nodeid, outcomes in history.items():
        file = nodeid.split("::", 1)[0]
        file_risks[file] = min(file_risks.get(file, GREEN), risk_of(outcomes, False))
    green = sum(1 for e in entries if file_risks.get(e.path) == GREEN)
    ordering = []
    if risky:
        ordering.append(f"{risky} recently failing or open-issue test(s) first")
    if green:
        ordering.append(f"{green} recently green file(s) last")
    tail = f"; order: {', '.join(ordering)}" if ordering else ""
    return f"phase {phase.name!r}: {what} -> {len(entries)} file(s): {names}{tail}"


def without_files(selection: Selection, done: Collection[str]) -> Selection:
    """The selection less the files an earlier phase of this iteration already ran whole.

    Progressive phases overlap (smoke's P1 files are P1 for critical too); running a
    file twice in one iteration costs time and double-counts its failures.
    """
    kept = tuple(f for f in selection.files if f not in done)
    if len(kept) == len(selection.files):
        return selection
    dropped = len(selection.files) - len(kept)
    order = tuple(o for o in selection.order if _order_file(o, selection.tests_dir) not in done)
    entries = tuple(
        e for e in selection.entries if str(Path(selection.tests_dir) / e.path) not in done
    )
    reason = f"{selection.reason}; {dropped} file(s) already ran in an earlier phase"
    return replace(selection, files=kept, order=order, entries=entries, reason=reason)


def _order_file(item: str, tests_dir: str) -> str:
    return str(Path(tests_dir) / item.split("::", 1)[0])
