"""greenloop's modules import each other without a circle.

An ast walk of every module under src/greenloop: `import x` and `from x import y`
(relative ones resolved) become edges to greenloop modules; `if TYPE_CHECKING:`
blocks are left out (they never run). Two graphs are checked: the imports that run
when a module loads, and those plus the imports inside functions (a lazy import
that closes a circle is still a circle, only hidden until the function runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import greenloop

ROOT = Path(greenloop.__file__).parent
Graph = dict[str, set[str]]


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["greenloop", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, in_functions: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run: at module level, and in functions if asked."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If) and _type_checking(node):
                visit(node.orelse)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if in_functions:
                    visit(node.body)
            else:
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    for child in getattr(node, field, []):
                        visit(child.body if isinstance(child, ast.excepthandler) else [child])
                if isinstance(node, ast.match_case):
                    visit(node.body)

    visit(tree.body)
    return found


def graph(*, in_functions: bool) -> Graph:
    known = modules()
    edges: Graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(
            ast.parse(path.read_text(encoding="utf-8")), in_functions=in_functions
        ):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` mod.
                wanted = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            for target in wanted:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: Graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_imports_of_every_form() -> None:
    edges = graph(in_functions=True)
    assert len(edges) > 100
    assert "greenloop.config" in edges["greenloop.load"]  # from x import y
    assert "greenloop.probes" in edges["greenloop.probes.run"]  # from pkg import name
    assert "greenloop.probes.http" in edges["greenloop.probes"]  # from pkg.mod import name
    assert "greenloop.session" in edges["greenloop.cli.run"]  # an import inside a function
    assert "greenloop.session" not in graph(in_functions=False)["greenloop.cli.run"]
    assert "greenloop.store" not in edges["greenloop.remediate.base"]  # under TYPE_CHECKING
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_at_module_level() -> None:
    assert cycles(graph(in_functions=False)) == []


def test_no_import_circle_through_imports_inside_functions() -> None:
    assert cycles(graph(in_functions=True)) == []


def test_config_imports_no_stage() -> None:
    """The models validate without the stages; `greenloop.load` adds their checks."""
    edges = graph(in_functions=True)
    reached: set[str] = set()
    todo = ["greenloop.config"]
    while todo:
        for nxt in edges[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert sorted(reached) == ["greenloop", "greenloop.errors", "greenloop.kinds"]
