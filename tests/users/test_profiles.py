"""Profiles: just in time, from auth's user.created, read by id and username, edited."""

import uuid
from typing import Any

import httpx
import pytest

from devstack.platform import Platform
from socialhub.contracts.events import USER_TOPIC
from socialhub.kit.events.envelope import Event
from tests.support import EventProbe, escaped_json, eventually, unique
from tests.users.helpers import UsersDb, as_user, new_user, profile, publish, someone

PROFILE_KEYS = {
    "id",
    "username",
    "name",
    "bio",
    "avatarUrl",
    "followersCount",
    "followingCount",
    "postsCount",
    "createdAt",
}


def user_created(user_id: uuid.UUID, username: str, name: str) -> Event:
    return Event(
        event_type="user.created",
        producer="auth",
        data={
            "userId": str(user_id),
            "username": username,
            "name": name,
            "createdAt": "2026-11-25T09:00:00+00:00",
        },
    )


async def test_first_request_creates_the_callers_profile(
    users: httpx.AsyncClient, users_db: UsersDb
) -> None:
    newcomer = someone()
    first = await users.get("/users/me", headers=as_user(newcomer))
    second = await users.get("/users/me", headers=as_user(newcomer))
    assert first.status_code == second.status_code == 200
    body = first.json()
    assert set(body) == PROFILE_KEYS
    assert (body["id"], body["username"], body["name"]) == (
        str(newcomer.id),
        newcomer.username,
        newcomer.username,
    )
    assert (body["bio"], body["avatarUrl"]) == ("", None)
    assert (body["followersCount"], body["followingCount"], body["postsCount"]) == (0, 0, 0)
    assert second.json() == body
    assert (
        await users_db.scalar("SELECT count(*) FROM profiles WHERE id = :id", id=newcomer.id) == 1
    )


async def test_signup_in_auth_creates_the_profile_with_the_real_name(
    auth: httpx.AsyncClient, users: httpx.AsyncClient
) -> None:
    username = unique()
    signup = await auth.post(
        "/auth/signup",
        json={
            "name": "John Doe",
            "email": f"{username}@example.com",
            "username": username,
            "password": "SecurePass123!",
        },
    )
    assert signup.status_code == 201, signup.text
    user_id = signup.json()["user"]["id"]
    viewer = await new_user(users)

    async def arrived() -> bool:
        return (await users.get(f"/users/{user_id}", headers=as_user(viewer))).status_code == 200

    await eventually(arrived, what="profile from user.created")
    body = (await users.get(f"/users/{user_id}", headers=as_user(viewer))).json()
    assert (body["username"], body["name"]) == (username, "John Doe")


async def test_user_created_after_a_just_in_time_profile_fills_in_the_name(
    users: httpx.AsyncClient, platform: Platform, users_db: UsersDb
) -> None:
    newcomer = await new_user(users)
    event = user_created(newcomer.id, newcomer.username, "Real Name")
    topic = platform.profile.topic_prefix + USER_TOPIC
    await publish(platform.infra.kafka.address, topic, [event, event], key=str(newcomer.id))

    async def named() -> bool:
        return bool((await profile(users, newcomer, newcomer))["name"] == "Real Name")

    await eventually(named, what="name filled in by user.created")
    assert (await profile(users, newcomer, newcomer))["createdAt"] == "2026-11-25T09:00:00Z"
    assert (
        await users_db.scalar("SELECT count(*) FROM profiles WHERE id = :id", id=newcomer.id) == 1
    )
    assert (
        await users_db.scalar("SELECT provisional FROM profiles WHERE id = :id", id=newcomer.id)
        is False
    )


async def test_a_name_the_user_chose_wins_over_a_late_user_created(
    users: httpx.AsyncClient, platform: Platform, users_db: UsersDb
) -> None:
    newcomer = await new_user(users)
    patched = await users.patch("/users/me", headers=as_user(newcomer), json={"name": "Chosen"})
    assert patched.status_code == 200, patched.text
    marker = await new_user(users)
    topic = platform.profile.topic_prefix + USER_TOPIC
    await publish(
        platform.infra.kafka.address,
        topic,
        [
            user_created(newcomer.id, newcomer.username, "From Signup"),
            user_created(marker.id, marker.username, "Marker"),
        ],
        key=str(newcomer.id),
    )

    async def marker_named() -> bool:  # same key, same partition: consumed after the first
        return bool((await profile(users, marker, marker))["name"] == "Marker")

    await eventually(marker_named, what="marker event consumed")
    assert (await profile(users, marker, newcomer))["name"] == "Chosen"


async def test_profile_by_id_and_by_username(users: httpx.AsyncClient) -> None:
    viewer, target = await new_user(users), await new_user(users)
    by_id = await users.get(f"/users/{target.id}", headers=as_user(viewer))
    by_name = await users.get(
        f"/users/by-username/{target.username.upper()}", headers=as_user(viewer)
    )
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json()
    assert by_id.json()["username"] == target.username


