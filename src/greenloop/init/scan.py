"""What a test tree says about itself, read without importing it (I/O: files only).

`scan_suite` walks the tests folder once and parses each Python file: test
functions and markers, the environment variables the code reads
(`os.environ[...]`, `os.getenv`, `environ.get`), the command-line options
conftest.py files add (`parser.addoption`), URL literals (noting whether the code
connects with them, see `greenloop.init.clients`) and clients built with no
address (their library's default server). It also reads
the project's own settings files (tox.ini, CI workflows, compose files,
.env examples) for URLs and `NAME=value` assignments of those variables.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from greenloop.indexfile import INDEX_SUFFIXES
from greenloop.init.clients import ClientDefault, client_defaults, connected_literals

# Markers pytest and its common plugins define: not categories a team chose.
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
        "anyio",
        "django_db",
        "flaky",
        "order",
    }
)
# Variables of the operating system or CI, not of the environment under test.
SYSTEM_VARIABLES = frozenset(
    {
        "TZ",
        "HOME",
        "PATH",
        "USER",
        "USERNAME",
        "LANG",
        "LC_ALL",
        "PWD",
        "SHELL",
        "TERM",
        "TMPDIR",
        "TEMP",
        "TMP",
        "CI",
        "GITHUB_ACTIONS",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "VIRTUAL_ENV",
        "COLUMNS",
        "NO_COLOR",
    }
)
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__", "build", "dist"}
)
URL = re.compile(
    r"\b(?:https?|wss?|postgres(?:ql)?(?:\+\w+)?|rediss?|unix|tcp|mysql(?:\+\w+)?|mongodb|amqps?)"
    r"://[^\s'\"<>`{}|\\^]*[^\s'\"<>`{}|\\^.,;:)\]]"
)
# NAME=value, NAME: value, NAME = "value" in ini, YAML, dotenv and Makefile lines.
ASSIGNMENT = re.compile(
    r"""^\s*(?:-\s*)?(?:export\s+)?["']?([A-Z][A-Z0-9_]{2,})["']?\s*[:=]\s*"""
    r"""(?:"([^"]*)"|'([^']*)'|([^"'\s#]+))"""
)
SETTINGS_FILES = (
    "tox.ini",
    "setup.cfg",
    "pytest.ini",
    "pyproject.toml",
    "noxfile.py",
    "Makefile",
    ".env.example",
    ".env.sample",
    ".env.test",
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.yml",
    "compose.yaml",
)
INDEX_NAME = re.compile(r"(index|priorit|risk|tests?|suite|catalog)", re.IGNORECASE)


@dataclass(frozen=True)
class EnvRead:
    """An environment variable the code reads, with the default it falls back to."""

    name: str
    default: str | None
    file: str  # relative to the tests folder


@dataclass(frozen=True)
class OptionAdded:
    """A pytest command-line option a conftest.py adds (`parser.addoption`)."""

    flag: str  # the long form, e.g. --redis-url
    default: str | None
    help: str
    file: str


@dataclass(frozen=True)
class UrlSeen:
    """A URL literal, and where: a test file (relative) or a settings file (relative to root)."""

    url: str
    where: str
    # False for a literal in Python code that no connect call is given (a test that
    # parses or compares it): no evidence of a server. Settings files: True.
    connects: bool = True


@dataclass(frozen=True)
class TestFile:
    """A test file: its `def test` count (a floor: parametrised tests count once) and markers."""

    __test__ = False

    path: str  # relative to the tests folder
    tests: int
    markers: tuple[str, ...]


@dataclass
class SuiteScan:
    """Everything `scan_suite` found, in file order."""

    tests_dir: Path
    root: Path  # the project folder (where pyproject.toml, setup.py or .git is)
    files: list[TestFile] = field(default_factory=list)
    env_reads: list[EnvRead] = field(default_factory=list)
    env_writes: set[str] = field(default_factory=set)
    options: list[OptionAdded] = field(default_factory=list)
    urls: list[UrlSeen] = field(default_factory=list)
    # NAME -> the values settings files give it (CI may run the suite against several).
    assignments: dict[str, list[str]] = field(default_factory=dict)
    index_files: list[Path] = field(default_factory=list)
    unparsable: list[str] = field(default_factory=list)
    # (test file, class or function) that patch something with unittest.mock: often unit
    # tests inside an E2E file, which the authenticity checks will rightly flag.
    mocking: list[tuple[str, str]] = field(default_factory=list)
    # Clients built with no address (`redis.Redis()`): their library's default server.
    client_defaults: list[ClientDefault] = field(default_factory=list)


