"""Every mistake in a config stops `run` and `probe` at load, before a single test runs.

Each case is a real `greenloop run` against a real pytest tree whose one test writes a
marker file: the exit code must be 2, stderr one line naming the key, the marker absent
and the store without a run row. `greenloop probe` must reject the same file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from greenloop.cli import main

BASE = """
[environment]
name = "staging"

[execution]
tests_dir = "suite"
{execution}

[store]
url = "sqlite:///{store}"
"""

SUITE = """
from pathlib import Path

def test_writes_marker():
    Path({marker!r}).write_text("ran")
"""

# (id, TOML appended to BASE, a word the error line must contain)
LATE_AND_NONSENSE = [
    ("tracker-kind", '[tracker]\nkind = "jira"\n', "tracker.kind"),
    ("tracker-typo", '[tracker]\nlables = ["x"]\n', "tracker.lables"),
    ("tracker-label-format", '[tracker]\nlabels = ["{0}"]\n', "tracker.labels[0]"),
    (
        "tracker-token-missing",
        '[tracker]\nkind = "github"\nrepo = "o/r"\ntoken_env = "GL_TEST_NO_SUCH_TOKEN"\n',
        "GL_TEST_NO_SUCH_TOKEN",
    ),
    ("log-kind", '[[triage.logs]]\nname = "svc"\nkind = "syslog"\n', "triage.logs"),
    ("log-option", '[[triage.logs]]\nname = "svc"\nkind = "file"\nbogus = 1\n', "triage.logs"),
    (
        "rule-regex-huge-repeat",
        '[[triage.rules]]\nname = "r"\ncategory = "product"\npattern = "x{99999999999}"\n',
        "triage.rules[0].pattern",
    ),
    (
        "rule-regex-broken",
        '[[triage.rules]]\nname = "r"\ncategory = "product"\npattern = "(unclosed"\n',
        "triage.rules[0].pattern",
    ),
    (
        "rule-category",
        '[[triage.rules]]\nname = "r"\ncategory = "gremlins"\npattern = "x"\n',
        "triage.rules[0].category",
    ),
    ("template-missing", '[report]\nworklog_template = "nope.md.j2"\n', "worklog_template"),
    ("template-broken", '[report]\nworklog_template = "broken.md.j2"\n', "worklog_template"),
    ("redact-pattern", '[report]\nredact_patterns = ["x{99999999999}"]\n', "redact_patterns"),
    ("workers-zero", "EXEC:workers = 0", "execution.workers"),
    ("workers-negative", "EXEC:workers = -2", "execution.workers"),
    ("reruns-negative", "EXEC:reruns = -1", "execution.reruns"),
    ("phase-timeout-negative-global", "EXEC:phase_timeout_s = -1", "execution.phase_timeout_s"),
    ("phase-workers-zero", '[[phases]]\nname = "a"\nworkers = 0\n', "phases[0].workers"),
    ("phase-workers-negative", '[[phases]]\nname = "a"\nworkers = -3\n', "phases[0].workers"),
    ("phase-reruns-negative", '[[phases]]\nname = "a"\nreruns = -1\n', "phases[0].reruns"),
    ("phase-timeout-negative", '[[phases]]\nname = "a"\ntimeout_s = -1\n', "phases[0].timeout_s"),
    (
        "phase-test-timeout-zero",
        '[[phases]]\nname = "a"\ntest_timeout_s = 0\n',
        "phases[0].test_timeout_s",
    ),
    (
        "probe-url-colons",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "http"\nurl = "http://::::"\n',
        "probes[0].url",
    ),
    (
        "probe-url-port",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "http"\nurl = "http://h:99999/"\n',
        "probes[0].url",
    ),
    (
        "probe-ca-file",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "http"\n'
        'url = "https://127.0.0.1:1/"\nca_file = "/nonexistent/ca.pem"\n',
        "probes[0].ca_file",
    ),
    (
        "probe-tls-ca-file",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "tls"\nhost = "h"\n'
        'ca_file = "/nonexistent/ca.pem"\n',
        "probes[0].ca_file",
    ),
    (
        "probe-port",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "tcp"\nhost = "h"\nport = 70000\n',
        "probes[0].port",
    ),
    (
        "probe-condition-deep",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "tcp"\nhost = "h"\nport = 1\n'
        'conditions = ["' + "(" * 3000 + "connected" + ")" * 3000 + '"]\n',
        "probes[0].conditions[0]",
    ),
    (
        "probe-condition-long-number",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "tcp"\nhost = "h"\nport = 1\n'
        'conditions = ["latency_ms < ' + "9" * 5000 + '"]\n',
        "probes[0].conditions[0]",
    ),
    (
        "probe-postgres-dsn",
        '[[probes]]\nname = "p"\ncomponent = "c"\nkind = "postgres"\ndsn = "postgresql://h:x/db"\n',
        "probes[0].dsn",
    ),
    ("deploy-version-url", '[deploy]\nversion_url = "::::"\n', "deploy.version_url"),
    ("index-binary", '[index]\npath = "binary.idx"\n', "not UTF-8"),
    ("index-missing", '[index]\npath = "nope.toml"\n', "not found"),
    ("toml-deep", "x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("toml-long-int", "[loop]\nmax_iterations = " + "9" * 5000 + "\n", "not valid TOML"),
]

STORE_URLS = [
    ("pg-no-database", "postgresql://postgres@127.0.0.1:5432", "must name a database"),
    ("pg-empty", "postgresql://", "must name a database"),
    ("other-scheme", "mysql://u@h/db", "unsupported store scheme"),
    ("not-a-url", "::::", "not a database URL"),
    ("sqlite-memory", "sqlite://", "needs a file path"),
    ("sqlite-not-a-database", "sqlite:///{notdb}", "not a SQLite database"),
    ("sqlite-folder", "sqlite:///{folder}", "is a folder"),
]


def _project(tmp_path: Path, extra: str, store_url: str | None = None) -> tuple[Path, Path]:
    marker = tmp_path / "marker"
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_one.py").write_text(SUITE.format(marker=str(marker)))
    (tmp_path / "broken.md.j2").write_text("{% for x in %}\n")
    (tmp_path / "notdb.db").write_bytes(b"\x00binary, not sqlite\xff" * 10)
    (tmp_path / "folder.db").mkdir()
    (tmp_path / "binary.idx").write_bytes(bytes(range(256)) * 4)
    execution, extra = (extra[5:], "") if extra.startswith("EXEC:") else ("", extra)
    text = BASE.format(store=tmp_path / "store.db", execution=execution) + extra
    if store_url is not None:
        url = store_url.format(notdb=tmp_path / "notdb.db", folder=tmp_path / "folder.db")
        text = text.replace(f'url = "sqlite:///{tmp_path / "store.db"}"', f'url = "{url}"')
    config = tmp_path / "greenloop.toml"
    config.write_text(text)
    return config, marker


def _rejected(config: Path, marker: Path, capsys: pytest.CaptureFixture[str], word: str) -> None:
    for verb in ("run", "probe"):
        code = main([verb, "-c", str(config), "--json", str(config.parent / "r.json")])
        err = capsys.readouterr().err
        assert code == 2, (verb, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"greenloop: {config.parent}"), lines[0]  # the file at fault
        assert word in lines[0], lines[0]
        assert not marker.exists(), "a test ran before the config was rejected"
        assert not (config.parent / "r.json").exists()


@pytest.mark.parametrize(
    ("extra", "word"), [c[1:] for c in LATE_AND_NONSENSE], ids=[c[0] for c in LATE_AND_NONSENSE]
)
def test_late_and_nonsense_config_exits_2_before_any_test(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: str,
    word: str,
) -> None:
    monkeypatch.delenv("GL_TEST_NO_SUCH_TOKEN", raising=False)
    config, marker = _project(tmp_path, extra)
    _rejected(config, marker, capsys, word)


@pytest.mark.parametrize(
    ("url", "word"), [c[1:] for c in STORE_URLS], ids=[c[0] for c in STORE_URLS]
)
def test_unusable_store_urls_are_config_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    word: str,
) -> None:
    monkeypatch.delenv("GREENLOOP_STORE_URL", raising=False)
    config, marker = _project(tmp_path, "", store_url=url)
    _rejected(config, marker, capsys, word)
    assert not (tmp_path / "notdb.db").read_bytes().startswith(b"SQLite")


def test_store_url_from_the_environment_is_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENLOOP_STORE_URL", "postgresql://postgres@127.0.0.1:5432/")
    config, marker = _project(tmp_path, "")
    _rejected(config, marker, capsys, "GREENLOOP_STORE_URL")


def test_a_tracker_token_that_is_set_passes_and_labels_keep_unknown_braces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenloop.load import load_config
    from greenloop.records import Category, Cluster, RootCause
    from greenloop.trackers.body import issue_labels

    monkeypatch.setenv("GL_TEST_TOKEN", "t0ken-value")
    config, _ = _project(
        tmp_path,
        '[tracker]\nkind = "github"\nrepo = "o/r"\ntoken_env = "GL_TEST_TOKEN"\n'
        'labels = ["gl", "{category}", "{priority}"]\n',
    )
    cfg = load_config(config)
    cluster = Cluster(
        id="c1",
        fingerprint="f" * 16,
        category=Category.PRODUCT,
        confidence=0.9,
        tests=("t.py::test_x",),
        title="t",
        reason="R",
        root_cause=RootCause(summary="s", component=None),
    )
    assert issue_labels(cluster, cfg.tracker.labels, 1) == ["gl", "product", "P1"]
    # Text in braces that is not a placeholder is a label like any other, never a format.
    assert issue_labels(cluster, ["{{x}}", "a{"], None) == ["{{x}}", "a{"]
