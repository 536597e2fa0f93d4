"""Fold the pytest plugin's JSON events into `TestResult` records.

Pure: lines in, records out, no pytest and no processes. The runner feeds the
lines as they arrive (for live progress) and asks at the end what is still
unfinished. A line that cannot be read is kept in `bad_lines` and reported,
never fatal: the events of every other test still count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from greenloop.records import Connection, Outcome, SentRequest, SharedFixture, TestResult

TIMEOUT_MARK = "from pytest-timeout"  # pytest-timeout's failure message ends with it
CRASH_WHEN = "???"  # xdist's report for a test whose worker died


class Listener(Protocol):
    """Who hears about progress while events arrive (the live Reporter)."""

    def on_collected(self, n: int) -> None: ...
    def on_running(self, nodeid: str) -> None: ...
    def on_test(self, result: TestResult) -> None: ...


@dataclass(frozen=True, slots=True)
class CollectedItem:
    """A test pytest collected: where it is and the argument that selects it alone."""

    nodeid: str
    file: str
    line: int | None = None
    markers: tuple[str, ...] = ()
    arg: str = ""


@dataclass
class _Partial:
    """Reports of a test that has started but not finished."""

    reports: list[Mapping[str, Any]] = field(default_factory=list)
    started_at: datetime | None = None


@dataclass
class EventFold:
    """Accumulates one pytest session's events (or several, after a re-launch)."""

    phase: str
    listener: Listener | None = None
    collected: dict[str, CollectedItem] = field(default_factory=dict)
    results: dict[str, TestResult] = field(default_factory=dict)
    collection_errors: dict[str, str] = field(default_factory=dict)
    collection_skips: dict[str, str] = field(default_factory=dict)
    bad_lines: list[str] = field(default_factory=list)
    timeouts: dict[str, float] = field(default_factory=dict)
    sessions_finished: int = 0
    exitstatus: int | None = None
    lines_read: int = 0
    _partial: dict[str, _Partial] = field(default_factory=dict)
    _warnings: dict[str, list[str]] = field(default_factory=dict)
    _collected_reported: int = 0

    # ------------------------------------------------------------------ feeding

    def feed_lines(self, lines: Iterable[str]) -> list[TestResult]:
        """Fold many lines; return the tests they finished."""
        finished = []
        for line in lines:
            result = self.feed_line(line)
            if result is not None:
                finished.append(result)
        return finished

    def feed_line(self, line: str) -> TestResult | None:
        self.lines_read += 1
        text = line.strip()
        if not text:
            return None
        try:
            event = json.loads(text)
        except ValueError as exc:
            self._bad(text, f"not JSON ({exc})")
            return None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            self._bad(text, "not an event object")
            return None
        try:
            return self.feed_event(event)
        except (KeyError, TypeError, ValueError) as exc:
            self._bad(text, f"malformed {event['event']!r} event ({exc!r})")
            return None

    def feed_event(self, event: Mapping[str, Any]) -> TestResult | None:
        kind = event["event"]
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            return None  # a newer plugin's event: ignore, do not fail
        result: TestResult | None = handler(event)
        return result

    def _bad(self, text: str, why: str) -> None:
        self.bad_lines.append(f"event line {self.lines_read}: {why}: {text[:200]}")

    # ------------------------------------------------------------------ events

    def _on_collected(self, e: Mapping[str, Any]) -> None:
        nodeid = _text(e, "nodeid")
        self.collected[nodeid] = CollectedItem(
            nodeid=nodeid,
            file=str(e.get("file") or nodeid.split("::", 1)[0]),
            line=int(e["line"]) if e.get("line") is not None else None,
            markers=tuple(str(m) for m in e.get("markers") or ()),
            arg=str(e.get("arg") or nodeid),
        )

    def _on_collection_finish(self, e: Mapping[str, Any]) -> None:
        if self.listener is not None and len(self.collected) > self._collected_reported:
            self._collected_reported = len(self.collected)
            self.listener.on_collected(len(self.collected))

    def _on_collection_error(self, e: Mapping[str, Any]) -> None:
        self.collection_errors[_text(e, "nodeid")] = str(e.get("error") or "")

    def _on_collection_skip(self, e: Mapping[str, Any]) -> None:
        self.collection_skips[_text(e, "nodeid")] = str(e.get("reason") or "")

    def _on_session_finish(self, e: Mapping[str, Any]) -> None:
        self.sessions_finished += 1
        self.exitstatus = int(e.get("exitstatus", 0))

    def _on_test_start(self, e: Mapping[str, Any]) -> None:
        nodeid = _text(e, "nodeid")
        when = e.get("time")
        started = datetime.fromtimestamp(float(when), UTC) if when is not None else None
        self._partial[nodeid] = _Partial(started_at=started)
        if self.listener is not None:
            self.listener.on_running(nodeid)

    def _on_report(self, e: Mapping[str, Any]) -> TestResult | None:
        nodeid = _text(e, "nodeid")
        partial = self._partial.setdefault(nodeid, _Partial())
        partial.reports.append(e)
        if e.get("when") in ("teardown", CRASH_WHEN):
            return self._finish(nodeid)
        return None

    def _on_test_finish(self, e: Mapping[str, Any]) -> TestResult | None:
        nodeid = _text(e, "nodeid")
        return self._finish(nodeid) if nodeid in self._partial else None

    def _on_timeout(self, e: Mapping[str, Any]) -> None:
        self.timeouts[_text(e, "nodeid")] = float(e.get("timeout_s") or 0)

    def _on_crashed(self, e: Mapping[str, Any]) -> None:
        _text(e, "nodeid")  # the report with when="???" that follows finishes the test

    def _on_warning(self, e: Mapping[str, Any]) -> None:
        nodeid = _text(e, "nodeid")
        text = str(e.get("text") or "")
        self._warnings.setdefault(nodeid, []).append(text)
        done = self.results.get(nodeid)
        if done is not None:  # warnings arrive after the test's last report
            self.results[nodeid] = replace(done, warnings=(*done.warnings, text))

    # ------------------------------------------------------------------ results

    def _finish(self, nodeid: str, forced: Outcome | None = None, note: str = "") -> TestResult:
        partial = self._partial.pop(nodeid, _Partial())
        result = build_result(
            nodeid,
            partial.reports,
            phase=self.phase,
            item=self.collected.get(nodeid),
            timeout_s=self.timeouts.get(nodeid),
            started_at=partial.started_at,
            warnings=tuple(self._warnings.get(nodeid, ())),
            forced=forced,
            note=note,
        )
        self.results[nodeid] = result
        if self.listener is not None:
            self.listener.on_test(result)
        return result

    def running(self) -> list[str]:
        """Tests that started and have no result yet."""
        return [n for n in self._partial if n not in self.results]

    def not_started(self) -> list[str]:
        """Collected tests that never started."""
        return [n for n in self.collected if n not in self.results and n not in self._partial]

    def end_running(self, outcome: Outcome, note: str) -> list[TestResult]:
        """Give the tests caught running when pytest died (or was stopped) a result.

        A test whose pytest-timeout fired before the process died (the thread method, or
        the backstop of the signal method) is a timeout, not a crash.
        """
        ended = []
        for nodeid in self.running():
            if outcome is Outcome.CRASHED and nodeid in self.timeouts:
                why = "it could not be interrupted, so pytest was ended"
                ended.append(self._finish(nodeid, forced=Outcome.TIMEOUT, note=why))
            else:
                ended.append(self._finish(nodeid, forced=outcome, note=note))
        return ended

    def end_not_started(self, outcome: Outcome, note: str) -> list[TestResult]:
        """Give collected tests that never ran a result, so none is silently dropped."""
        return [self._finish(n, forced=outcome, note=note) for n in self.not_started()]

    def ordered_results(self) -> tuple[TestResult, ...]:
        """Results in collection order, then any test we saw run but not collected."""
        order = {n: i for i, n in enumerate(self.collected)}
        return tuple(sorted(self.results.values(), key=lambda r: order.get(r.nodeid, len(order))))


