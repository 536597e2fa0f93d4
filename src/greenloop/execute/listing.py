"""Name a phase's tests without running pytest: what a blocked phase records.

A blocked phase must not wait on the suite: collecting it means importing its
conftest.py, which may connect to the very dependency that is down or hung.
So its tests are listed from two sources that never import the suite:

- the collection a real run recorded for the same file content (the store keeps
  each file's node ids under a key over the file, the conftest.py files above
  it and the phase's `-m`/`-k`: any change to them and the entry is not used);
- otherwise the source, parsed (`ast`): pytest's default names (`test*`
  functions, `Test*` classes), with `-m` matched against the markers written
  in the file and `-k` against the names. A parametrised test is one entry
  named without its parameters.

    list_tests(selection, cached) -> TestListing                  # pure but for file reads
    collection_keys(selection, extra_args) -> dict[key, file]      # what to look up
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenloop.execute.selection import Selection


@dataclass(frozen=True, slots=True)
class StaticTest:
    """A test found in the source: its node id (no parameters) and the markers written on it."""

    nodeid: str
    markers: frozenset[str]
    parametrized: bool


@dataclass(frozen=True, slots=True)
class TestListing:
    """A phase's tests named without running pytest, and how, in words."""

    __test__ = False

    nodeids: tuple[str, ...]
    how: str  # "listed without running pytest: ..."


# --------------------------------------------------------------------------- the source


def static_tests(source: str, rel: str) -> list[StaticTest] | None:
    """The tests pytest would collect from a file by default names; None if it does not parse.

    Classes count when named ``Test*`` or when they derive from a ``*TestCase`` (unittest's
    rule: any name); test methods a class inherits from a class of the same module count
    for it too. Bases from other modules are not followed.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    module_marks = _pytestmark(tree.body)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    found: list[StaticTest] = []
    _scan(tree.body, rel, module_marks, found, classes)
    return found


def _base_names(node: ast.ClassDef) -> list[str]:
    return [
        base.id if isinstance(base, ast.Name) else base.attr
        for base in node.bases
        if isinstance(base, ast.Name | ast.Attribute)
    ]


def _is_unittest_case(node: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> bool:
    for name in _base_names(node):
        if name.endswith("TestCase"):
            return True
        base = classes.get(name)
        if (
            base is not None
            and name not in seen
            and _is_unittest_case(base, classes, seen | {name})
        ):
            return True
    return False


def _class_body(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> list[ast.stmt]:
    """The class's own statements, then the test methods it inherits from this module's classes."""
    body = list(node.body)
    own = {s.name for s in body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)}
    pending, seen = _base_names(node), {node.name}
    while pending:
        name = pending.pop(0)
        base = classes.get(name)
        if base is None or name in seen:
            continue
        seen.add(name)
        for stmt in base.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name not in own:
                own.add(stmt.name)
                body.append(stmt)
        pending.extend(_base_names(base))
    return body


def _scan(
    body: Sequence[ast.stmt],
    prefix: str,
    marks: frozenset[str],
    out: list[StaticTest],
    classes: dict[str, ast.ClassDef],
) -> None:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            own = _decorator_marks(node.decorator_list)
            out.append(
                StaticTest(
                    nodeid=f"{prefix}::{node.name}",
                    markers=marks | own,
                    parametrized="parametrize" in own,
                )
            )
        elif isinstance(node, ast.ClassDef) and (
            node.name.startswith("Test") or _is_unittest_case(node, classes, {node.name})
        ):
            inner = marks | _decorator_marks(node.decorator_list) | _pytestmark(node.body)
            members = [
                stmt
                for stmt in _class_body(node, classes)
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ]
            _scan(members, f"{prefix}::{node.name}", inner, out, classes)


def _mark_name(node: ast.expr) -> str | None:
    """`pytest.mark.NAME`, `mark.NAME`, called or not."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        owner = node.value
        if (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
            isinstance(owner, ast.Name) and owner.id == "mark"
        ):
            return node.attr
    return None


def _decorator_marks(decorators: Iterable[ast.expr]) -> frozenset[str]:
    return frozenset(n for n in map(_mark_name, decorators) if n)