def project_root(tests_dir: Path) -> Path:
    """The nearest folder at or above tests_dir with pyproject.toml, setup.py/cfg or .git."""
    here = tests_dir.resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in ("pyproject.toml", "setup.py", ".git")):
            return folder
        if (folder / "setup.cfg").exists():
            return folder
    return here.parent if here.parent != here else here


def python_files(folder: Path) -> Iterator[Path]:
    """Python files under folder, sorted, skipping virtualenvs, caches and hidden folders."""
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).parts[:-1]
        if any(p in SKIPPED_DIRS or p.startswith(".") for p in parts):
            continue
        yield path


def is_test_file(path: Path) -> bool:
    return path.name.startswith("test_") or path.name.endswith("_test.py")


def scan_suite(tests_dir: Path, extra_test_files: tuple[str, ...] = ()) -> SuiteScan:
    """Scan the tests folder and the project's settings files (see module docstring).

    `extra_test_files` (relative to tests_dir) count as test files even when their
    names do not look like it, e.g. because an index names them.
    """
    scan = SuiteScan(tests_dir=tests_dir, root=project_root(tests_dir))
    extra = set(extra_test_files)
    for path in python_files(tests_dir):
        rel = path.relative_to(tests_dir).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            scan.unparsable.append(rel)
            if is_test_file(path) or rel in extra:
                scan.files.append(TestFile(rel, 0, ()))
            continue
        _read_code(tree, rel, scan)
        if is_test_file(path) or rel in extra:
            tests = sum(
                1
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name.startswith("test")
            )
            markers = sorted({m for m in _markers(tree) if m not in BUILTIN_MARKERS})
            scan.files.append(TestFile(rel, tests, tuple(markers)))
            scan.mocking += [(rel, name) for name in mocking_tests(tree)]
    _read_upper_conftests(scan)
    _read_settings(scan)
    scan.index_files = find_index_files(tests_dir, scan.root)
    return scan


def _read_upper_conftests(scan: SuiteScan) -> None:
    """conftest.py files above the tests folder, up to the project root: pytest loads them
    too, and suites often read their servers' variables there."""
    root = scan.root.resolve()
    folder = scan.tests_dir.resolve().parent
    while folder == root or root in folder.parents:
        conftest = folder / "conftest.py"
        if conftest.is_file():
            try:
                tree = ast.parse(conftest.read_text(encoding="utf-8", errors="replace"))
            except SyntaxError:
                tree = None
            if tree is not None:
                _read_code(tree, os.path.relpath(conftest, scan.tests_dir.resolve()), scan)
        if folder == root:
            break
        folder = folder.parent


def find_index_files(tests_dir: Path, root: Path) -> list[Path]:
    """Candidate test index files: markdown, TOML or YAML named like an index, near the tests."""
    seen: list[Path] = []
    folders = [tests_dir, *_folders(tests_dir, depth=2)]
    if root != tests_dir:
        folders.append(root)
        folders.append(root / "docs")
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if (
                path.is_file()
                and path.suffix.lower() in INDEX_SUFFIXES
                and INDEX_NAME.search(path.stem)
                and path.name not in ("pyproject.toml", "mkdocs.yml", ".pre-commit-config.yaml")
                and path not in seen
            ):
                seen.append(path)
    return seen


def _folders(base: Path, depth: int) -> list[Path]:
    """Sub-folders of base down to `depth` levels, without virtualenvs, caches, hidden ones."""
    if depth == 0:
        return []
    found = []
    for child in sorted(base.iterdir()):
        if child.is_dir() and child.name not in SKIPPED_DIRS and not child.name.startswith("."):
            found += [child, *_folders(child, depth - 1)]
    return found


# --------------------------------------------------------------------------- Python code


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


def mocking_tests(tree: ast.Module) -> list[str]:
    """Top-level test classes and functions that use `patch(...)` / `patch.object(...)`."""
    found = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not (
            node.name.startswith("test") or node.name.startswith("Test") or "Test" in node.name
        ):
            continue
        if any(_is_patch(n) for n in ast.walk(node)):
            found.append(node.name)
    return found