def build_result(
    nodeid: str,
    reports: list[Mapping[str, Any]],
    *,
    phase: str,
    item: CollectedItem | None = None,
    timeout_s: float | None = None,
    started_at: datetime | None = None,
    warnings: tuple[str, ...] = (),
    forced: Outcome | None = None,
    note: str = "",
) -> TestResult:
    """One test's record from its setup / call / teardown reports."""
    outcome, decisive = _decide(reports, timeout_s)
    if forced is not None:
        outcome = forced
    connections: set[tuple[str, int]] = set()
    ended: set[tuple[str, int]] = set()
    mocks: list[str] = []
    shared: dict[str, SharedFixture] = {}
    request_id = None
    sent: list[SentRequest] = []
    stdout = stderr = log = ""
    for r in reports:
        # The test's requests so far, like its output: the last report has them all.
        sent = _sent_requests(r.get("sent")) or sent
        for pair in r.get("connections") or ():
            connections.add((str(pair[0]), int(pair[1])))
        for pair in r.get("ended") or ():
            ended.add((str(pair[0]), int(pair[1])))
        for m in r.get("mocks") or ():
            if m not in mocks:
                mocks.append(str(m))
        for f in r.get("shared") or ():
            shared[str(f["name"])] = SharedFixture(
                name=str(f["name"]),
                scope=str(f.get("scope") or ""),
                connections=tuple(Connection(str(h), int(p)) for h, p in f.get("connections", ())),
                setup_s=float(f.get("setup_s") or 0.0),
            )
        request_id = r.get("request_id") or request_id
        # Each report carries the output captured so far; the last one has it all.
        stdout = str(r.get("stdout") or "") or stdout
        stderr = str(r.get("stderr") or "") or stderr
        log = str(r.get("log") or "") or log
    message = str(decisive.get("message") or "") if decisive else ""
    longrepr = str(decisive.get("longrepr") or "") if decisive else ""
    duration = sum(float(r.get("duration") or 0.0) for r in reports)
    if outcome is Outcome.TIMEOUT and timeout_s:
        # The worker was ended by pytest-timeout; say so rather than "crashed".
        message = f"Timeout (>{timeout_s:g}s) from pytest-timeout; {message}".rstrip("; ")
        duration = max(duration, timeout_s)
    if note:
        message = f"{note}; {message}" if message else note
    skip_reason = ""
    if decisive and outcome is Outcome.SKIPPED:
        skip_reason = str(decisive.get("skip_reason") or "")
    xfail, xfail_reason = _xfail(reports, outcome)
    file = item.file if item else nodeid.split("::", 1)[0]
    return TestResult(
        nodeid=nodeid,
        outcome=outcome,
        duration_s=duration,
        phase=phase,
        file=file,
        line=item.line if item else None,
        markers=item.markers if item else (),
        message=message,
        longrepr=longrepr,
        stdout=stdout,
        stderr=stderr,
        log=log,
        skip_reason=skip_reason,
        when=str(decisive.get("when") or "call") if decisive else "call",
        connections=tuple(Connection(h, p) for h, p in sorted(connections)),
        ended_connections=tuple(Connection(h, p) for h, p in sorted(ended)),
        mocks=tuple(mocks),
        request_id=str(request_id) if request_id else None,
        started_at=started_at,
        warnings=warnings,
        shared_fixtures=tuple(shared.values()),
        xfail=xfail,
        xfail_reason=xfail_reason,
        sent_requests=tuple(sent),
    )


