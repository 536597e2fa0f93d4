"""Certificate faults on real TLS endpoints: expired, untrusted, issued for another host.

The endpoints are real TLS servers on loopback ports, each presenting one certificate made
with trustme; the gate trusts only the team's CA (`ca_file`), as a staging setup would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from faultlab_helpers import check, judge

EDGE = [{"name": "load_balancer"}]


@dataclass(frozen=True)
class Endpoints:
    ca_file: str
    good: int
    expired: int
    untrusted: int
    wrong_host: int


def _serve(context: ssl.SSLContext, stop: threading.Event) -> int:
    """A TLS server on a free port: handshakes each connection, then closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def run() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
                    pass

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    ca, other_ca = trustme.CA(), trustme.CA()
    now = dt.datetime.now(dt.UTC)
    leaves = {
        "good": ca.issue_cert("localhost"),
        "expired": ca.issue_cert(
            "localhost", not_before=now - dt.timedelta(days=90),
            not_after=now - dt.timedelta(days=3),
        ),
        "untrusted": other_ca.issue_cert("localhost"),  # a CA the gate does not trust
        "wrong_host": ca.issue_cert("wrong.example.test"),
    }  # fmt: skip
    ca_file = Path(tmp_path_factory.mktemp("faultlab-tls")) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    stop = threading.Event()
    ports = {}
    for name, leaf in leaves.items():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        ports[name] = _serve(context, stop)
    yield Endpoints(str(ca_file), **ports)
    stop.set()


def probes(endpoints: Endpoints, port: int) -> list[dict[str, Any]]:
    return [
        {"name": "edge-tls", "component": "load_balancer", "kind": "tls", "host": "localhost",
         "port": port, "ca_file": endpoints.ca_file, "timeout_s": 2},
    ]  # fmt: skip


def verdict_for(endpoints: Endpoints, port: int) -> Any:
    return judge(probes(endpoints, port), components=EDGE, needs=("load_balancer",))


def test_good_certificate_passes(endpoints: Endpoints) -> None:
    assert check(probes(endpoints, endpoints.good), components=EDGE).healthy


def test_expired_certificate_is_infrastructure(endpoints: Endpoints) -> None:
    verdict = verdict_for(endpoints, endpoints.expired)
    assert (verdict.mode, verdict.category, verdict.component) == (
        "expired_certificate", "infrastructure", "load_balancer",
    )  # fmt: skip
    assert "certificate expired" in verdict.cluster.title


def test_untrusted_certificate_is_configuration(endpoints: Endpoints) -> None:
    verdict = verdict_for(endpoints, endpoints.untrusted)
    assert (verdict.mode, verdict.category, verdict.component) == (
        "untrusted_certificate", "configuration", "load_balancer",
    )  # fmt: skip


def test_certificate_for_another_host_is_configuration(endpoints: Endpoints) -> None:
    verdict = verdict_for(endpoints, endpoints.wrong_host)
    assert (verdict.mode, verdict.category, verdict.component) == (
        "hostname_mismatch", "configuration", "load_balancer",
    )  # fmt: skip
    assert "wrong.example.test" in verdict.cluster.root_cause.whys[-1].evidence


def test_the_three_certificate_faults_are_three_issues(endpoints: Endpoints) -> None:
    found = [verdict_for(endpoints, p) for p in (endpoints.expired, endpoints.untrusted,
                                                  endpoints.wrong_host)]  # fmt: skip
    assert len({v.cluster.fingerprint for v in found}) == 3