async def test_unknown_users_are_404_and_malformed_ones_422(users: httpx.AsyncClient) -> None:
    viewer = await new_user(users)
    for path in (
        f"/users/{uuid.uuid4()}",
        f"/users/by-username/{unique()}",
        f"/users/{uuid.uuid4()}/followers",
        f"/users/{uuid.uuid4()}/following",
    ):
        response = await users.get(path, headers=as_user(viewer))
        assert response.status_code == 404, path
        assert response.json()["error"] == {
            "status": 404,
            "code": "not_found",
            "message": "user not found",
        }
    for path in (
        "/users/not-a-uuid",
        "/users/by-username/bad name",
        "/users/by-username/a.b",
        f"/users/by-username/{'x' * 31}",
        "/users/12345/followers",
    ):
        response = await users.get(path, headers=as_user(viewer))
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["code"] == "validation_error"


async def test_update_changes_only_what_was_sent_and_publishes_user_updated(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    me = await new_user(users)
    topic = platform.profile.topic_prefix + USER_TOPIC
    async with EventProbe.on(platform.infra.kafka.address, topic) as probe:
        first = await users.patch(
            "/users/me",
            headers=as_user(me),
            json={
                "name": "  Ann Example ",
                "bio": "Line one\nline two",
                "avatarUrl": "https://cdn.example.com/a.png",
            },
        )
        assert first.status_code == 200, first.text
        second = await users.patch("/users/me", headers=as_user(me), json={"bio": "Changed"})
        event, key = await probe.wait_for(
            lambda e: e["eventType"] == "user.updated" and e["data"]["userId"] == str(me.id)
        )
        update_two, _ = await probe.wait_for(
            lambda e: e["eventType"] == "user.updated" and e["data"]["userId"] == str(me.id)
        )
        unchanged = await users.patch("/users/me", headers=as_user(me), json={"bio": "Changed"})
        later = await probe.drain(seconds=1.5)
    assert first.json()["name"] == "Ann Example"
    assert first.json()["bio"] == "Line one\nline two"
    assert first.json()["avatarUrl"] == "https://cdn.example.com/a.png"
    assert second.json()["name"] == "Ann Example"
    assert second.json()["bio"] == "Changed"
    assert unchanged.json() == second.json()
    assert key == str(me.id).encode()
    assert event["data"] == {
        "userId": str(me.id),
        "username": me.username,
        "name": "Ann Example",
        "bio": "Line one\nline two",
        "avatarUrl": "https://cdn.example.com/a.png",
    }
    assert update_two["data"]["bio"] == "Changed"
    assert not [e for e in later if e["data"].get("userId") == str(me.id)]  # nothing changed
    cleared = await users.patch(
        "/users/me", headers=as_user(me), json={"avatarUrl": None, "bio": None}
    )
    assert (cleared.json()["avatarUrl"], cleared.json()["bio"]) == (None, "")
    assert (await profile(users, me, me))["avatarUrl"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": "nul\x00byte"}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"name": "lone \ud800"}, "name"),
        ({"name": None}, "body"),
        ({"name": 42}, "name"),
        ({"bio": "b" * 501}, "bio"),
        ({"bio": "nul\x00"}, "bio"),
        ({"bio": "lone \udfff"}, "bio"),
        ({"bio": ["a"]}, "bio"),
        ({"avatarUrl": "javascript:alert(1)"}, "avatarUrl"),
        ({"avatarUrl": "ftp://example.com/a.png"}, "avatarUrl"),
        ({"avatarUrl": "data:image/png;base64,AAAA"}, "avatarUrl"),
        ({"avatarUrl": "not a url"}, "avatarUrl"),
        ({"avatarUrl": "https://example.com/" + "a" * 2100}, "avatarUrl"),
        # 1,020 characters sent, 6,020 once percent-encoded: the column holds 2,048
        ({"avatarUrl": "https://example.com/" + "é" * 1000}, "avatarUrl"),
        ({"avatarUrl": 7}, "avatarUrl"),
        ({"username": "newname"}, "username"),
        ({"followersCount": 1000000}, "followersCount"),
        ({}, "body"),
    ],
)
async def test_invalid_updates_are_422_naming_the_field(
    users: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    me = await new_user(users)
    before = await profile(users, me, me)
    response = await users.patch("/users/me", **escaped_json(body, as_user(me)))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert await profile(users, me, me) == before


async def test_an_avatar_url_is_stored_percent_encoded_within_the_column(
    users: httpx.AsyncClient,
) -> None:
    me = await new_user(users)
    response = await users.patch(
        "/users/me", headers=as_user(me), json={"avatarUrl": "https://example.com/" + "é" * 300}
    )
    assert response.status_code == 200, response.text
    assert response.json()["avatarUrl"] == "https://example.com/" + "%C3%A9" * 300


async def test_update_bodies_that_are_not_objects_are_4xx(users: httpx.AsyncClient) -> None:
    me = await new_user(users)
    for content in (b"{broken", b"[1, 2]", b'"name"', b"null", b""):
        response = await users.patch(
            "/users/me",
            headers={**as_user(me), "content-type": "application/json"},
            content=content,
        )
        assert 400 <= response.status_code < 500, (content, response.text)
        assert "error" in response.json()