def _xfail(reports: list[Mapping[str, Any]], outcome: Outcome) -> tuple[str, str]:
    """("xfailed" | "xpassed" | "", the marker's reason) for a test that ended PASSED."""
    marked = next((r for r in reports if r.get("xfail") is not None), None)
    if marked is None or outcome is not Outcome.PASSED:
        return "", ""
    state = "xfailed" if marked.get("outcome") == "skipped" else "xpassed"
    return state, str(marked.get("xfail") or "")


def _sent_requests(raw: Any) -> list[SentRequest]:
    """The plugin's `sent` entries as records; malformed entries are dropped."""
    out = []
    for entry in raw if isinstance(raw, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        ids = entry.get("ids")
        ids = ids if isinstance(ids, dict) else {}
        stamp = entry.get("time")
        out.append(
            SentRequest(
                method=str(entry.get("method") or ""),
                path=entry["path"],
                at=datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int | float) else None,
                ids=tuple((str(k), str(v)) for k, v in ids.items()),
            )
        )
    return out


def _decide(
    reports: list[Mapping[str, Any]], timeout_s: float | None
) -> tuple[Outcome, Mapping[str, Any] | None]:
    """The outcome and the report that decided it: the first that did not pass wins."""
    xfailed = None
    for r in reports:
        when, outcome = r.get("when"), r.get("outcome")
        if outcome == "passed":
            continue
        if outcome == "skipped" and r.get("xfail") is not None:
            xfailed = xfailed or r  # failed as its xfail marker expected: not a skip
            continue
        if when == CRASH_WHEN:
            return (Outcome.TIMEOUT if timeout_s is not None else Outcome.CRASHED), r
        if outcome == "skipped":
            return Outcome.SKIPPED, r
        if TIMEOUT_MARK in str(r.get("message") or "") + str(r.get("longrepr") or "")[-400:]:
            return Outcome.TIMEOUT, r
        return (Outcome.FAILED if when == "call" else Outcome.ERROR), r
    if not reports:
        return Outcome.CRASHED, None
    if xfailed is not None:
        return Outcome.PASSED, xfailed
    call = next((r for r in reports if r.get("when") == "call"), None)
    return Outcome.PASSED, call or reports[-1]


def _text(event: Mapping[str, Any], key: str) -> str:
    value = event[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value
