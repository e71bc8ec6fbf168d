"""The users API through the real nginx gateway, with every service running as a process.

The design document's Quick Start step D as written: sign up, then follow a user by id with
nothing but the bearer token.
"""

from typing import Any

import httpx

from tests.support import sign_up


async def signup(gateway: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    user, token = await sign_up(gateway, "gw")
    return user, {"Authorization": f"Bearer {token}"}


async def test_quick_start_d_follow_a_user_by_id(gateway: httpx.AsyncClient) -> None:
    follower, token = await signup(gateway)
    followed, followed_token = await signup(gateway)
    # curl -X POST http://localhost/users/follow/USER_ID -H "Authorization: Bearer $TOKEN"
    response = await gateway.post(f"/users/follow/{followed['id']}", headers=token)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "followerId": follower["id"],
        "followingId": followed["id"],
        "isFollowing": True,
    }
    profile = await gateway.get(f"/users/{followed['id']}", headers=followed_token)
    assert profile.json()["followersCount"] == 1
    followers = await gateway.get(f"/users/{followed['id']}/followers", headers=token)
    assert [item["id"] for item in followers.json()["items"]] == [follower["id"]]
    assert (await gateway.delete(f"/users/follow/{followed['id']}", headers=token)).json()[
        "isFollowing"
    ] is False


async def test_the_profile_comes_from_the_verified_token(gateway: httpx.AsyncClient) -> None:
    user, token = await signup(gateway)
    me = await gateway.get("/users/me", headers=token)
    assert me.status_code == 200, me.text
    assert (me.json()["id"], me.json()["username"]) == (user["id"], user["username"])
    spoofed = await gateway.get(
        "/users/me",
        headers={
            "x-user-payload": '{"id": "3f2b8c1e-0c9e-4c53-9b9e-2f7c1d4a5b6c", "username": "eve"}'
        },
    )
    assert spoofed.status_code == 401  # the gateway never forwards a client's own payload
    with_token = await gateway.get(
        "/users/me",
        headers={
            **token,
            "x-user-payload": ('{"id": "3f2b8c1e-0c9e-4c53-9b9e-2f7c1d4a5b6c", "username": "eve"}'),
        },
    )
    assert with_token.json()["id"] == user["id"]


async def test_pagination_links_work_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    star, star_token = await signup(gateway)
    fans = [await signup(gateway) for _ in range(3)]
    for _, token in fans:
        assert (await gateway.post(f"/users/follow/{star['id']}", headers=token)).status_code == 200
    first = await gateway.get(f"/users/{star['id']}/followers?limit=2", headers=star_token)
    assert len(first.json()["items"]) == 2
    second = await gateway.get(first.links["next"]["url"], headers=star_token)
    assert [item["id"] for item in second.json()["items"]] == [fans[0][0]["id"]]
