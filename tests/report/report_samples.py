"""A realistic RunResult for the report tests, with secrets planted in every text field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from greenloop.records import (
    Action,
    ActionStatus,
    AuthenticityFinding,
    Category,
    Classification,
    Cluster,
    ComponentState,
    Connection,
    DeployResult,
    GateResult,
    IssueAction,
    IssueRef,
    IterationResult,
    Outcome,
    PhaseResult,
    PhaseStatus,
    ProbeResult,
    RootCause,
    RunResult,
    TestResult,
    Verdict,
    Why,
)

# Each is a credential shape the redactor must recognise; none may reach an output file.
PLANTED = {
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLXZhbHVl",
    "github": "ghp_R4nd0mT0k3nV4lu3ForT3st1ngPurp0s3s",
    "github_pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    "gitlab": "glpat-Zx9Yw8Vu7Ts6Rq5Po4Nm",
    "slack": "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
    "stripe": "sk_live_51HxYzAbCdEfGhIjKlMn",
    "aws_access": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "url_password": "hunter2-in-url",
    "dsn_password": "pg-dsn-S3cret",
    "api_key": "apikey-0f9e8d7c6b5a",
    "bearer": "opaque-bearer-7f3a9c2e1d",
    "pem": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    "env_literal": "value-from-env-var-9431",
    "custom": "ACME-INTERNAL-7731",
}

SECRET_TEXT = "\n".join(
    [
        f"Authorization: Bearer {PLANTED['jwt']}",
        f"GITHUB_TOKEN={PLANTED['github']} FINE_GRAINED={PLANTED['github_pat']}",
        f"gitlab token {PLANTED['gitlab']} slack {PLANTED['slack']} stripe {PLANTED['stripe']}",
        f"AWS_ACCESS_KEY_ID={PLANTED['aws_access']}",
        f"AWS_SECRET_ACCESS_KEY={PLANTED['aws_secret']}",
        f"connecting to postgresql://app:{PLANTED['url_password']}@db.internal:5432/app",
        f"dsn: host=db user=app password={PLANTED['dsn_password']} dbname=app",
        f"GET /v1/items?api_key={PLANTED['api_key']} x-api-key: {PLANTED['api_key']}",
        f"curl -H 'Authorization: Bearer {PLANTED['bearer']}' https://staging/api",
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + PLANTED["pem"]
        + '\\n-----END PRIVATE KEY-----\\n"}',
        f"SERVICE_SECRET_FROM_ENV {PLANTED['env_literal']}",
        f"customer ref {PLANTED['custom']}",
    ]
)

T0 = datetime(2026, 11, 28, 10, 15, 0, tzinfo=UTC)


def make_run(
    secret: str = SECRET_TEXT,
    *,
    verdict: Verdict = Verdict.FAILING,
    run_id: str = "20261128-101500-ab12cd",
) -> RunResult:
    """A failing two-phase run with one product and one infrastructure cluster."""
    probes = (
        ProbeResult("api", "api-health", "http", "http://127.0.0.1:8000/health", True, 12.0, "200"),
        ProbeResult(
            "websocket",
            "ws-connect",
            "websocket",
            "ws://127.0.0.1:8000/ws",
            False,
            None,
            f"HTTP 503 {secret}",
        ),
    )
    gate = GateResult(
        healthy=False,
        components=(
            ComponentState("api", True, probes=probes[:1]),
            ComponentState("websocket", False, probes=probes[1:]),
        ),
        probes=probes,
        deepest_failure="websocket",
        duration_s=0.4,
    )
    failing = TestResult(
        nodeid="tests/e2e/test_checkout.py::test_checkout_total",
        outcome=Outcome.FAILED,
        duration_s=1.25,
        phase="critical",
        file="tests/e2e/test_checkout.py",
        line=42,
        message=f"AssertionError: total 90 != 100 {secret}",
        longrepr=f"def test_checkout_total():\n>       assert total == 100\nE       {secret}",
        stdout=f"stdout {secret}",
        stderr=f"stderr {secret}",
        log=f"log {secret}",
        connections=(Connection("127.0.0.1", 8000),),
        request_id="req-1",
    )
    ws = TestResult(
        nodeid="tests/e2e/test_websocket.py::test_websocket_events",
        outcome=Outcome.ERROR,
        duration_s=2.5,
        phase="critical",
        file="tests/e2e/test_websocket.py",
        line=10,
        message=f"server rejected WebSocket connection: HTTP 503 {secret}",
        longrepr=f"websockets.exceptions.InvalidStatus: HTTP 503\n{secret}",
    )
    passed = TestResult(
        nodeid="tests/e2e/test_health.py::test_health",
        outcome=Outcome.PASSED,
        duration_s=0.3,
        phase="smoke",
        connections=(Connection("127.0.0.1", 8000),),
    )
    fake = TestResult(
        nodeid="tests/e2e/test_health.py::test_too_fast",
        outcome=Outcome.PASSED,
        duration_s=0.0001,
        phase="smoke",
    )
    smoke = PhaseResult(
        "smoke",
        PhaseStatus.PASSED,
        0.5,
        tests=(passed, fake),
        command=f"pytest tests/e2e -m smoke --password {secret.splitlines()[0]}",
    )
    critical = PhaseResult(
        "critical",
        PhaseStatus.FAILED,
        4.0,
        tests=(failing, ws),
        command="pytest tests/e2e -m critical",
        note=f"note {secret}",
    )
    clusters = (
        Cluster(
            id="C1",
            fingerprint="a1b2c3d4e5f6",
            category=Category.PRODUCT,
            confidence=0.9,
            tests=(failing.nodeid,),
            title=f"Checkout total is wrong {secret}",
            reason="CHECKOUT-TOTAL",
            root_cause=RootCause(
                summary=f"price rounding {secret}",
                component="api",
                whys=(
                    Why("total is 90", f"assertion in test {secret}", True),
                    Why("discount applied twice", "", False),
                ),
            ),
            impact_usd=12000.0,
            excerpt=f"E assert 90 == 100 {secret}",
        ),
        Cluster(
            id="C2",
            fingerprint="f6e5d4c3b2a1",
            category=Category.INFRASTRUCTURE,
            confidence=0.8,
            tests=(ws.nodeid,),
            title="WebSocket upgrade rejected with 503",
            reason="WEBSOCKET-503",
            root_cause=RootCause("websocket gateway down", "websocket"),
            impact_usd=5000.0,
        ),
    )
    iteration = IterationResult(
        number=1,
        verdict=verdict,
        duration_s=5.0,
        started_at=T0,
        gate=gate,
        deploy=DeployResult("r1", "r2", True, True, f"deployed {secret}", output=f"out {secret}"),
        phases=(smoke, critical),
        authenticity=(AuthenticityFinding(fake.nodeid, "too_fast", f"0.1 ms {secret}"),),
        classifications=(
            Classification(failing.nodeid, Category.PRODUCT, 0.9, "assert", f"ev {secret}"),
            Classification(ws.nodeid, Category.INFRASTRUCTURE, 0.8, "ws-503", "HTTP 503"),
        ),
        clusters=clusters,
        issues=(
            IssueRef("GL-1", f"E2E-DEPLOY-CHECKOUT-TOTAL {secret}", IssueAction.CREATED, "x.md"),
        ),
        actions=(Action("restart ws", "command", ActionStatus.DRY_RUN, f"would run {secret}"),),
    )
    return RunResult(
        run_id=run_id,
        verdict=verdict,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=6),
        environment="staging",
        revision="r2",
        iterations=(iteration,),
        focus="all",
        command_line=f"greenloop run --focus all {secret.splitlines()[4]}",
    )
