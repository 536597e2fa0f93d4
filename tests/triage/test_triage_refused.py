"""A refused connection is an outage unless the evidence shows the address is wrong.

The field trial's case (P5): plain pytest against a stopped PostgreSQL, read by `greenloop
triage`, was `configuration / WRONG-ADDRESS` for 119 tests, while `greenloop run` with a
gate said `infrastructure / refused`. The drivers' own refusals are captured here live
(libpq through psycopg, as aiopg and psycopg2 word it; asyncio's, which asyncpg raises;
redis-py; httpx), next to the trial's exact messages.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import httpx
import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from triage_helpers import exc_text, failed, gate, probe

from greenloop.records import Category
from greenloop.triage.classify import classify
from greenloop.triage.evidence import gather_evidence

# The trial's messages, verbatim (databases 0.9.0, PostgreSQL stopped, port 5442).
TRIAL_ASYNCPG = (
    "    def _sock_connect_cb(self, fut, sock, address):\n"
    ">               raise OSError(err, f'Connect call failed {address}')\n"
    "E               ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 5442)\n"
    "\n/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/selector_events.py:674: "
    "ConnectionRefusedError"
)
TRIAL_PSYCOPG2 = (
    ">       conn = _connect(dsn, connection_factory=connection_factory, **kwasync)\n"
    "E       sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "
    '"127.0.0.1", port 5442 failed: Connection refused\n'
    "E       \tIs the server running on that host and accepting TCP/IP connections?\n"
    "E       \n"
    "E       (Background on this error at: https://sqlalche.me/e/20/e3q8)\n"
    "\n../venv-db/lib/python3.11/site-packages/psycopg2/__init__.py:122: OperationalError"
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raised(fn) -> str:  # type: ignore[no-untyped-def]
    try:
        fn()
    except Exception as exc:
        return exc_text(exc)
    raise AssertionError("expected a refusal")


def refusals(port: int) -> dict[str, str]:
    """Each driver's real refusal at 127.0.0.1:port, as its traceback reads."""

    async def asyncio_connect() -> None:  # what asyncpg's connect raises
        await asyncio.open_connection("127.0.0.1", port)

    r = redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    return {
        "libpq": raised(
            lambda: psycopg.connect(f"host=127.0.0.1 port={port} user=x connect_timeout=1")
        ),
        "asyncio": raised(lambda: asyncio.run(asyncio_connect())),
        "redis": raised(r.ping),
        "httpx": raised(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=1)),
    }


def decide(text: str, g=None):  # type: ignore[no-untyped-def]
    return classify(gather_evidence(failed(text), gate=g)).classification


def test_every_driver_refusal_with_no_probe_data_is_an_outage() -> None:
    texts = {**refusals(closed_port()), "trial-asyncpg": TRIAL_ASYNCPG,
             "trial-psycopg2": TRIAL_PSYCOPG2}  # fmt: skip
    decided = {name: decide(text) for name, text in texts.items()}
    assert {n: (c.category, c.rule) for n, c in decided.items()} == {
        n: (Category.INFRASTRUCTURE, "connection-refused") for n in texts
    }


def test_refused_at_the_probed_port_is_an_outage_even_with_green_probes() -> None:
    """The server went down after the gate checked it: its own address is no wrong one."""
    port = closed_port()
    g = gate(
        probe("database", True, "SELECT 1", f"postgresql://x:***@127.0.0.1:{port}/db", "postgres"),
        probe("cache", True, "PONG", f"redis://127.0.0.1:{port}/0", "redis"),
    )
    for name, text in refusals(port).items():
        c = decide(text, g)
        assert c.category is Category.INFRASTRUCTURE, (name, c)


def test_refused_at_a_port_no_probe_checks_is_a_wrong_address() -> None:
    """The evidence of a wrong address: the probes check port A and are green, the test was
    refused at port B. httpx names no port, so it stays an outage (a miss, no false alarm)."""
    probed, used = closed_port(), closed_port()
    g = gate(
        probe("database", True, "SELECT 1", f"host=127.0.0.1 port={probed} user=x", "postgres"),
        probe("cache", True, "PONG", f"tcp://127.0.0.1:{probed}", "tcp"),
    )
    decided = {name: decide(text, g) for name, text in refusals(used).items()}
    for name in ("libpq", "asyncio", "redis"):
        c = decided[name]
        assert (c.category, c.rule) == (Category.CONFIGURATION, "refused-probes-green"), name
        assert f"refused at port {used}" in c.evidence and str(probed) in c.evidence
    assert decided["httpx"].category is Category.INFRASTRUCTURE
    # With no probe naming a port (a command probe), nothing says which address is right.
    command = gate(probe("database", True, "ok", "pg_isready -h db", "command"))
    assert decide(refusals(used)["libpq"], command).category is Category.INFRASTRUCTURE


def _junit(cases: dict[str, str], passed: int, skipped: int) -> str:
    rows = [f'<testcase classname="tests.test_db" name="test_ok_{i}" time="0.1"/>'
            for i in range(passed)]  # fmt: skip
    rows += [
        f'<testcase classname="tests.test_db" name="test_skip_{i}" time="0.0">'
        '<skipped type="pytest.skip" message="requires python3.9 or lower">skip</skipped>'
        "</testcase>"
        for i in range(skipped)
    ]
    for name, text in cases.items():
        message = text.strip().splitlines()[-1]
        rows.append(
            f'<testcase classname="tests.test_db" name="{name}" time="0.01">'
            f"<error message={quoteattr(message)}>{escape(text)}</error></testcase>"
        )
    n = len(rows)
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f'<testsuite name="pytest" tests="{n}" errors="{len(cases)}" skipped="{skipped}">'
        + "".join(rows)
        + "</testsuite></testsuites>"
    )


def test_greenloop_triage_of_a_stopped_database_says_infrastructure(tmp_path: Path) -> None:
    """`greenloop triage` (a real subprocess) on JUnit from a run against stopped servers."""
    port = closed_port()
    cases = {f"test_{name.replace('-', '_')}": text for name, text in refusals(port).items()}
    cases |= {"test_trial_asyncpg": TRIAL_ASYNCPG, "test_trial_psycopg2": TRIAL_PSYCOPG2}
    xml = tmp_path / "plain-junit.xml"
    xml.write_text(_junit(cases, passed=3, skipped=2), encoding="utf-8")
    out = tmp_path / "t.json"
    run = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "triage", str(xml), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads(out.read_text())
    failing = [t for t in report["tests"] if t["outcome"] == "error"]
    assert len(failing) == len(cases)
    assert {t["category"] for t in failing} == {"infrastructure"}, failing
    reasons = {c["reason"] for c in report["clusters"]}
    assert "WRONG-ADDRESS" not in reasons and "WRONG-ADDRESS" not in run.stdout
    assert all(c["category"] == "infrastructure" for c in report["clusters"])
    # The header says the skips apart, and its counts add up to the tests read.
    first = run.stdout.splitlines()[0]
    assert first == (
        f"{3 + 2 + len(cases)} tests read: 3 passed, {len(cases)} failed "
        f"({len(cases)} infrastructure), 2 skipped"
    ), first
