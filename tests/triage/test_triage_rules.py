"""Each built-in rule against real failure texts: captured live here, or from the labelled set.

The same text must be classified differently when the environment differs:
that is the point of gathering evidence rather than matching messages.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import websockets
from redis.backoff import NoBackoff
from redis.retry import Retry
from triage_helpers import LABELLED, exc_text, failed, gate, labelled_text, probe
from websockets.asyncio.server import serve

from greenloop.config import RuleConfig
from greenloop.errors import ConfigError
from greenloop.records import Category, Outcome
from greenloop.triage.classify import classify
from greenloop.triage.evidence import gather_evidence, http_statuses, parse_frames
from greenloop.triage.rules import BUILTIN_RULES, user_rules


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis(port: int) -> redis.Redis:
    # No retries: one real refusal is the text we want, not three of them with backoff.
    return redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


def decide(text: str, g=None, **kw):
    return classify(gather_evidence(failed(text, **kw), gate=g)).classification


def raised(fn) -> str:
    try:
        fn()
    except Exception as exc:
        return exc_text(exc)
    raise AssertionError("expected an exception")


# ------------------------------------------------- the same text, different evidence


def test_redis_refused_is_infrastructure_when_the_cache_probe_fails() -> None:
    port = closed_port()
    text = raised(lambda: _redis(port).ping())
    g = gate(
        probe("cache", False, f"connection refused to 127.0.0.1:{port}", f"127.0.0.1:{port}"),
        probe("backend", True, "200", "http://127.0.0.1:1/health", "http"),
    )
    c = decide(text, g)
    assert (c.category, c.component, c.rule) == (
        Category.INFRASTRUCTURE,
        "cache",
        "history-and-outage",
    )


def test_redis_refused_is_configuration_when_every_probe_is_green() -> None:
    text = raised(lambda: _redis(closed_port()).ping())
    g = gate(probe("cache", True, "PONG", "127.0.0.1:6379"))
    c = decide(text, g)
    assert (c.category, c.rule) == (Category.CONFIGURATION, "refused-probes-green")


def test_httpx_connect_error_to_a_closed_port_with_no_probe_data() -> None:
    port = closed_port()
    text = raised(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=1))
    assert "ConnectError" in text
    # No probe data and nothing that shows the address is wrong: nothing listens, an outage
    # (a refusal is a wrong address only on evidence: see test_refused_..._wrong_address).
    assert decide(text).category is Category.INFRASTRUCTURE
    # With the backend probe failing, the same text is an outage of the backend.
    g = gate(probe("backend", False, "connection refused", f"http://127.0.0.1:{port}/h", "http"))
    c = decide(text, g)
    assert (c.category, c.component) == (Category.INFRASTRUCTURE, "backend")


def test_psycopg_refused_matches_the_database_probe_by_port() -> None:
    port = closed_port()
    text = raised(lambda: psycopg.connect(f"host=127.0.0.1 port={port} user=x connect_timeout=1"))
    g = gate(
        probe("database", False, "connection refused", f"127.0.0.1:{port}"),
        probe("cache", False, "connection refused", "127.0.0.1:6390"),
    )
    assert decide(text, g).component == "database"


@pytest.mark.postgres
def test_psycopg_unknown_role_is_configuration() -> None:
    text = raised(lambda: psycopg.connect("host=127.0.0.1 user=no_such_role_gl dbname=test"))
    c = decide(text)
    assert (c.category, c.rule) == (Category.CONFIGURATION, "database-auth")


def _ws_text(status: int | None, close_code: int | None) -> str:
    """Run a real websockets server that rejects with `status` or closes with `close_code`."""

    async def scenario() -> str:
        from websockets.asyncio.client import connect
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        def reject(connection, request):  # type: ignore[no-untyped-def]
            if status is not None:
                return Response(status, "Service Unavailable", Headers(), b"down\n")
            return None

        async def handler(ws) -> None:  # type: ignore[no-untyped-def]
            await ws.close(close_code or 1000, "internal error")

        async with serve(handler, "127.0.0.1", 0, process_request=reject) as server:
            port = server.sockets[0].getsockname()[1]
            try:
                async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                    await ws.recv()
            except websockets.exceptions.WebSocketException as exc:
                return exc_text(exc)
        raise AssertionError("no error")

    return asyncio.run(scenario())


def test_websocket_handshake_503_is_infrastructure() -> None:
    text = _ws_text(503, None)
    assert 503 in http_statuses(text)
    c = decide(text)
    assert (c.category, c.rule) == (Category.INFRASTRUCTURE, "websocket-rejected")


def test_websocket_close_1011_is_product() -> None:
    text = _ws_text(None, 1011)
    assert "1011" in text
    assert decide(text).category is Category.PRODUCT


# --------------------------------------------------------------------------- reruns and probes


ASSERTION = """tests/test_chat.py:40: in test_history
    assert body["messages"][0]["text"] == "hello"
