"""GitHub Issues over the REST API v3.

Finds an issue by the hidden fingerprint marker in its body, among the issues
carrying the marker label (listing, not the search API, whose index lags behind
a create by seconds to minutes, which would duplicate a create whose reply was lost).
The token comes from the environment variable named by `tracker.token_env` and is
only ever put in the Authorization header.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from greenloop.errors import UserError
from greenloop.kinds import KindOptions
from greenloop.trackers.base import HttpTracker, RemoteIssue, fingerprint_marker


class GitHubOptions(KindOptions):
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")  # owner/name
    api_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    timeout_s: float = Field(10.0, gt=0)
    # The label every greenloop issue carries; find() lists issues with it.
    marker_label: str = "greenloop"


class GitHubTracker(HttpTracker):
    kind = "github"
    Options = GitHubOptions

    def __init__(self, options: GitHubOptions, token: str) -> None:
        super().__init__(
            options.api_url,
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            options.timeout_s,
        )
        self.options = options
        self.name = f"github:{options.repo}"
        self.repo_path = f"/repos/{options.repo}"

    @classmethod
    def build(cls, options: GitHubOptions, **_: Any) -> GitHubTracker:
        return cls(options, _token(options.token_env, "github"))

    @classmethod
    def index_name(cls, options: GitHubOptions) -> str:
        # Read-only commands name the tracker from options as written (maybe unvalidated).
        return f"github:{getattr(options, 'repo', '')}"

    def find(self, fingerprint: str) -> RemoteIssue | None:
        marker = fingerprint_marker(fingerprint)
        params = {"state": "all", "labels": self.options.marker_label, "per_page": 100}
        for item in self.paginate(f"{self.repo_path}/issues", params):
            if "pull_request" not in item and marker in (item.get("body") or ""):
                return _issue(item)
        return None

    def create(self, title: str, body: str, labels: Sequence[str]) -> RemoteIssue:
        labels = list(dict.fromkeys([self.options.marker_label, *labels]))
        item = self.json(
            "POST",
            f"{self.repo_path}/issues",
            json={"title": title, "body": body, "labels": labels},
        )
        return _issue(item)

    def comment(self, key: str, body: str) -> None:
        self.request(
            "POST", f"{self.repo_path}/issues/{key}/comments", json={"body": body}, issue_level=True
        )

    def comments(self, key: str) -> list[str]:
        path = f"{self.repo_path}/issues/{key}/comments"
        return [c.get("body") or "" for c in self.paginate(path, {"per_page": 100})]

    def reopen(self, key: str) -> None:
        self._state(key, {"state": "open"})

    def close(self, key: str, comment: str | None = None) -> None:
        if comment:
            self.comment(key, comment)
        self._state(key, {"state": "closed", "state_reason": "completed"})

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        labels = list(dict.fromkeys([self.options.marker_label, *labels]))
        self.request(
            "PUT",
            f"{self.repo_path}/issues/{key}/labels",
            json={"labels": labels},
            issue_level=True,
        )

    def _state(self, key: str, payload: dict[str, str]) -> None:
        self.request("PATCH", f"{self.repo_path}/issues/{key}", json=payload, issue_level=True)


def _issue(item: dict[str, Any]) -> RemoteIssue:
    return RemoteIssue(
        key=str(item["number"]),
        title=str(item.get("title", "")),
        state="closed" if item.get("state") == "closed" else "open",
        location=str(item.get("html_url", "")),
    )


def _token(env: str, kind: str) -> str:
    token = os.environ.get(env, "")
    if not token:
        raise UserError(
            f"tracker.token_env: environment variable {env} is not set",
            hint=f'the {kind} tracker needs a token; export {env} or use kind = "local"',
        )
    return token
