"""Following and unfollowing: idempotency, the rules, counts and the events on USER_TOPIC."""

import asyncio
import uuid

import httpx

from devstack.platform import Platform
from socialhub.contracts.events import USER_TOPIC
from socialhub.kit.events.envelope import Event
from tests.support import EventProbe
from tests.users.helpers import (
    UsersDb,
    as_user,
    counts,
    follow,
    list_ids,
    new_user,
    publish,
    someone,
    unfollow,
)

ENVELOPE_KEYS = {"eventId", "eventType", "occurredAt", "producer", "data"}


def user_topic(platform: Platform) -> str:
    return platform.profile.topic_prefix + USER_TOPIC


async def test_follow_returns_the_state_and_moves_both_counts(users: httpx.AsyncClient) -> None:
    alice, bob = await new_user(users), await new_user(users)
    response = await follow(users, alice, bob)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "followerId": str(alice.id),
        "followingId": str(bob.id),
        "isFollowing": True,
    }
    assert await counts(users, alice, alice) == (0, 1, 0)
    assert await counts(users, alice, bob) == (1, 0, 0)
    assert await list_ids(users, alice, bob, "followers") == [str(alice.id)]
    assert await list_ids(users, bob, alice, "following") == [str(bob.id)]


async def test_following_twice_changes_nothing_and_emits_once(
    users: httpx.AsyncClient, platform: Platform, users_db: UsersDb
) -> None:
    alice, bob = await new_user(users), await new_user(users)
    async with EventProbe.on(platform.infra.kafka.address, user_topic(platform)) as probe:
        first, second = await follow(users, alice, bob), await follow(users, alice, bob)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        event, key = await probe.wait_for(
            lambda e: e["eventType"] == "user.followed" and e["data"]["followerId"] == str(alice.id)
        )
        later = await probe.drain(seconds=1.5)
    assert not [e for e in later if e["data"].get("followerId") == str(alice.id)]
    assert key == str(alice.id).encode()
    assert set(event) == ENVELOPE_KEYS
    assert event["producer"] == "users"
    assert set(event["data"]) == {
        "followerId",
        "followerUsername",
        "followingId",
        "followingUsername",
        "timestamp",
    }
    assert event["data"]["followerUsername"] == alice.username
    assert event["data"]["followingId"] == str(bob.id)
    assert event["data"]["followingUsername"] == bob.username
    assert isinstance(event["data"]["timestamp"], int)
    assert await counts(users, alice, bob) == (1, 0, 0)
    rows = await users_db.scalar(
        "SELECT count(*) FROM follows WHERE follower_id = :a AND following_id = :b",
        a=alice.id,
        b=bob.id,
    )
    assert rows == 1


async def test_unfollow_is_a_soft_delete_and_refollow_reuses_the_row(
    users: httpx.AsyncClient, platform: Platform, users_db: UsersDb
) -> None:
    alice, bob = await new_user(users), await new_user(users)
    await follow(users, alice, bob)
    async with EventProbe.on(platform.infra.kafka.address, user_topic(platform)) as probe:
        first, second = await unfollow(users, alice, bob), await unfollow(users, alice, bob)
        event, key = await probe.wait_for(
            lambda e: (
                e["eventType"] == "user.unfollowed" and e["data"]["followerId"] == str(alice.id)
            )
        )
        later = await probe.drain(seconds=1.5)
    assert first.status_code == second.status_code == 200
    assert first.json() == {
        "followerId": str(alice.id),
        "followingId": str(bob.id),
        "isFollowing": False,
    }
    assert second.json() == first.json()
    assert not [e for e in later if e["data"].get("followerId") == str(alice.id)]
    assert key == str(alice.id).encode()
    assert set(event["data"]) == {"followerId", "followingId", "timestamp"}
    assert (
        await users_db.scalar(
            "SELECT is_active FROM follows WHERE follower_id = :a AND following_id = :b",
            a=alice.id,
            b=bob.id,
        )
        is False
    )
    assert await counts(users, alice, bob) == (0, 0, 0)
    assert await counts(users, alice, alice) == (0, 0, 0)
    assert await list_ids(users, alice, bob, "followers") == []

    assert (await follow(users, alice, bob)).json()["isFollowing"] is True
    assert (
        await users_db.scalar(
            "SELECT count(*) FROM follows WHERE follower_id = :a AND following_id = :b",
            a=alice.id,
            b=bob.id,
        )
        == 1
    )
    assert await counts(users, alice, bob) == (1, 0, 0)


