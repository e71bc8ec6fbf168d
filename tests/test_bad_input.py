"""A bad-input corpus through the test gateway: every write route of every service answers NUL
bytes, lone surrogates, raw invalid UTF-8, 10^5-digit numbers, 10^4-deep nesting and oversize
bodies with a JSON 4xx in the error envelope, never a 5xx. (The notifications service's writes
take no body.)"""

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support import PASSWORD, sign_up, unique


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {post} and {room}: made by the `targets` fixture
    body: dict[str, Any]  # a valid body: each case spoils one field of it


def _routes() -> list[Route]:
    username = unique()
    email = f"{username}@example.com"
    return [
        Route(
            "POST",
            "/auth/signup",
            {"name": "Ann", "email": email, "username": username, "password": PASSWORD},
        ),
        Route("POST", "/auth/login", {"identifier": email, "password": PASSWORD}),
        Route("POST", "/auth/password/forgot", {"email": email}),
        Route(
            "POST",
            "/auth/password/reset",
            {"email": email, "code": "123456", "newPassword": PASSWORD},
        ),
        Route(
            "PATCH",
            "/users/me",
            {"name": "Ann", "bio": "hi", "avatarUrl": "https://example.com/a.png"},
        ),
        Route("POST", "/posts/", {"content": "hello", "visibility": "public"}),
        Route("PATCH", "/posts/{post}", {"content": "hello", "visibility": "public"}),
        Route("POST", "/posts/{post}/comments", {"content": "hello"}),
        Route("POST", "/posts/ai/suggest", {"content": "hello"}),
        Route("POST", "/chat/rooms", {"name": "group", "members": []}),
        Route("POST", "/chat/rooms/{room}/members", {"members": [str(uuid.uuid4())]}),
    ]


ROUTES = _routes()
BAD_TEXT = {"nul": "a\x00b", "escape": "\x1b[2J", "lone-high": "a\ud800b", "lone-low": "\udfff"}


def _spoiled(route: Route) -> list[tuple[str, bytes]]:
    """The corpus for one route: (what, raw body)."""
    cases: list[tuple[str, bytes]] = []
    for field in route.body:
        for kind, text in BAD_TEXT.items():
            cases.append((f"{field}={kind}", json.dumps({**route.body, field: text}).encode()))
        cases.append(
            (
                f"{field}=raw-surrogate",
                json.dumps({**route.body, field: "@"}).encode().replace(b'"@"', b'"\xed\xa0\x80"'),
            )
        )
        cases.append(
            (
                f"{field}=10^5 digits",
                json.dumps({**route.body, field: 0})
                .encode()
                .replace(b":0", b":" + b"9" * 100_000, 1),
            )
        )
        cases.append(
            (
                f"{field}=4,300+ digits",
                json.dumps({**route.body, field: 0})
                .encode()
                .replace(b":0", b":" + b"9" * 5_000, 1),
            )
        )
        cases.append(
            (
                f"{field}=10^4 deep",
                json.dumps({**route.body, field: 0})
                .encode()
                .replace(b":0", b":" + b"[" * 10_000 + b"]" * 10_000, 1),
            )
        )
    cases.append(("1,000 deep", b"[" * 1_000 + b"]" * 1_000))
    cases.append(("2 MB", json.dumps({**route.body, "pad": "x" * 2_000_000}).encode()))
    return cases


@pytest.fixture(scope="module")
async def caller(gateway: httpx.AsyncClient) -> dict[str, str]:
    _, token = await sign_up(gateway, "bad")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def targets(gateway: httpx.AsyncClient, caller: dict[str, str]) -> dict[str, str]:
    """A post and a group room of the caller's, for the routes under them."""
    post = await gateway.post("/posts/", headers=caller, json={"content": "target"})
    assert post.status_code == 201, post.text
    room = await gateway.post("/chat/rooms", headers=caller, json={"name": "target"})
    assert room.status_code == 201, room.text
    return {"post": post.json()["id"], "room": room.json()["roomId"]}


def assert_json_4xx(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), what
    assert response.json()["error"]["status"] == response.status_code, what


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_every_write_route_answers_the_corpus_with_a_json_4xx(
    gateway: httpx.AsyncClient, caller: dict[str, str], targets: dict[str, str], route: Route
) -> None:
    path = route.path.format(**targets)
    headers = {**caller, "content-type": "application/json"}
    for what, body in _spoiled(route):
        response = await gateway.request(route.method, path, headers=headers, content=body)
        assert_json_4xx(response, f"{route.method} {path} {what}")


async def test_a_20_mb_json_post_is_refused(
    gateway: httpx.AsyncClient, caller: dict[str, str]
) -> None:
    """The posts route admits large uploads through the gateway; its JSON stays capped."""
    body = json.dumps({"content": "x" * 20_000_000}).encode()
    response = await gateway.post(
        "/posts/", content=body, headers={**caller, "content-type": "application/json"}
    )
    assert_json_4xx(response, "20 MB JSON post")
    assert response.status_code == 413
