"""`greenloop init`: a commented starter greenloop.toml for an existing pytest tree."""

from __future__ import annotations

import ast
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Markers pytest itself defines: not categories a team chose.
BUILTIN_MARKERS = frozenset(
    {
        "parametrize",
        "skip",
        "skipif",
        "xfail",
        "usefixtures",
        "filterwarnings",
        "timeout",
        "asyncio",
    }
)


@dataclass(frozen=True)
class TestFile:
    __test__ = False

    path: str  # relative to the tests folder
    tests: int
    markers: tuple[str, ...]


def scan_tests(tests_dir: Path) -> list[TestFile]:
    """Test files with their test count and the markers they use (parsed, not imported)."""
    found: list[TestFile] = []
    for path in sorted(tests_dir.rglob("*.py")):
        if not (path.name.startswith("test_") or path.name.endswith("_test.py")):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            found.append(TestFile(path.relative_to(tests_dir).as_posix(), 0, ()))
            continue
        tests = sum(
            1
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test")
        )
        markers = sorted({m for m in _markers(tree) if m not in BUILTIN_MARKERS})
        found.append(TestFile(path.relative_to(tests_dir).as_posix(), tests, tuple(markers)))
    return found


def _markers(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        # pytest.mark.NAME, with or without a call
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark"
        ):
            names.append(node.attr)
    return names


def starter_config(tests_dir: Path, config_dir: Path) -> str:
    """The text of a starter config: every key commented, the index filled from the tree."""
    files = scan_tests(tests_dir)
    rel = Path(os.path.relpath(tests_dir.resolve(), config_dir.resolve())).as_posix()
    markers = Counter(m for f in files for m in f.markers)
    lines = [
        "# greenloop.toml: written by `greenloop init`. Reference: docs/configuration.md",
        f"# Found {len(files)} test files and {sum(f.tests for f in files)} tests under {rel}/.",
    ]
    if markers:
        seen = ", ".join(f"{m} ({n})" for m, n in markers.most_common())
        lines.append(f"# Markers seen: {seen}")
    lines += [
        "",
        "[environment]",
        'name = "staging"',
        "# The URL your tests call; they read it from GREENLOOP_BASE_URL.",
        'base_url = "https://staging.example.com"  # TODO: your staging URL',
        "# Values handed to the tests' environment; ${VAR} reads a variable at run time.",
        '# env = { API_TOKEN = "${STAGING_API_TOKEN}" }',
        "",
        "[execution]",
        f'tests_dir = "{rel}"',
        'workers = 1             # or "auto" for IO-bound E2E suites',
        "test_timeout_s = 60",
        "reruns = 1              # failed tests re-run once: pass-on-retry is flaky, not green",
        "",
        "# Components and what they depend on; the gate names the deepest failing one.",
        "[[components]]",
        'name = "backend"',
        "depends_on = []",
        "",
        "[[probes]]",
        'name = "health"',
        'component = "backend"',
        'kind = "http"',
        'url = "https://staging.example.com/health"  # TODO',
        'conditions = ["status == 200", "latency_ms < 2000"]',
        "timeout_s = 2",
        "",
        "# Progressive phases: each runs only when what it needs is healthy.",
        "[[phases]]",
        'name = "smoke"',
        'needs = ["backend"]',
        "select = { priorities = [1] }",
        "min_pass_rate = 0.95    # do not expand below this pass rate",
        "",
        "[[phases]]",
        'name = "all"',
        'needs = ["backend"]',
        "select = { priorities = [2, 3] }",
        "",
        "# The test index: priority (1 = highest), category and money at risk per file.",
    ]
    for f in files:
        category = f.markers[0] if f.markers else "general"
        lines += [
            "[[index.files]]",
            f'path = "{rel}/{f.path}"',
            "priority = 2",
            f'category = "{category}"',
            "mrr_at_risk_usd = 0",
            "",
        ]
    lines += [
        "[tracker]",
        'kind = "local"          # or "github" / "gitlab"',
        "",
        "[remediation]",
        "enabled = false         # actions are dry-run unless enabled or --allow-remediation",
        "",
    ]
    return "\n".join(lines)
