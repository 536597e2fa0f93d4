"""The fault model and other pure logic of the demo service, without a server."""

from __future__ import annotations

import pytest

from greenloop.demo.service import agent, auth, deps
from greenloop.demo.service import faults as fm
from greenloop.demo.service.gateway import request_id_from


def door(faults: fm.FaultSet, path: str = "/threads", **kw: object) -> fm.Refusal | None:
    args: dict = {"websocket": False, "now": 100.0, "draw": 0.99, "flaky_call": 0, **kw}
    return fm.front_door(faults, path=path, **args)


def only(spec: str, **kw: object) -> fm.FaultSet:
    return fm.FaultSet((fm.parse_spec(spec, **kw),))  # type: ignore[arg-type]


def test_parse_spec_fills_defaults_and_keeps_given_params() -> None:
    fault = fm.parse_spec("intermittent:percent=25")
    assert fault.params == (("percent", "25"), ("seed", "0"))
    assert fault.spec == "intermittent:percent=25,seed=0"
    assert fm.parse_spec("lb-503").spec == "lb-503"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown fault"),
        ("dependency-down:dependency=queue", "dependency must be one of"),
        ("slow-db:seconds=-1", ">= 0"),
        ("slow-db:seconds=abc", "must be a number"),
        ("intermittent:percent=101", "<= 100"),
        ("flaky:every=1", ">= 2"),
        ("missing-event:event=agent_bored", "event must be one of"),
        ("lb-503:color=red", "unknown parameter"),
        ("slow-db:seconds", "expected key=value"),
    ],
)
def test_invalid_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(fm.FaultError, match=message):
        fm.parse_spec(spec)


def test_fault_set_replaces_and_removes_runtime_faults() -> None:
    faults = fm.FaultSet().with_fault(fm.parse_spec("slow-db:seconds=1"))
    faults = faults.with_fault(fm.parse_spec("slow-db:seconds=2"))
    assert fm.db_delay(faults) == 2.0
    assert faults.without("slow-db").faults == ()
    with pytest.raises(fm.FaultError, match="not active"):
        faults.without("lb-503")


def test_revision_faults_cannot_be_cleared_or_replaced() -> None:
    faults = fm.FaultSet().with_fault(fm.parse_spec("app-bug", source="revision"))
    faults = faults.with_fault(fm.parse_spec("lb-503"))
    with pytest.raises(fm.FaultError, match="roll back"):
        faults.without("app-bug")
    with pytest.raises(fm.FaultError, match="roll back"):
        faults.with_fault(fm.parse_spec("app-bug"))
    assert [f.name for f in faults.runtime_cleared().faults] == ["app-bug"]


def test_no_fault_lets_everything_through() -> None:
    assert door(fm.FaultSet()) is None


def test_lb_503_refuses_everything_but_admin() -> None:
    faults = only("lb-503")
    for path, websocket in (("/health", False), ("/threads", False), ("/ws", True)):
        refusal = door(faults, path, websocket=websocket)
        assert refusal is not None and refusal.status == 503
        assert "upstream connect error" in refusal.body
    assert door(faults, "/admin/faults") is None


def test_slow_start_refuses_until_its_time_is_up() -> None:
    faults = only("slow-start:seconds=10", activated_at=100.0)
    refusal = door(faults, "/health", now=105.0)
    assert refusal is not None and refusal.status == 503 and "starting" in refusal.body
    assert door(faults, "/health", now=110.5) is None


def test_ws_reject_only_affects_websockets() -> None:
    faults = only("ws-reject")
    assert door(faults, "/threads") is None
    refusal = door(faults, "/ws", websocket=True)
    assert refusal is not None and refusal.status == 503


def test_intermittent_fails_when_the_draw_is_below_percent() -> None:
    faults = only("intermittent:percent=30")
    assert door(faults, draw=0.29) is not None
    assert door(faults, draw=0.30) is None
    assert door(faults, "/health", draw=0.0) is None  # health stays probe-able


def test_flaky_fails_odd_calls_on_its_path() -> None:
    faults = only("flaky:path=/search,every=2")
    assert fm.flaky_applies(faults, "/search")
    assert not fm.flaky_applies(faults, "/threads")
    outcomes = [door(faults, "/search", flaky_call=n) is None for n in range(1, 5)]
    assert outcomes == [False, True, False, True]
    assert [fm.flaky_fails(n, 3) for n in range(1, 7)] == [True, False, False, True, False, False]


def test_endpoint_effects() -> None:
    assert fm.down_dependency(only("dependency-down:dependency=database")) == "database"
    assert fm.down_dependency(fm.FaultSet()) is None
    assert fm.db_delay(only("slow-db:seconds=1.5")) == 1.5
    assert fm.agent_events(fm.FaultSet()) == fm.EVENT_TYPES
    dropped = fm.agent_events(only("missing-event"))
    assert len(dropped) == 4 and "tool_completed" not in dropped


def test_every_kind_has_valid_defaults() -> None:
    for name in fm.KINDS:
        assert fm.make_fault(name).name == name


def test_agent_answer_quotes_message_and_tool_result() -> None:
    message = "Where is the Berlin warehouse inventory report?"
    results = agent.analyze(message)
    assert results["word_count"] == 7
    assert results["keywords"] == ["berlin", "warehouse", "inventory"]
    answer = agent.compose_answer(message, results)
    assert message in answer and "7 words" in answer and "berlin" in answer


def test_auth_broken_key_rejects_valid_tokens() -> None:
    secret = "s3cret-key-for-tests-0123456789abcdef"
    token, claims = auth.issue_token(secret, "demo")
    assert auth.verify_token(token, auth.verification_key(secret, False)) == claims
    with pytest.raises(auth.AuthError, match="Signature verification failed"):
        auth.verify_token(token, auth.verification_key(secret, True))
    with pytest.raises(auth.AuthError, match="Bearer"):
        auth.bearer_token("Basic abc")


def test_database_urls() -> None:
    assert deps.sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    moved = deps.with_port("postgresql://postgres@127.0.0.1:5432/demo", 1234)
    assert moved.startswith("postgresql+psycopg://postgres@127.0.0.1:1234/demo")
    assert ":1234/greenloop" in deps.with_port("sqlite:////tmp/x.db", 1234)


def test_request_id_comes_from_header_or_is_generated() -> None:
    assert request_id_from({"headers": [(b"x-request-id", b" abc ")]}) == "abc"
    assert len(request_id_from({"headers": []})) == 32
