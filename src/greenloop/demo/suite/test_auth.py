"""Login, bearer tokens and sessions, as a user's browser would use them."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.p1, pytest.mark.auth]


def test_login_returns_bearer_token(client: httpx.Client, credentials: dict[str, str]) -> None:
    response = client.post("/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"].count(".") == 2  # a JWT: header.payload.signature


def test_login_rejects_wrong_password(client: httpx.Client, credentials: dict[str, str]) -> None:
    response = client.post(
        "/auth/login", json={"username": credentials["username"], "password": "not-it"}
    )
    assert response.status_code == 401


def test_protected_endpoint_requires_token(client: httpx.Client) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_me_returns_logged_in_user(auth_client: httpx.Client, credentials: dict[str, str]) -> None:
    response = auth_client.get("/me")
    assert response.status_code == 200, response.text
    assert response.json()["username"] == credentials["username"]


def test_malformed_token_rejected(client: httpx.Client) -> None:
    response = client.get("/me", headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401


def test_logout_revokes_token(client: httpx.Client, credentials: dict[str, str]) -> None:
    token = client.post("/auth/login", json=credentials).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/me", headers=bearer).status_code == 200
    assert client.post("/auth/logout", headers=bearer).status_code == 204
    assert client.get("/me", headers=bearer).status_code == 401
