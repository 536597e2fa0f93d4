"""The text of the starter greenloop.toml (pure): every proposal commented with its evidence."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from greenloop.init import PhasePlan, Survey, active_targets
from greenloop.init.scan import SYSTEM_VARIABLES
from greenloop.init.targets import Setting, Target, parsed_literals, password_variable, url_kind
from greenloop.ports import DEFAULT_PORT


def q(text: str) -> str:
    """A TOML basic string."""
    return json.dumps(text, ensure_ascii=False)


def render_config(s: Survey) -> str:
    """The whole file: header of findings, environment, execution, probes, phases, index."""
    lines = header(s)
    active = active_targets(s)
    lines += environment(s, active)
    lines += execution(s, active)
    lines += components(s, active)
    lines += phases(s)
    lines += index_section(s)
    lines += [
        "# The running revision, so the worklog says what was tested (else it is",
        '# "unknown"): a JSON endpoint, or a command that prints that JSON.',
        "# [deploy]",
        '# version_url = "https://staging.example.com/version"',
        '# command = ["./deploy.sh"]          # deploys the latest revision (--deploy)',
        "",
        "[tracker]",
        'kind = "local"          # or "github" / "gitlab": see docs/trackers.md',
        "",
        "[remediation]",
        "enabled = false         # actions are dry-run unless enabled or --allow-remediation",
        "",
    ]
    return "\n".join(lines)


def header(s: Survey) -> list[str]:
    rel = s.relative(s.tests_dir)
    lines = [
        f"# greenloop.toml: written by `greenloop init {rel}`. Reference: docs/configuration.md",
        "# Every relative path in this file is relative to this file's folder.",
    ]
    files = s.test_files
    if s.collection.error is None:
        lines.append(
            f"# pytest collected {s.collection.total} tests in {len(s.collection.counts)} files"
            f" under {rel}/."
        )
        for error in s.collection.errors[:5]:
            lines.append(f"#   could not collect: {error}")
    else:
        defs = sum(f.tests for f in s.scan.files)
        lines.append(f"# Could not collect with pytest: {s.collection.error}.")
        lines.append(
            f"# Counted {defs} `def test` functions in {len(files)} files instead"
            " (a parametrised test counts once)."
        )
    if s.index_file is not None:
        lines += index_summary(s)
    elif s.index_problem:
        lines.append(f"# No test index read: {s.index_problem}")
    else:
        lines.append(
            "# No test index found (a markdown table, TOML or YAML of file, priority and"
            " money at risk): every test runs in one phase."
        )
    markers = Counter(m for f in s.scan.files for m in f.markers)
    if markers:
        seen = ", ".join(f"{m} ({n})" for m, n in markers.most_common())
        lines.append(f"# Markers seen (select them with select.markers): {seen}")
    if s.scan.options:
        shown = ", ".join(
            f"{o.flag}" + (f" (default {o.default})" if o.default else "") for o in s.scan.options
        )
        lines.append(f"# Options conftest.py adds: {shown}")
    lines.append("")
    return lines


def index_summary(s: Survey) -> list[str]:
    assert s.index_file is not None
    by_priority: dict[int, list[str]] = {}
    for row in s.index_rows:
        if row.priority is not None:
            by_priority.setdefault(row.priority, []).append(row.path)
    parts = [
        f"P{p}: {len(paths)} files, {sum(s.count(f) for f in paths)} tests"
        for p, paths in sorted(by_priority.items())
    ]
    money = sum(r.mrr_at_risk_usd or 0 for r in s.index_rows)
    lines = [
        f"# Test index {s.relative(s.index_file)}: {len(s.index_rows)} files"
        + (f" ({'; '.join(parts)})" if parts else "")
        + (f", ${money:,.0f}/month at risk." if money else ".")
    ]
    missing = [r.path for r in s.index_rows if not (s.tests_dir / r.path).is_file()]
    if missing:
        lines.append(f"#   not found under the tests folder: {', '.join(missing[:5])}")
    indexed = {r.path for r in s.index_rows}
    outside = [f for f in s.test_files if f not in indexed]
    if outside:
        lines.append(
            f"#   {len(outside)} test files are not in the index and run in no phase"
            f" (index.unlisted): e.g. {', '.join(outside[:3])}; list them to run them."
        )
    return lines


# --------------------------------------------------------------------------- environment


def url_expression(target: Target) -> str:
    """The target's URL, built from the variables the tests read so the two stay in step."""
    env = [st for st in target.settings if st.kind == "env"]
    whole = next((st for st in env if "://" in st.value or st.value == ""), None)
    if whole is not None:
        # One URL of the target's kind: the probe reads the variable the tests read.
        # A list of URLs, a password init saw (templated) or a default of another kind
        # (sqlite) cannot stand for the server: its URL is written instead.
        single = "," not in whole.value and not whole.templated
        if single and (whole.value == "" or url_kind(whole.value) == target.kind):
            return _var(_with_host(whole))
        if target.url:
            return target.url
    parts = urlsplit(target.url)
    host = next((st for st in env if st.name.upper().endswith("HOST")), None)
    port = next((st for st in env if st.name.upper().endswith("PORT")), None)
    if host is None and port is None:
        return target.url
    host_text = _var(host) if host else (parts.hostname or "127.0.0.1")
    port_text = _var(port) if port else str(parts.port or DEFAULT_PORT.get(parts.scheme) or "")
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{host_text}:{port_text}{rest}"


