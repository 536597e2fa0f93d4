"""Readers of the test index files teams already keep: markdown tables, TOML and YAML.

Each reader returns `IndexRow`s: one test file with its priority, category and
money at risk, its path exactly as written (relative to the index file). The
words people use are accepted: a `File` / `Test file` / `Module` column,
priority `P1`, `p2`, `1` or `High`, money `$12,000/mo`, `12k`, `$1.2M ARR`
(yearly figures become monthly), category `Area` / `Feature`.

Markdown and YAML are other people's formats: columns and keys greenloop does
not know (owner, notes) are ignored. greenloop's own TOML format (`[[files]]`)
keeps its rule that an unknown key is an error. Every problem is a
`ConfigError` naming the file, the row and the column.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenloop.errors import ConfigError

MARKDOWN_SUFFIXES = (".md", ".markdown")
YAML_SUFFIXES = (".yaml", ".yml")
INDEX_SUFFIXES = (".toml", *MARKDOWN_SUFFIXES, *YAML_SUFFIXES)

# Normalised column / key name -> field. Names are lower-cased, with every run of
# characters other than letters, digits and "$" turned into one space.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "path": (
        "path",
        "file",
        "files",
        "test file",
        "test files",
        "test",
        "tests",
        "module",
        "test module",
        "location",
        "suite",
        "spec",
    ),
    "priority": ("priority", "prio", "p", "pri", "tier", "importance"),
    "money": (
        "mrr at risk usd",
        "mrr at risk",
        "mrr",
        "money at risk",
        "revenue at risk",
        "revenue",
        "monthly revenue",
        "money",
        "at risk",
        "$ at risk",
        "risk $",
        "mrr usd",
        "usd at risk",
        "arr",
        "arr at risk",
        "annual revenue",
        "impact $",
        "$",
    ),
    "category": ("category", "area", "feature", "domain", "kind", "type", "group"),
    "components": ("components", "component", "depends on", "needs", "services", "service"),
    "tags": ("tags", "tag", "labels", "label"),
    "min_duration_ms": ("min duration ms",),
}
_FIELD_OF = {name: field for field, names in FIELD_NAMES.items() for name in names}
# Among several columns of one field the name listed first wins ("File" over "Tests").
_RANK = {name: rank for names in FIELD_NAMES.values() for rank, name in enumerate(names)}
# Column names saying the figure is yearly.
_YEARLY_NAME = re.compile(r"\b(arr|annual|yearly|per year|a year)\b")
PRIORITY_WORDS = {
    "critical": 1, "blocker": 1, "highest": 1, "urgent": 1,
    "high": 2, "major": 2,
    "medium": 3, "normal": 3, "moderate": 3, "med": 3,
    "low": 4, "minor": 4,
    "lowest": 5, "trivial": 5,
}  # fmt: skip
_PRIORITY = re.compile(r"^\s*(?:p|prio|priority)?\s*[-_ ]?\s*([0-5])(?!\d)", re.IGNORECASE)
_MONEY = re.compile(
    r"^(?P<number>\d+(?:[,\s]\d{3})*(?:\.\d+)?|\.\d+)\s*(?P<scale>k|m|mm|b|bn|thousand|million)?\b",
    re.IGNORECASE,
)
_CURRENCY = re.compile(r"(?i)\b(usd|eur|gbp|dollars?|euros?|us\$)\b|[$€£¥]")
_PER = re.compile(
    r"(?i)(?:/|\bper\b|\ba\b|\bevery\b)\s*(?P<unit>mo(?:nth)?s?|yr|years?|annum|y|wk|weeks?|"
    r"days?|d|quarters?|q)\b|\b(?P<word>monthly|annually|annual|yearly|weekly|daily|quarterly)\b"
    r"|\b(?P<acr>mrr|arr)\b"
)
# Cells that say "nothing here": empty, dashes (hyphen, en and em dash), n/a.
EMPTY_CELLS = frozenset({"", "-", "\u2013", "\u2014", "n/a", "none"})
_PER_MONTH = {"mo": 1.0, "yr": 1 / 12, "wk": 52 / 12, "day": 365 / 12, "q": 1 / 3}
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9}


@dataclass(frozen=True)
class IndexRow:
    """One test file as an index file describes it (path relative to that file)."""

    path: str
    priority: int | None = None
    category: str | None = None
    mrr_at_risk_usd: float | None = None
    components: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_duration_ms: float | None = None


def read_index_file(path: Path) -> list[IndexRow]:
    """The rows of a markdown, TOML or YAML index file (by its suffix).

    Raises ConfigError when the file is missing, unreadable, or a value cannot be
    understood (e.g. priority "soon").
    """
    if not path.is_file():
        raise ConfigError(str(path), "", "test index file not found (index.path)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return markdown_rows(text, str(path))
    if suffix in YAML_SUFFIXES:
        return yaml_rows(text, str(path))
    return toml_rows(text, str(path))


# --------------------------------------------------------------------------- values


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9$]+", " ", name.lower()).strip()


def field_for(name: str) -> str | None:
    """The index field a column or key name means, or None when it means none."""
    normal = _normal(name)
    if normal in _FIELD_OF:
        return _FIELD_OF[normal]
    if re.search(r"\b(mrr|arr|revenue)\b|\$", normal):
        return "money"
    return None


def parse_priority(value: Any) -> int:
    """P1, p2, "1", 1, "P1 (critical)", "High" -> 0-5 (1 is the most important).

    Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a priority like P1 or 2, got {value!r}")
    if isinstance(value, int) and 0 <= value <= 5:
        return value
    text = _plain(str(value))
    match = _PRIORITY.match(text)
    if match:
        return int(match.group(1))
    word = text.lower().split(" ")[0] if text else ""
    if word in PRIORITY_WORDS:
        return PRIORITY_WORDS[word]
    raise ValueError(f"expected a priority like P1, 2 or High, got {value!r}")


