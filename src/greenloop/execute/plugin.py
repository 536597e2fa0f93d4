"""greenloop's pytest plugin: one JSON event per line about everything the run did.

Loaded in the test subprocess with ``-p greenloop.execute.plugin``. It writes to
the file named by ``--greenloop-events`` or GREENLOOP_EVENTS (a file, never
stdout, so test output cannot corrupt the stream) and judges nothing: the
events are folded into records by `greenloop.execute.events` and judged by
`greenloop.verify`, where they can be tested without pytest.

What it records beside pytest's own reports: the (host, port) of every socket a
test connects or talks to, the HTTP requests (and WebSocket handshakes) it sends
with the request-id and trace-context headers they carry, whatever the client
(httpx, requests, urllib3, aiohttp, websockets: it reads the bytes each socket
sends), network clients replaced by mocks while it ran, its warnings, and the
request id of the opt-in `greenloop_request_id` fixture.

Under pytest-xdist the controller is the one writer of test events (workers
attach their extra data to the report, which xdist ships to the controller);
workers only write their collected items and, just before pytest-timeout ends a
worker, which test timed out.

The parts, by concern, are in `greenloop.execute.pytestplugin` (sink, network,
tcp, mocks, hooks, glue); this module is what `-p` loads: the option and the set-up.
"""

from __future__ import annotations

import os

import pytest

from greenloop.execute.pytestplugin.glue import TeardownMark, XdistTimeoutGlue, watch_parent
from greenloop.execute.pytestplugin.hooks import GreenloopPlugin
from greenloop.execute.pytestplugin.mocks import install_mock_recorder
from greenloop.execute.pytestplugin.network import install_network_recorder, parse_request_head
from greenloop.execute.pytestplugin.sink import EventSink
from greenloop.execute.wire import EVENTS_ENV, PARENT_ENV

__all__ = ["GreenloopPlugin", "parse_request_head", "pytest_addoption", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenloop")
    group.addoption(
        "--greenloop-events",
        default=None,
        help=f"write greenloop's JSON events to this file (default: ${EVENTS_ENV})",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--greenloop-events") or os.environ.get(EVENTS_ENV)
    if not path:
        return
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and not hasattr(config, "workerinput"):
        watch_parent(int(parent))
    install_network_recorder()
    install_mock_recorder()
    plugin = GreenloopPlugin(config, EventSink(path))
    config.pluginmanager.register(plugin, "greenloop-events")
    config.pluginmanager.register(XdistTimeoutGlue(plugin.sink), "greenloop-glue")
    if plugin.writes_tests:
        config.pluginmanager.register(TeardownMark(plugin.sink), "greenloop-teardown")
    config.add_cleanup(plugin.sink.close)