def _is_patch(node: ast.AST) -> bool:
    """`patch(...)`, `mock.patch(...)` or `patch.object(...)` (not `patch.dict`)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "patch"
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "patch":
        return True
    owner = func.value
    owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
    return func.attr == "object" and owner_name == "patch"


ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*_?[A-Z0-9_]*$")


def _read_code(tree: ast.AST, rel: str, scan: SuiteScan) -> None:
    connected = connected_literals(tree)
    or_defaults = _or_defaults(tree)
    scan.client_defaults += client_defaults(tree, rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            _read_looked_up_names(node, rel, scan)
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = _string(node.slice)
            if name:
                if isinstance(node.ctx, ast.Store | ast.Del):
                    scan.env_writes.add(name)
                else:
                    scan.env_reads.append(EnvRead(name, or_defaults.get(id(node)), rel))
        elif isinstance(node, ast.Call):
            _read_call(node, rel, scan, or_defaults.get(id(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in URL.finditer(node.value):
                scan.urls.append(UrlSeen(match.group(0), rel, connects=id(node) in connected))


def _or_defaults(tree: ast.AST) -> dict[int, str]:
    """`os.environ.get("X") or "default"`: id of the read -> the string it falls back to."""
    found: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            for read, fallback in zip(node.values, node.values[1:], strict=False):
                value = _string(fallback)
                if value is not None and isinstance(read, ast.Call | ast.Subscript):
                    found[id(read)] = value
    return found


def _read_looked_up_names(
    func: ast.FunctionDef | ast.AsyncFunctionDef, rel: str, scan: SuiteScan
) -> None:
    """`environ[var]` with a computed name: the upper-case strings of that function are the names.

    e.g. `for kw, var in [("host", "PGHOST"), ("port", "PGPORT")]: environ[var]`.
    """
    computed = any(
        (isinstance(n, ast.Subscript) and _is_environ(n.value) and _string(n.slice) is None)
        or (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and (n.func.attr == "getenv" or (n.func.attr == "get" and _is_environ(n.func.value)))
            and n.args
            and _string(n.args[0]) is None
        )
        for n in ast.walk(func)
    )
    if not computed:
        return
    for n in ast.walk(func):
        if (
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and len(n.value) > 2
            and ENV_NAME.match(n.value)
        ):
            scan.env_reads.append(EnvRead(n.value, None, rel))


def _read_call(node: ast.Call, rel: str, scan: SuiteScan, or_default: str | None = None) -> None:
    func = node.func
    name = _string(node.args[0]) if node.args else None
    default = _string(node.args[1]) if len(node.args) > 1 else _keyword(node, "default")
    default = default or or_default
    if isinstance(func, ast.Attribute):
        reads = func.attr == "getenv" or (func.attr == "get" and _is_environ(func.value))
        if reads and name:
            scan.env_reads.append(EnvRead(name, default, rel))
        elif func.attr in ("setdefault", "update", "pop") and _is_environ(func.value):
            if name:
                scan.env_writes.add(name)
        elif func.attr == "addoption":
            _read_option(node, rel, scan)
    elif isinstance(func, ast.Name) and func.id == "getenv" and name:
        scan.env_reads.append(EnvRead(name, default, rel))


def _read_option(node: ast.Call, rel: str, scan: SuiteScan) -> None:
    flags = [s for s in (_string(a) for a in node.args) if s and s.startswith("--")]
    if not flags:
        return
    default = _keyword(node, "default")
    help_text = _keyword(node, "help") or ""
    scan.options.append(OptionAdded(flags[0], default, help_text, rel))


def _is_environ(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id == "environ"


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
        return str(node.value)
    return None


def _keyword(node: ast.Call, name: str) -> str | None:
    for keyword in node.keywords:
        if keyword.arg == name:
            return _string(keyword.value)
    return None


# --------------------------------------------------------------------------- settings files


def settings_files(root: Path) -> list[Path]:
    """The project's settings files that may name URLs and variables for the tests."""
    found = [root / name for name in SETTINGS_FILES if (root / name).is_file()]
    workflows = root / ".github" / "workflows"
    if workflows.is_dir():
        found += sorted(p for p in workflows.iterdir() if p.suffix in (".yml", ".yaml"))
    found += sorted(p for p in root.glob(".gitlab-ci.y*ml") if p.is_file())
    return found


def _read_settings(scan: SuiteScan) -> None:
    for path in settings_files(scan.root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        where = path.relative_to(scan.root).as_posix()
        for line in text.splitlines():
            for match in URL.finditer(line):
                scan.urls.append(UrlSeen(match.group(0), where))
            assignment = ASSIGNMENT.match(line)
            if assignment and assignment.group(1) not in SYSTEM_VARIABLES:
                value = next(g for g in assignment.groups()[1:] if g is not None)
                values = scan.assignments.setdefault(assignment.group(1), [])
                if value not in values:
                    values.append(value)
