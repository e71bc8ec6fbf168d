"""Brute-force limits, counted in Redis: 429 with Retry-After once a limit is used up."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from devstack.platform import Platform
from socialhub.auth.app import create_app
from socialhub.auth.settings import AuthSettings
from tests.auth.helpers import signup
from tests.support import PASSWORD, asgi_transport, random_ip, settings_for, unique


@pytest.fixture(scope="module")
async def strict_auth(platform: Platform) -> AsyncIterator[FastAPI]:
    """An auth instance with small limits; each test acts from its own client addresses."""
    settings = settings_for(
        AuthSettings,
        platform,
        "auth",
        login_limit_per_ip=5,
        login_failures_per_account=3,
        reset_requests_per_email=2,
        signup_limit_per_ip=3,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def _as(app: FastAPI, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=asgi_transport(app, ip), base_url="http://testserver")


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "rate_limited"


async def test_login_attempts_per_ip(strict_auth: FastAPI) -> None:
    def attempt() -> dict[str, str]:  # a new account name each time: only the IP limit applies
        return {"identifier": unique(), "password": "Wrong1234"}

    async with _as(strict_auth, random_ip()) as client:
        statuses = [
            (await client.post("/auth/login", json=attempt())).status_code for _ in range(5)
        ]
        assert statuses == [401] * 5
        _assert_limited(await client.post("/auth/login", json=attempt()))
    async with _as(strict_auth, random_ip()) as other_ip:
        assert (await other_ip.post("/auth/login", json=attempt())).status_code == 401


async def test_failed_logins_per_account_lock_that_account_only(strict_auth: FastAPI) -> None:
    async with _as(strict_auth, random_ip()) as client:
        victim = (await signup(client))["user"]
        bystander = (await signup(client))["user"]
    for _ in range(3):
        async with _as(strict_auth, random_ip()) as attacker:
            wrong = {"identifier": victim["username"], "password": "Wrong1234"}
            assert (await attacker.post("/auth/login", json=wrong)).status_code == 401
    async with _as(strict_auth, random_ip()) as client:
        right = {"identifier": victim["username"], "password": PASSWORD}
        _assert_limited(await client.post("/auth/login", json=right))
        other = {"identifier": bystander["username"], "password": PASSWORD}
        assert (await client.post("/auth/login", json=other)).status_code == 200


async def test_reset_requests_per_email(strict_auth: FastAPI) -> None:
    async with _as(strict_auth, random_ip()) as client:
        email = (await signup(client))["user"]["email"]
        for _ in range(2):
            assert (
                await client.post("/auth/password/forgot", json={"email": email})
            ).status_code == 202
        _assert_limited(await client.post("/auth/password/forgot", json={"email": email}))


async def test_signups_per_ip(strict_auth: FastAPI) -> None:
    async with _as(strict_auth, random_ip()) as client:
        for _ in range(3):
            await signup(client)
        response = await client.post(
            "/auth/signup",
            json={"name": "N", "email": "n@example.com", "username": "nnnn", "password": PASSWORD},
        )
        _assert_limited(response)
