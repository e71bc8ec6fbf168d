"""Signup and login against the real auth database, Redis and Kafka."""

import httpx
import pytest

from devstack.platform import Platform
from socialhub.contracts.events import USER_TOPIC
from tests.auth.helpers import bearer, signup
from tests.support import PASSWORD, EventProbe, escaped_json, unique


async def test_signup_returns_a_token_and_the_user(auth: httpx.AsyncClient) -> None:
    username = unique()
    result = await signup(
        auth, username=username, name="John Doe", email=f"{username.upper()}@Example.com"
    )
    assert result["user"]["username"] == username
    assert result["user"]["email"] == f"{username}@example.com"
    assert result["user"]["name"] == "John Doe"
    assert "password" not in str(result["user"]).lower()
    me = await auth.get("/auth/me", headers=bearer(result["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == result["user"]["id"]


async def test_signup_publishes_user_created_through_the_outbox(
    auth: httpx.AsyncClient, platform: Platform
) -> None:
    topic = platform.profile.topic_prefix + USER_TOPIC
    async with EventProbe.on(platform.infra.kafka.address, topic) as probe:
        result = await signup(auth)
        user_id = result["user"]["id"]
        event, key = await probe.wait_for(lambda e: e["data"].get("userId") == user_id)
    assert key == user_id.encode()
    assert event["eventType"] == "user.created"
    assert event["producer"] == "auth"
    assert set(event) == {"eventId", "eventType", "occurredAt", "producer", "data"}
    assert event["data"]["username"] == result["user"]["username"]


@pytest.mark.parametrize("field", ["email", "username"])
async def test_taken_email_or_username_is_409_naming_the_field(
    auth: httpx.AsyncClient, field: str
) -> None:
    first = await signup(auth)
    username = unique()
    body = {
        "name": "Other",
        "email": f"{username}@example.com",
        "username": username,
        "password": PASSWORD,
    }
    body[field] = first["user"][field].upper() if field == "email" else first["user"][field]
    response = await auth.post("/auth/signup", json=body)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["fields"] == {field: "already taken"}
    assert field in error["message"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("email", "not-an-email", "email"),
        ("username", "ab", "3-30"),
        ("username", "bad name!", "a-z"),
        ("username", "x" * 31, "3-30"),
        ("password", "short1", "at least 8"),
        ("password", "lettersonly", "digit"),
        ("password", "1" * 80, "72 bytes"),
        ("name", "", "at least 1"),
        ("name", "n" * 101, "at most 100"),
        ("name", "nul\x00byte", "control characters"),
        ("name", "two\nlines", "control characters"),
        ("name", "lone \ud800", "string"),  # refused by pydantic-core itself
        ("password", "Secure\x00Pass123", "control characters"),
    ],
)
async def test_invalid_signup_fields_are_named(
    auth: httpx.AsyncClient, field: str, value: str, reason: str
) -> None:
    username = unique()
    body = {
        "name": "Name",
        "email": f"{username}@example.com",
        "username": username,
        "password": PASSWORD,
        field: value,
    }
    response = await auth.post("/auth/signup", **escaped_json(body))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [field]
    assert reason in error["fields"][field]


async def test_malformed_and_missing_bodies_are_clear_4xx(auth: httpx.AsyncClient) -> None:
    broken = await auth.post(
        "/auth/signup", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_json"
    empty = await auth.post("/auth/signup", json={})
    assert empty.status_code == 422
    assert set(empty.json()["error"]["fields"]) == {"name", "email", "username", "password"}
    extra = await auth.post("/auth/login", json={"identifier": "a", "password": "b", "x": 1})
    assert extra.status_code == 422
    assert "x" in extra.json()["error"]["fields"]


@pytest.mark.parametrize("by", ["email", "username"])
async def test_login_with_email_or_username(auth: httpx.AsyncClient, by: str) -> None:
    user = (await signup(auth))["user"]
    response = await auth.post(
        "/auth/login", json={"identifier": user[by].upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == user["id"]
    verified = await auth.get("/api/v1/auth/verify-user", headers=bearer(response.json()["token"]))
    assert verified.status_code == 200


async def test_wrong_password_and_unknown_account_get_the_same_401(auth: httpx.AsyncClient) -> None:
    user = (await signup(auth))["user"]
    wrong = await auth.post(
        "/auth/login", json={"identifier": user["email"], "password": "Wrong1234"}
    )
    unknown = await auth.post(
        "/auth/login", json={"identifier": f"{unique()}@example.com", "password": "Wrong1234"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("identifier", "nul\x00@example.com"),
        ("identifier", "\udc00"),
        ("password", "Wrong\x001234"),
        ("password", "Wrong\ud8001234"),
    ],
)
async def test_login_fields_with_control_characters_are_422_naming_the_field(
    auth: httpx.AsyncClient, field: str, value: str
) -> None:
    body = {"identifier": f"{unique()}@example.com", "password": "Wrong1234", field: value}
    response = await auth.post("/auth/login", **escaped_json(body))
    assert response.status_code == 422, response.text
    assert list(response.json()["error"]["fields"]) == [field]
