"""Money at risk: what the index says each failing test file guards.

A file counts once per cluster and once in the total, however many of its
tests fail and however many clusters it appears in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from greenloop.records import IndexEntry


def test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].replace("\\", "/")


def entry_for(path: str, index: Sequence[IndexEntry]) -> IndexEntry | None:
    """The index entry of a test file; index paths are relative to the tests dir, so a
    node id under a parent folder ("e2e/tests/test_x.py") still finds "test_x.py".

    The entry whose path is the file's, else the first entry (in index order) whose path
    is the file's or a tail of it after a `/`: looked up in tables made once per index,
    so a run's hundred thousand failures do not each scan a thousand-file index."""
    exact, tails, answers = _tables(index)
    if path in answers:
        return answers[path]
    found = exact.get(path.split("::", 1)[0])
    if found is not None:
        answers[path] = found
        return found
    best = tails.get(path)
    slash = path.find("/")
    while slash != -1:
        hit = tails.get(path[slash + 1 :])
        if hit is not None and (best is None or hit[0] < best[0]):
            best = hit
        slash = path.find("/", slash + 1)
    answers[path] = answer = best[1] if best is not None else None
    return answer


# by path, by normalised path (with position), and the answers already given
_Tables = tuple[
    dict[str, IndexEntry], dict[str, tuple[int, IndexEntry]], dict[str, IndexEntry | None]
]
_last: list[tuple[Sequence[IndexEntry], _Tables]] = []  # the last index (a tuple) and its tables


def _tables(index: Sequence[IndexEntry]) -> _Tables:
    """The index by path (the first entry of each), by normalised path (with its
    position) and each path's answer once found: made once for the last index tuple seen;
    a list, which may change, each time."""
    if _last and _last[0][0] is index:
        return _last[0][1]
    exact: dict[str, IndexEntry] = {}
    tails: dict[str, tuple[int, IndexEntry]] = {}
    for n, entry in enumerate(index):
        exact.setdefault(entry.path, entry)
        tails.setdefault(entry.path.replace("\\", "/").removeprefix("./"), (n, entry))
    if isinstance(index, tuple):
        _last[:] = [(index, (exact, tails, {}))]
        return _last[0][1]
    return exact, tails, {}


def files_at_risk(nodeids: Iterable[str], index: Sequence[IndexEntry]) -> dict[str, float]:
    """Distinct index files touched by these tests -> their money at risk."""
    out: dict[str, float] = {}
    for path in dict.fromkeys(test_file(nodeid) for nodeid in nodeids):  # each file once
        entry = entry_for(path, index)
        if entry is not None:
            out[entry.path] = entry.mrr_at_risk_usd
    return out


def impact_usd(nodeids: Iterable[str], index: Sequence[IndexEntry]) -> float:
    return round(sum(files_at_risk(nodeids, index).values()), 2)


def total_impact_usd(clusters: Iterable[Iterable[str]], index: Sequence[IndexEntry]) -> float:
    """The union over clusters: a file in two clusters is counted once."""
    union: dict[str, float] = {}
    for tests in clusters:
        union.update(files_at_risk(tests, index))
    return round(sum(union.values()), 2)
