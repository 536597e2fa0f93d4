"""The mutable heart of one service process: active faults and the live dependency clients.

The fault model in ``faults`` decides; this class holds the state those decisions read
(the fault set, the seeded random stream, the flaky call counter) and swaps a dependency
client for a refused one while dependency-down is active.
"""

from __future__ import annotations

import random
import threading
import time

from greenloop.demo.service import faults as fm
from greenloop.demo.service.config import ServiceConfig
from greenloop.demo.service.deps import (
    Cache,
    Database,
    make_cache,
    refused_cache,
    refused_database,
)


class ServiceRuntime:
    """Faults and dependencies of the running service; thread-safe."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self._lock = threading.Lock()
        initial = fm.FaultSet()
        for fault in (*config.bugs, *config.faults):
            initial = initial.with_fault(fm.with_activation(fault, self.started))
        if config.tls_mismatch and initial.get("tls-mismatch") is None:
            initial = initial.with_fault(fm.make_fault("tls-mismatch"))
        self._faults = initial
        self._rng = random.Random()
        self._flaky_calls = 0
        self._seeded_by: fm.Fault | None = None
        self._flaky_fault: fm.Fault | None = None
        self._database = Database(config.database, self.db_delay)
        self._cache = make_cache(config.cache_url, config.cache_prefix)
        self._refused_database: Database | None = None
        self._refused_cache: Cache | None = None
        self._apply()

    @property
    def faults(self) -> fm.FaultSet:
        """The active faults."""
        return self._faults

    def db_delay(self) -> float:
        """Seconds each query sleeps (read on every query, so slow-db applies at once)."""
        return fm.db_delay(self._faults)

    def set_fault(self, fault: fm.Fault) -> fm.Fault:
        """Activate ``fault`` now. Raises FaultError for restart-only or baked-in faults."""
        if not fm.KINDS[fault.name].runtime:
            raise fm.FaultError(
                f"{fault.name} needs a restart: use "
                f"'python -m greenloop.demo.control fault set {fault.name}'"
            )
        stamped = fm.with_activation(fault, time.monotonic())
        with self._lock:
            self._faults = self._faults.with_fault(stamped)
            self._apply()
        return stamped

    def clear_fault(self, name: str) -> None:
        """Deactivate the runtime fault ``name``. Raises FaultError."""
        kind = fm.KINDS.get(name)
        if kind is not None and not kind.runtime and self._faults.get(name):
            raise fm.FaultError(f"{name} needs a restart: use the control CLI 'fault clear'")
        with self._lock:
            self._faults = self._faults.without(name)
            self._apply()

    def clear_all(self) -> None:
        """Deactivate every runtime fault (bugs and restart-only faults stay)."""
        with self._lock:
            kept = tuple(
                f
                for f in self._faults.faults
                if f.source == "revision" or not fm.KINDS[f.name].runtime
            )
            self._faults = fm.FaultSet(kept)
            self._apply()

    def _apply(self) -> None:
        """Point the dependency clients at refused ports, or back, to match the faults."""
        down = fm.down_dependency(self._faults)
        if down == "database" and self._refused_database is None:
            self._refused_database = refused_database(self.config.database, self.db_delay)
        elif down != "database" and self._refused_database is not None:
            self._refused_database.close()
            self._refused_database = None
        if down == "cache" and self._refused_cache is None:
            self._refused_cache = refused_cache(self.config.cache_url, self.config.cache_prefix)
        elif down != "cache" and self._refused_cache is not None:
            self._refused_cache.close()
            self._refused_cache = None
        intermittent = self._faults.get("intermittent")
        if intermittent is not None and intermittent is not self._seeded_by:
            self._rng = random.Random(int(intermittent.param("seed")))
        self._seeded_by = intermittent
        flaky = self._faults.get("flaky")
        if flaky is not self._flaky_fault:
            self._flaky_calls = 0
        self._flaky_fault = flaky

    @property
    def database(self) -> Database:
        """The database client requests should use now."""
        return self._refused_database or self._database

    @property
    def cache(self) -> Cache:
        """The cache client requests should use now."""
        return self._refused_cache or self._cache

    def draw(self) -> float:
        """The next number of the seeded random stream (intermittent)."""
        with self._lock:
            return self._rng.random()

    def next_flaky_call(self, path: str) -> int:
        """This call's number on the flaky path, or 0 when the path is not targeted."""
        with self._lock:
            if not fm.flaky_applies(self._faults, path):
                return 0
            self._flaky_calls += 1
            return self._flaky_calls

    def close(self) -> None:
        """Release every client."""
        for client in (self._database, self._refused_database):
            if client is not None:
                client.close()
        for cache in (self._cache, self._refused_cache):
            if cache is not None:
                cache.close()
