"""The local tracker for real: markdown files plus the issue index in SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tracker_samples import make_cluster, make_config

from greenloop.errors import ConfigError
from greenloop.records import IssueAction, Verdict
from greenloop.store import Store
from greenloop.trackers.filing import file_issues, sync_outbox
from greenloop.trackers.listing import list_issues, show_issue


def file(store: Store, tmp_path: Path, run_id: str, clusters, verdict=Verdict.FAILING, **kw):
    return file_issues(
        clusters,
        config=make_config(tmp_path, **kw),
        store=store,
        run_id=run_id,
        verdict=verdict,
        out_dir=tmp_path / "out",
        command_line="greenloop run --focus websocket",
        revision="rev-7",
    )


def issue_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out" / "issues").glob("GL-*.md"))


def test_first_run_creates_second_comments(store: Store, tmp_path: Path) -> None:
    cluster = make_cluster()
    [first] = file(store, tmp_path, "run-1", [cluster])
    assert first.action is IssueAction.CREATED
    assert first.title == "E2E-DEPLOY-WEBSOCKET-503-test_websocket_events"
    assert first.key == "GL-1"
    text = Path(first.location).read_text()
    for section in (
        "## Impact",
        "## Current behavior",
        "## Expected behavior",
        "## Reproduction",
        "## Technical details",
        "## Five whys",
        "## Evidence",
    ):
        assert section in text
    assert "greenloop run --focus websocket" in text
    assert "labels=greenloop,infrastructure" in text

    [second] = file(store, tmp_path, "run-2", [cluster])
    assert (second.action, second.key) == (IssueAction.UPDATED, "GL-1")
    assert len(issue_files(tmp_path)) == 1
    assert "occurrence #2" in Path(first.location).read_text()
    [row] = list_issues(store, "local")
    assert (row.occurrences, row.state, row.pending_ops) == (2, "open", 0)


def test_close_after_two_green_runs_then_reopen_on_regression(store: Store, tmp_path: Path) -> None:
    cluster = make_cluster()
    [created] = file(store, tmp_path, "run-1", [cluster])
    assert file(store, tmp_path, "run-2", [], verdict=Verdict.FAILING) == []  # proves nothing
    assert file(store, tmp_path, "run-3", [], verdict=Verdict.GREEN) == []  # green 1 of 2
    [closed] = file(store, tmp_path, "run-4", [], verdict=Verdict.GREEN)
    assert (closed.action, closed.key) == (IssueAction.CLOSED, "GL-1")
    text = Path(created.location).read_text()
    assert "state=closed" in text and "2 consecutive green runs" in text

    [reopened] = file(store, tmp_path, "run-5", [cluster])
    assert (reopened.action, reopened.key) == (IssueAction.REOPENED, "GL-1")
    assert "state=open" in Path(created.location).read_text()
    assert len(issue_files(tmp_path)) == 1


def test_close_after_green_is_configurable(sqlite_store: Store, tmp_path: Path) -> None:
    file(sqlite_store, tmp_path, "run-1", [make_cluster()], close_after_green=1)
    [closed] = file(sqlite_store, tmp_path, "run-2", [], Verdict.GREEN, close_after_green=1)
    assert closed.action is IssueAction.CLOSED


@pytest.mark.parametrize("rounds", [3])
def test_racing_runs_never_open_two_issues(store: Store, tmp_path: Path, rounds: int) -> None:
    """Threads filing the same new problem at once: one creates, the others comment."""
    for r in range(rounds):
        cluster = make_cluster(fingerprint=f"race-{r}")
        barrier = threading.Barrier(2)
        results: list = []
        errors: list[BaseException] = []

        def go(
            run_id: str, cluster=cluster, barrier=barrier, results=results, errors=errors
        ) -> None:
            try:
                barrier.wait()
                results.extend(file(store, tmp_path, run_id, [cluster]))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(f"run-{r}-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(ref.action.value for ref in results) in (
            ["created", "updated"],
            ["created", "queued"],  # the loser's comment waits for the winner's create
        )
        sync_outbox(make_config(tmp_path), store, tmp_path / "out")
        [row] = [i for i in list_issues(store, "local") if i.fingerprint == f"race-{r}"]
        assert (row.occurrences, row.pending_ops) == (2, 0)
    marked = [p for p in issue_files(tmp_path)]
    assert len(marked) == rounds


def test_show_issue_renders_the_file(sqlite_store: Store, tmp_path: Path) -> None:
    [_ref] = file(sqlite_store, tmp_path, "run-1", [make_cluster()])
    shown = show_issue(sqlite_store, make_config(tmp_path), "GL-1", out_dir=tmp_path / "out")
    assert "WEBSOCKET-503" in shown.markup  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="not in the local index"):
        show_issue(sqlite_store, make_config(tmp_path), "GL-99", out_dir=tmp_path / "out")


def test_unknown_kind_and_bad_options_are_config_errors(
    sqlite_store: Store, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"tracker\.kind"):
        file(sqlite_store, tmp_path, "r", [make_cluster()], kind="jira")
    with pytest.raises(ConfigError, match=r"tracker\.colour: local tracker: unknown key"):
        file(sqlite_store, tmp_path, "r", [make_cluster()], colour="red")


def test_local_issues_live_with_the_store_not_with_each_out_folder(
    store: Store, tmp_path: Path
) -> None:
    """A new --out per run: keys stay unique per store, updates and closes find their file."""

    def file_to(out: str, run_id: str, clusters, verdict=Verdict.FAILING):  # type: ignore[no-untyped-def]
        return file_issues(
            clusters,
            config=make_config(tmp_path, close_after_green=1),
            store=store,
            run_id=run_id,
            verdict=verdict,
            out_dir=tmp_path / out,
        )

    websocket, checkout = make_cluster(), make_cluster(fingerprint="checkout-500")
    [first] = file_to("out-1", "run-1", [websocket])
    [again, other] = file_to("out-2", "run-2", [websocket, checkout])
    assert (first.key, again.key, other.key) == ("GL-1", "GL-1", "GL-2")
    assert again.action is IssueAction.UPDATED and other.action is IssueAction.CREATED
    home = tmp_path / "out-1" / "issues"
    assert sorted(p.name for p in home.glob("GL-*.md")) == ["GL-1.md", "GL-2.md"]
    assert "### Comment" in (home / "GL-1.md").read_text()
    assert not (tmp_path / "out-2" / "issues").exists()
    closed = file_to("out-3", "run-3", [], Verdict.GREEN)
    assert {c.action for c in closed} == {IssueAction.CLOSED}
    assert "state=closed" in (home / "GL-1.md").read_text()
