"""Money at risk: what the index says each failing test file guards.

A file counts once per cluster and once in the total, however many of its
tests fail and however many clusters it appears in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from greenloop import index as test_index
from greenloop.records import IndexEntry


def test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].replace("\\", "/")


def entry_for(path: str, index: Sequence[IndexEntry]) -> IndexEntry | None:
    """The index entry of a test file; index paths are relative to the tests dir, so a
    node id under a parent folder ("e2e/tests/test_x.py") still finds "test_x.py"."""
    exact = test_index.entry_for(path, list(index))
    if exact is not None:
        return exact
    for entry in index:
        rel = entry.path.replace("\\", "/").removeprefix("./")
        if path == rel or path.endswith("/" + rel):
            return entry
    return None


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
