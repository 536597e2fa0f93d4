"""Issue trackers: the registry of tracker kinds, and [tracker] checked against it.

`base.py` says what a kind is (`TrackerKind`); each kind is one file (`local.py`,
the default; `github.py`; `gitlab.py`) and adding one is one line below. Filing
issues is `filing.py` (the loop's stage), the issue index as people read it is
`listing.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from greenloop.errors import ConfigError
from greenloop.kinds import OptionError, Registry
from greenloop.trackers.base import TrackerKind
from greenloop.trackers.body import unknown_placeholders
from greenloop.trackers.github import GitHubTracker
from greenloop.trackers.gitlab import GitLabTracker
from greenloop.trackers.local import LocalTracker

if TYPE_CHECKING:
    from greenloop.config import Config, TrackerConfig

TRACKERS: Registry[TrackerKind] = Registry("tracker")
TRACKERS.add("local", LocalTracker)
TRACKERS.add("github", GitHubTracker)
TRACKERS.add("gitlab", GitLabTracker)

__all__ = ["TRACKERS", "LocalTracker", "resolve_tracker", "tracker_name", "validate_tracker"]


def resolve_tracker(config: Config) -> tuple[TrackerKind, Any]:
    """The configured tracker kind and its validated options; mistakes are ConfigErrors."""
    tracker = config.tracker
    return TRACKERS.resolve(
        tracker.kind, tracker.options(), file=str(config.source), section="tracker"
    )


def validate_tracker(config: Config) -> None:
    """Check [tracker] at load time: kind, options, label placeholders and the token.

    Raises ConfigError naming the key; nothing is contacted.
    """
    source = str(config.source)
    kind, options = resolve_tracker(config)
    for i, label in enumerate(config.tracker.labels):
        unknown = unknown_placeholders(label)
        if unknown:
            raise ConfigError(
                source,
                f"tracker.labels[{i}]",
                f"unknown placeholder {unknown[0]!r} (known: {{category}}, {{priority}})",
            )
    try:
        kind.validate(options)
    except OptionError as exc:
        raise ConfigError(source, f"tracker.{exc.key}", exc.problem) from None


def tracker_name(tracker: TrackerConfig) -> str:
    """The index name of a configured tracker, without building it (no token needed).

    The options are taken as written, unvalidated: read-only commands (`issues list`)
    work with the run's variables unset.
    """
    kind = TRACKERS.get(tracker.kind)
    if kind is None:
        return tracker.kind
    return kind.index_name(kind.Options.model_construct(**tracker.options()))
