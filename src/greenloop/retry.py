"""The one retry policy: every "wait, then try again" in greenloop is tenacity, shaped here.

- `poll`: check until a result is good or a deadline (monotonic) passes; the sleeps
  follow a wait (`backoff`), are cut to the time left, and the last check happens
  at the deadline. The gate waiting for health and deploy waiting for the new
  revision use it.
- `retry_async`: try an async attempt again after a fixed delay, at most so many
  times, and never start one that would have no time left (probe retries).
- `retry_transaction`: run a store transaction again when it conflicts with
  another writer (SQLite's lock, a lost race for a unique row).

`backoff_delay` is the one backoff: about initial * 2^(attempt-1), capped; with a
random generator, 50-100% of it, so several greenloop runs do not probe a
recovering service in lockstep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_fixed,
)

__all__ = ["Wait", "backoff", "backoff_delay", "poll", "retry_async", "retry_transaction"]

T = TypeVar("T")
# How long to sleep before attempt n + 1, given n (1-based).
Wait = Callable[[int], float]


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after `attempt` (1-based): initial * 2^(attempt-1), capped at max_s.

    With `rng`, 50-100% of that (jitter).
    """
    base = min(max_s, initial_s * 2 ** max(0, attempt - 1))
    return base * rng.uniform(0.5, 1.0) if rng is not None else base


def backoff(initial_s: float, max_s: float, rng: random.Random | None = None) -> Wait:
    """`backoff_delay` as a `Wait`."""
    return lambda attempt: backoff_delay(attempt, initial_s, max_s, rng)


def poll(
    check: Callable[[], T],
    *,
    done: Callable[[T], bool],
    deadline: float,
    wait: Wait,
    on_wait: Callable[[int, T, float], object] | None = None,
) -> T:
    """Call `check` until `done(result)` or `deadline` (time.monotonic) passes; the last result.

    Between checks it sleeps `wait(attempt)`, cut to the time left, after telling
    `on_wait(attempt, result, delay_s)`. An exception from `check` is not retried.
    """

    def left() -> float:
        return deadline - time.monotonic()

    def before_sleep(state: RetryCallState) -> None:
        if on_wait is not None and state.outcome is not None:
            on_wait(state.attempt_number, state.outcome.result(), state.upcoming_sleep)

    retrying = Retrying(
        retry=retry_if_result(lambda result: not done(result)),
        wait=lambda state: max(0.0, min(wait(state.attempt_number), left())),
        stop=lambda state: left() <= 0,
        before_sleep=before_sleep,
        retry_error_callback=_last_result,
    )
    result: T = retrying(check)
    return result


async def retry_async(
    attempt: Callable[[], Awaitable[T]],
    *,
    ok: Callable[[T], bool],
    attempts: int,
    delay_s: float,
    within_s: float,
) -> tuple[T, int]:
    """Await `attempt` until `ok(result)`, at most `attempts` times, `delay_s` apart.

    No attempt starts unless the delay before it ends within `within_s` of the
    first attempt's start (no time left for an honest try). Returns the last result
    and how many attempts were made.
    """
    retrying = AsyncRetrying(
        retry=retry_if_result(lambda result: not ok(result)),
        wait=wait_fixed(delay_s),
        stop=stop_after_attempt(attempts) | stop_before_delay(within_s),
        retry_error_callback=_last_result,
    )
    result: T = await retrying(attempt)
    return result, int(retrying.statistics.get("attempt_number", 1))


def retry_transaction(
    transaction: Callable[[], T],
    *,
    conflict: Callable[[BaseException], bool],
    wait: Callable[[int, BaseException], float],
    attempts: int,
    give_up: Callable[[], NoReturn],
) -> T:
    """Run `transaction` again while it fails with a `conflict`, `wait(attempt, error)` apart.

    Any other exception goes through at once; after `attempts` conflicts, `give_up()`
    raises (a UserError saying what to do).
    """

    def pause(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return wait(state.attempt_number, error) if error is not None else 0.0

    retrying = Retrying(
        retry=retry_if_exception(conflict),
        wait=pause,
        stop=stop_after_attempt(attempts),
        retry_error_callback=lambda state: give_up(),
    )
    result: T = retrying(transaction)
    return result


def _last_result(state: RetryCallState) -> object:
    """When retries stop, the last attempt's result (or its exception) stands."""
    assert state.outcome is not None
    return state.outcome.result()
