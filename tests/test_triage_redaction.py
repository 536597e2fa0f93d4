"""`greenloop triage`: secrets in test output never reach the terminal or the JSON report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOKEN = "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"

JUNIT = f"""<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="2" failures="2">
<testcase classname="tests.test_pay" name="test_charge" file="tests/test_pay.py" time="0.1">
<failure message="AssertionError: token {TOKEN} rejected">E AssertionError: token {TOKEN} \
rejected for key {AWS}</failure></testcase>
<testcase classname="tests.test_pay" name="test_refund_{AWS}_x" time="0.1">
<failure message="assert 500 == 200">E assert 500 == 200 ({TOKEN})</failure></testcase>
</testsuite></testsuites>
"""


def test_triage_output_and_json_are_redacted(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(JUNIT, encoding="utf-8")
    report = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "triage", str(junit), "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    written = report.read_text(encoding="utf-8")
    assert "test_charge" in written  # the report is there, and it names the tests
    for secret in (TOKEN, AWS):
        assert secret not in proc.stdout + proc.stderr + written


def test_the_needle_filter_masks_what_every_pattern_alone_masks() -> None:
    """The redactor runs a pattern only when a substring every match holds occurs: the
    result must equal running every pattern, in ASCII texts, upper-case ones, and
    non-ASCII ones (a case-blind pattern's `k` also matches the Kelvin sign)."""
    from greenloop import redact

    samples = [
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "jwt eyJhbGciOiJI.eyJzdWIiOiIx.sig and " + TOKEN,
        "github_pat_" + "A" * 22 + " glpat-" + "b" * 20 + " xoxb-1234567890ab",
        "sk_live_abcdefghijk rk_test_abcdefghijk test_" + AWS + "_x ASIA" + "B" * 16,
        'AUTHORIZATION: Bearer abcdefghijkl, Private-Token: "zz9" BEARER qwertyuiop',
        "https://user:pw@host/x --PASSWORD s3cr3t --token=abc",
        'API_KEY = "v1" Client_Secret: v2 db_pwd=v3 my_credentials=v4 token_env=GH_TOKEN',
        "to\u212aen=hunter22 caf\u00e9 password=v5 Bearer abcdefghijkl",
        "nothing to hide here: assert 500 == 200",
    ]
    plain = redact.Redactor()
    for text in samples:
        expected = text
        for pattern, replacement, _ in redact._BUILTIN:
            expected = pattern.sub(replacement, expected)
        expected = redact._KEY_VALUE.sub(redact._key_value, expected)
        assert plain._plain(text) == expected, text
        for word in (text.upper(), text.lower()):
            slow = word
            for pattern, replacement, _ in redact._BUILTIN:
                slow = pattern.sub(replacement, slow)
            assert plain._plain(word) == redact._KEY_VALUE.sub(redact._key_value, slow), word
    assert "hunter22" not in plain.redact("to\u212aen=hunter22")


def test_the_maskers_of_one_value_live_in_the_one_redactor() -> None:
    """Probe targets and shown command lines are masked by greenloop.redact, and whatever
    those maskers leave, the Redactor leaves too (no second notion of a secret)."""
    from greenloop import redact
    from greenloop.execute.runners.base import display_command
    from greenloop.probes import base

    assert base.mask_url is redact.mask_url and base.mask_dsn is redact.mask_dsn
    assert redact.mask_url("postgres://app:s3cr3t@db:5432/x") == "postgres://app:***@db:5432/x"
    assert redact.mask_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact.mask_dsn("host=db password='a b' user=u") == "host=db password=*** user=u"
    assert display_command(["pytest", "--token", "t0k", "--api-key=k3y", "-k", "x"]) == (
        "pytest --token '***' '--api-key=***' -k x"
    )
    for masked in ("postgres://app:***@db:5432/x", "--api-key=***"):
        assert redact.Redactor().redact(masked) == masked