async def test_unfollowing_someone_never_followed_is_a_no_op(users: httpx.AsyncClient) -> None:
    alice, bob = await new_user(users), await new_user(users)
    response = await unfollow(users, alice, bob)
    assert response.status_code == 200
    assert response.json()["isFollowing"] is False
    assert await counts(users, alice, bob) == (0, 0, 0)


async def test_following_yourself_is_400(users: httpx.AsyncClient) -> None:
    alice = await new_user(users)
    for response in (await follow(users, alice, alice), await unfollow(users, alice, alice)):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_request"
        assert "yourself" in response.json()["error"]["message"]
    assert await counts(users, alice, alice) == (0, 0, 0)


async def test_unknown_user_is_404_and_invalid_id_is_422(users: httpx.AsyncClient) -> None:
    alice = await new_user(users)
    for method in ("POST", "DELETE"):
        unknown = await users.request(
            method, f"/users/follow/{uuid.uuid4()}", headers=as_user(alice)
        )
        assert unknown.status_code == 404, unknown.text
        assert unknown.json()["error"]["message"] == "user not found"
        for bad in ("not-a-uuid", "123", "%00", "' OR 1=1 --", "a" * 300):
            invalid = await users.request(method, f"/users/follow/{bad}", headers=as_user(alice))
            assert invalid.status_code == 422, (bad, invalid.text)
            assert list(invalid.json()["error"]["fields"]) == ["user_id"]


async def test_first_request_of_a_new_account_may_be_a_follow(users: httpx.AsyncClient) -> None:
    """Just-in-time profiles: the follower's own profile is created by the follow itself."""
    bob = await new_user(users)
    newcomer = someone()
    assert (await follow(users, newcomer, bob)).status_code == 200
    assert await counts(users, bob, newcomer) == (0, 1, 0)
    assert await list_ids(users, bob, bob, "followers") == [str(newcomer.id)]


async def test_concurrent_follows_both_ways_and_duplicates_keep_counts_exact(
    users: httpx.AsyncClient,
) -> None:
    alice, bob = await new_user(users), await new_user(users)
    results = await asyncio.gather(
        *[follow(users, alice, bob) for _ in range(5)],
        *[follow(users, bob, alice) for _ in range(5)],
    )
    assert {r.status_code for r in results} == {200}
    assert await counts(users, alice, alice) == (1, 1, 0)
    assert await counts(users, alice, bob) == (1, 1, 0)


async def test_a_just_signed_up_user_can_be_followed_before_their_event_arrives(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    """The follow waits briefly for the target's user.created instead of answering 404."""
    alice, newcomer = await new_user(users), someone()
    created = Event(
        event_type="user.created",
        producer="auth",
        data={
            "userId": str(newcomer.id),
            "username": newcomer.username,
            "name": "New Comer",
            "createdAt": "2026-11-25T09:00:00+00:00",
        },
    )

    async def event_a_moment_later() -> None:
        await asyncio.sleep(0.3)
        await publish(
            platform.infra.kafka.address, user_topic(platform), [created], key=str(newcomer.id)
        )

    response, _ = await asyncio.gather(follow(users, alice, newcomer), event_a_moment_later())
    assert response.status_code == 200, response.text
    assert await counts(users, alice, newcomer) == (1, 0, 0)
