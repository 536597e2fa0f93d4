"""GitHub and GitLab adapters against local fakes that speak their wire formats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import TOKEN, FakeState, github_app, gitlab_app, serve
from tracker_samples import make_cluster, make_config

from greenloop.config import Config
from greenloop.errors import UserError
from greenloop.records import IssueAction, Verdict
from greenloop.store import Store
from greenloop.trackers.filing import file_issues, sync_outbox
from greenloop.trackers.listing import list_issues

SECRET = "ghp_Pl4ntedS3cretT0kenValue1234567890"


@pytest.fixture(params=["github", "gitlab"])
def hosted(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeState, Config]]:
    state = FakeState()
    monkeypatch.setenv("GL_TEST_TRACKER_TOKEN", TOKEN)
    if request.param == "github":
        app, options = github_app(state), {"kind": "github", "repo": "acme/shop"}
    else:
        app, options = gitlab_app(state), {"kind": "gitlab", "project": "acme/shop"}
    with serve(app) as url:
        api = url if request.param == "github" else f"{url}/api/v4"
        yield (
            state,
            make_config(
                tmp_path, **options, api_url=api, token_env="GL_TEST_TRACKER_TOKEN", timeout_s=2
            ),
        )


def file(
    config: Config, store: Store, tmp_path: Path, run_id: str, clusters, verdict=Verdict.FAILING
):
    return file_issues(
        clusters,
        config=config,
        store=store,
        run_id=run_id,
        verdict=verdict,
        out_dir=tmp_path / "out",
        command_line="greenloop run",
        revision="rev-9",
    )


def test_dedupe_reopen_and_close(hosted, sqlite_store: Store, tmp_path: Path) -> None:
    state, config = hosted
    # Filler issues so finding ours needs the Link pagination (page size 2).
    others = [make_cluster(fingerprint=f"other-{i}", reason=f"OTHER-{i}") for i in range(3)]
    file(config, sqlite_store, tmp_path, "run-0", others)
    cluster = make_cluster()
    created, *rest = file(config, sqlite_store, tmp_path, "run-1", [cluster, *others])
    assert {r.action for r in rest} == {IssueAction.UPDATED}
    assert created.action is IssueAction.CREATED
    [updated, *_] = file(config, sqlite_store, tmp_path, "run-2", [cluster, *others])
    assert (updated.action, updated.key) == (IssueAction.UPDATED, created.key)
    number = int(created.key)
    assert len(state.issues) == 4 and len(state.comments[number]) == 1
    labels = state.issues[number]["labels"]
    names = [x["name"] for x in labels] if labels and isinstance(labels[0], dict) else labels
    assert {"greenloop", "infrastructure"} <= set(names)

    file(config, sqlite_store, tmp_path, "run-3", [], Verdict.GREEN)
    refs = file(config, sqlite_store, tmp_path, "run-4", [], Verdict.GREEN)
    assert [r.action for r in refs] == [IssueAction.CLOSED] * 4
    assert state.issues[number]["state"] == "closed"
    [reopened] = file(config, sqlite_store, tmp_path, "run-5", [cluster])
    assert reopened.action is IssueAction.REOPENED
    assert state.issues[number]["state"] in ("open", "opened")
    assert len(state.issues) == 4


@pytest.mark.parametrize("outage", ["down", "rate_limited_429", "rate_limited_403"])
def test_outbox_delivers_after_an_outage_in_order_exactly_once(
    hosted, sqlite_store: Store, tmp_path: Path, outage: str
) -> None:
    state, config = hosted
    cluster = make_cluster()
    if outage == "down":
        state.down = True
    else:
        state.rate_limited = int(outage[-3:])
    [queued] = file(config, sqlite_store, tmp_path, "run-1", [cluster])
    [queued_again] = file(config, sqlite_store, tmp_path, "run-2", [cluster])
    assert (queued.action, queued_again.action) == (IssueAction.QUEUED, IssueAction.QUEUED)
    assert state.issues == {}
    [row] = list_issues(sqlite_store, config.tracker)
    assert (row.pending_ops, row.key) == (2, None)

    state.down, state.rate_limited = False, None
    result = sync_outbox(config, sqlite_store, tmp_path / "out")
    assert (result.delivered, result.pending, result.error) == (2, 0, None)
    assert len(state.issues) == 1  # created once
    [number] = state.issues
    assert len(state.comments[number]) == 1  # the second run's occurrence, after the create
    again = sync_outbox(config, sqlite_store, tmp_path / "out")
    assert again.delivered == 0 and len(state.comments[number]) == 1


def test_create_whose_reply_was_lost_is_not_duplicated(
    hosted, sqlite_store: Store, tmp_path: Path
) -> None:
    state, config = hosted
    state.lose_next_create = True
    [ref] = file(config, sqlite_store, tmp_path, "run-1", [make_cluster()])
    assert ref.action is IssueAction.QUEUED
    assert len(state.issues) == 1  # the tracker did create it
    result = sync_outbox(config, sqlite_store, tmp_path / "out")
    assert (result.delivered, result.pending) == (1, 0)
    assert len(state.issues) == 1
    [row] = list_issues(sqlite_store, config.tracker)
    assert row.key == "1"


def test_next_run_delivers_pending_ops_first(hosted, sqlite_store: Store, tmp_path: Path) -> None:
    state, config = hosted
    state.down = True
    file(config, sqlite_store, tmp_path, "run-1", [make_cluster()])
    state.down = False
    [ref] = file(config, sqlite_store, tmp_path, "run-2", [make_cluster()])
    assert ref.action is IssueAction.UPDATED and ref.key == "1"
    assert len(state.issues) == 1 and len(state.comments[1]) == 1


def test_planted_secrets_never_reach_the_tracker(
    hosted, sqlite_store: Store, tmp_path: Path
) -> None:
    state, config = hosted
    cluster = make_cluster(
        excerpt=f"requests failed: Authorization: Bearer {SECRET} at postgresql://u:hunter2pw@db/x",
        reason=f"AUTH-401 {SECRET}",
    )
    file(config, sqlite_store, tmp_path, "run-1", [cluster])
    file(config, sqlite_store, tmp_path, "run-2", [cluster])
    sent = "\n".join(state.bodies)
    assert sent and SECRET not in sent and "hunter2pw" not in sent
    assert TOKEN not in sent


def test_unreachable_tracker_queues(
    tmp_path: Path, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    monkeypatch.setenv("GL_TEST_TRACKER_TOKEN", TOKEN)
    config = make_config(
        tmp_path,
        kind="github",
        repo="acme/shop",
        api_url=f"http://127.0.0.1:{free_port}",
        token_env="GL_TEST_TRACKER_TOKEN",
    )
    [ref] = file(config, sqlite_store, tmp_path, "run-1", [make_cluster()])
    assert ref.action is IssueAction.QUEUED
    result = sync_outbox(config, sqlite_store, tmp_path / "out")
    assert result.pending == 1 and "cannot reach" in (result.error or "")


def test_missing_token_is_one_clear_user_error(
    tmp_path: Path, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GL_TEST_MISSING_TOKEN", raising=False)
    config = make_config(
        tmp_path, kind="github", repo="acme/shop", token_env="GL_TEST_MISSING_TOKEN"
    )
    with pytest.raises(UserError, match="GL_TEST_MISSING_TOKEN is not set"):
        file(config, sqlite_store, tmp_path, "run-1", [make_cluster()])
