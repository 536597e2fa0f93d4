"""A cluster is one problem: generated occurrences of one bug form one cluster, generated
distinct problems never merge (docs/triage.md, "Cluster keys").

Texts are pytest's long format (`>` source line, `E` lines, `path:line: Exc`), with what
varies between occurrences drawn from a seeded generator.
"""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime, timedelta

from triage_helpers import failed

from greenloop.records import TestResult
from greenloop.triage import triage
from greenloop.triage.fingerprint import normalize_values

ALPHABET = string.ascii_letters + string.digits


def short_id(rng: random.Random, size: int) -> str:
    """A random id as nanoid/shortuuid make them: letters and digits, any mix (some are
    letters only, some digits only)."""
    return "".join(rng.choice(ALPHABET) for _ in range(size))


def occurrence(rng: random.Random, n: int) -> TestResult:
    """The same bug (an order the service cannot find right after creating it), with
    every value a run varies: ids, tokens, UUIDs, hex, times, ports, temp paths, pids."""
    when = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**6))
    order = short_id(rng, rng.choice([6, 8, 10]))
    text = (
        f"def test_order_{n}(api):\n"
        f"        created = api.post('/orders', json={{'sku': 'A-{rng.randint(1, 9)}'}})\n"
        f">       assert api.get(f'/orders/{{created.id}}').ok, created.id\n"
        f"E       AssertionError: order {order} not found "
        f"(trace {uuid.UUID(int=rng.getrandbits(128))}, session "
        f"{rng.getrandbits(64):016x}, token {short_id(rng, 32)}, at {when.isoformat()}, "
        f"worker pid {rng.randint(1000, 99999)} on 10.0.{rng.randint(0, 255)}.7:"
        f"{rng.randint(1024, 65535)}, cache /tmp/pytest-of-ci/pytest-{n}/orders0, "
        f"took {rng.randint(5, 900)}ms)\n"
        f"E       assert False\n\n"
        f"tests/test_orders.py:{rng.randint(10, 99)}: AssertionError"
    )
    return failed(text, nodeid=f"tests/test_orders.py::test_order_{n}")


def test_one_bug_with_random_ids_is_one_cluster() -> None:
    rng = random.Random(2026)
    tests = [occurrence(rng, n) for n in range(60)]
    result = triage(tests, gate=None)
    assert [c.count for c in result.clusters] == [60], [c.title for c in result.clusters]


def test_ids_of_letters_only_join_the_others_across_occurrences() -> None:
    rng = random.Random(7)
    tests = [occurrence(rng, n) for n in range(12)]
    # the same bug, where the random id came out without a digit
    for n, order in enumerate(["XkpQzmTw", "bQrTwzNe", "RtYuiKmn"]):
        t = occurrence(rng, 100 + n)
        t = failed(
            t.longrepr.replace(t.longrepr.split("order ", 1)[1].split(" ", 1)[0], order, 1),
            nodeid=t.nodeid,
        )
        tests.append(t)
    result = triage(tests, gate=None)
    assert [c.count for c in result.clusters] == [15]


def assertion(rng: random.Random, n: int, expression: str, got: int, expected: int) -> TestResult:
    text = (
        f"def test_case_{n}():\n"
        f"        value = compute('{short_id(rng, 6)}')\n"
        f">       {expression} == {expected}\n"
        f"E       assert {got} == {expected}\n\n"
        f"tests/test_shop.py:{rng.randint(5, 300)}: AssertionError"
    )
    return failed(text, nodeid=f"tests/test_shop.py::test_case_{n}")


def test_distinct_assertions_are_distinct_problems() -> None:
    """Different values, different expressions: one cluster per (expression, values),
    however the tests are named and whatever line they fail on. (A gateway status, 502-504,
    is left out: it is an environment fault, one problem per reason and component.)"""
    rng = random.Random(99)
    expressions = ["assert status", "assert total", "assert len(items)", "assert count"]
    tests, problems = [], set()
    for n in range(80):
        expression = rng.choice(expressions)
        expected = rng.choice([5, 100, 200, 201])
        got = rng.choice([v for v in (0, 7, 90, 404, 500, 409) if v != expected])
        problems.add((expression, got, expected))
        tests.append(assertion(rng, n, expression, got, expected))
    result = triage(tests, gate=None)
    assert len(result.clusters) == len(problems)
    assert sum(c.count for c in result.clusters) == len(tests)


def test_missing_keys_and_raising_frames_tell_problems_apart() -> None:
    def key_error(key: str, where: str, n: int) -> TestResult:
        text = (
            f"tests/test_api.py:{n}: in test_{n}\n    body = render(thread)\n"
            f'  File "/srv/app/{where}.py", line {n % 50 + 1}, in {where}_view\n'
            f"E   KeyError: '{key}'"
        )
        return failed(text, nodeid=f"tests/test_api.py::test_{n}")

    rng = random.Random(5)
    keys = ["author", "title", "thread_id", "body"]
    places = ["threads", "messages"]
    tests = [key_error(rng.choice(keys), rng.choice(places), n) for n in range(64)]
    seen = {(t.longrepr.rsplit("'", 2)[1], t.longrepr.split("/srv/app/")[1][:5]) for t in tests}
    result = triage(tests, gate=None)
    assert len(result.clusters) == len(seen) == 8


def test_value_masks_keep_small_numbers_and_mask_what_varies() -> None:
    assert normalize_values("assert 500 == 200") == "assert 500 == 200"
    assert normalize_values("assert 7 == 5") != normalize_values("assert 90 == 100")
    same = [
        "cart 4711 not deleted at 2026-03-01T10:00:00Z (id=k3J9x2, took 153ms, /orders/17)",
        "cart 9120 not deleted at 2026-03-02T08:13:59Z (id=a81Bq0, took 2ms, /orders/4)",
    ]
    assert normalize_values(same[0]) == normalize_values(same[1])