E   AssertionError: assert 'hell' == 'hello'"""


def test_assertion_on_content_with_green_probes_is_product() -> None:
    c = decide(ASSERTION, gate(probe("backend", True, "200")))
    assert (c.category, c.rule) == (Category.PRODUCT, "assertion-probes-green")


def test_pass_on_retry_with_green_probes_is_flaky() -> None:
    c = decide(ASSERTION, gate(probe("backend", True, "200")), reruns=(Outcome.PASSED,))
    assert c.category is Category.FLAKY


def test_pass_on_retry_during_a_probe_failure_is_infrastructure() -> None:
    g = gate(probe("backend", True, "200"), probe("cache", False, "timeout"))
    c = decide(ASSERTION, g, reruns=(Outcome.PASSED,))
    assert (c.category, c.component) == (Category.INFRASTRUCTURE, "cache")


def test_flips_in_history_decide_flaky_unless_they_follow_the_environment() -> None:
    test = failed(ASSERTION)
    ev = gather_evidence(test, gate=gate(probe("backend", True, "200")), flips=3, history_runs=6)
    assert classify(ev).classification.category is Category.FLAKY
    ev = gather_evidence(test, flips=3, history_runs=6, env_correlated=True)
    assert classify(ev).classification.category is Category.INFRASTRUCTURE


def test_a_status_mismatch_needs_evidence() -> None:
    text = "E   AssertionError: assert 500 == 200\nE    +  where 500 = <Response [500]>.status_code"
    assert decide(text).category is Category.UNKNOWN
    assert decide(text, gate(probe("backend", True, "200"))).category is Category.PRODUCT


def test_a_failing_component_the_test_exercises_makes_it_infrastructure() -> None:
    from greenloop.records import IndexEntry

    ev = gather_evidence(
        failed(ASSERTION, nodeid="tests/test_chat.py::test_history"),
        gate=gate(probe("search", False, "HTTP 503")),
        index=[IndexEntry("tests/test_chat.py", components=("search",))],
    )
    c = classify(ev).classification
    assert (c.category, c.component, c.rule) == (
        Category.INFRASTRUCTURE,
        "search",
        "component-down",
    )


# ------------------------------------------------- texts from the labelled set
# Only items of the corpus's development part: the frozen test part is never pinned.

CASES = [
    ("infra-dns-temp-failure-cockpit-23", Category.INFRASTRUCTURE, "dns-failure"),
    ("infra-oom-exit-137-nextest-38", Category.INFRASTRUCTURE, "out-of-memory"),
    ("infra-readtimeout-statuscake-33", Category.INFRASTRUCTURE, "network-timeout"),
    ("infra-connreset-provider-oceanpy-36", Category.INFRASTRUCTURE, "connection-reset"),
    ("product-500-attributeerror-cyder-01", Category.PRODUCT, "server-error-status"),
    ("product-500-unboundlocal-bibxml-16", Category.PRODUCT, "app-exception"),
    ("product-api-missing-field-conbench-15", Category.PRODUCT, "app-frame"),
    ("test-fixture-not-found-xession-01", Category.TEST, "missing-fixture"),
    ("test-typeerror-kwarg-renamed-pytmc-12", Category.TEST, "stale-call"),
    ("config-django-secret-key-empty-18", Category.CONFIGURATION, "improperly-configured"),
    ("config-pg-password-failed-nfldb-03", Category.CONFIGURATION, "database-auth"),
    ("config-401-circleci-token-11", Category.CONFIGURATION, "auth-rejected"),
    ("flaky-address-in-use-picn-08", Category.FLAKY, "port-race"),
    ("unknown-django-keyerror-request-05", Category.UNKNOWN, "bare-keyerror"),
    ("unknown-ihatemoney-303-04", Category.UNKNOWN, "unexpected-status"),
]


@pytest.mark.parametrize(("item", "category", "rule"), CASES, ids=[c[0] for c in CASES])
def test_labelled_text(item: str, category: Category, rule: str) -> None:
    c = decide(labelled_text(item, split="dev"))
    assert (c.category, c.rule) == (category, rule)
    assert c.evidence  # the excerpt a person checks


def test_too_many_clients_names_the_database_component() -> None:
    g = gate(probe("database", False, "FATAL: sorry, too many clients already", "127.0.0.1:5432"))
    c = decide(labelled_text("infra-pg-too-many-clients-ori-26", split="dev"), g)
    assert (c.category, c.component) == (Category.INFRASTRUCTURE, "database")


def test_every_builtin_rule_is_documented_and_named_once() -> None:
    names = [r.name for r in BUILTIN_RULES]
    assert len(names) == len(set(names))
    assert all(r.doc and r.reason and 0 < r.confidence <= 1 for r in BUILTIN_RULES)


def test_frames_say_where_code_lives() -> None:
    frames = parse_frames(labelled_text("infra-psycopg2-refused-ci-users-db-02", split="dev"))
    kinds = {f.path.rsplit("/", 1)[-1]: f.kind for f in frames}
    assert kinds["__init__.py"] == "library"
    assert kinds["base.py"] == "test"  # /usr/src/app/project/tests/base.py


# --------------------------------------------------------------------------- user rules


def test_user_rules_come_first_and_name_their_component() -> None:
    rules = user_rules(
        [
            RuleConfig(
                name="vendor outage",
                category="infrastructure",
                pattern=r"PaymentGatewayDown",
                component="payments",
            )
        ]
    )
    ev = gather_evidence(failed("E   AssertionError: PaymentGatewayDown: try later"))
    c = classify(ev, rules + BUILTIN_RULES)
    assert (c.classification.category, c.classification.component, c.reason) == (
        Category.INFRASTRUCTURE,
        "payments",
        "VENDOR-OUTAGE",
    )


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        (RuleConfig(name="x", category="broken", pattern="a"), "triage.rules[0].category"),
        (RuleConfig(name="x", category="test", pattern="(unclosed"), "triage.rules[0].pattern"),
    ],
)
def test_bad_user_rule_is_one_config_error(rule: RuleConfig, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        user_rules([rule], "greenloop.toml")
    assert info.value.key == key


# ------------------------------------------------- no rule literal fits exactly one failure


def _alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regular expression (`a|b(c|d)` -> `a`, `b(c|d)`)."""
    out, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    return out


