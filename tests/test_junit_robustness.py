"""No JUnit input ends in exit 70 or invalid JSON: named hostile inputs, then a fuzz run.

`greenloop triage FILE --json OUT` runs in-process through `cli.main` (the same entry
point as the console script, which turns every ending into an exit code), so a few
hundred mutated files take seconds; one real process checks /dev/zero end to end.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from greenloop.cli import main
from greenloop.errors import InputError
from greenloop.junit import parse_junit, parse_junit_text
from greenloop.records import Outcome

CASES = Path(__file__).parent / "data" / "junit_cases"


def triage_exit(path: Path | str, out: Path) -> int:
    """Exit code of `greenloop triage PATH --json OUT`; when it wrote OUT, OUT is valid
    JSON without NaN or infinity (json.loads would accept those: parse_constant refuses)."""
    code = main(["triage", str(path), "--json", str(out)])
    if out.exists() and out.is_file():

        def refuse(name: str) -> float:
            raise AssertionError(f"{name} in the JSON report")

        report = json.loads(out.read_text(encoding="utf-8"), parse_constant=refuse)
        assert report["schema"] == "greenloop.report/v1"
        for test in report["tests"]:
            assert math.isfinite(test["duration_s"])
        out.unlink()
    return code


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            '<?xml version="1.0" encoding="UTF-32"?><testsuite><testcase name="é" time="1,5">'
            '<failure message="boom"/></testcase></testsuite>'.encode("utf-32"),
            [("é", Outcome.FAILED, 1.5, None)],
        ),
        (  # UTF-16 without a byte-order mark
            '<testsuite><testcase name="x" line="7"/></testsuite>'.encode("utf-16-le"),
            [("x", Outcome.PASSED, 0.0, 7)],
        ),
        (  # a legacy encoding expat cannot decode itself
            '<?xml version="1.0" encoding="shift_jis"?><testsuite><testcase name="テスト"/>'
            "</testsuite>".encode("shift_jis"),
            [("テスト", Outcome.PASSED, 0.0, None)],
        ),
        (  # bytes invalid in the declared encoding are replaced, not fatal
            b'<testsuite><testcase name="a\xff\xfeb" time="nan"/></testsuite>',
            [("a\ufffd\ufffdb", Outcome.PASSED, 0.0, None)],
        ),
        (  # '²' is a digit to str.isdigit but not to int()
            '<testsuite><testcase name="t" line="²" time="inf"/></testsuite>'.encode(),
            [("t", Outcome.PASSED, 0.0, None)],
        ),
        (
            b'<testsuite><testcase name="t" line="-3" time="1e400"/></testsuite>',
            [("t", Outcome.PASSED, 0.0, None)],
        ),
    ],
)
def test_encodings_and_bad_values_are_read(data: bytes, expected: list[tuple[object, ...]]) -> None:
    results = parse_junit_text(data, source="x.xml")
    assert [(r.nodeid, r.outcome, r.duration_s, r.line) for r in results] == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<?xml version="1.0" encoding="x-no-such"?><testsuite/>', "unknown encoding 'x-no-such'"),
        (b'<?xml version="1.0" encoding="hex"?><testsuite/>', "unknown encoding 'hex'"),
        (b'<?xml version="1.0" encoding="idna"?><testsuite name="' + b"a" * 70 + b'"/>', "decode"),
        (
            b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(
                b'<!ENTITY a%d "%s">' % (i, (b"&a%d;" % (i - 1) if i > 1 else b"&a;") * 10)
                for i in range(1, 9)
            )
            + b']><testsuite><testcase name="t"><failure message="&a8;"/></testcase></testsuite>',
            "not well-formed XML",  # expat's amplification limit: the bomb is not expanded
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<testsuite><testcase name="t"><failure message="&x;"/></testcase></testsuite>',
            "not well-formed XML",  # external entities are never fetched
        ),
        (b"  \n ", "line 1: empty file"),
    ],
)
def test_hostile_files_are_one_input_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=r"^x\.xml: ") as caught:
        parse_junit_text(data, source="x.xml")
    assert message in str(caught.value)


def test_the_json_path_must_be_a_writable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES / "time_decimal_comma_locale.xml"
    (tmp_path / "file.txt").write_text("")
    # a folder; under a file (root can write anywhere else, so no read-only folder here)
    for bad in (tmp_path, tmp_path / "file.txt" / "out.json", Path("/proc/version/x.json")):
        capsys.readouterr()
        assert main(["triage", str(case), "--json", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot write the JSON report" in err[0], err


def test_dev_zero_is_one_line_and_exit_2_in_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "greenloop.cli", "triage", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "greenloop: /dev/zero: line 1, column 1: not well-formed XML (not well-formed "
        "(invalid token))"
    ]


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import greenloop.junit as junit

    monkeypatch.setattr(junit, "MAX_BYTES", 1 << 20)
    path = tmp_path / "big.xml"
    with path.open("w", encoding="utf-8") as f:
        f.write("<testsuite>")
        line = '<testcase classname="c" name="t" time="0.1"/>\n'
        f.write(line * ((2 << 20) // len(line)))
        f.write("</testsuite>")
    with pytest.raises(InputError, match="larger than 1 MiB"):
        parse_junit(path)


# --------------------------------------------------------------------------- fuzz

TOKENS = [
    b"<testsuite>",
    b"</testsuite>",
    b"<testsuites>",
    b"<testcase name='n'>",
    b"</testcase>",
    b"<testcase classname='a.b' name='n' file='a/b.py' line='\xc2\xb2' time='inf'/>",
    b'<failure message="m">',
    b"</failure>",
    b"<error message=\"failed on teardown with 'x'\">e</error>",
    b"<skipped/>",
    b'time="nan"',
    b'time="-1,5"',
    b'time="1.234,5"',
    b'line="99999999999999999999"',
    b'status="notrun"',
    b'hostname="webkit"',
    b'<?xml version="1.0" encoding="x-unknown"?>',
    b'<?xml version="1.0" encoding="utf-32"?>',
    b'<?xml version="1.0" encoding="base64"?>',
    b'<?xml version="1.0" encoding="cp1252"?>',
    b"<!DOCTYPE x>",
    b"&amp;",
    b"&undefined;",
    b"<![CDATA[",
    b"]]>",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    "é\u203a".encode(),
    b"<testsuite>" * 300,
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: flip, delete, duplicate, insert a token, truncate, or
    re-encode the whole file."""
    for _ in range(rng.randint(1, 4)):
        if not data:
            data = rng.choice(TOKENS)
        kind = rng.randrange(7)
        at = rng.randrange(len(data) + 1)
        if kind == 0 and data:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
        elif kind == 1:
            data = data[:at] + data[at + rng.randint(1, 200) :]
        elif kind == 2:
            end = min(len(data), at + rng.randint(1, 400))
            data = data[:end] + data[at:end] * rng.randint(1, 3) + data[end:]
        elif kind in (3, 4):
            data = data[:at] + rng.choice(TOKENS) + data[at:]
        elif kind == 5:
            data = data[:at]
        else:
            text = data.decode("utf-8", "replace")
            data = text.encode(rng.choice(["utf-16", "utf-32", "utf-16-be", "utf-32-le"]))
    return data


def test_fuzzed_junit_never_ends_in_exit_70_or_invalid_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = [p.read_bytes() for p in sorted(CASES.glob("*.xml"))]
    rng = random.Random(14)
    codes: dict[int, int] = {}
    for n in range(300):
        path = tmp_path / f"fuzz{n}.xml"
        path.write_bytes(mutate(rng.choice(seeds), rng))
        code = triage_exit(path, tmp_path / "out.json")
        codes[code] = codes.get(code, 0) + 1
        err = capsys.readouterr().err
        assert code in (0, 1, 2), f"exit {code} for {path.read_bytes()[:300]!r}:\n{err}"
        if code == 2:
            assert len(err.strip().splitlines()) == 1, err
    # the mutations reach both sides: files still read (0/1) and files refused (2)
    assert codes.get(2, 0) > 20 and codes.get(0, 0) + codes.get(1, 0) > 20, codes
