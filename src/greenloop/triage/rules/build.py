"""The rule table (table.toml) read, checked and turned into `Rule`s, once at import.

A mistake in an entry (an unknown key, category, predicate or component, a repeated
name, a confidence outside (0, 1], a regex that does not compile) raises ValueError
naming the entry: greenloop does not start with a broken table.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greenloop.records import Category
from greenloop.triage import model as learned
from greenloop.triage.rules.combinators import Matcher, Rule, both, rx, when
from greenloop.triage.rules.components import COMPONENTS
from greenloop.triage.rules.predicates import CONDITIONS, FACTORIES, NOTES, PREDICATES

TABLE_PATH = Path(__file__).with_name("table.toml")
_KEYS = {"name", "category", "reason", "confidence", "doc", "match", "component"}
_REQUIRED = _KEYS - {"component"}
_REASON = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
# After the table, when every rule abstained: the learned model, one rule per category.
_MODEL_CATEGORIES = (
    Category.INFRASTRUCTURE,
    Category.PRODUCT,
    Category.TEST,
    Category.CONFIGURATION,
)


def load_table(path: Path = TABLE_PATH) -> list[dict[str, Any]]:
    """The `[[rule]]` entries of a rule table file, in order. Raises ValueError for a file
    that is not TOML or holds anything but rules."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML: {exc}") from None
    if set(data) != {"rule"} or not isinstance(data["rule"], list):
        raise ValueError(f"{path}: expected only [[rule]] tables, found {sorted(data)}")
    return data["rule"]


def build_rules(table: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """The rules of `table` in order, then the learned model's rules. Raises ValueError
    for a malformed entry."""
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, entry in enumerate(table):
        where = f"rule table entry {n} ({entry.get('name', '?')!r})"
        unknown = set(entry) - _KEYS
        missing = _REQUIRED - set(entry)
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
        name, reason, confidence = entry["name"], entry["reason"], entry["confidence"]
        if name in seen:
            raise ValueError(f"{where}: the name is used twice")
        seen.add(name)
        if entry["category"] not in {c.value for c in Category}:
            raise ValueError(f"{where}: unknown category {entry['category']!r}")
        if not isinstance(reason, str) or not _REASON.fullmatch(reason):
            raise ValueError(f"{where}: a reason is upper-case words joined by -: {reason!r}")
        if not isinstance(confidence, float | int) or not 0 < confidence <= 1:
            raise ValueError(f"{where}: confidence must be in (0, 1], got {confidence!r}")
        if not isinstance(entry["doc"], str) or not entry["doc"]:
            raise ValueError(f"{where}: doc must be a sentence")
        component = entry.get("component")
        if component is not None and component not in COMPONENTS:
            raise ValueError(f"{where}: unknown component {component!r}")
        rules.append(
            Rule(
                name,
                Category(entry["category"]),
                reason,
                float(confidence),
                entry["doc"],
                _matcher(entry["match"], where),
                *((COMPONENTS[component],) if component is not None else ()),
            )
        )
    for category in _MODEL_CATEGORIES:
        rules.append(
            Rule(
                f"model-{category.value}",
                category,
                "MODEL-GUESS",
                0.5,
                f"the learned model names {category.value} (probability >= "
                f"{learned.MIN_PROBABILITY}); no rule decided",
                FACTORIES["model-says"](category.value),
            )
        )
    return tuple(rules)


def _matcher(spec: Any, where: str) -> Matcher:
    """One `match` value of table.py as a matcher."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: match must be a table, got {spec!r}")
    keys = set(spec)
    if keys == {"regex", "needles"}:
        needles = spec["needles"]
        if not needles or not all(isinstance(n, str) and n for n in needles):
            raise ValueError(f"{where}: needles must be non-empty literals")
        try:
            return rx(spec["regex"], *needles)
        except re.error as exc:
            raise ValueError(f"{where}: regex does not compile: {exc}") from None
    if keys == {"predicate"}:
        return _named(PREDICATES, spec["predicate"], "predicate", where)
    if keys == {"predicate", "args"}:
        factory = _named(FACTORIES, spec["predicate"], "predicate", where)
        return factory(*spec["args"])
    if keys == {"all"}:
        first, second = (_matcher(part, where) for part in spec["all"])
        return both(first, second)
    if keys in ({"when", "then"}, {"when", "then", "note"}, {"when", "then", "note_from"}):
        condition = _named(CONDITIONS, spec["when"], "condition", where)
        then = _matcher(spec["then"], where)
        if "note_from" in spec:
            return when(condition, then, _named(NOTES, spec["note_from"], "note", where))
        return when(condition, then, spec.get("note", ""))
    raise ValueError(f"{where}: match has an unknown shape: keys {sorted(keys)}")


def _named(known: Mapping[str, Any], name: Any, what: str, where: str) -> Any:
    if name not in known:
        raise ValueError(f"{where}: unknown {what} {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


FALLBACK = Rule(
    "no-evidence",
    Category.UNKNOWN,
    "INSUFFICIENT-EVIDENCE",
    0.2,
    "no rule matched: not enough evidence to name a category",
    lambda ev: "no rule matched the failure text and environment",
)
