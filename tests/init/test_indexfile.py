"""Index readers on synthetic files: markdown tables, TOML and YAML, as teams write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenloop.errors import ConfigError
from greenloop.index import load_index
from greenloop.indexfile import parse_money, parse_priority, read_index_file
from greenloop.load import config_from_dict

MARKDOWN = """\
# What our tests guard

Some prose with a | pipe that is not a table.

| Test file | Priority | Revenue at risk | Area | Owner |
|:----------|:--------:|----------------:|------|-------|
| [test_checkout.py](test_checkout.py) | **P1** | $12,000/mo | payments | ana |
| `api/test_search.py` | P2 | 3k | search | |
| test_a.py, test_b.py | p3 | - | misc | bob |
| __init__.py | 4 | $1.2M ARR | | |

| Link | Notes |
|------|-------|
| https://wiki | not an index table |
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$12,000/mo", 12000.0),
        ("12k", 12000.0),
        ("$1.2M ARR", 100000.0),
        ("1,500 USD", 1500.0),
        ("€3,000 per month", 3000.0),
        ("$120k/yr", 10000.0),
        ("~$2.5k / month", 2500.0),
        ("-", 0.0),
        ("", 0.0),
        (12000, 12000.0),
    ],
)
def test_money_in_the_forms_people_write(text: object, expected: float) -> None:
    assert parse_money(text) == expected


def test_money_column_named_yearly_is_made_monthly() -> None:
    assert parse_money("120000", yearly=True) == 10000.0
    assert parse_money("10k/mo", yearly=True) == 10000.0  # the value's own unit wins


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P1", 1), ("p2", 2), ("1", 1), ("**P0**", 0), ("P3 (nice to have)", 3), (2, 2)],
)
def test_priority_in_the_forms_people_write(text: object, expected: int) -> None:
    assert parse_priority(text) == expected


def test_priority_words_keep_their_order() -> None:
    words = ["critical", "high", "medium", "low"]
    assert [parse_priority(w) for w in words] == sorted(parse_priority(w) for w in words)


@pytest.mark.parametrize("bad", ["soon", "P9", "", True])
def test_nonsense_priority_is_an_error(bad: object) -> None:
    with pytest.raises(ValueError, match="priority"):
        parse_priority(bad)


def test_markdown_table_rows(tmp_path: Path) -> None:
    index = tmp_path / "INDEX.md"
    index.write_text(MARKDOWN)
    rows = {r.path: r for r in read_index_file(index)}
    assert set(rows) == {"test_checkout.py", "api/test_search.py", "test_a.py", "test_b.py",
                         "__init__.py"}  # fmt: skip
    assert (rows["test_checkout.py"].priority, rows["test_checkout.py"].mrr_at_risk_usd) == (
        1,
        12000.0,
    )
    assert rows["test_checkout.py"].category == "payments"
    assert rows["api/test_search.py"].mrr_at_risk_usd == 3000.0
    assert rows["test_b.py"].priority == 3 and rows["test_b.py"].category == "misc"
    assert rows["__init__.py"].mrr_at_risk_usd == 100000.0  # ARR in the cell: per month


def test_markdown_bad_cell_names_the_line_and_column(tmp_path: Path) -> None:
    index = tmp_path / "INDEX.md"
    index.write_text(
        "| File | Priority |\n|---|---|\n| test_a.py | P1 |\n| test_b.py | someday |\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_index_file(index)
    assert "line 4" in str(caught.value) and "priority" in str(caught.value)


def test_yaml_shapes(tmp_path: Path) -> None:
    listed = tmp_path / "a.yaml"
    listed.write_text(
        "tests:\n  - file: test_x.py\n    priority: high\n    mrr: 2k\n    owner: z\n"
    )
    mapped = tmp_path / "b.yml"
    mapped.write_text("test_x.py: {priority: P1, revenue_at_risk: '$500/mo', tags: [a, b]}\n")
    (row,) = read_index_file(listed)
    assert (row.path, row.priority, row.mrr_at_risk_usd) == ("test_x.py", 2, 2000.0)
    (row,) = read_index_file(mapped)
    assert (row.priority, row.mrr_at_risk_usd, row.tags) == (1, 500.0, ("a", "b"))


def test_toml_keeps_unknown_keys_as_errors(tmp_path: Path) -> None:
    good = tmp_path / "index.toml"
    good.write_text('[[files]]\npath = "test_x.py"\npriority = "P1"\nmrr_at_risk_usd = "12k"\n')
    (row,) = read_index_file(good)
    assert (row.priority, row.mrr_at_risk_usd) == (1, 12000.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[files]]\npath = "test_x.py"\nprority = 1\n')
    with pytest.raises(ConfigError, match="prority"):
        read_index_file(bad)


def test_load_index_resolves_rows_from_the_index_file_then_the_config(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "api").mkdir(parents=True)
    (tests / "test_checkout.py").write_text("def test_a(): pass\n")
    (tests / "api" / "test_search.py").write_text("def test_b(): pass\n")
    (tests / "INDEX.md").write_text(
        "| File | Priority | MRR |\n|---|---|---|\n"
        "| test_checkout.py | P1 | 12k |\n"  # relative to the index file
        "| tests/api/test_search.py | P2 | 1k |\n"  # relative to the config folder
    )
    config = config_from_dict(
        {"index": {"path": "tests/INDEX.md"}, "execution": {"tests_dir": "tests"}},
        tmp_path / "greenloop.toml",
    )
    entries = {e.path: e for e in load_index(config)}
    assert entries["test_checkout.py"].priority == 1
    assert entries["api/test_search.py"].mrr_at_risk_usd == 1000.0


def test_hostile_yaml_is_one_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match=r"deep\.yaml"):
        read_index_file(deep)
    broken = tmp_path / "broken.yml"
    broken.write_text("- file: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_index_file(broken)
