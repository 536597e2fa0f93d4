"""Network clients replaced by mocks while a test runs.

Two ways in: a `unittest.mock.patch` of a network client entered during the test
(its `__enter__` is wrapped), and any network attribute in NETWORK_ATTRIBUTES whose
value differs from what it was before the first test (monkeypatch, hand-made fakes).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any
from unittest import mock

from greenloop.execute.pytestplugin import network
from greenloop.execute.pytestplugin.network import TestRecord, patch_once

# Attributes whose replacement during a test means the test did not talk to the network.
NETWORK_ATTRIBUTES = (
    ("httpx", "Client.send"),
    ("httpx", "Client.request"),
    ("httpx", "Client.get"),
    ("httpx", "Client.post"),
    ("httpx", "AsyncClient.send"),
    ("httpx", "AsyncClient.request"),
    ("httpx", "AsyncClient.get"),
    ("httpx", "AsyncClient.post"),
    ("httpx", "HTTPTransport.handle_request"),  # pytest-httpx, respx
    ("httpx", "AsyncHTTPTransport.handle_async_request"),
    ("httpx", "get"),
    ("httpx", "post"),
    ("httpx", "request"),
    ("httpcore", "ConnectionPool.handle_request"),  # respx
    ("httpcore", "AsyncConnectionPool.handle_async_request"),
    ("requests", "Session.request"),
    ("requests", "Session.send"),
    ("requests", "get"),
    ("requests", "post"),
    ("requests.adapters", "HTTPAdapter.send"),  # responses
    ("urllib3", "PoolManager.urlopen"),
    ("urllib3.connectionpool", "HTTPConnectionPool.urlopen"),
    ("aiohttp", "ClientSession._request"),
    ("websockets", "connect"),
    ("websockets.client", "connect"),
    ("websockets.asyncio.client", "connect"),
    ("websockets.sync.client", "connect"),
    ("socket", "socket.connect"),
    ("socket", "socket.connect_ex"),
    ("socket", "create_connection"),
    ("http.client", "HTTPConnection.request"),
    ("asyncio", "open_connection"),
)
NETWORK_MODULES = tuple(sorted({m.split(".")[0] for m, _ in NETWORK_ATTRIBUTES} | {"aiohttp"}))

_MISSING = object()
# (key, owner object, attribute name, value before any test ran), once its module is imported.
_watched: dict[str, tuple[Any, str, Any]] = {}


def _owner(module: str, attribute: str) -> tuple[Any, str] | None:
    owner: Any = sys.modules.get(module)
    if owner is None:
        return None
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner, name


def _own_value(owner: Any, name: str) -> Any:
    # patch() and monkeypatch set the attribute on the owner itself, so its own
    # __dict__ is enough, and much cheaper than getattr_static on every test.
    return vars(owner).get(name, _MISSING)


def _describe(value: Any) -> str:
    if isinstance(value, mock.NonCallableMock):
        return type(value).__name__
    return getattr(value, "__qualname__", None) or type(value).__name__


def remember_network_attributes() -> None:
    """Note the network attributes as they are before any test (and its fixtures) runs."""
    if len(_watched) == len(NETWORK_ATTRIBUTES):
        return
    for module, attribute in NETWORK_ATTRIBUTES:
        key = f"{module}.{attribute}"
        if key in _watched:
            continue
        found = _owner(module, attribute)
        if found is None:
            continue
        value = _own_value(*found)
        if value is not _MISSING and not isinstance(value, mock.NonCallableMock):
            _watched[key] = (found[0], found[1], value)


def replaced_network_attributes() -> list[str]:
    """Network attributes that are mocks now, or differ from what they were before the tests."""
    replaced = []
    for key, (owner, name, original) in _watched.items():
        value = _own_value(owner, name)
        if value is not original and value is not _MISSING:
            replaced.append(f"{key} was replaced by {_describe(value)}")
    return replaced


def _patch_target(patcher: Any) -> str | None:
    """'module.attr' a unittest.mock patcher is about to replace, if it is a network client."""
    try:
        target = patcher.getter()
    except Exception:
        return None
    if inspect.ismodule(target):
        owner = target.__name__
    else:
        module = getattr(target, "__module__", None)
        qualname = getattr(target, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str):
            return None
        top = module.split(".")[0]
        # Say httpx.Client rather than httpx._client.Client when the package exports it.
        public = getattr(sys.modules.get(top), qualname, None) is target
        owner = f"{top if public else module}.{qualname}"
    if owner.split(".")[0] not in NETWORK_MODULES:
        return None
    return f"{owner}.{patcher.attribute}"


def _wrap_patch_enter(original: Callable[..., Any]) -> Callable[..., Any]:
    def __enter__(self: Any) -> Any:
        result = original(self)
        record = network._current
        if record is not None:
            where = _patch_target(self)
            if where:
                record.mocks.add(f"{where} was replaced by {_describe(result)}")
        return result

    __enter__._greenloop = True  # type: ignore[attr-defined]
    return __enter__


def install_mock_recorder() -> None:
    """See every unittest.mock.patch (decorator, context manager or start()) of a network client."""
    patch_once(mock._patch, "__enter__", _wrap_patch_enter)


def check_mocks(record: TestRecord) -> None:
    record.mocks.update(replaced_network_attributes())
    for patcher in list(getattr(mock._patch, "_active_patches", ())):
        where = _patch_target(patcher)
        if where:
            record.mocks.add(f"{where} was replaced by a mock (patch active)")
