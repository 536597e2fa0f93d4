"""The condition language: parsing, evaluation, and errors that point at a column."""

from __future__ import annotations

import pytest

from greenloop.probes.conditions import MISSING, ConditionError, Document, lookup, parse

VALUES = {
    "status": 503,
    "latency_ms": 12.5,
    "connected": True,
    "close_code": 1000,
    "headers": {"content-type": "application/json; charset=utf-8", "x-count": "7"},
    "body": Document(
        '{"status": "healthy", "items": [{"id": 3}], "ok": true}',
        {"status": "healthy", "items": [{"id": 3}], "ok": True},
    ),
    "addresses": ["127.0.0.1", "::1"],
    "cert_days_left": 30,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status == 503", True),
        ("status == 200", False),
        ("status != 200", True),
        ("status >= 500 and status < 600", True),
        ("latency_ms < 2000", True),
        ("latency_ms > 12.5", False),
        ("latency_ms >= 12.5", True),
        ("connected", True),
        ("not connected", False),
        ("close_code != 1011", True),
        ('body.status == "healthy"', True),
        ("body.status == 'healthy'", True),
        ("body.items[0].id == 3", True),
        ("body.items.0.id == 3", True),
        ("body.ok == true", True),
        ('body contains "healthy"', True),
        ('headers.content-type contains "json"', True),
        ('headers.Content-Type contains "json"', True),
        ("headers.x-count == 7", True),
        ('addresses contains "127.0.0.1"', True),
        ('addresses contains "10.0.0.1"', False),
        ("cert_days_left > 14", True),
        ("status == 200 or connected", True),
        ("not (status == 503 and connected)", False),
        ("status == 200 or status == 503 and latency_ms < 1", False),
        ("(status == 200 or status == 503) and latency_ms < 100", True),
        ("missing_value == 1", False),
        ("missing_value != 1", False),  # unobserved never passes
        ("not missing_value", True),
        ("body.nope.deeper == 1", False),
        ("body.items[5].id == 3", False),
        ('status > "abc"', False),
        ("connected == 1", False),  # a boolean is not a number
        ("-1 < cert_days_left", True),
        ("body.status == null", False),
    ],
)
def test_conditions_evaluate(text: str, expected: bool) -> None:
    assert parse(text).holds(VALUES) is expected


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty condition", 1),
        ("status = 200", "unexpected '=' (use '==' to compare)", 8),
        ("status ==", "expected a value but found end of condition", 10),
        ("status == 200 and", "expected a value but found end of condition", 18),
        ("(status == 200", "expected ')' but found end of condition", 15),
        ('body == "unterminated', "unterminated string", 9),
        ("status 200", "unexpected '200'", 8),
        ("status == 200)", "unexpected ')'", 14),
        ("status ~= 2", "unexpected character '~'", 8),
        ("__import__('os').system('x')", "unexpected character '.'", 17),
        ("__import__('os')", "unexpected '('", 11),
        ("status == == 1", "expected a value but found '=='", 11),
        ("and status", "expected a value but found 'and'", 1),
    ],
)
def test_bad_conditions_name_the_column(text: str, message: str, column: int) -> None:
    with pytest.raises(ConditionError) as info:
        parse(text)
    assert info.value.message == message
    assert info.value.column == column
    assert str(info.value).endswith(f"at column {column}")


def test_explain_shows_the_observed_values() -> None:
    assert parse("status == 200").explain(VALUES) == "status == 200 (status=503)"
    explained = parse('body.status == "down" and nothing').explain(VALUES)
    assert (
        explained == "body.status == \"down\" and nothing (body.status='healthy', nothing=missing)"
    )


def test_lookup_prefers_exact_keys_then_walks() -> None:
    assert lookup({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
    assert lookup({"a": {"b": 2}}, "a.b") == 2
    assert lookup({"a": "text"}, "a.b") is MISSING
    assert lookup(VALUES, "body") == VALUES["body"]


def test_strings_support_escapes() -> None:
    values = {"body": 'say "hi"\n'}
    assert parse(r'body == "say \"hi\"\n"').holds(values)


def test_paths_report_their_columns() -> None:
    condition = parse("status == 200 and body.ok")
    assert [(p.name, p.column) for p in condition.paths] == [("status", 1), ("body.ok", 19)]
