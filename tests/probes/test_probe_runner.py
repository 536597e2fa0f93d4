"""run_probes: concurrent, in config order, bounded by the probe timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

from greenloop.config import ProbeConfig
from greenloop.probes.run import run_probes


def probe(name: str, kind: str, **fields: Any) -> ProbeConfig:
    return ProbeConfig.model_validate({"name": name, "component": name, "kind": kind, **fields})


def test_results_come_back_in_config_order(servers: Any) -> None:
    probes = [
        probe("slow", "http", url=f"{servers.http}/slow", timeout_s=0.3),
        probe("fast", "http", url=f"{servers.http}/health"),
        probe("port", "tcp", host="127.0.0.1", port=servers.closed),
    ]
    results = asyncio.run(run_probes(probes))
    assert [r.name for r in results] == ["slow", "fast", "port"]
    assert [r.ok for r in results] == [False, True, False]


def test_probes_run_concurrently(servers: Any) -> None:
    # The barrier endpoint answers only when all three requests wait at once;
    # probes run one after another would each time out instead.
    url = f"{servers.http}/barrier/runner-test/3"
    probes = [probe(f"p{i}", "http", url=url, timeout_s=5) for i in range(3)]
    results = asyncio.run(run_probes(probes))
    assert [r.ok for r in results] == [True, True, True], [r.detail for r in results]
