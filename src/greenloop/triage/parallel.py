"""Classify large batches of failures in worker processes.

Classifying a failure (the rule table) and computing its own cluster key (masking and
hashing its text) depend on that failure's evidence alone, and they are most of triage's
time on a large batch. So for `PARALLEL_MIN` failures or more, `classify_batch` forks
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

import gc
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from greenloop.triage.classify import Decision, classify, decided
from greenloop.triage.cluster import record_keys, shared_keys
from greenloop.triage.evidence import FailureEvidence
from greenloop.triage.rules import FALLBACK, Rule

__all__ = ["PARALLEL_MIN", "classify_batch", "worker_count"]

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
    cpus = os.cpu_count() or 1
    linux = sys.platform.startswith("linux")
    if cpus <= 1 or not linux or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(cpus, requested if requested is not None else cpus))


def classify_batch(
    evidence: Sequence[FailureEvidence], rules: Sequence[Rule], workers: int | None = None
) -> tuple[list[Decision], list[str | None] | None]:
    """Each evidence's decision, plus the cluster keys when workers computed them
    (None on the serial path: `build_clusters` computes them as it always did)."""
    processes = worker_count(workers)
    if processes == 1 or len(evidence) < PARALLEL_MIN:
        return [classify(ev, rules) for ev in evidence], None
    try:
        compact = _in_workers(evidence, tuple(rules), processes)
    except (OSError, BrokenProcessPool):
        # Could not fork, or a worker died (out of memory): the serial path still answers.
        return [classify(ev, rules) for ev in evidence], None
    table = (*rules, FALLBACK)
    decisions = [
        classify(ev, rules) if pos is None else decided(ev, table[pos], found, component)
        for ev, (pos, found, component, _, _) in zip(evidence, compact, strict=True)
    ]
    return decisions, shared_keys([(text, key) for _, _, _, text, key in compact])


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
    positions = {id(rule): n for n, rule in enumerate((*rules, FALLBACK))}
    out: list[Compact] = []
    for ev in evidence[bounds[0] : bounds[1]]:
        decision = classify(ev, rules)
        text, key = record_keys(decision)
        c = decision.classification
        pos = positions[id(decision.rule)] if decision.rule is not None else None
        out.append((pos, c.evidence, c.component, text, key))
    return out
