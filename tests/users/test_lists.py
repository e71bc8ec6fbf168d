"""Followers and following lists: newest first, keyset cursors, Link headers, limits."""

import asyncio
import re

import httpx
import pytest

from tests.users.helpers import as_user, follow, list_ids, new_user, unfollow

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


async def test_lists_are_newest_first(users: httpx.AsyncClient) -> None:
    star = await new_user(users)
    fans = [await new_user(users) for _ in range(4)]
    for fan in fans:
        await follow(users, fan, star)
    assert await list_ids(users, star, star, "followers") == [str(f.id) for f in reversed(fans)]
    for fan in fans:
        await follow(users, star, fan)
    assert await list_ids(users, star, star, "following") == [str(f.id) for f in reversed(fans)]


async def test_a_page_has_items_a_cursor_and_a_link_to_the_next_page(
    users: httpx.AsyncClient,
) -> None:
    star = await new_user(users)
    fans = [await new_user(users) for _ in range(5)]
    for fan in fans:
        await follow(users, fan, star)
    first = await users.get(f"/users/{star.id}/followers?limit=2", headers=as_user(star))
    assert first.status_code == 200
    body = first.json()
    assert [item["id"] for item in body["items"]] == [str(fans[4].id), str(fans[3].id)]
    assert set(body["items"][0]) == {"id", "username", "name", "avatarUrl", "followedAt"}
    assert body["items"][0]["username"] == fans[4].username
    link = LINK.match(first.headers["link"])
    assert link, first.headers["link"]
    assert "limit=2" in link["url"]
    assert f"cursor={body['nextCursor']}" in link["url"]

    second = await users.get(link["url"], headers=as_user(star))  # the Link, as a client would
    assert [item["id"] for item in second.json()["items"]] == [str(fans[2].id), str(fans[1].id)]
    third = await users.get(
        LINK.match(second.headers["link"])["url"],  # type: ignore[index]
        headers=as_user(star),
    )
    assert [item["id"] for item in third.json()["items"]] == [str(fans[0].id)]
    assert third.json()["nextCursor"] is None
    assert "link" not in third.headers


async def test_default_limit_is_20_and_the_maximum_100(users: httpx.AsyncClient) -> None:
    star = await new_user(users)
    fans = await asyncio.gather(*[new_user(users) for _ in range(101)])
    for fan in fans:
        assert (await follow(users, fan, star)).status_code == 200
    default = await users.get(f"/users/{star.id}/followers", headers=as_user(star))
    assert len(default.json()["items"]) == 20
    widest = await users.get(f"/users/{star.id}/followers?limit=100", headers=as_user(star))
    assert len(widest.json()["items"]) == 100
    assert widest.json()["nextCursor"]
    assert len(await list_ids(users, star, star, "followers", limit=7)) == 101


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1e3", "limit="]
)
async def test_bad_limits_are_422(users: httpx.AsyncClient, query: str) -> None:
    me = await new_user(users)
    response = await users.get(f"/users/{me.id}/following?{query}", headers=as_user(me))
    assert response.status_code == 422, response.text
    assert query.split("=")[0] in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "Zjox",
        "Zjp4Ong",
        "czpib2I",
        "%00",
        "A" * 300,
        "Zjo5OTk5OTk5OTk5OTk5OTk5OTk5OToxMg",
    ],
)
async def test_cursors_not_made_by_the_api_are_400(users: httpx.AsyncClient, cursor: str) -> None:
    me = await new_user(users)
    response = await users.get(
        f"/users/{me.id}/followers", params={"cursor": cursor}, headers=as_user(me)
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_paging_is_stable_while_follows_are_inserted_and_removed(
    users: httpx.AsyncClient,
) -> None:
    """Keyset pages: new follows land before the cursor, so nothing repeats or goes missing."""
    star = await new_user(users)
    original = [await new_user(users) for _ in range(25)]
    for fan in original:
        await follow(users, fan, star)
    expected = [str(f.id) for f in reversed(original)]

    seen: list[str] = []
    newcomers: list[str] = []
    url: str | None = f"/users/{star.id}/followers?limit=6"
    while url:
        page = await users.get(url, headers=as_user(star))
        assert page.status_code == 200
        seen.extend(item["id"] for item in page.json()["items"])
        # Between pages: five concurrent new followers, and one of them leaves again.
        arrivals = await asyncio.gather(*[new_user(users) for _ in range(5)])
        await asyncio.gather(*[follow(users, fan, star) for fan in arrivals])
        await unfollow(users, arrivals[0], star)
        newcomers.extend(str(fan.id) for fan in arrivals)
        cursor = page.json()["nextCursor"]
        url = f"/users/{star.id}/followers?limit=6&cursor={cursor}" if cursor else None
    assert seen == expected
    assert not set(seen) & set(newcomers)
    everyone = await list_ids(users, star, star, "followers")
    assert len(everyone) == len(set(everyone)) == 25 + len(newcomers) * 4 // 5


async def test_an_unfollowed_user_leaves_the_list(users: httpx.AsyncClient) -> None:
    star, fan, other = await new_user(users), await new_user(users), await new_user(users)
    await follow(users, fan, star)
    await follow(users, other, star)
    await unfollow(users, fan, star)
    assert await list_ids(users, star, star, "followers") == [str(other.id)]
    assert await list_ids(users, star, fan, "following") == []