def _with_host(setting: Setting) -> Setting:
    """A default with no host (`postgresql:///db`: libpq's local socket) as the probe can
    take it: the same server on 127.0.0.1."""
    parts = urlsplit(setting.value)
    if not setting.value or parts.hostname:
        return setting
    netloc = f"{parts.netloc}127.0.0.1" if parts.netloc.endswith("@") else "127.0.0.1"
    value = urlunsplit(parts._replace(netloc=netloc))
    return Setting(setting.kind, setting.name, value, setting.files, setting.templated)


def _public(url: str) -> str:
    """A URL without the user and password a templated one holds (urls name hosts)."""
    if "${secret:" not in url or "@" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _var(setting: Setting) -> str:
    """`${NAME:-value}` (`${NAME}` when there is no value to fall back to); a templated
    value (it holds `${secret:...}`) as it is."""
    if setting.templated:
        return setting.value
    try:
        secret = "secret:" if urlsplit(setting.value).password else ""
    except ValueError:  # not a URL we can read: treat it as a credential
        secret = "secret:"
    if not setting.value:
        return f"${{{secret}{setting.name}}}"
    return f"${{{secret}{setting.name}:-{setting.value}}}"


def environment(s: Survey, active: list[Target]) -> list[str]:
    lines = ["[environment]", 'name = "staging"']
    if active:
        lines += [
            "# The servers the tests talk to. Their hosts are the target: a passing test that",
            "# reached none of them did not really run. ${VAR:-default} reads VAR when it is set.",
        ]
        for target in active:
            lines.append(f"# {target.name}: found in {'; '.join(target.evidence[:3])}")
        urls = ", ".join(f"{t.name} = {q(_public(url_expression(t)))}" for t in active)
        lines.append(f"urls = {{ {urls} }}")
    else:
        lines += [
            "# No server found in the suite: name the URL under test (tests read it as",
            "# GREENLOOP_BASE_URL), or urls = { name = URL } for several.",
            'base_url = "${STAGING_URL}"',
        ]
    env = [st for t in active for st in t.settings if st.kind == "env"]
    others = other_variables(s, {st.name for st in env})
    if env:
        lines.append("# How the tests are told where those servers are: the variables they read.")
        pairs = ", ".join(f"{st.name} = {q(_var(st))}" for st in env)
        lines.append(f"env = {{ {pairs} }}")
    for st in env:
        if st.templated:
            lines.append(
                f"# {st.name} was set when init ran; its password is not written here:"
                f" set {password_variable(st.name)} (a secret) for greenloop."
            )
    for name, files in others:
        default = _default_of(s, name)
        said = f", default {default}: {_no_server(default)}" if default else ""
        lines.append(
            f"# The tests also read {name} ({files}{said}): set it in env if they need it."
        )
    literals = parsed_literals(s.scan)
    if literals:
        lines.append(
            f"# Not servers: {len(literals)} URL literals the tests only parse or compare,"
            f" or with placeholder parts, e.g. {'; '.join(literals[:3])}"
        )
    lines += [
        '# Mark credentials with ${secret:NAME}: e.g. env = { API_TOKEN = "${secret:API_TOKEN}" }',
        "# Values from ${NAME} stay readable when they are URLs without a password.",
        "",
    ]
    return lines


