"""Indexes, soft deletes and expiry on the real MongoDB-compatible server."""

from datetime import UTC, datetime, timedelta

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ASCENDING, DESCENDING, IndexModel

from socialhub.notifications.models import Actor, Notification, NotificationType, Target
from socialhub.notifications.settings import NotificationSettings
from socialhub.notifications.store import (
    DELETED_AT,
    INDEXES,
    RETIRED_INDEXES,
    TTL_INDEX,
    NotificationStore,
)
from tests.notifications.helpers import Document, uid


def notification(user: str, created_at: datetime) -> Notification:
    event_id = uid()
    return Notification(
        id=Notification.id_for(event_id, user),
        user_id=user,
        type=NotificationType.FOLLOW,
        actor=Actor(id=uid(), username="a"),
        target=Target(),
        message="a started following you",
        created_at=created_at.replace(microsecond=0),
        event_id=event_id,
    )


async def test_indexes_are_created_idempotently_at_every_start(
    isolated: NotificationSettings,
) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url)
    try:
        store = NotificationStore(client[isolated.mongo_database], ttl_days=30)
        native_ttl = await store.ensure_indexes()
        assert await store.ensure_indexes() == native_ttl  # a restart
        indexes = await store.collection.index_information()
    finally:
        client.close()
    assert indexes["user_live_created"]["key"] == [
        ("userId", 1),
        ("deletedAt", 1),
        ("createdAt", -1),
        ("_id", -1),
    ]
    assert indexes["user_live_read"]["key"][:3] == [("userId", 1), ("deletedAt", 1), ("read", 1)]
    assert not set(RETIRED_INDEXES) & set(indexes)
    assert indexes["event_recipient"]["key"] == [("eventId", 1), ("userId", 1)]
    assert indexes["event_recipient"]["unique"] is True
    # MongoDB expires by itself; FerretDB has no TTL indexes and the service sweeps instead
    assert (TTL_INDEX in indexes) is native_ttl
    if native_ttl:
        assert indexes[TTL_INDEX]["expireAfterSeconds"] == 30 * 24 * 3600


async def test_the_sweep_deletes_exactly_the_expired_notifications(
    isolated: NotificationSettings,
) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    store = NotificationStore(client[isolated.mongo_database], ttl_days=7)
    user = uid()
    now = datetime.now(UTC)
    old = [
        notification(user, now - timedelta(days=7, minutes=1)),
        notification(user, now - timedelta(days=30)),
    ]
    fresh = [notification(user, now - timedelta(days=6, hours=23)), notification(user, now)]
    # straight in: the store itself refuses what is already past the TTL (see below)
    await store.collection.insert_many([n.to_document() for n in [*old, *fresh]])
    try:
        await store.expire()
        remaining = await store.page(user, limit=10)
    finally:
        client.close()
    assert [n.id for n in remaining] == [fresh[1].id, fresh[0].id]


async def test_a_redelivered_batch_stores_only_what_is_new(isolated: NotificationSettings) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    store = NotificationStore(client[isolated.mongo_database], ttl_days=7)
    try:
        await store.ensure_indexes()
        user, now = uid(), datetime.now(UTC)
        first = [notification(user, now) for _ in range(3)]
        assert (await store.insert(first)).stored == first
        later = [notification(user, now) for _ in range(2)]
        mixed = [later[0], first[1], later[1], first[1], first[0]]
        inserted = await store.insert(mixed)
        assert inserted.stored == later
        assert inserted.duplicates == 3
        assert await store.collection.count_documents({}) == 5
    finally:
        client.close()


async def test_what_arrives_past_the_ttl_is_not_stored(isolated: NotificationSettings) -> None:
    """Expiry would delete it at once, and a deleted one's document may be gone already."""
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    store = NotificationStore(client[isolated.mongo_database], ttl_days=7)
    try:
        await store.ensure_indexes()
        user, now = uid(), datetime.now(UTC)
        late = notification(user, now - timedelta(days=7, minutes=1))
        fresh = notification(user, now - timedelta(days=6, hours=23))
        inserted = await store.insert([late, fresh])
        assert (inserted.stored, inserted.duplicates, inserted.expired) == ([fresh], 0, 1)
        assert await store.collection.distinct("_id") == [fresh.id]
    finally:
        client.close()


async def test_a_deleted_notification_is_refused_when_its_event_comes_again(
    isolated: NotificationSettings,
) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    store = NotificationStore(client[isolated.mongo_database], ttl_days=7)
    try:
        await store.ensure_indexes()
        user, now = uid(), datetime.now(UTC)
        kept, gone = notification(user, now), notification(user, now - timedelta(seconds=1))
        await store.insert([kept, gone])
        assert await store.delete(user, gone.id)
        assert not await store.delete(user, gone.id)  # once
        assert await store.mark_one_read(user, gone.id) is None

        inserted = await store.insert([gone, kept])  # a replay
        assert (inserted.stored, inserted.duplicates) == ([], 2)
        assert [n.id for n in await store.page(user, limit=10)] == [kept.id]
        assert await store.page(user, limit=10, read=False) == [kept]
        assert await store.unread_count(user) == 1
        assert await store.mark_read(user) == 1  # read-all touches only what is shown
        tombstone = await store.collection.find_one({"_id": gone.id})
        assert tombstone is not None
        assert tombstone[DELETED_AT] >= now.replace(microsecond=0)
        assert tombstone["read"] is False
    finally:
        client.close()


async def test_an_earlier_versions_data_is_migrated_at_start(
    isolated: NotificationSettings,
) -> None:
    """Its indexes did not key on deletedAt and its documents have none: they read as live."""
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    store = NotificationStore(client[isolated.mongo_database], ttl_days=7)
    try:
        await store.collection.create_indexes(
            [
                IndexModel(
                    [("userId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)],
                    name="user_created",
                )
            ]
        )
        await store.collection.create_indexes(
            [
                IndexModel(
                    [("userId", ASCENDING), ("read", ASCENDING), ("createdAt", DESCENDING)],
                    name="user_read",
                )
            ]
        )
        await store.collection.create_indexes([INDEXES[-1]])  # event_recipient, unchanged
        user, now = uid(), datetime.now(UTC)
        old = [notification(user, now), notification(user, now - timedelta(seconds=1))]
        await store.collection.insert_many([n.to_document() for n in old])

        await store.ensure_indexes()
        indexes = await store.collection.index_information()
        assert {"user_live_created", "user_live_read", "event_recipient"} <= set(indexes)
        assert not set(RETIRED_INDEXES) & set(indexes)
        assert await store.page(user, limit=10) == old
        assert await store.unread_count(user) == 2
        assert await store.delete(user, old[0].id)
        assert (await store.insert(old)).duplicates == 2
        assert await store.page(user, limit=10) == old[1:]
    finally:
        client.close()
