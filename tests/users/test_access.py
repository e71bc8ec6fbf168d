"""Every route is private, and no input of any kind gets a 5xx."""

import base64
import json
import uuid

import httpx
import pytest

from socialhub.kit.identity import USER_PAYLOAD_HEADER
from tests.users.helpers import as_user, new_user

SOME_ID = "3f2b8c1e-0c9e-4c53-9b9e-2f7c1d4a5b6c"
ROUTES = [
    ("GET", "/users/me"),
    ("PATCH", "/users/me"),
    ("GET", "/users/search?q=ab"),
    ("GET", "/users/by-username/someone"),
    ("POST", f"/users/follow/{SOME_ID}"),
    ("DELETE", f"/users/follow/{SOME_ID}"),
    ("POST", f"/users/block/{SOME_ID}"),
    ("DELETE", f"/users/block/{SOME_ID}"),
    ("GET", f"/users/{SOME_ID}/followers"),
    ("GET", f"/users/{SOME_ID}/following"),
    ("GET", f"/users/{SOME_ID}"),
]
BAD_PAYLOADS = [
    "",
    "not json",
    "{}",
    '{"username": "mallory"}',
    f'{{"id": "{SOME_ID}"}}',
    '{"id": "not-a-uuid", "username": "mallory"}',
    "[1, 2]",
]


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_the_verified_user(
    users: httpx.AsyncClient, method: str, path: str
) -> None:
    for payload in [None, *BAD_PAYLOADS]:
        headers = {} if payload is None else {USER_PAYLOAD_HEADER: payload}
        response = await users.request(
            method, path, headers=headers, json={"name": "x"} if method == "PATCH" else None
        )
        assert response.status_code == 401, (payload, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_payload_with_an_impossible_username_is_refused_not_stored(
    users: httpx.AsyncClient,
) -> None:
    for username in ("x" * 31, "nul\u0000byte", "tab\tname"):
        payload = json.dumps({"id": str(uuid.uuid4()), "username": username})
        response = await users.get("/users/me", headers={USER_PAYLOAD_HEADER: payload})
        assert response.status_code == 401, response.text


async def test_bad_input_of_every_kind_is_a_4xx_json_error(users: httpx.AsyncClient) -> None:
    me = await new_user(users)
    cases: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "/users/%ZZ", {}),
        ("GET", "/users/%00", {}),
        ("GET", "/users/by-username/%00", {}),
        ("GET", "/users/by-username/" + "a" * 5000, {}),
        ("GET", f"/users/{SOME_ID}/nothing", {}),
        ("GET", "/users/search?q=%00", {}),
        ("GET", "/users/search?q=a&limit=99999999999999999999999", {}),
        ("GET", "/users/search?q=a&limit=1&limit=x", {}),
        ("GET", f"/users/search?q=a&cursor={cursor('s:a' + chr(0))}", {}),
        ("GET", f"/users/search?q=a&cursor={cursor('s:' + 'a' * 40)}", {}),
        ("GET", f"/users/{me.id}/followers?cursor={cursor('f:0:99999999999999999999')}", {}),
        ("GET", f"/users/{me.id}/followers?cursor={cursor('f:-99999999999999999999:1')}", {}),
        ("GET", f"/users/{me.id}/followers?cursor={cursor('f:1:-1')}", {}),
        ("GET", f"/users/{me.id}/followers?cursor={cursor('f:1.5:1')}", {}),
        ("GET", f"/users/{me.id}/following?cursor=%FF", {}),
        ("PUT", "/users/me", {"json": {"name": "x"}}),
        ("DELETE", "/users/me", {}),
        ("POST", "/users/follow", {}),
        (
            "PATCH",
            "/users/me",
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
        ),
        (
            "PATCH",
            "/users/me",
            {
                "content": b"name=x",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
        ),
        ("PATCH", "/users/me", {"json": {"name": "x" * 1_000_000}}),
        ("PATCH", "/users/me", {"json": {"bio": {"nested": True}}}),
        ("PATCH", "/users/me", {"json": {"avatarUrl": "http://"}}),
        ("PATCH", "/users/me", {"json": {"avatarUrl": "https://exa mple.com/a.png"}}),
    ]
    for method, path, kwargs in cases:
        headers = {**as_user(me), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        response = await users.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.text,
        )
        assert response.headers["content-type"] == "application/json", (method, path)
        assert response.json()["error"]["status"] == response.status_code
