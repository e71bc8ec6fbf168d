"""Indexes and expiry on the real MongoDB-compatible server."""

from datetime import UTC, datetime, timedelta

from motor.motor_asyncio import AsyncIOMotorClient

from socialhub.notifications.models import Actor, Notification, NotificationType, Target
from socialhub.notifications.settings import NotificationSettings
from socialhub.notifications.store import TTL_INDEX, NotificationStore
from tests.notifications.helpers import Document, uid


def notification(user: str, created_at: datetime) -> Notification:
    event_id = uid()
    return Notification(id=Notification.id_for(event_id, user), user_id=user,
                        type=NotificationType.FOLLOW, actor=Actor(id=uid(), username="a"),
                        target=Target(), message="a started following you",
                        created_at=created_at.replace(microsecond=0), event_id=event_id)


async def test_indexes_are_created_idempotently_at_every_start(
        isolated: NotificationSettings) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url)
    try:
        store = NotificationStore(client[isolated.mongo_database], ttl_days=30)
        native_ttl = await store.ensure_indexes()
        assert await store.ensure_indexes() == native_ttl  # a restart
        indexes = await store.collection.index_information()
    finally:
        client.close()
    assert indexes["user_created"]["key"] == [("userId", 1), ("createdAt", -1), ("_id", -1)]
    assert indexes["user_read"]["key"][:2] == [("userId", 1), ("read", 1)]
    assert indexes["event_recipient"]["key"] == [("eventId", 1), ("userId", 1)]
    assert indexes["event_recipient"]["unique"] is True
    # MongoDB expires by itself; FerretDB has no TTL indexes and the service sweeps instead
    assert (TTL_INDEX in indexes) is native_ttl
    if native_ttl:
        assert indexes[TTL_INDEX]["expireAfterSeconds"] == 30 * 24 * 3600


async def test_the_sweep_deletes_exactly_the_expired_notifications(
        isolated: NotificationSettings) -> None:
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(isolated.mongo_url, tz_aware=True)
    store = NotificationStore(client[isolated.mongo_database], ttl_days=7)
    user = uid()
    now = datetime.now(UTC)
    old = [notification(user, now - timedelta(days=7, minutes=1)),
           notification(user, now - timedelta(days=30))]
    fresh = [notification(user, now - timedelta(days=6, hours=23)), notification(user, now)]
    await store.insert([*old, *fresh])
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
