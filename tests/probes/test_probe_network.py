"""tcp, dns and tls probes against real sockets and certificates made by the test."""

from __future__ import annotations

from typing import Any


def test_tcp_connects(servers: Any, check: Any) -> None:
    port = int(servers.http.rsplit(":", 1)[1])
    result = check("tcp", host="127.0.0.1", port=port)
    assert result.ok, result.detail
    assert result.target == f"tcp://127.0.0.1:{port}"


def test_tcp_refused(servers: Any, check: Any) -> None:
    result = check("tcp", host="127.0.0.1", port=servers.closed)
    assert not result.ok
    assert result.detail == "connection refused; failed: connected (connected=False)"


def test_dns_resolves_localhost(check: Any) -> None:
    result = check(
        "dns", conditions=("resolved", 'addresses contains "127.0.0.1"'), host="localhost"
    )
    assert result.ok, result.detail
    assert "127.0.0.1" in result.detail


def test_dns_rejects_invalid_name_without_leaving_the_machine(check: Any) -> None:
    result = check("dns", host="bad..name")
    assert not result.ok
    assert result.detail.startswith("'bad..name' is not a valid host name")


def test_tls_valid_certificate(servers: Any, check: Any) -> None:
    result = check(
        "tls",
        conditions=("chain_valid", "hostname_matches", "cert_days_left > 14"),
        host="localhost",
        port=servers.tls_good,
        ca_file=servers.ca_file,
    )
    assert result.ok, result.detail
    assert result.detail.startswith("certificate valid for ")


def test_tls_untrusted_chain(servers: Any, check: Any) -> None:
    result = check("tls", host="localhost", port=servers.tls_good)
    assert not result.ok
    assert "certificate not trusted: unable to get local issuer certificate" in result.detail
    assert result.failed_conditions == ("chain_valid (chain_valid=False)",)


def test_tls_wrong_host_named_in_words(servers: Any, check: Any) -> None:
    result = check("tls", host="localhost", port=servers.tls_wrong_host, ca_file=servers.ca_file)
    assert not result.ok
    assert result.detail.startswith("certificate is for wrong.example.test, not localhost")
    assert result.failed_conditions == ("hostname_matches (hostname_matches=False)",)


def test_tls_expired_named_in_words(servers: Any, check: Any) -> None:
    result = check(
        "tls",
        conditions=("cert_days_left > 14",),
        host="localhost",
        port=servers.tls_expired,
        ca_file=servers.expired_ca_file,
    )
    assert not result.ok
    assert result.detail.startswith("certificate expired 3 days ago")
    assert result.failed_conditions == ("cert_days_left > 14 (cert_days_left=-3)",)


def test_tls_nothing_listening(servers: Any, check: Any) -> None:
    result = check("tls", host="127.0.0.1", port=servers.closed)
    assert not result.ok
    assert result.detail.startswith("connection refused")
