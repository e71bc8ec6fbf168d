"""Blocks: follows end both ways (with events), no following back, hidden from each other."""

import asyncio
import uuid
from typing import Any

import httpx

from devstack.platform import Platform
from socialhub.contracts.events import USER_TOPIC
from tests.support import EventProbe
from tests.users.helpers import (
    UsersDb,
    as_user,
    block,
    counts,
    follow,
    list_ids,
    new_user,
    unblock,
    unfollow,
)


async def test_block_ends_follows_both_ways_with_events_once(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    alice, bob = await new_user(users), await new_user(users)
    await follow(users, alice, bob)
    await follow(users, bob, alice)
    pair = {str(alice.id), str(bob.id)}

    def ours(event: dict[str, Any]) -> bool:  # the follows' own events may still be in flight
        return event["eventType"] in ("user.unfollowed", "user.blocked") and bool(
            pair & set(map(str, event["data"].values()))
        )

    topic = platform.profile.topic_prefix + USER_TOPIC
    async with EventProbe.on(platform.infra.kafka.address, topic) as probe:
        first, again = await block(users, alice, bob), await block(users, alice, bob)
        events = await probe.collect(ours, 3)
        later = await probe.drain(seconds=1.5)
    assert first.status_code == again.status_code == 200
    assert (
        first.json()
        == again.json()
        == {"blockerId": str(alice.id), "blockedId": str(bob.id), "isBlocking": True}
    )
    unfollows = sorted(
        (e["data"]["followerId"], e["data"]["followingId"])
        for e in events
        if e["eventType"] == "user.unfollowed"
    )
    assert unfollows == sorted([(str(alice.id), str(bob.id)), (str(bob.id), str(alice.id))])
    blocked = [e for e in events if e["eventType"] == "user.blocked"]
    assert len(blocked) == 1
    assert set(blocked[0]["data"]) == {"blockerId", "blockedId", "timestamp"}
    assert (blocked[0]["data"]["blockerId"], blocked[0]["data"]["blockedId"]) == (
        str(alice.id),
        str(bob.id),
    )
    assert not [e for e in later if ours(e)]
    assert await counts(users, alice, alice) == (0, 0, 0)
    assert await counts(users, alice, bob) == (0, 0, 0)


async def test_neither_side_can_follow_while_blocked(users: httpx.AsyncClient) -> None:
    alice, bob = await new_user(users), await new_user(users)
    await block(users, alice, bob)
    refused = await follow(users, bob, alice)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "this user has blocked you"
    own = await follow(users, alice, bob)
    assert own.status_code == 403
    assert "unblock" in own.json()["error"]["message"]
    assert await counts(users, alice, alice) == (0, 0, 0)
    assert await list_ids(users, alice, alice, "followers") == []


async def test_blocked_users_disappear_from_each_others_lists(users: httpx.AsyncClient) -> None:
    alice, bob, carol = await new_user(users), await new_user(users), await new_user(users)
    for fan in (alice, bob):
        await follow(users, fan, carol)
        await follow(users, carol, fan)
    await block(users, bob, alice)
    for which in ("followers", "following"):
        assert await list_ids(users, alice, carol, which) == [str(alice.id)]
        assert await list_ids(users, bob, carol, which) == [str(bob.id)]
        assert set(await list_ids(users, carol, carol, which)) == {str(alice.id), str(bob.id)}


async def test_blocked_users_disappear_from_each_others_search(users: httpx.AsyncClient) -> None:
    alice, bob = await new_user(users), await new_user(users)
    carol = await new_user(users)
    await block(users, alice, bob)
    for viewer, hidden in ((alice, bob), (bob, alice)):
        response = await users.get(
            "/users/search", params={"q": hidden.username}, headers=as_user(viewer)
        )
        assert response.json()["items"] == []
        seen = await users.get(
            "/users/search", params={"q": hidden.username}, headers=as_user(carol)
        )
        assert [item["id"] for item in seen.json()["items"]] == [str(hidden.id)]


async def test_unblock_emits_once_and_does_not_restore_follows(
    users: httpx.AsyncClient, platform: Platform
) -> None:
    alice, bob = await new_user(users), await new_user(users)
    await follow(users, bob, alice)
    await block(users, alice, bob)
    topic = platform.profile.topic_prefix + USER_TOPIC
    async with EventProbe.on(platform.infra.kafka.address, topic) as probe:
        first, again = await unblock(users, alice, bob), await unblock(users, alice, bob)
        event, key = await probe.wait_for(
            lambda e: e["eventType"] == "user.unblocked" and e["data"]["blockerId"] == str(alice.id)
        )
        later = await probe.drain(seconds=1.5)
    assert first.status_code == again.status_code == 200
    assert first.json()["isBlocking"] is again.json()["isBlocking"] is False
    assert key == str(alice.id).encode()
    assert event["data"]["blockedId"] == str(bob.id)
    assert not [e for e in later if e["data"].get("blockerId") == str(alice.id)]
    assert await list_ids(users, alice, alice, "followers") == []
    assert (await follow(users, bob, alice)).status_code == 200
    assert await counts(users, bob, alice) == (1, 0, 0)


async def test_block_rules_for_self_unknown_and_malformed_ids(users: httpx.AsyncClient) -> None:
    me = await new_user(users)
    for method in ("POST", "DELETE"):
        own = await users.request(method, f"/users/block/{me.id}", headers=as_user(me))
        assert own.status_code == 400
        unknown = await users.request(method, f"/users/block/{uuid.uuid4()}", headers=as_user(me))
        assert unknown.status_code == 404
        bad = await users.request(method, "/users/block/nope", headers=as_user(me))
        assert bad.status_code == 422


async def test_a_follow_racing_a_block_never_survives_it(
    users: httpx.AsyncClient, users_db: UsersDb
) -> None:
    """The pair's profiles are locked first, so follow and block serialise."""
    for _ in range(10):
        alice, bob = await new_user(users), await new_user(users)
        results = await asyncio.gather(
            block(users, alice, bob), follow(users, bob, alice), follow(users, alice, bob)
        )
        assert results[0].status_code == 200
        assert {r.status_code for r in results[1:]} <= {200, 403}
        active = await users_db.scalar(
            "SELECT count(*) FROM follows WHERE is_active AND ((follower_id = :a AND "
            "following_id = :b) OR (follower_id = :b AND following_id = :a))",
            a=alice.id,
            b=bob.id,
        )
        assert active == 0
        assert await counts(users, alice, alice) == (0, 0, 0)
        assert await counts(users, alice, bob) == (0, 0, 0)
        await unfollow(users, bob, alice)
