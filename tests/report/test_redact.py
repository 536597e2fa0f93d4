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


# --------------------------------------------------------------------------- issue 15: shapes
# that slipped through: inside identifiers, encoded, wrapped, base64 of a JSON holding one.

KNOWN = "pa/ss w@rd-Zq81!x"  # a ${VAR} value with the characters URLs and shells mangle
ENCODED_REDACTOR = Redactor(secrets=[KNOWN])


@pytest.mark.parametrize(
    "text",
    [
        "test_AKIAIOSFODNN7EXAMPLE_x",
        "test_login[ghp_" + "a1B2" * 9 + "]",
        "slack=xoxb-2041-99887766-abcdefGHIJ in test_xoxb-2041-99887766-abcdefGHIJ_id",
        "pay_sk_live_4eC39HqLyjWDarjtT1zdp7dc_ok",
    ],
)
def test_token_shapes_are_found_inside_identifiers(text: str) -> None:
    out = Redactor().redact(text)
    for token in ("AKIAIOSFODNN7EXAMPLE", "ghp_a1B2", "xoxb-2041", "sk_live_4eC3"):
        assert token not in out, out
    assert "***" in out


def _forms(secret: str) -> list[str]:
    import base64
    import json
    import re
    from urllib.parse import quote, quote_plus

    blob = json.dumps({"user": "app", "auth": {"pw": secret}}).encode()
    return [
        quote(secret, safe=""),
        quote_plus(secret),
        re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe="")),
        f"{secret[:7]}\n    {secret[7:]}",  # wrapped by a terminal, indented
        f"{secret[:3]}\r\n{secret[3:]}",
        base64.b64encode(blob).decode(),
        base64.urlsafe_b64encode(b"x" + blob).decode().rstrip("="),
        base64.b64encode(b"ab" + secret.encode()).decode(),
    ]


@pytest.mark.parametrize("index", range(8))
def test_encoded_and_wrapped_forms_of_a_known_secret_are_masked(index: int) -> None:
    form = _forms(KNOWN)[index]
    out = ENCODED_REDACTOR.redact(f"before {form} after")
    assert form not in out and "***" in out, out
    assert out.startswith("before ") and out.endswith(" after")


def test_base64_of_a_json_holding_a_token_shape_is_masked() -> None:
    import base64
    import json

    blob = base64.b64encode(json.dumps({"slack": "xoxb-1234567890-abcdefghijkl"}).encode())
    assert Redactor().redact(blob.decode()) == "***"


def test_ordinary_identifiers_paths_and_base64_of_plain_text_survive() -> None:
    import base64

    plain = base64.b64encode(b"just a harmless sentence, nothing secret").decode()
    text = (
        "tests/e2e/test_checkout_flow_with_many_words.py::test_pay_with_card_declined "
        f"{plain} deadbeefcafebabe0123456789abcdef"
    )
    assert Redactor(secrets=["unrelated-secret"]).redact(text) == text


def test_a_word_sized_secret_is_masked_where_it_stands_alone_not_inside_words() -> None:
    """A 5-letter password ("wrong", the pg8000 field trial) wiped it out of a report's own
    path (`out-wrongpw` became `out-***pw`); a long one is masked wherever it appears."""
    redactor = Redactor(secrets=["wrong", "s3cr3t-Long-Value"])
    assert redactor.redact("postgresql://postgres:wrong@db:5432/app") == (
        "postgresql://postgres:***@db:5432/app"
    )
    assert redactor.redact("password is wrong.") == "password is ***."
    assert redactor.redact("out-wrongpw/E2E.md and wrongly") == "out-wrongpw/E2E.md and wrongly"
    assert redactor.redact("x-s3cr3t-Long-Valuez") == "x-***z"
