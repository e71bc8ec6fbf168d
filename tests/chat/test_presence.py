"""Presence bookkeeping on the real Redis (the Presence class in-process, no sockets): users
counted once however many connections they have, a capped list, and a dead instance purged."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from socialhub.chat.presence import LISTED_USERS, Presence
from socialhub.kit.identity import Principal
from tests.chat.helpers import open_room

CHANNEL_PREFIX = "test.presence-unit."
# Not the chat processes' registry: these instances' short TTL would reap the real ones.
REGISTRY = f"chat:instances:unit-{uuid.uuid4().hex[:8]}"


def _principal() -> Principal:
    user_id = uuid.uuid4()
    return Principal(id=user_id, username=f"p_{user_id.hex[:8]}")


def _presence(redis: Redis, instance: str, ttl: float = 30.0) -> Presence:
    return Presence(
        redis,
        instance,
        lambda room: f"{CHANNEL_PREFIX}{room}",
        heartbeat_seconds=0.1,
        instance_ttl_seconds=ttl,
        registry=REGISTRY,
    )


class Published(list[dict[str, Any]]):
    """The `room_users` payloads published for one room, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()


@pytest.fixture
async def room_lists(redis: Redis) -> AsyncIterator[tuple[str, Published]]:
    """A fresh room and what is published for it."""
    room = open_room()
    published = Published()
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"{CHANNEL_PREFIX}{room}")

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                published.append(json.loads(message["data"])["data"])
                published.arrived.set()

    listener = asyncio.create_task(listen())
    yield room, published
    listener.cancel()
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _published(published: Published, count: int) -> dict[str, Any]:
    """The `count`-th list published (waiting for it)."""
    async with asyncio.timeout(10):
        while len(published) < count:
            published.arrived.clear()
            await published.arrived.wait()
    return published[count - 1]


async def test_a_user_with_two_connections_is_present_once(
    redis: Redis, room_lists: tuple[str, Published]
) -> None:
    room, published = room_lists
    presence = _presence(redis, uuid.uuid4().hex)
    ann, bob = _principal(), _principal()
    await presence.join(room, "sid-1", ann)
    await presence.join(room, "sid-2", ann)
    both_tabs = await _published(published, 2)
    assert both_tabs["count"] == 1
    assert both_tabs["users"] == [{"userId": str(ann.id), "username": ann.username}]

    await presence.join(room, "sid-3", bob)
    await presence.leave(room, "sid-1", last_local=False)
    one_tab_left = await _published(published, 4)
    assert one_tab_left["count"] == 2
    await presence.leave(room, "sid-2", last_local=False)
    assert [u["userId"] for u in (await _published(published, 5))["users"]] == [str(bob.id)]
    await presence.leave(room, "sid-2", last_local=False)  # twice: no change, nothing published
    await presence.leave(room, "sid-3", last_local=True)
    assert await _published(published, 6) == {"roomId": room, "users": [], "count": 0}
    assert not await redis.exists(f"chat:presence:{room}", f"chat:presence-users:{room}")


async def test_the_list_names_at_most_100_users_and_counts_them_all(
    redis: Redis, room_lists: tuple[str, Published]
) -> None:
    room, published = room_lists
    presence = _presence(redis, uuid.uuid4().hex)
    crowd = [_principal() for _ in range(LISTED_USERS + 5)]
    for i, user in enumerate(crowd):
        await presence.join(room, f"sid-{i}", user)
    full = await _published(published, len(crowd))
    assert full["count"] == len(crowd)
    assert len(full["users"]) == LISTED_USERS
    assert {u["userId"] for u in full["users"]} <= {str(u.id) for u in crowd}


async def test_a_dead_instances_connections_are_purged_by_a_live_one(
    redis: Redis, room_lists: tuple[str, Published]
) -> None:
    room, published = room_lists
    dead, live = (_presence(redis, uuid.uuid4().hex, ttl=0.5) for _ in range(2))
    ghost, survivor = _principal(), _principal()
    await dead.heartbeat(list)
    await dead.join(room, "ghost-sid", ghost)
    await live.join(room, "live-sid", survivor)
    assert (await _published(published, 2))["count"] == 2

    await asyncio.sleep(0.7)  # the dead one stops beating; the live one beats and reaps it
    await live.heartbeat(list)
    after = await _published(published, 3)
    assert after["users"] == [{"userId": str(survivor.id), "username": survivor.username}]
    assert await redis.zscore(REGISTRY, dead.instance_id) is None
    assert not await redis.exists(f"chat:instance:{dead.instance_id}:rooms")
    await live.withdraw()


async def test_an_instance_taken_for_dead_puts_its_connections_back(
    redis: Redis, room_lists: tuple[str, Published]
) -> None:
    room, published = room_lists
    paused, reaper = (_presence(redis, uuid.uuid4().hex, ttl=0.5) for _ in range(2))
    user = _principal()
    await paused.heartbeat(list)
    await paused.join(room, "sid", user)
    await asyncio.sleep(0.7)  # paused longer than the TTL
    await reaper.heartbeat(list)
    assert (await _published(published, 2))["count"] == 0
    await paused.heartbeat(lambda: [(room, "sid", user)])
    assert (await _published(published, 3))["users"] == [
        {"userId": str(user.id), "username": user.username}
    ]
    assert await redis.zscore(REGISTRY, paused.instance_id) is not None
    await paused.withdraw()
    await reaper.withdraw()