def _default_of(s: Survey, name: str) -> str | None:
    return next((r.default for r in s.scan.env_reads if r.name == name and r.default), None)


def _no_server(value: str) -> str:
    """Why a variable's default is no server, in a few words."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme.startswith(("sqlite", "file")):
        return "a file, no server"
    return "no server greenloop can probe" if scheme else "not an address"


def other_variables(s: Survey, used: set[str]) -> list[tuple[str, str]]:
    """Variables the tests read that point at no server (flags, tokens), with their files."""
    found: dict[str, list[str]] = {}
    for read in s.scan.env_reads:
        if read.name in used or read.name in SYSTEM_VARIABLES or read.name in s.scan.env_writes:
            continue
        found.setdefault(read.name, [])
        if read.file not in found[read.name]:
            found[read.name].append(read.file)
    return [(n, ", ".join(f[:2])) for n, f in found.items()][:12]


def execution(s: Survey, active: list[Target]) -> list[str]:
    lines = ["[execution]", f"tests_dir = {q(s.relative(s.tests_dir))}"]
    if s.python:
        lines.append(f"python = {q(s.python)}  # the project's interpreter runs its suite")
    else:
        lines.append(
            '# python = ".venv/bin/python"  # run the suite with the project\'s own interpreter'
        )
    lines += [
        'workers = 1             # or "auto" for IO-bound E2E suites',
        "test_timeout_s = 60",
        "reruns = 1              # failed tests re-run once: pass-on-retry is flaky, not green",
    ]
    options = [st for t in active for st in t.settings if st.kind == "option"]
    if options:
        args = ", ".join(f"{q(st.name)}, {q(st.value)}" for st in options)
        lines.append("# The options conftest.py reads for the servers above.")
        lines.append(f"pytest_args = [{args}]")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- probes


def components(s: Survey, active: list[Target]) -> list[str]:
    lines = ["# Components and their health probes; the gate names the deepest failing one."]
    if not active:
        lines += [
            "[[components]]",
            'name = "app"',
            "depends_on = []",
            "",
            "[[probes]]",
            'name = "app"',
            'component = "app"',
            'kind = "http"',
            'url = "${STAGING_URL}"  # a health endpoint is best',
            'conditions = ["status < 500"]',
            "timeout_s = 2",
            "",
        ]
        return lines
    for target in active:
        lines += ["[[components]]", f"name = {q(target.name)}", "depends_on = []", ""]
        lines += probe(target)
    for target in s.targets:
        if target in active or not target.settings:
            continue
        lines.append(
            f"# Not probed: {target.kind} at {target.url or '(unset)'}, read only by"
            f" {', '.join(sorted(target.files)[:3])}, which the index does not list."
        )
    if any(t not in active and t.settings for t in s.targets):
        lines.append("")
    return lines


def probe(target: Target) -> list[str]:
    url = url_expression(target)
    lines = [
        "[[probes]]",
        f"name = {q(target.name)}",
        f"component = {q(target.name)}",
        f"kind = {q(target.kind)}",
    ]
    if target.kind == "redis":
        lines.append(f"url = {q(url)}")
    elif target.kind == "postgres":
        lines.append(f"dsn = {q(postgres_dsn(target, url))}")
    elif target.kind == "tcp":
        lines += [f"host = {q(target.host)}", f"port = {target.port}"]
    elif target.kind == "websocket":
        lines.append(f"url = {q(url)}")
    else:
        lines.append(f"url = {q(url)}  # a health endpoint is best")
        lines.append('conditions = ["status < 500"]')
    lines += ["timeout_s = 2", ""]
    return lines


def postgres_dsn(target: Target, url: str) -> str:
    """A DSN the probe can use: the plain postgresql:// form, with a user and a database.

    psycopg does not read SQLAlchemy's postgresql+driver:// form; a URL built from
    host and port variables names no user or database, so PGUSER (else postgres)
    and the `postgres` database every server has are used. The parts are put
    together with urllib.parse (a query string stays last).
    """
    if any("+" in st.value.split("://", 1)[0] for st in target.settings):
        return target.url
    parts = urlsplit(target.url)
    if parts.username or any("://" in st.value for st in target.settings) or "${" in url[:2]:
        return url
    given = urlsplit(url)
    netloc = given.netloc if "@" in given.netloc else f"${{PGUSER:-postgres}}@{given.netloc}"
    path = given.path if given.path not in ("", "/") else "/postgres"
    return urlunsplit((given.scheme, netloc, path, given.query, ""))


# --------------------------------------------------------------------------- phases, index


def phases(s: Survey) -> list[str]:
    lines = ["# Progressive phases: each runs only when the components it needs are healthy."]
    for phase in s.phases:
        lines += phase_lines(phase, s.scan.mocking)
    return lines


def phase_lines(phase: PhasePlan, mocking: Sequence[tuple[str, str]] = ()) -> list[str]:
    what = f"P{', P'.join(str(p) for p in phase.priorities)}" if phase.priorities else "every"
    lines = ["[[phases]]", f"name = {q(phase.name)}  # {what} tests: {phase.tests} selected"]
    lines.append(f"needs = [{', '.join(q(n) for n in phase.needs)}]")
    mocks = sorted({n for f, n in mocking if not phase.files or f in phase.files})
    keyword = " and ".join(f"not {n}" for n in mocks)
    if mocks:
        lines.append(
            f"# {', '.join(mocks[:6])} patch something with a mock: if they are unit tests,"
            " they reach no server and the run will say so; leave them out with keyword."
        )
    chosen = [f"priorities = [{', '.join(str(p) for p in phase.priorities)}]"]
    if phase.priorities:
        lines.append(f"select = {{ {', '.join(chosen)} }}")
        if mocks:
            lines.append(f"# select = {{ {chosen[0]}, keyword = {q(keyword)} }}")
    elif mocks:
        lines.append(f"# select = {{ keyword = {q(keyword)} }}")
    if phase.min_pass_rate:
        lines.append(f"min_pass_rate = {phase.min_pass_rate:g}    # do not expand below this")
    lines.append("")
    return lines


def index_section(s: Survey) -> list[str]:
    if s.index_file is None:
        return [
            "# The test index: priority (1 = highest), category and money at risk per file,",
            "# as a markdown table, TOML or YAML file (docs/configuration.md), e.g.",
            '# [index]\n# path = "tests/INDEX.md"',
            "",
        ]
    return [
        "# The team's test index, read at every run (priorities, categories, money at risk).",
        "[index]",
        f"path = {q(s.relative(s.index_file))}",
        'unlisted = "skip"       # test files the index does not list run in no phase',
        "",
    ]


def phase_summary(s: Survey) -> list[str]:
    """What init found, in a few lines for the terminal."""
    if s.collection.error is None:
        counted = f"pytest collected {s.collection.total} tests"
    else:
        counted = f"could not collect with pytest ({s.collection.error}); counted `def test`"
    lines = [counted]
    if s.index_file is not None:
        lines.append(f"test index: {s.relative(s.index_file)} ({len(s.index_rows)} files)")
    elif s.index_problem:
        lines.append(f"no test index read: {s.index_problem}")
    active = active_targets(s)
    if active:
        lines.append(
            "servers: " + ", ".join(f"{t.name} ({t.kind} {url_expression(t)})" for t in active)
        )
    for phase in s.phases:
        lines.append(f"phase {phase.name}: {phase.tests} tests, needs {list(phase.needs)}")
    lines.append("set [deploy] version_url so the worklog names the revision it tested")
    return lines
