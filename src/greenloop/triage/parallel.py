"""Classify a batch of failures once per distinct input, large batches in worker processes.

Failures whose evidence is equal but for the test id (`input_key`: one fault met by many
tests, a fixture's error re-raised for every test of a module) are classified and keyed
once; the others get copies of that decision, with their own test id.

Classifying a failure (the rule table) and computing its own cluster key (masking and
hashing its text) depend on that failure's evidence alone, and they are most of triage's
time on a large batch. So for `PARALLEL_MIN` distinct failures or more, `classify_batch` forks
worker processes: they inherit the evidence the parent gathered (every store read and
log match happens in the parent first), each classifies an index range and sends back
compact parts (rule position, matched text, component, keys), and the parent rebuilds
the very `Decision` objects `classify` would have made. Everything that looks across
records (shared keys, clusters, root-cause chains, impact, log templates) stays in the
parent, as in the serial path.

'fork' (Linux) is required: workers then need no pickled records or rules (user rules
are closures), only index ranges. Off Linux, on one CPU, with one worker
requested, or below the threshold, the serial path runs unchanged. Forked workers end
with `os._exit`, so connections inherited from the parent (the store) are never closed
or written to by them.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter

from greenloop.triage.classify import Decision, classify, decided
from greenloop.triage.cluster import record_keys, shared_keys
from greenloop.triage.evidence import FailureEvidence
from greenloop.triage.fingerprint import test_function
from greenloop.triage.rules import FALLBACK, Rule

__all__ = ["PARALLEL_MIN", "classify_batch", "input_key", "worker_count"]

# Below this many failures, forking costs more than it saves: the serial path runs.
PARALLEL_MIN = 5_000
# Ranges per worker: small enough to even out uneven records, few enough to cost nothing.
_CHUNKS_PER_WORKER = 4

# One record's result from a worker: (rule position in rules + (FALLBACK,), or None when no
# rule decided it (blocked, skipped: the parent classifies those, no rule runs); the
# matched text; the component; the text fingerprint and the record's own cluster key).
Compact = tuple[int | None, str, str | None, str | None, str | None]

# What forked workers inherit: set by the parent just before forking, cleared after.
_shared: tuple[Sequence[FailureEvidence], tuple[Rule, ...]] | None = None


def worker_count(requested: int | None = None) -> int:
    """Processes to use: min(CPU count, requested); 1 off Linux or without fork (macOS
    has fork, but system libraries there are not safe to use in a forked child), and 1 in
    a daemonic process, which multiprocessing does not let have children."""
    import multiprocessing  # here: a small run never needs it

    cpus = os.cpu_count() or 1
    linux = sys.platform.startswith("linux")
    if cpus <= 1 or not linux or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(cpus, requested if requested is not None else cpus))


def classify_batch(
    evidence: Sequence[FailureEvidence], rules: Sequence[Rule], workers: int | None = None
) -> tuple[list[Decision], list[str | None]]:
    """Each evidence's decision and cluster key (`cluster_keys` of the decisions).

    Work is done once per distinct input: failures whose evidence is equal but for the
    test's id (`input_key`) get the decision and key their first one got, so a hundred
    thousand failures of a few thousand problems cost a few thousand classifications."""
    slot: dict[object, int] = {}
    firsts: list[int] = []  # per distinct input, the position of its first failure
    owner: list[int] = []  # per failure, its distinct input
    for n, ev in enumerate(evidence):
        key = input_key(ev, n)
        at = slot.get(key)
        if at is None:
            at = slot[key] = len(firsts)
            firsts.append(n)
        owner.append(at)
    distinct = [evidence[n] for n in firsts]
    processes = worker_count(workers) if len(distinct) >= PARALLEL_MIN else 1
    compact: list[Compact] | None = None
    if processes > 1:
        from concurrent.futures.process import BrokenProcessPool

        # Could not fork, or a worker died (out of memory): this process answers.
        with contextlib.suppress(OSError, BrokenProcessPool):
            compact = _in_workers(distinct, tuple(rules), processes)
    if compact is None:
        positions = _positions(rules)
        compact = [_compact(classify(ev, rules), positions) for ev in distinct]
    table = (*rules, FALLBACK)
    decisions = []
    for ev, at in zip(evidence, owner, strict=True):
        pos, found, component, _, _ = compact[at]
        decisions.append(
            classify(ev, rules) if pos is None else decided(ev, table[pos], found, component)
        )
    return decisions, shared_keys([compact[at][3:] for at in owner])


def input_key(ev: FailureEvidence, n: int) -> object:
    """What a failure's decision and own cluster key depend on: every evidence field but
    the test's id, of which only the function's name counts, and only when the text names
    it (a frame of the test function itself is left out of a signature). Evidence that
    cannot be hashed is its own input."""
    function = test_function(ev.nodeid)
    named = function if function in ev.text else ""
    key = (*_input_fields(ev), named)
    try:
        hash(key)
    except TypeError:
        return n
    return key


_input_fields = attrgetter(*(f.name for f in fields(FailureEvidence) if f.name != "nodeid"))


def _in_workers(
    evidence: Sequence[FailureEvidence], rules: tuple[Rule, ...], processes: int
) -> list[Compact]:
    global _shared
    chunks = processes * _CHUNKS_PER_WORKER
    step = -(-len(evidence) // chunks)  # ceiling: every record in exactly one range
    ranges = [(lo, min(lo + step, len(evidence))) for lo in range(0, len(evidence), step)]
    _shared = (evidence, rules)
    # Frozen objects are not scanned by the workers' garbage collector: otherwise each
    # collection writes to every inherited object and copies the parent's memory over.
    gc.freeze()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            return [item for part in pool.map(_classify_range, ranges) for item in part]
    finally:
        gc.unfreeze()
        _shared = None


def _classify_range(bounds: tuple[int, int]) -> list[Compact]:
    """In a worker: classify and key the inherited evidence in [lo, hi)."""
    assert _shared is not None, "workers must be forked after _shared is set"
    evidence, rules = _shared
    positions = _positions(rules)
    return [_compact(classify(ev, rules), positions) for ev in evidence[bounds[0] : bounds[1]]]


def _positions(rules: Sequence[Rule]) -> dict[int, int]:
    return {id(rule): n for n, rule in enumerate((*rules, FALLBACK))}


def _compact(decision: Decision, positions: dict[int, int]) -> Compact:
    """A decision as its compact parts (`positions`: `_positions` of the rules)."""
    text, key = record_keys(decision)
    c = decision.classification
    pos = positions[id(decision.rule)] if decision.rule is not None else None
    return (pos, c.evidence, c.component, text, key)
