"""report/rows.py: a long list of report rows, redacted and encoded in two processes, is
the very text one process writes."""

from __future__ import annotations

import json
import math

import pytest

from greenloop.redact import Redactor
from greenloop.report.json_report import LONG_LIST, EncodedItems, json_text
from greenloop.report.rows import PARALLEL_ROWS, redacted_rows
from greenloop.triage.parallel import worker_count

TOKEN = "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789"
SECRET = "s3cr3t-" + "Value-42x"


def _rows(n: int) -> list[dict[str, object]]:
    return [
        {
            "nodeid": f"tests/test_m{i % 7}.py::test_{i}",
            "outcome": "failed",
            "duration_s": round(i / 1000, 3),
            "message": f"token {TOKEN} refused" if i % 3 == 0 else f"got {SECRET} at {i}",
            "password": "hunter2" if i % 5 == 0 else "",
            "line": i if i % 2 else None,
            "reruns": ["failed"] if i % 11 == 0 else [],
            "real": i % 4 != 0,
        }
        for i in range(n)
    ]


def test_two_processes_write_what_one_writes() -> None:
    if worker_count(2) < 2:
        pytest.skip("needs fork and two CPUs")
    rows = _rows(PARALLEL_ROWS + 3)
    one = redacted_rows(rows, Redactor(secrets=[SECRET]), {}, workers=1)
    two = redacted_rows(rows, Redactor(secrets=[SECRET]), {}, workers=2)
    assert isinstance(two, EncodedItems)
    assert two == one
    text = json_text({"schema": "x", "tests": two})
    assert text == json_text({"schema": "x", "tests": Redactor(secrets=[SECRET]).redact_obj(rows)})
    assert TOKEN not in text and SECRET not in text and "hunter2" not in text
    back = json.loads(text)["tests"]
    assert len(back) == len(rows) and back[-1]["nodeid"] == rows[-1]["nodeid"]
    assert back[0]["password"] == "***" and back[1]["password"] == ""


def test_short_encoded_list_is_indented_like_a_plain_one() -> None:
    rows = _rows(LONG_LIST)
    encoded = redacted_rows(rows, Redactor(), {})
    assert json_text({"tests": encoded}) == json_text({"tests": Redactor().redact_obj(rows)})


def test_infinity_in_a_row_is_refused() -> None:
    with pytest.raises(ValueError):
        redacted_rows([{"duration_s": math.inf}], Redactor(), {})
