"""The kernel's view of this process's TCP sockets.

Clients written in C (libpq under psycopg, hiredis, ...) never call Python's socket
methods, so the wrappers of `network.py` cannot see them. The kernel can: every TCP socket this
process holds has byte counters (TCP_INFO). A socket whose counters moved while a test
ran carried that test's traffic, whoever opened it.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_INFO_LEN = 136  # through tcpi_bytes_received
_BYTES = struct.Struct("=QQ")  # tcpi_bytes_acked, tcpi_bytes_received (linux/tcp.h)
_BYTES_AT = 120

TcpCounters = dict[str, tuple[tuple[str, int], int]]  # socket inode -> (peer, bytes moved)


def tcp_counters() -> TcpCounters:
    """This process's connected TCP sockets: peer and bytes sent (acked) plus received."""
    if _TCP_INFO is None:
        return {}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return {}
    out: TcpCounters = {}
    for name in fds:
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if not link.startswith("socket:") or link in out:
            continue
        try:
            dup = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if dup.type != socket.SOCK_STREAM or dup.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            peer = address_of(dup.getpeername())
            info = dup.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_LEN)
        except OSError:
            continue
        finally:
            dup.close()
        if peer is not None and len(info) >= _BYTES_AT + _BYTES.size:
            sent, received = _BYTES.unpack_from(info, _BYTES_AT)
            out[link] = (peer, sent + received)
    return out


def tcp_traffic(before: TcpCounters, after: TcpCounters) -> set[tuple[str, int]]:
    """Peers of sockets whose counters moved between two snapshots."""
    return {
        peer
        for key, (peer, moved) in after.items()
        if moved > (before[key][1] if key in before and before[key][0] == peer else 0)
    }


# A client in C that opens and closes its socket inside one test (psycopg2 in a unittest
# setUp / tearDown) holds it at neither snapshot above. The kernel still saw it: the side
# that closed first keeps the connection in TIME_WAIT for 60 s, with the time left. Those
# entries are not attributable to a process, so they are weak evidence: enough to not call
# a test fake, never enough to call it real (verify.py).
_TIME_WAIT, _TIME_WAIT_S = "06", 60.0
# Closing, not yet closed: FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING. A client
# that closed while its server had not yet closed back sits here for a while (13 of 20
# psycopg2 connect/close cycles right after close on the databases field trial), not in
# TIME_WAIT. These carry no date; they are counted as "ended" the same weak way.
_CLOSING = frozenset({"04", "05", "08", "09", "0B"})
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def active_opens() -> int:
    """The kernel's count of outgoing TCP connections in this network namespace (-1: unknown)."""
    try:
        with open("/proc/self/net/snmp", encoding="ascii") as handle:
            rows = [line.split() for line in handle if line.startswith("Tcp:")]
        return int(rows[1][rows[0].index("ActiveOpens")])
    except (OSError, ValueError, IndexError):
        return -1


def _endpoint(text: str) -> tuple[str, int]:
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    # /proc prints each 32-bit word of the address in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    host = socket.inet_ntop(family, words)
    return host.removeprefix("::ffff:"), int(port, 16)


def ended_connections(
    within_s: float, python_ports: frozenset[int] = frozenset()
) -> set[tuple[str, int]]:
    """Both endpoints of TCP connections on this machine closed in the last `within_s` s,
    or closing now (half-closed: the kernel gives no date for those).

    `python_ports`: local ports of client sockets this process opened through Python's
    socket (network.client_ports). Their connections are left out: Python-level traffic
    is seen directly, and an earlier test's connection still closing is no evidence for
    this one.
    """
    out: set[tuple[str, int]] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 6:
                continue
            if fields[3] not in _CLOSING and fields[3] != _TIME_WAIT:
                continue
            try:
                local, remote = _endpoint(fields[1]), _endpoint(fields[2])
            except (ValueError, IndexError, OSError):
                continue
            if local[1] in python_ports or remote[1] in python_ports:
                continue
            if fields[3] in _CLOSING:
                out.update((local, remote))
                continue
            try:
                left_s = int(fields[5].split(":")[1], 16) / _CLOCK_TICKS
                # `left_s` is truncated to clock ticks: allow two.
                if _TIME_WAIT_S - left_s <= within_s + 2 / _CLOCK_TICKS:
                    out.update((local, remote))
            except (ValueError, IndexError):
                continue
    return out


def address_of(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return str(address[0]), address[1]
    return None
