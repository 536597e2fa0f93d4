"""GitLab issues over the REST API v4 (`/projects/:id/issues`, notes, `state_event`).

Like the GitHub kind, it finds issues by the fingerprint marker in the description
among those carrying the marker label. The token goes in the PRIVATE-TOKEN header.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pydantic import Field

from greenloop.kinds import KindOptions
from greenloop.trackers.base import HttpTracker, RemoteIssue, fingerprint_marker
from greenloop.trackers.github import _token


class GitLabOptions(KindOptions):
    project: str = Field(min_length=1)  # numeric id or "group/project"
    api_url: str = "https://gitlab.com/api/v4"
    token_env: str = "GITLAB_TOKEN"
    timeout_s: float = Field(10.0, gt=0)
    marker_label: str = "greenloop"


class GitLabTracker(HttpTracker):
    kind = "gitlab"
    Options = GitLabOptions

    def __init__(self, options: GitLabOptions, token: str) -> None:
        super().__init__(options.api_url, {"PRIVATE-TOKEN": token}, options.timeout_s)
        self.options = options
        self.name = f"gitlab:{options.project}"
        self.project_path = f"/projects/{quote(options.project, safe='')}"

    @classmethod
    def build(cls, options: GitLabOptions, **_: Any) -> GitLabTracker:
        return cls(options, _token(options.token_env, "gitlab"))

    @classmethod
    def index_name(cls, options: GitLabOptions) -> str:
        # Read-only commands name the tracker from options as written (maybe unvalidated).
        return f"gitlab:{getattr(options, 'project', '')}"

    def find(self, fingerprint: str) -> RemoteIssue | None:
        marker = fingerprint_marker(fingerprint)
        params = {"labels": self.options.marker_label, "scope": "all", "per_page": 100}
        for item in self.paginate(f"{self.project_path}/issues", params):
            if marker in (item.get("description") or ""):
                return _issue(item)
        return None

    def create(self, title: str, body: str, labels: Sequence[str]) -> RemoteIssue:
        labels = list(dict.fromkeys([self.options.marker_label, *labels]))
        item = self.json(
            "POST",
            f"{self.project_path}/issues",
            json={"title": title, "description": body, "labels": ",".join(labels)},
        )
        return _issue(item)

    def comment(self, key: str, body: str) -> None:
        self.request(
            "POST", f"{self.project_path}/issues/{key}/notes", json={"body": body}, issue_level=True
        )

    def comments(self, key: str) -> list[str]:
        path = f"{self.project_path}/issues/{key}/notes"
        return [n.get("body") or "" for n in self.paginate(path, {"per_page": 100})]

    def reopen(self, key: str) -> None:
        self._update(key, {"state_event": "reopen"})

    def close(self, key: str, comment: str | None = None) -> None:
        if comment:
            self.comment(key, comment)
        self._update(key, {"state_event": "close"})

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        labels = list(dict.fromkeys([self.options.marker_label, *labels]))
        self._update(key, {"labels": ",".join(labels)})

    def _update(self, key: str, payload: dict[str, str]) -> None:
        self.request("PUT", f"{self.project_path}/issues/{key}", json=payload, issue_level=True)


def _issue(item: dict[str, Any]) -> RemoteIssue:
    return RemoteIssue(
        key=str(item["iid"]),
        title=str(item.get("title", "")),
        state="closed" if item.get("state") == "closed" else "open",
        location=str(item.get("web_url", "")),
    )
