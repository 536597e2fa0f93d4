"""HTTP(S) probes against a real uvicorn server on loopback."""

from __future__ import annotations

from typing import Any


def test_healthy_endpoint_passes_with_json_and_header_conditions(servers: Any, check: Any) -> None:
    result = check(
        "http",
        conditions=(
            "status == 200",
            'body.status == "healthy"',
            "body.checks[0].ok == true",
            'headers.content-type contains "json"',
            "latency_ms < 5000",
        ),
        url=f"{servers.http}/health",
    )
    assert result.ok, result.detail
    assert result.detail.startswith("HTTP 200 OK in ")
    assert result.target == f"GET {servers.http}/health"
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.failed_conditions == ()


def test_503_fails_and_says_what_was_seen(servers: Any, check: Any) -> None:
    result = check("http", conditions=("status == 200",), url=f"{servers.http}/sick")
    assert not result.ok
    assert result.failed_conditions == ("status == 200 (status=503)",)
    assert "HTTP 503 Service Unavailable" in result.detail
    assert "failed: status == 200 (status=503)" in result.detail


def test_default_condition_is_status_below_400(servers: Any, check: Any) -> None:
    assert check("http", url=f"{servers.http}/health").ok
    assert not check("http", url=f"{servers.http}/sick").ok


def test_body_as_text(servers: Any, check: Any) -> None:
    result = check("http", conditions=('body contains "good"',), url=f"{servers.http}/text")
    assert result.ok, result.detail
    result = check("http", conditions=('body.status == "x"',), url=f"{servers.http}/text")
    assert result.failed_conditions == ('body.status == "x" (body.status=missing)',)


def test_post_json_body(servers: Any, check: Any) -> None:
    result = check(
        "http",
        conditions=("body.got.n == 42",),
        url=f"{servers.http}/echo",
        method="POST",
        json={"n": 42},
    )
    assert result.ok, result.detail


def test_connection_refused(servers: Any, check: Any) -> None:
    result = check("http", url=f"http://127.0.0.1:{servers.closed}/health")
    assert not result.ok
    assert result.detail.startswith("connection refused")
    assert "status < 400 (status=missing)" in result.detail


def test_silent_server_times_out_within_the_probe_timeout(servers: Any, check: Any) -> None:
    result = check("http", url=f"http://127.0.0.1:{servers.blackhole}/health", timeout_s=0.3)
    assert not result.ok
    assert result.detail.startswith(("timed out", "timed out after 0.3 s"))


def test_slow_endpoint_times_out(servers: Any, check: Any) -> None:
    result = check("http", url=f"{servers.http}/slow", timeout_s=0.3)
    assert not result.ok
    assert "timed out" in result.detail


def test_retries_until_the_service_answers(servers: Any, check: Any) -> None:
    result = check(
        "http",
        url=f"{servers.http}/flaky/retry-test/2",
        retries=4,
        retry_delay_s=0.01,
        timeout_s=5,
    )
    assert result.ok, result.detail
    assert result.attempts == 3
    assert result.detail.endswith("(after 3 attempts)")


def test_retries_give_up_and_report_attempts(servers: Any, check: Any) -> None:
    result = check("http", url=f"{servers.http}/sick", retries=2, retry_delay_s=0.01, timeout_s=5)
    assert not result.ok
    assert result.attempts == 3


def test_https_with_ca_file(servers: Any, check: Any) -> None:
    result = check("https", url=f"{servers.https}/health", ca_file=servers.ca_file)
    assert result.ok, result.detail


def test_https_untrusted_by_default_and_verify_tls_false(servers: Any, check: Any) -> None:
    untrusted = check("https", url=f"{servers.https}/health")
    assert not untrusted.ok
    assert untrusted.detail.startswith("TLS certificate not trusted")
    assert check("https", url=f"{servers.https}/health", verify_tls=False).ok


def test_http_url_redirected_to_https_is_still_verified(servers: Any, check: Any) -> None:
    # A plain http:// probe skips loading a trust store, unless it may be
    # redirected to https: then the certificate is checked as for https URLs.
    url = f"{servers.http}/redirect?to={servers.https}/health"
    untrusted = check("http", url=url, follow_redirects=True)
    assert not untrusted.ok
    assert untrusted.detail.startswith("TLS certificate not trusted")
    assert check("http", url=url, follow_redirects=True, ca_file=servers.ca_file).ok
    assert check("http", url=url, follow_redirects=True, verify_tls=False).ok
    not_followed = check("http", url=url, conditions=("status == 307",))
    assert not_followed.ok, not_followed.detail


def test_password_in_url_never_shown(servers: Any, check: Any) -> None:
    port = servers.http.rsplit(":", 1)[1]
    result = check("http", url=f"http://admin:hunter2pw@127.0.0.1:{port}/health")
    assert result.ok, result.detail
    assert "hunter2pw" not in result.target + result.detail
    assert result.target == f"GET http://admin:***@127.0.0.1:{port}/health"
