"""The pytest hooks that turn a session into greenloop events (see `greenloop.execute.plugin`)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Generator
from typing import Any

import pytest

from greenloop.execute.pytestplugin import network
from greenloop.execute.pytestplugin.glue import worker_id
from greenloop.execute.pytestplugin.mocks import check_mocks, remember_network_attributes
from greenloop.execute.pytestplugin.network import (
    FixtureActivity,
    TestRecord,
    client_ports,
    named_peers,
)
from greenloop.execute.pytestplugin.sink import EventSink
from greenloop.execute.pytestplugin.tcp import (
    active_opens,
    ended_connections,
    tcp_counters,
    tcp_traffic,
)
from greenloop.execute.wire import ORDER_ENV

TRIM_TEXT = 8000  # characters kept of a traceback
TRIM_OUTPUT = 4000  # characters kept of captured stdout / stderr / log


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    cut = len(text) - limit
    return f"{text[:head]}\n... [{cut} characters trimmed] ...\n{text[-(limit - head) :]}"


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skip gave, never a traceback (an xfail's longrepr is its failure)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(longrepr or "")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].removeprefix("Skipped: ")[:500] if lines else ""


def _markers(item: pytest.Item) -> list[str]:
    names = []
    for marker in item.iter_markers():
        if marker.name in ("parametrize", "usefixtures", "filterwarnings"):
            continue
        if marker.name not in names:
            names.append(marker.name)
    return names


def _order_rank() -> dict[str, int]:
    path = os.environ.get(ORDER_ENV)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
    except OSError:
        return {}
    return {key: i for i, key in enumerate(lines) if key}


class GreenloopPlugin:
    """Hooks that turn a pytest session into greenloop events."""

    def __init__(self, config: pytest.Config, sink: EventSink) -> None:
        self.config = config
        self.sink = sink
        self.is_worker = hasattr(config, "workerinput")
        self.is_controller = not self.is_worker and bool(getattr(config.option, "numprocesses", 0))
        self.worker = config.workerinput["workerid"] if self.is_worker else None  # type: ignore[attr-defined]
        # Writes test events: the controller under xdist, else the one process.
        self.writes_tests = not self.is_worker
        self.records: dict[str, TestRecord] = {}
        self.fixtures: dict[int, FixtureActivity] = {}  # by id(FixtureDef): last set-up

    # ---- session

    def pytest_sessionstart(self) -> None:
        if self.writes_tests:
            self.sink.emit(
                "session_start", pid=os.getpid(), xdist=self.is_controller, time=time.time()
            )

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.writes_tests:
            self.sink.emit("session_finish", exitstatus=int(exitstatus))

    # ---- collection

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        rank = _order_rank()
        if not rank:
            return
        last = len(rank)

        def key(item: pytest.Item) -> int:
            return rank.get(item.nodeid, rank.get(item.nodeid.split("::", 1)[0], last))

        items.sort(key=key)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.is_controller:
            return
        for item in session.items:
            path, line, _ = item.location
            self.sink.emit(
                "collected",
                nodeid=item.nodeid,
                file=path,
                line=None if line is None else line + 1,
                markers=_markers(item),
                arg=f"{item.path}::{item.nodeid.split('::', 1)[1]}"
                if "::" in item.nodeid
                else str(item.path),
                worker=self.worker,
            )
        self.sink.emit("collection_finish", count=len(session.items), worker=self.worker)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.is_worker:
            return  # xdist forwards failed and skipped collect reports to the controller
        if report.failed:
            self.sink.emit(
                "collection_error",
                nodeid=report.nodeid,
                error=_trim(str(report.longrepr), TRIM_TEXT),
            )
        elif report.skipped:
            self.sink.emit("collection_skip", nodeid=report.nodeid, reason=_skip_reason(report))

    # ---- running

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        remember_network_attributes()
        record = network._current = self.records[item.nodeid] = TestRecord(item.nodeid)
        record.tcp_before = tcp_counters()
        try:
            yield
        finally:
            network._current = None
            self.records.pop(record.nodeid, None)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        record = self.records.get(item.nodeid)
        if record is not None:
            check_mocks(record)
        yield
        if record is not None:
            check_mocks(record)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        record = self.records.get(item.nodeid)
        if record is not None:
            check_mocks(record)
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, None, None]:
        activity = FixtureActivity(fixturedef.argname, fixturedef.scope)
        shared = fixturedef.scope != "function"
        before = tcp_counters() if shared else {}
        network._fixture_stack.append(activity)
        started = time.perf_counter()
        try:
            yield
        finally:
            network._fixture_stack.remove(activity)
            activity.setup_s = time.perf_counter() - started
            if shared:
                activity.connections.update(named_peers(tcp_traffic(before, tcp_counters())))
                self.fixtures[id(fixturedef)] = activity

    def shared_fixtures(self, item: pytest.Item) -> list[dict[str, Any]]:
        """Wider-scoped fixtures this test uses whose set-up talked to the network."""
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            return []
        shared = []
        for name in info.names_closure:
            for fixturedef in info.name2fixturedefs.get(name, ())[-1:]:
                activity = self.fixtures.get(id(fixturedef))
                if activity is not None and activity.connections:
                    shared.append(activity.as_dict())
        return shared

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        record = self.records.get(item.nodeid)
        if record is not None:
            record.connections.update(named_peers(tcp_traffic(record.tcp_before, tcp_counters())))
            if (
                call.when == "teardown"
                and not record.connections
                and active_opens() > record.opens_before
            ):
                # Read the table only when it can matter: nothing seen, yet a connect happened.
                record.ended = ended_connections(time.monotonic() - record.started, client_ports())
            # A plain attribute: xdist serialises the report's __dict__ to the controller.
            report.greenloop = {**record.as_dict(), "shared": self.shared_fixtures(item)}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if self.writes_tests:
            self.sink.emit("test_start", nodeid=nodeid, time=time.time())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.writes_tests:
            return
        extra = getattr(report, "greenloop", None) or {}
        outcome = report.outcome
        # An xfail's reason may be "": test for presence, or its traceback becomes a "skip reason".
        xfail = getattr(report, "wasxfail", None)
        self.sink.emit(
            "report",
            nodeid=report.nodeid,
            when=report.when,
            outcome=outcome,
            duration=report.duration,
            longrepr="" if report.passed else _trim(str(report.longrepr or ""), TRIM_TEXT),
            message=_message(report),
            skip_reason=_skip_reason(report) if report.skipped and xfail is None else "",
            xfail=xfail,
            stdout=_trim(report.capstdout, TRIM_OUTPUT),
            stderr=_trim(report.capstderr, TRIM_OUTPUT),
            log=_trim(report.caplog, TRIM_OUTPUT),
            connections=extra.get("connections", []),
            ended=extra.get("ended", []),
            mocks=extra.get("mocks", []),
            shared=extra.get("shared", []),
            request_id=extra.get("request_id"),
            sent=extra.get("sent", []),
            worker=worker_id(report),
        )

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: Any
    ) -> None:
        if self.writes_tests and nodeid:
            category = getattr(warning_message.category, "__name__", "Warning")
            self.sink.emit("warning", nodeid=nodeid, text=f"{category}: {warning_message.message}")

    # ---- the opt-in request id

    @pytest.fixture
    def greenloop_request_id(self, request: pytest.FixtureRequest) -> str:
        """A fresh id per test, recorded with its result; send it as X-Request-ID."""
        value = uuid.uuid4().hex
        record = self.records.get(request.node.nodeid)
        if record is not None:
            record.request_id = value
        return value


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0][:500] if crash.message else ""
    if report.skipped:
        return _skip_reason(report)[:500]
    text = str(report.longrepr or "").strip().splitlines()
    return text[-1][:500] if text else ""