def _vocabulary() -> list[tuple[str, int]]:
    """Every literal the rule table speaks in: each alternative of each rx() pattern and
    each vocabulary entry, as (regex, flags)."""
    import re

    from greenloop.envskip import BY_DESIGN_PATTERNS, ENV_SKIP_PATTERNS, PREREQUISITE_PATTERNS
    from greenloop.triage import vocab
    from greenloop.triage.rules import RX_PATTERNS

    out = [(alt, flags) for pattern, flags in RX_PATTERNS for alt in _alternatives(pattern)]
    out += [(alt, 0) for p in vocab.TEST_API_MISUSE for alt in _alternatives(p)]
    out += [(rf"fixture '{re.escape(n)}' not found", 0) for n in vocab.PLUGIN_FIXTURES]
    out += [(rf"No module named '{re.escape(n)}'", 0) for n in vocab.REMOVED_MODULES]
    out += [
        (p.pattern, p.flags)
        for p in (*ENV_SKIP_PATTERNS, *PREREQUISITE_PATTERNS, *BY_DESIGN_PATTERNS)
    ]
    return out


def test_no_rule_literal_matches_exactly_one_labelled_failure() -> None:
    """A literal that fits one failure of the corpus was written for that failure: rules
    speak of kinds (zero matches is a kind the corpus has not met yet, which is fine)."""
    import json
    import re

    texts = [
        json.loads(line)["text"]
        for line in LABELLED.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    single = []
    for literal, flags in _vocabulary():
        compiled = re.compile(literal, flags)
        hits = sum(1 for t in texts if compiled.search(t))
        if hits == 1:
            single.append(literal)
    assert not single, "literals matching exactly one labelled failure:\n" + "\n".join(single)


def test_the_rule_table_is_data_checked_when_it_is_read(tmp_path: Path) -> None:
    """table.toml is read once and checked: each mistake stops greenloop with the entry's
    name, and the shipped table builds the rules in its order, the model's rules after."""
    from greenloop.triage.rules import TABLE_PATH, build_rules, load_table

    table = load_table(TABLE_PATH)
    assert [r.name for r in BUILTIN_RULES[: len(table)]] == [e["name"] for e in table]
    assert [r.name for r in BUILTIN_RULES[len(table) :]] == [
        "model-infrastructure", "model-product", "model-test", "model-configuration",
    ]  # fmt: skip
    good = {
        "name": "x",
        "category": "product",
        "reason": "X-Y",
        "confidence": 0.5,
        "doc": "d",
        "match": {"regex": "boom", "needles": ["boom"]},
    }
    assert build_rules([good])[0].match(gather_evidence(failed("E boom"), gate=None))
    broken = [
        ({"colour": "red"}, "unknown keys ['colour']"),
        ({"category": "gremlins"}, "unknown category 'gremlins'"),
        ({"reason": "not upper"}, "a reason is upper-case"),
        ({"confidence": 1.5}, "confidence must be in (0, 1]"),
        ({"component": "moon"}, "unknown component 'moon'"),
        ({"match": {"predicate": "nope"}}, "unknown predicate 'nope'"),
        ({"match": {"when": "never", "then": {"predicate": "rerun"}}}, "unknown condition"),
        ({"match": {"regex": "(unclosed", "needles": ["x"]}}, "regex does not compile"),
        ({"match": {"regex": "x", "needles": []}}, "needles must be non-empty"),
        ({"match": {"regex": "x"}}, "match has an unknown shape"),
    ]
    for change, message in broken:
        with pytest.raises(ValueError, match=re.escape(message)) as raised:
            build_rules([{**good, **change}])
        assert "'x'" in str(raised.value)
    with pytest.raises(ValueError, match="the name is used twice"):
        build_rules([good, good])
    bad_file = tmp_path / "t.toml"
    bad_file.write_text('[[rules]]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected only \[\[rule\]\] tables"):
        load_table(bad_file)
