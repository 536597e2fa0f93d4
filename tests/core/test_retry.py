"""greenloop.retry: the one retry policy (tenacity) of probes, the gate, deploy and the store."""

from __future__ import annotations

import asyncio
import random
import time
from typing import NoReturn

import pytest

from greenloop.errors import UserError
from greenloop.retry import backoff, backoff_delay, poll, retry_async, retry_transaction


def test_backoff_doubles_up_to_its_cap_and_jitter_takes_half_to_all_of_it() -> None:
    assert [backoff_delay(n, 0.1, 1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    rng = random.Random(7)
    for n in range(1, 10):
        base = backoff_delay(n, 0.5, 5.0)
        assert 0.5 * base <= backoff(0.5, 5.0, rng)(n) <= base


def test_poll_stops_at_the_first_good_result_and_reports_each_wait() -> None:
    results = iter([1, 2, 3, 4])
    waits: list[tuple[int, int, float]] = []
    got = poll(
        lambda: next(results),
        done=lambda value: value == 3,
        deadline=time.monotonic() + 60,
        wait=lambda attempt: 0.001 * attempt,
        on_wait=lambda attempt, value, delay: waits.append((attempt, value, delay)),
    )
    assert got == 3
    assert waits == [(1, 1, 0.001), (2, 2, 0.002)]


def test_poll_past_its_deadline_checks_once_and_returns_that_result() -> None:
    calls: list[int] = []
    got = poll(
        lambda: calls.append(1) or "unhealthy",
        done=lambda value: False,
        deadline=time.monotonic() - 1,
        wait=lambda attempt: 10.0,
    )
    assert got == "unhealthy" and calls == [1]


def test_poll_cuts_its_sleep_to_the_time_left_and_checks_again_at_the_deadline() -> None:
    calls: list[float] = []
    waits: list[float] = []
    deadline = time.monotonic() + 0.2
    poll(
        lambda: calls.append(time.monotonic()),
        done=lambda value: False,
        deadline=deadline,
        wait=lambda attempt: 3600.0,
        on_wait=lambda attempt, value, delay: waits.append(delay),
    )
    assert len(calls) == 2, "one check, one sleep to the deadline, a last check"
    assert 0 < waits[0] <= 0.2
    assert calls[-1] >= deadline


def test_poll_lets_an_exception_through_without_retrying() -> None:
    calls: list[int] = []

    def broken() -> int:
        calls.append(1)
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        poll(broken, done=lambda v: True, deadline=time.monotonic() + 60, wait=lambda a: 0.0)
    assert calls == [1]


def test_retry_async_tries_up_to_its_attempts_and_says_how_many() -> None:
    tried: list[int] = []

    async def attempt() -> int:
        tried.append(1)
        return len(tried)

    last, attempts = asyncio.run(
        retry_async(attempt, ok=lambda n: n == 10, attempts=3, delay_s=0.001, within_s=60)
    )
    assert (last, attempts, len(tried)) == (3, 3, 3)
    last, attempts = asyncio.run(
        retry_async(attempt, ok=lambda n: n == 5, attempts=9, delay_s=0.001, within_s=60)
    )
    assert (last, attempts) == (5, 2)


def test_retry_async_starts_no_attempt_that_would_have_no_time_left() -> None:
    tried: list[int] = []

    async def attempt() -> bool:
        tried.append(1)
        return False

    last, attempts = asyncio.run(
        retry_async(attempt, ok=bool, attempts=5, delay_s=1.0, within_s=0.5)
    )
    assert last is False and attempts == 1 and tried == [1]


class Conflict(Exception):
    pass


def test_retry_transaction_runs_again_on_conflicts_only_and_gives_up_in_words() -> None:
    tried: list[int] = []

    def flaky() -> str:
        tried.append(1)
        if len(tried) < 3:
            raise Conflict
        return "recorded"

    def give_up() -> NoReturn:
        raise UserError("store busy; rerun later")

    def conflict(error: BaseException) -> bool:
        return isinstance(error, Conflict)

    assert (
        retry_transaction(
            flaky, conflict=conflict, wait=lambda n, e: 0.0, attempts=8, give_up=give_up
        )
        == "recorded"
    )
    assert len(tried) == 3

    def always() -> str:
        raise Conflict

    with pytest.raises(UserError, match="store busy"):
        retry_transaction(
            always, conflict=conflict, wait=lambda n, e: 0.0, attempts=4, give_up=give_up
        )

    def bug() -> str:
        tried.append(1)
        raise KeyError("bug")

    tried.clear()
    with pytest.raises(KeyError):
        retry_transaction(
            bug, conflict=conflict, wait=lambda n, e: 0.0, attempts=8, give_up=give_up
        )
    assert tried == [1]
