"""Search: prefix of username or name, case-insensitive, paginated, validated."""

import uuid

import httpx
import pytest

from tests.users.helpers import as_user, new_user, someone


async def named(users: httpx.AsyncClient, username: str, name: str) -> uuid.UUID:
    user = someone()
    user = user.model_copy(update={"username": username})
    assert (await users.get("/users/me", headers=as_user(user))).status_code == 200
    assert (
        await users.patch("/users/me", headers=as_user(user), json={"name": name})
    ).status_code == 200
    return user.id


async def search(
    users: httpx.AsyncClient, viewer_headers: dict[str, str], q: str, **params: str
) -> httpx.Response:
    return await users.get("/users/search", params={"q": q, **params}, headers=viewer_headers)


async def test_prefix_of_username_or_name_case_insensitively(users: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    viewer = as_user(await new_user(users))
    by_username = await named(users, f"q{tag}_b", "Somebody Else")
    by_name = await named(users, f"z{tag}_x", f"Q{tag.upper()} Person")
    inside = await named(users, f"a{tag}_c", f"Has q{tag} inside")
    response = await search(users, viewer, f"Q{tag}")
    assert response.status_code == 200, response.text
    ids = [item["id"] for item in response.json()["items"]]
    assert ids == [str(by_username), str(by_name)]  # by username; no infix matches
    assert str(inside) not in ids
    assert set(response.json()["items"][0]) == {"id", "username", "name", "avatarUrl"}


async def test_search_pages_follow_the_cursor(users: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    viewer = as_user(await new_user(users))
    expected = [str(await named(users, f"p{tag}_{n:02d}", f"Page {n}")) for n in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await search(users, viewer, f"p{tag}", **params)
        seen.extend(item["id"] for item in page.json()["items"])
        cursor = page.json()["nextCursor"]
        if cursor is None:
            assert "link" not in page.headers
            break
        assert page.headers["link"].endswith('; rel="next"')
    assert seen == expected


async def test_like_wildcards_are_plain_characters(users: httpx.AsyncClient) -> None:
    viewer = as_user(await new_user(users))
    for q in ("_", "%", "\\", "u%", "u_"):
        response = await search(users, viewer, q)
        assert response.status_code == 200, (q, response.text)
        for item in response.json()["items"]:
            assert item["username"].startswith(q) or item["name"].lower().startswith(q), q


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 51},
        {"q": "a\x00b"},
        {"q": "ok", "limit": "0"},
        {"q": "ok", "limit": "101"},
    ],
)
async def test_bad_queries_are_422(users: httpx.AsyncClient, params: dict[str, str]) -> None:
    viewer = as_user(await new_user(users))
    response = await users.get("/users/search", params=params, headers=viewer)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_a_foreign_cursor_is_400(users: httpx.AsyncClient) -> None:
    viewer = as_user(await new_user(users))
    response = await search(users, viewer, "a", cursor="Zjox")  # a follow-list cursor
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
