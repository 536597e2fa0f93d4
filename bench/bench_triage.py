"""Triage throughput: classify + fingerprint + cluster, and Drain3 log templating.

    .venv/bin/python bench/bench_triage.py [--records 100000] [--lines 1000000]

Failure records are generated from templates of real failure texts (the
labelled set in tests/data plus live-captured shapes) with varied ports, ids,
UUIDs, line numbers and test names, so fingerprints must really be computed
and masked. The whole `triage()` stage runs over them, with a gate whose cache
probe is failing. Log lines are generated from service-log templates with
varied values. Prints records/s and lines/s measured in this run; triage twice, in one
process and with one worker process per CPU (large batches only, parallel.py), both
figures side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from pathlib import Path

from greenloop.records import (
    ComponentState,
    GateResult,
    IndexEntry,
    Outcome,
    ProbeResult,
    TestResult,
)
from greenloop.triage import triage
from greenloop.triage.logs.templates import TemplateCounter
from greenloop.triage.parallel import worker_count

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "data" / "triage_labelled.jsonl"

LIVE = [
    "Traceback (most recent call last):\n"
    '  File "/srv/app/.venv/lib/python3.11/site-packages/redis/connection.py", '
    "line {n}, in connect\n"
    "    sock = self.retry.call_with_retry(\n"
    '  File "/work/tests/test_chat.py", line {n}, in {test}\n'
    '    r = api.post("/threads/{n}/messages")\n'
    "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:{port}. "
    "Connection refused.",
    "tests/test_api.py:{n}: in {test}\n    assert r.status_code == 200\n"
    "E   AssertionError: assert 500 == 200\n"
    "E    +  where 500 = <Response [500 Internal Server Error]>.status_code",
    "websockets.exceptions.InvalidStatus: server rejected WebSocket connection: HTTP 503",
    "httpx.ConnectError: [Errno 111] Connection refused",
    'psycopg.OperationalError: connection failed: connection to server at "127.0.0.1", '
    "port {port} failed: Connection refused",
    "E   KeyError: '{word}'\n  File \"/srv/app/chat/messages.py\", line {n}, in create",
]
WORDS = ["author", "thread_id", "created_at", "total", "user"]


def failure_templates() -> list[str]:
    texts = [json.loads(line)["text"] for line in LABELLED.read_text().splitlines() if line]
    return texts + LIVE


def vary(text: str, rng: random.Random, test: str) -> str:
    out = text.replace("{n}", str(rng.randint(1, 900))).replace(
        "{port}", str(rng.randint(1024, 65000))
    )
    out = out.replace("{test}", test).replace("{word}", rng.choice(WORDS))
    # real variance in otherwise fixed texts: ids, times, addresses
    request = uuid.UUID(int=rng.getrandbits(128))
    return f"{out}\nrequest {request} at 2025-03-01T12:{rng.randint(0, 59):02d}:00Z"


def make_records(n: int, seed: int = 7) -> list[TestResult]:
    rng = random.Random(seed)
    templates = failure_templates()
    out = []
    for i in range(n):
        module = f"tests/test_mod{i % 40}.py"
        test = f"test_case_{i}"
        if i % 25 == 0:
            out.append(TestResult(f"{module}::{test}", Outcome.BLOCKED, blocked_by="backend"))
            continue
        text = vary(rng.choice(templates), rng, test)
        lines = text.strip().splitlines()
        reruns = (Outcome.PASSED,) if i % 50 == 1 else ()
        out.append(
            TestResult(
                f"{module}::{test}",
                Outcome.FAILED,
                message=lines[-1][:300],
                longrepr=text,
                reruns=reruns,
            )
        )
    return out


def outage_gate() -> GateResult:
    cache = ProbeResult(
        "cache", "cache", "tcp", "127.0.0.1:6390", False, None, "connection refused"
    )
    health = ProbeResult(
        "backend", "health", "http", "http://127.0.0.1:8000/health", True, 3.0, "200"
    )
    return GateResult(
        False,
        (
            ComponentState("backend", True, ("cache",), (health,)),
            ComponentState("cache", False, (), (cache,)),
        ),
        (health, cache),
        "cache",
    )


LOG_TEMPLATES = [
    "GET /threads/{a}/messages HTTP/1.1 503 upstream unavailable in {b}ms request_id={u}",
    "cache connection refused to 10.0.{a}.{c}:6379 request_id={u}",
    "POST /threads/{a}/messages 500 KeyError 'author' request_id={u}",
    "user {a} logged in from 192.168.{c}.{c}",
    "slow query took {b}ms: SELECT * FROM messages WHERE thread_id = {a}",
    "websocket closed code 1011 for session {u}",
    "GET /health 200 in {b}ms",
    "worker {a} heartbeat ok",
]


def make_lines(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        rng.choice(LOG_TEMPLATES).format(
            a=rng.randint(1, 5000),
            b=rng.randint(1, 9999),
            c=rng.randint(0, 255),
            u=uuid.UUID(int=rng.getrandbits(128)),
        )
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="triage throughput")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()

    records = make_records(args.records)
    index = [IndexEntry(f"tests/test_mod{i}.py", mrr_at_risk_usd=100.0 * i) for i in range(40)]
    # One process, then one worker per CPU (see greenloop/triage/parallel.py): same result.
    runs = [("1 process", 1), (f"{worker_count()} processes", None)]
    gate = outage_gate()  # one gate: its probes' times appear in the chains
    results = []
    for label, workers in runs:
        start = time.perf_counter()
        result = triage(records, gate=gate, index=index, config=None, workers=workers)
        elapsed = time.perf_counter() - start
        results.append(result)
        print(
            f"triage ({label}): {len(records):,} failure records "
            f"(classify + fingerprint + cluster + chains) "
            f"in {elapsed:.2f} s = {len(records) / elapsed:,.0f} records/s; "
            f"{len(result.clusters):,} clusters"
        )
    if results[0] != results[-1]:
        raise SystemExit("the parallel result differs from the serial one")

    lines = make_lines(args.lines)
    counter = TemplateCounter()
    start = time.perf_counter()
    for line in lines:
        counter.add(line)
    elapsed = time.perf_counter() - start
    print(
        f"drain3: {len(lines):,} log lines in {elapsed:.2f} s = "
        f"{len(lines) / elapsed:,.0f} lines/s; "
        f"{len(counter.counts):,} templates"
    )


if __name__ == "__main__":
    main()
