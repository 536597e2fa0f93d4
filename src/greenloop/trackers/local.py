"""The default tracker: one markdown file per issue under `<out_dir>/issues/`.

Nothing to configure and nothing to reach, so filing never fails for network
reasons. The file holds a small header (key, state, labels), the body, and every
comment appended in order; the store's `issues` table is the index.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from greenloop.kinds import KindOptions
from greenloop.trackers.base import IssueRejected, RemoteIssue

_HEADER = re.compile(r"^<!-- greenloop:issue key=(\S+) state=(\w+) labels=(.*?) -->$", re.M)


class LocalOptions(KindOptions):
    # Folder for the issue files; relative to the out folder. Default: <out_dir>/issues.
    dir: str | None = None


class LocalTracker:
    """Markdown files in a folder; keys are GL-1, GL-2, ..."""

    kind = "local"
    Options = LocalOptions

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = "local"

    @classmethod
    def build(cls, options: LocalOptions, *, out_dir: Path) -> LocalTracker:
        folder = Path(options.dir) if options.dir else Path("issues")
        return cls(folder if folder.is_absolute() else Path(out_dir) / folder)

    @classmethod
    def index_name(cls, options: LocalOptions) -> str:
        return "local"

    @classmethod
    def validate(cls, options: LocalOptions) -> None:
        """Nothing to check: a folder is made when the first issue is written."""

    # ------------------------------------------------------------------ Tracker

    def find(self, fingerprint: str) -> RemoteIssue | None:
        marker = f"<!-- greenloop:fingerprint={fingerprint} -->"
        for path in sorted(self.folder.glob("GL-*.md")):
            text = path.read_text(encoding="utf-8")
            if marker in text:
                return self._issue(path, text)
        return None

    def create(self, title: str, body: str, labels: Sequence[str]) -> RemoteIssue:
        self.folder.mkdir(parents=True, exist_ok=True)
        number = 1 + max((self._number(p) for p in self.folder.glob("GL-*.md")), default=0)
        while True:  # O_EXCL: two runs creating different issues never share a number
            key = f"GL-{number}"
            path = self.folder / f"{key}.md"
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                number += 1
                continue
            text = f"{_header(key, 'open', labels)}\n# {key}: {title}\n\n{body.rstrip()}\n"
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return RemoteIssue(key, title, "open", str(path))

    def comment(self, key: str, body: str) -> None:
        path = self._path(key)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n---\n\n### Comment\n\n{body.rstrip()}\n")

    def comments(self, key: str) -> list[str]:
        return [self._path(key).read_text(encoding="utf-8")]

    def reopen(self, key: str) -> None:
        self._set(key, state="open")

    def close(self, key: str, comment: str | None = None) -> None:
        if comment:
            self.comment(key, comment)
        self._set(key, state="closed")

    def set_labels(self, key: str, labels: Sequence[str]) -> None:
        self._set(key, labels=labels)

    # ------------------------------------------------------------------ files

    def read(self, key: str) -> str:
        return self._path(key).read_text(encoding="utf-8")

    def _path(self, key: str) -> Path:
        path = self.folder / f"{key}.md"
        if not path.is_file():
            raise IssueRejected(f"local: issue file {path} is gone")
        return path

    def _set(
        self, key: str, *, state: str | None = None, labels: Sequence[str] | None = None
    ) -> None:
        path = self._path(key)
        text = path.read_text(encoding="utf-8")
        match = _HEADER.search(text)
        if match is None:
            raise IssueRejected(f"local: {path} has no greenloop header")
        new_state = state or match.group(2)
        new_labels = labels if labels is not None else [x for x in match.group(3).split(",") if x]
        text = text[: match.start()] + _header(key, new_state, new_labels) + text[match.end() :]
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def _issue(self, path: Path, text: str) -> RemoteIssue:
        match = _HEADER.search(text)
        title = next((ln[2:] for ln in text.splitlines() if ln.startswith("# ")), path.stem)
        state = match.group(2) if match else "open"
        return RemoteIssue(path.stem, title.split(": ", 1)[-1], state, str(path))

    @staticmethod
    def _number(path: Path) -> int:
        digits = path.stem.removeprefix("GL-")
        return int(digits) if digits.isdigit() else 0


def _header(key: str, state: str, labels: Sequence[str]) -> str:
    return f"<!-- greenloop:issue key={key} state={state} labels={','.join(labels)} -->"
