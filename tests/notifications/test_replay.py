"""Deleted stays deleted: redelivered and replayed events (issue 10, item 9).

Notifications come through real Kafka into FerretDB; the owner deletes some and reads some; then
the same events arrive again, first produced a second time, then by rewinding the consumer
group to the start of its topics while the service is stopped (a full replay). Nothing comes
back, no count moves and nothing is pushed, while a genuinely new event still is.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaProducer
from motor.motor_asyncio import AsyncIOMotorCollection
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from socialhub.kit.events.envelope import Event
from socialhub.notifications.app import CONSUMER_GROUP, create_app
from socialhub.notifications.ingest import push_channel
from socialhub.notifications.settings import NotificationSettings
from tests.notifications.helpers import (
    Document,
    as_user,
    caught_up,
    commented,
    followed,
    liked,
    listed,
    produce,
    replied,
    rewind,
    uid,
    wait_for_count,
)
from tests.support import app_client, eventually

Collection = AsyncIOMotorCollection[Document]


async def settled(settings: NotificationSettings) -> None:
    async def done() -> bool:
        return await caught_up(settings, CONSUMER_GROUP)

    await eventually(done, within=60, what="consumer group caught up")


async def view(client: httpx.AsyncClient, user: str) -> Document:
    """Everything the user can see: the page, each filter and the counts."""
    page = await listed(client, user, limit=100)
    unread = await listed(client, user, limit=100, unread="true")
    read = await listed(client, user, limit=100, unread="false")
    likes = await listed(client, user, limit=100, type="like")
    return {
        "page": [(n["id"], n["read"]) for n in page["items"]],
        "unread": [n["id"] for n in unread["items"]],
        "read": [n["id"] for n in read["items"]],
        "likes": [n["id"] for n in likes["items"]],
        "unreadCount": page["unreadCount"],
    }


@asynccontextmanager
async def pushes(
    redis: Redis, settings: NotificationSettings, *users: str
) -> AsyncIterator[PubSub]:
    """Listening on the users' push channels, subscriptions confirmed."""
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(*(push_channel(settings, user) for user in users))
        confirmed = 0
        async with asyncio.timeout(10):
            while confirmed < len(users):
                message = await pubsub.get_message(timeout=1.0)
                confirmed += message is not None and message["type"] == "subscribe"
        yield pubsub


async def drained(pubsub: PubSub, *, quiet: float = 0.5) -> list[Document]:
    """The pushes received so far, once none has come for `quiet` seconds."""
    received = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + quiet
    while loop.time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            received.append(json.loads(message["data"]))
            deadline = loop.time() + quiet
    return received


def duplicates() -> float:
    return REGISTRY.get_sample_value("notifications_duplicates_total") or 0.0


async def test_deleted_and_read_notifications_stay_so_through_redelivery_and_full_replay(
    isolated: NotificationSettings,
    isolated_collection: Collection,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    owner, other = uid(), uid()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    at = [start + timedelta(seconds=i) for i in range(8)]
    events: list[Event] = [
        liked(uid(), owner, occurred_at=at[0]),
        commented(uid(), owner, occurred_at=at[1]),
        followed(uid(), owner, occurred_at=at[2]),
        liked(uid(), owner, occurred_at=at[3]),
        replied(uid(), owner, occurred_at=at[4]),
        liked(uid(), owner, occurred_at=at[5]),
        liked(uid(), other, occurred_at=at[6]),
        followed(uid(), other, occurred_at=at[7]),
    ]

    async with app_client(create_app(isolated)) as client:
        await produce(producer, isolated, events)
        ids = [n["id"] for n in (await wait_for_count(client, owner, 6))["items"]]
        await wait_for_count(client, other, 2)
        await settled(isolated)
        # ids newest first: 0 like, 1 reply, 2 like, 3 follow, 4 comment, 5 like
        headers = as_user(owner)
        assert (
            await client.patch(f"/notify/notifications/{ids[0]}/read", headers=headers)
        ).status_code == 200
        assert (
            await client.delete(f"/notify/notifications/{ids[0]}", headers=headers)
        ).status_code == 204  # a read one
        assert (
            await client.delete(f"/notify/notifications/{ids[4]}", headers=headers)
        ).status_code == 204  # an unread one
        assert (
            await client.patch(f"/notify/notifications/{ids[3]}/read", headers=headers)
        ).status_code == 200
        read_all = await client.post("/notify/notifications/read-all", headers=as_user(other))
        assert read_all.json() == {"updated": 2, "unreadCount": 0}

        owner_view, other_view = await view(client, owner), await view(client, other)
        assert owner_view == {
            "page": [(ids[1], False), (ids[2], False), (ids[3], True), (ids[5], False)],
            "unread": [ids[1], ids[2], ids[5]],
            "read": [ids[3]],
            "likes": [ids[2], ids[5]],
            "unreadCount": 3,
        }
        assert other_view["unreadCount"] == 0
        assert len(other_view["page"]) == 2

        # 1. the same events produced again (a producer retry, an outbox relayed twice)
        async with pushes(redis, isolated, owner, other) as pubsub:
            before = duplicates()
            await produce(producer, isolated, events)
            await settled(isolated)
            assert duplicates() - before == len(events)
            assert await view(client, owner) == owner_view
            assert await view(client, other) == other_view
            assert await drained(pubsub) == []
        for deleted in (ids[0], ids[4]):
            assert (
                await client.delete(f"/notify/notifications/{deleted}", headers=headers)
            ).status_code == 404
            assert (
                await client.patch(f"/notify/notifications/{deleted}/read", headers=headers)
            ).status_code == 404

    # 2. a full replay: the service stopped, its group rewound to the start of the topics
    assert await rewind(isolated, CONSUMER_GROUP) == 2 * len(events)
    assert not await caught_up(isolated, CONSUMER_GROUP)
    async with pushes(redis, isolated, owner, other) as pubsub:
        before = duplicates()
        async with app_client(create_app(isolated)) as client:
            await settled(isolated)
            assert duplicates() - before == 2 * len(events)
            assert await view(client, owner) == owner_view
            assert await view(client, other) == other_view
            assert await drained(pubsub) == []

            # the consumer is alive and pushing: a new event still arrives, exactly once
            new = liked(uid(), owner, occurred_at=datetime.now(UTC))
            await produce(producer, isolated, [new])
            await wait_for_count(client, owner, 5)
            await settled(isolated)
            await asyncio.sleep(0.2)
            assert [p["data"]["eventId"] for p in await drained(pubsub)] == [new.event_id]
            after = await view(client, owner)
            assert after["unreadCount"] == 4
            assert [i for i, _ in after["page"]][1:] == [i for i, _ in owner_view["page"]]

    # every event's document is still there (the deleted ones marked), none twice
    assert await isolated_collection.count_documents({}) == len(events) + 1
    deleted = await isolated_collection.find({"deletedAt": {"$ne": None}}).to_list(None)
    assert sorted(d["_id"] for d in deleted) == sorted([ids[0], ids[4]])