def _pytestmark(body: Sequence[ast.stmt]) -> frozenset[str]:
    """Markers of `pytestmark = pytest.mark.X` or `= [pytest.mark.X, ...]`."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = (
                node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            )
            names.update(n for n in map(_mark_name, values) if n)
    return frozenset(names)


# --------------------------------------------------------------------------- -m / -k


def filter_expressions(args: Sequence[str]) -> tuple[str | None, str | None]:
    """The `-m` and `-k` expressions in pytest arguments (the last of each wins, as in pytest)."""
    marks = keyword = None
    it = iter(args)
    for arg in it:
        if arg == "-m":
            marks = next(it, None)
        elif arg == "-k":
            keyword = next(it, None)
        elif arg.startswith("-m") and len(arg) > 2:
            marks = arg[2:]
        elif arg.startswith("-k") and len(arg) > 2:
            keyword = arg[2:]
    return marks, keyword


def matcher_for(marks: str | None, keyword: str | None) -> Callable[[StaticTest], bool] | None:
    """A predicate applying `-m` / `-k` like pytest does, over what the source shows."""
    if not marks and not keyword:
        return None
    # pytest's own expression language; imported only when a filter needs it.
    from _pytest.mark.expression import Expression

    mark_expr = Expression.compile(marks) if marks else None
    key_expr = Expression.compile(keyword) if keyword else None

    def selected(test: StaticTest) -> bool:
        if mark_expr and not mark_expr.evaluate(lambda name, /, **kw: name in test.markers):
            return False
        if key_expr:
            file, *rest = test.nodeid.split("::")
            names = [Path(file).name, *rest, *test.markers]
            lowered = [n.lower() for n in names]
            if not key_expr.evaluate(lambda sub, /, **kw: any(sub.lower() in n for n in lowered)):
                return False
        return True

    return selected


# --------------------------------------------------------------------------- the cache key


def collection_keys(selection: Selection, extra_args: Sequence[str] = ()) -> dict[str, str]:
    """{key: file relative to tests_dir}: what a cached collection of each file is stored under.

    The key covers the file's path and bytes, every conftest.py between tests_dir and the
    file, and the pytest arguments that filter (`-m`, `-k`): when any of them
    changes, the old collection no longer names the file's tests.
    """
    tests_dir = Path(selection.tests_dir)
    filters = "\0".join(a for a in (*extra_args, *selection.pytest_args))
    keys: dict[str, str] = {}
    for name in selection.files:
        path = Path(name)
        rel = _relative(path, tests_dir)
        try:
            digest = hashlib.sha256(rel.encode() + b"\0" + path.read_bytes())
        except OSError:
            continue
        folder = path.parent
        while True:
            conftest = folder / "conftest.py"
            if conftest.is_file():
                digest.update(b"\0conftest\0" + conftest.read_bytes())
            if folder == tests_dir or folder == folder.parent:
                break
            folder = folder.parent
        digest.update(b"\0args\0" + filters.encode())
        keys[digest.hexdigest()] = rel
    return keys


# --------------------------------------------------------------------------- the listing


def list_tests(
    selection: Selection,
    cached: Mapping[str, Sequence[str]],
    keys: Mapping[str, str],
    extra_args: Sequence[str] = (),
) -> TestListing:
    """Every selected file's tests: from `cached` (by key) when there, else from the source.

    `keys` is `collection_keys(selection, extra_args)`; a file that does not
    parse, or whose tests the filters cannot be told for, stands in for its tests
    by its path.
    """
    by_file = {rel: key for key, rel in keys.items()}
    marks, keyword = filter_expressions([*extra_args, *selection.pytest_args])
    selected = matcher_for(marks, keyword)
    tests_dir = Path(selection.tests_dir)
    nodeids: list[str] = []
    from_cache = from_source = parametrized = stand_ins = 0
    for name in selection.files:
        rel = _relative(Path(name), tests_dir)
        key = by_file.get(rel)
        if key is not None and key in cached:
            nodeids += cached[key]
            from_cache += 1
            continue
        try:
            source = Path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            source = None
        tests = None if source is None else static_tests(source, rel)
        if tests is None:
            nodeids.append(rel)
            stand_ins += 1
            continue
        from_source += 1
        kept = [t for t in tests if selected is None or selected(t)]
        parametrized += sum(1 for t in kept if t.parametrized)
        nodeids += [t.nodeid for t in kept]
    parts = []
    if from_cache:
        parts.append(f"{from_cache} file(s) from the collection cached for unchanged files")
    if from_source:
        text = f"{from_source} file(s) read from the source"
        if parametrized:
            text += f" ({parametrized} parametrised test(s) listed once each)"
        if selected is not None:
            text += " with -m/-k matched against the markers and names written there"
        parts.append(text)
    if stand_ins:
        parts.append(f"{stand_ins} file(s) that do not parse listed by path")
    how = "listed without running pytest: " + ("; ".join(parts) or "no file selected")
    return TestListing(nodeids=tuple(nodeids), how=how)


def _relative(path: Path, tests_dir: Path) -> str:
    try:
        return path.relative_to(tests_dir).as_posix()
    except ValueError:
        return path.as_posix()


def collections_to_cache(
    keys: Mapping[str, str],
    collected: Iterable[str],
    troubled: Iterable[str],
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{key: (file, node ids)} worth caching after a run collected `collected`.

    `troubled` are node ids of collection errors and module-level skips: a file
    among them (or under a folder among them) is not cached, since what pytest
    collected from it is not its list of tests.
    """
    by_file: dict[str, list[str]] = {}
    for nodeid in collected:
        by_file.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    bad = [t.split("::", 1)[0].rstrip("/") for t in troubled]
    return {
        key: (rel, tuple(by_file.get(rel, ())))
        for key, rel in keys.items()
        if not any(b == rel or rel.startswith(b + "/") or b in ("", ".", "pytest") for b in bad)
    }
