"""A report's long list of rows (a test per row) redacted and encoded as JSON, in two
processes when it is long.

`greenloop triage` of 100,000 failures writes 100,000 test rows; redacting and encoding
them is a few seconds of one core while the other waits. `redacted_rows` splits the
rows: a forked child does the second half while this process does the first, and the
texts are joined in order. Each row is redacted by the same `Redactor.redact_obj` and
encoded by the same compact encoder `json_text` uses, so the result is the very text one
process would have written (redaction is a pure function of the string; the `seen` memo
only saves work, and the child inherits this process's memo as it was at the fork).

As in triage/parallel.py, 'fork' is required (the child inherits the rows and the
redactor, nothing is pickled but the child's text), and off Linux, on one CPU, below
`PARALLEL_ROWS` rows, or if the child cannot be made or dies, this process does all rows.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Sequence
from typing import Any

from greenloop.redact import Redactor
from greenloop.report.json_report import EncodedItems, compact_encoder
from greenloop.triage.parallel import worker_count

__all__ = ["PARALLEL_ROWS", "redacted_rows"]

# Below this many rows, forking costs more than it saves.
PARALLEL_ROWS = 5_000

# What the forked child inherits: set just before forking, cleared after.
_shared: tuple[Sequence[dict[str, Any]], Redactor, dict[str, str]] | None = None


def redacted_rows(
    rows: Sequence[dict[str, Any]],
    redactor: Redactor,
    seen: dict[str, str],
    workers: int | None = None,
) -> EncodedItems:
    """Each row redacted (`redactor.redact_obj(row, seen=seen)`) and encoded as one compact
    JSON text, in order. `workers` caps the processes (default: one per CPU, at most 2).
    Raises ValueError for NaN or infinity in a row (not JSON), as `json_text` does."""
    global _shared
    if len(rows) < PARALLEL_ROWS or worker_count(workers) < 2:
        return EncodedItems(_encode(rows, redactor, seen))
    import multiprocessing  # here: a small report never needs it
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    half = len(rows) // 2
    _shared = (rows, redactor, seen)
    gc.freeze()  # the child's collector then never touches (and copies) inherited objects
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            later = pool.submit(_encode_range, half, len(rows))
            first = _encode(rows[:half], redactor, seen)
            with contextlib.suppress(OSError, BrokenProcessPool):
                return EncodedItems(first + later.result())
    except OSError:  # could not fork: this process does the rest
        first = _encode(rows[:half], redactor, seen)
    finally:
        gc.unfreeze()
        _shared = None
    return EncodedItems(first + _encode(rows[half:], redactor, seen))


def _encode(rows: Sequence[dict[str, Any]], redactor: Redactor, seen: dict[str, str]) -> list[str]:
    encode = compact_encoder()
    return [encode(redactor.redact_obj(row, seen=seen)) for row in rows]


def _encode_range(lo: int, hi: int) -> list[str]:
    """In the forked child: rows [lo, hi) of the inherited rows."""
    assert _shared is not None, "the child must be forked after _shared is set"
    rows, redactor, seen = _shared
    return _encode(rows[lo:hi], redactor, seen)
