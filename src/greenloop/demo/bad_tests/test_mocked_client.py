"""BAD TEST: mocks the HTTP client, so it checks the mock, not the service."""

from unittest.mock import MagicMock, patch

import httpx
import pytest


@pytest.mark.p1
def test_health_is_healthy():
    fake = MagicMock(status_code=200)
    fake.json.return_value = {"status": "healthy"}
    with patch("httpx.Client.get", return_value=fake):
        with httpx.Client(base_url="http://staging.invalid") as client:
            response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


@pytest.mark.p1
def test_login_works():
    fake = MagicMock(status_code=200)
    fake.json.return_value = {"access_token": "x.y.z", "token_type": "bearer"}
    with patch.object(httpx.Client, "post", return_value=fake):
        with httpx.Client(base_url="http://staging.invalid") as client:
            body = client.post("/auth/login", json={}).json()
    assert body["token_type"] == "bearer"
