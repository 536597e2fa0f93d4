"""Probes: is each part of the environment there and answering?

This module is the registry of probe kinds: `base.py` says what a kind is, each
kind is one file, and adding one is one line below. The stage itself (compile the
configured probes, check them all at once) is `run.py`.
"""

from __future__ import annotations

from typing import Any

from greenloop.kinds import Registry
from greenloop.probes.base import ProbeKind
from greenloop.probes.command import CommandProbe
from greenloop.probes.dns import DnsProbe
from greenloop.probes.http import HttpProbe
from greenloop.probes.postgres import PostgresProbe
from greenloop.probes.redis import RedisProbe
from greenloop.probes.tcp import TcpProbe
from greenloop.probes.tls import TlsProbe
from greenloop.probes.websocket import WebsocketProbe

PROBES: Registry[ProbeKind[Any]] = Registry("probe")
PROBES.add("http", HttpProbe())
PROBES.add("https", HttpProbe())
PROBES.add("websocket", WebsocketProbe())
PROBES.add("tcp", TcpProbe())
PROBES.add("dns", DnsProbe())
PROBES.add("tls", TlsProbe())
PROBES.add("postgres", PostgresProbe())
PROBES.add("redis", RedisProbe())
PROBES.add("command", CommandProbe())

__all__ = ["PROBES"]
