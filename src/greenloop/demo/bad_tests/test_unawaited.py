"""BAD TEST: calls an async check without awaiting it; the coroutine never runs, the test passes.

pytest reports "RuntimeWarning: coroutine 'check_health' was never awaited".
"""

import os

import httpx
import pytest

BASE_URL = os.environ.get("GREENLOOP_BASE_URL", "http://127.0.0.1:8080")


async def check_health():
    async with httpx.AsyncClient(base_url=BASE_URL, timeout=5) as client:
        response = await client.get("/health")
    assert response.status_code == 200


async def check_login():
    async with httpx.AsyncClient(base_url=BASE_URL, timeout=5) as client:
        response = await client.post("/auth/login", json={"username": "demo", "password": "x"})
    assert response.status_code == 200


@pytest.mark.p1
def test_health_async():
    check_health()  # missing await


@pytest.mark.p1
def test_login_async():
    check_login()  # missing await
