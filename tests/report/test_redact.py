"""The redactor on each credential shape, on nested records, and on user patterns."""

from __future__ import annotations

import pytest
from report_samples import PLANTED, SECRET_TEXT, make_run

from greenloop.errors import ConfigError
from greenloop.redact import Redactor

REDACTOR = Redactor([r"ACME-INTERNAL-\d+"], secrets=[PLANTED["env_literal"], "abc"])


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_planted_secret_is_masked(name: str) -> None:
    assert PLANTED[name] not in REDACTOR.redact(SECRET_TEXT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:pw123@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("Authorization: Bearer abcdefgh12345", "Authorization: Bearer ***"),
        ('{"password": "two words"}', '{"password": "***"}'),
        ('token_env = "GITHUB_TOKEN"', 'token_env = "GITHUB_TOKEN"'),  # names a secret, is not one
        ("authenticity: ok, author: me", "authenticity: ok, author: me"),
        ("customer ACME-INTERNAL-42 here", "customer *** here"),
        ("PRIVATE-TOKEN: glsomething", "PRIVATE-TOKEN: ***"),
    ],
)
def test_shapes(text: str, expected: str) -> None:
    assert REDACTOR.redact(text) == expected


def test_short_literal_secrets_are_ignored_not_wiping_words() -> None:
    assert REDACTOR.redact("abc is the alphabet") == "abc is the alphabet"


def test_redaction_is_idempotent() -> None:
    once = REDACTOR.redact(SECRET_TEXT)
    assert REDACTOR.redact(once) == once


def test_redact_obj_walks_records_and_masks_secret_keys() -> None:
    run = REDACTOR.redact_obj(make_run())
    flat = repr(run)
    for secret in PLANTED.values():
        assert secret not in flat
    assert run.verdict.value == "failing"  # enums survive
    assert REDACTOR.redact_obj({"db_password": "plain", "n": [1, "x"]}) == {
        "db_password": "***",
        "n": [1, "x"],
    }


def test_bad_user_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"report.redact_patterns\[0\]"):
        Redactor(["(unclosed"])