def parse_money(value: Any, *, yearly: bool = False) -> float:
    """Money at risk per month in USD: 12000, "$12,000/mo", "12k", "$1.2M ARR" -> a number.

    `yearly` says the column holds yearly figures (ARR) when the value itself does
    not say. An empty cell or "-" is 0. Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected an amount like $12,000/mo or 12k, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected an amount of 0 or more, got {value!r}")
        amount = float(value)
        return amount / 12 if yearly else amount
    text = _plain(str(value)).strip()
    if text.lower() in EMPTY_CELLS or text == "0":
        return 0.0
    per = _PER.search(text)
    unit = _unit(per) if per else ("yr" if yearly else "mo")
    bare = _CURRENCY.sub(" ", text[: per.start()] if per and per.start() > 0 else text)
    bare = bare.replace("~", "").replace("≈", "").strip()
    match = _MONEY.match(bare)
    if not match:
        raise ValueError(f"expected an amount like $12,000/mo or 12k, got {value!r}")
    number = float(re.sub(r"[,\s]", "", match.group("number")))
    scale = _SCALE.get((match.group("scale") or "").lower(), 1.0)
    return round(number * scale * _PER_MONTH[unit], 2)


def _unit(match: re.Match[str]) -> str:
    word = (match.group("unit") or match.group("word") or match.group("acr") or "").lower()
    if word.startswith(("mo", "mrr")):
        return "mo"
    if word.startswith(("y", "annu", "arr")):
        return "yr"
    if word.startswith(("w",)):
        return "wk"
    if word.startswith(("d",)):
        return "day"
    return "q"


def _plain(text: str) -> str:
    """Markdown emphasis, code and links reduced to their text."""
    text = re.sub(r"\[([^\]]*)\]\(([^)]*)\)", r"\1", text)
    # Not _emphasis_: underscores belong to file names (test_api.py, __init__.py).
    return re.sub(r"(\*\*|\*|`)(.+?)\1", r"\2", text).strip()


def _link_target(text: str) -> str | None:
    match = re.search(r"\[[^\]]*\]\(([^)\s]+)\)", text)
    return match.group(1) if match else None


def _words(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(_plain(str(v))) for v in value if str(v).strip())
    parts = re.split(r"[,;]|<br\s*/?>", _plain(str(value)))
    return tuple(p.strip() for p in parts if p.strip() and p.strip().lower() not in EMPTY_CELLS)


def make_row(
    cells: Mapping[str, Any], file: str, where: str, *, strict: bool = False
) -> list[IndexRow]:
    """Rows from one record of column/key -> value (several when one cell names several files).

    `strict`: a key that means no field is an error (greenloop's own TOML format).
    """
    values: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    yearly = False
    for name, value in cells.items():
        field = field_for(str(name))
        if field is None:
            if strict:
                raise ConfigError(file, f"{where}.{name}", "unknown key")
            continue
        rank = _RANK.get(_normal(str(name)), len(_RANK))
        if field in ranks and ranks[field] <= rank:
            continue
        ranks[field] = rank
        if field == "money":
            yearly = bool(_YEARLY_NAME.search(str(name).lower()))
        values[field] = value
    raw_path = values.get("path")
    if raw_path is None or not str(raw_path).strip():
        raise ConfigError(file, where, "no test file in this row (a path / file column)")
    paths = _paths(str(raw_path)) if isinstance(raw_path, str) else [str(raw_path)]

    def convert(field: str, parse: Any) -> Any:
        value = values.get(field)
        if value is None or (isinstance(value, str) and _plain(value).lower() in EMPTY_CELLS):
            return None
        try:
            return parse(values[field])
        except ValueError as exc:
            raise ConfigError(file, f"{where}.{field}", str(exc)) from None

    priority = convert("priority", parse_priority)
    money = convert("money", lambda v: parse_money(v, yearly=yearly))
    category = convert("category", lambda v: _plain(str(v)) or None)
    min_ms = convert("min_duration_ms", float)
    components = _words(values["components"]) if values.get("components") else ()
    tags = _words(values["tags"]) if values.get("tags") else ()
    return [
        IndexRow(
            path=p,
            priority=priority,
            category=category,
            mrr_at_risk_usd=money,
            components=components,
            tags=tags,
            min_duration_ms=min_ms,
        )
        for p in paths
    ]


def _paths(cell: str) -> list[str]:
    target = _link_target(cell)
    if target and "," not in cell:
        return [target.removeprefix("./")]
    parts = [_plain(p) for p in re.split(r",|<br\s*/?>|\s+and\s+", cell)]
    return [p.removeprefix("./") for p in parts if p]


# --------------------------------------------------------------------------- markdown


def markdown_rows(text: str, file: str) -> list[IndexRow]:
    """Rows of every table whose columns name a test file and priority, money or category."""
    rows: list[IndexRow] = []
    for start, table in _tables(text.splitlines()):
        header = [c.strip() for c in table[0]]
        fields = [field_for(c) for c in header]
        if "path" not in fields or not {"priority", "money", "category"} & set(fields):
            continue
        for offset, cells in enumerate(table[2:], start=3):
            record = {h: c for h, c in zip(header, cells, strict=False) if field_for(h)}
            if not _plain(str(record.get(header[fields.index("path")], ""))):
                continue
            rows += make_row(record, file, f"line {start + offset}")
    return rows


def _tables(lines: list[str]) -> Iterable[tuple[int, list[list[str]]]]:
    """(first line number - 1, rows of cells) of each pipe table with a separator row."""
    i = 0
    while i < len(lines) - 1:
        if _is_row(lines[i]) and _is_separator(lines[i + 1]):
            start = i
            table = [_cells(lines[i]), _cells(lines[i + 1])]
            i += 2
            while i < len(lines) and _is_row(lines[i]):
                table.append(_cells(lines[i]))
                i += 1
            yield start, table
        else:
            i += 1


def _is_row(line: str) -> bool:
    return "|" in line and not line.lstrip().startswith(("```", "    "))


def _is_separator(line: str) -> bool:
    cells = _cells(line)
    return bool(cells) and all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells)


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body.removeprefix("|")
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", body)]


# --------------------------------------------------------------------------- TOML / YAML


def toml_rows(text: str, file: str) -> list[IndexRow]:
    """greenloop's own format: `[[files]]` tables (path, priority, category, mrr_at_risk_usd...)."""
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    unknown = set(tree) - {"files"}
    if unknown:
        raise ConfigError(file, sorted(unknown)[0], "unknown key (expected [[files]])")
    return tree_rows(tree.get("files", []), file, "files", strict=True)


def yaml_rows(text: str, file: str) -> list[IndexRow]:
    """A list of mappings, a mapping holding such a list, or a mapping of path -> fields."""
    import yaml

    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"not valid YAML: {_first_line(str(exc))}") from None
    except RecursionError:
        raise ConfigError(file, "", "nested too deeply to be a test index") from None
    return tree_rows(tree, file, "")


def tree_rows(tree: Any, file: str, where: str, *, strict: bool = False) -> list[IndexRow]:
    """Rows from a parsed TOML/YAML tree in any of the shapes `yaml_rows` accepts."""
    if tree is None:
        return []
    if isinstance(tree, list):
        rows: list[IndexRow] = []
        for i, item in enumerate(tree):
            if not isinstance(item, Mapping):
                raise ConfigError(file, f"{where}[{i}]", "expected a table of path, priority...")
            rows += make_row(item, file, f"{where}[{i}]", strict=strict)
        return rows
    if not isinstance(tree, Mapping):
        raise ConfigError(file, where, "expected a list of test files")
    lists = [k for k, v in tree.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)]
    if lists:
        return [r for k in lists for r in tree_rows(tree[k], file, _join(where, str(k)))]
    rows = []
    for key, item in tree.items():
        if isinstance(item, Mapping):
            rows += make_row({"path": key, **item}, file, _join(where, str(key)))
    return rows


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
