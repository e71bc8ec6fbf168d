"""Notifications in MongoDB: idempotent batch inserts, the user's pages, read flags, expiry.

Uses only what both MongoDB and FerretDB support (the local server is FerretDB); the one gap,
TTL indexes, is detected at startup and replaced by a periodic sweep (`expire_before`).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure

from socialhub.notifications.models import Notification, NotificationType

log = logging.getLogger(__name__)

COLLECTION = "notifications"
TTL_INDEX = "expire_created"
DUPLICATE_KEY = 11000
NOT_IMPLEMENTED = 238
INDEX_OPTIONS_CONFLICT = 85

Document = dict[str, Any]

INDEXES = [
    # The user's notifications, newest first; _id breaks ties for the cursor.
    IndexModel([("userId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)],
               name="user_created"),
    # Unread counts and the unread filter.
    IndexModel([("userId", ASCENDING), ("read", ASCENDING), ("createdAt", DESCENDING)],
               name="user_read"),
    # Idempotency: one notification per event and recipient, whatever the redelivery.
    IndexModel([("eventId", ASCENDING), ("userId", ASCENDING)], name="event_recipient",
               unique=True),
]


@dataclass(frozen=True)
class PagePosition:
    """Where a page starts: strictly older than this (createdAt, id)."""

    created_at: datetime
    id: str


@dataclass(frozen=True)
class Inserted:
    stored: list[Notification]
    duplicates: int


class NotificationStore:
    def __init__(self, database: AsyncIOMotorDatabase[Document], *, ttl_days: int) -> None:
        self.database = database
        self.collection: AsyncIOMotorCollection[Document] = database[COLLECTION]
        self.ttl = timedelta(days=ttl_days)

    async def ensure_indexes(self) -> bool:
        """Create the indexes (idempotent); True if the server expires documents by itself."""
        for index in INDEXES:
            # One per command: FerretDB 1.24 panics on a multi-index createIndexes whose
            # indexes all exist already (every restart); MongoDB takes either form.
            await self.collection.create_indexes([index])
        ttl_seconds = int(self.ttl.total_seconds())
        try:
            await self.collection.create_index([("createdAt", ASCENDING)], name=TTL_INDEX,
                                               expireAfterSeconds=ttl_seconds)
        except OperationFailure as exc:
            if exc.code == NOT_IMPLEMENTED:
                log.warning("the server has no TTL indexes; expiring by a periodic sweep")
                return False
            if exc.code != INDEX_OPTIONS_CONFLICT:
                raise
            # The retention changed since the index was made: MongoDB changes it in place.
            await self.database.command("collMod", COLLECTION, index={
                "name": TTL_INDEX, "expireAfterSeconds": ttl_seconds})
        return True

    async def insert(self, notifications: Sequence[Notification]) -> Inserted:
        """Store a batch; notifications already stored (redelivered events) are skipped."""
        if not notifications:
            return Inserted([], 0)
        try:
            await self.collection.insert_many([n.to_document() for n in notifications],
                                              ordered=False)
        except BulkWriteError as exc:
            errors: list[Document] = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                    error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            # Ids are derived from (eventId, recipient), so any duplicate key is a redelivery.
            skipped = {error["index"] for error in errors}
            stored = [n for i, n in enumerate(notifications) if i not in skipped]
            return Inserted(stored, len(skipped))
        return Inserted(list(notifications), 0)

    async def page(self, user_id: str, *, limit: int, after: PagePosition | None = None,
                   kind: NotificationType | None = None,
                   read: bool | None = None) -> list[Notification]:
        """Up to `limit` of the user's notifications, newest first, older than `after`."""
        query: Document = {"userId": user_id}
        if kind is not None:
            query["type"] = kind.value
        if read is not None:
            query["read"] = read
        if after is not None:
            query["$or"] = [{"createdAt": {"$lt": after.created_at}},
                            {"createdAt": after.created_at, "_id": {"$lt": after.id}}]
        cursor = self.collection.find(query).sort(
            [("createdAt", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [Notification.from_document(document) async for document in cursor]

    async def unread_count(self, user_id: str) -> int:
        return await self.collection.count_documents({"userId": user_id, "read": False})

    async def mark_read(self, user_id: str, ids: Sequence[str] | None = None) -> int:
        """Mark the user's notifications `ids` (all of them if None) read; returns how many."""
        query: Document = {"userId": user_id, "read": False}
        if ids is not None:
            if not ids:
                return 0
            query["_id"] = {"$in": list(ids)}
        result = await self.collection.update_many(query, {"$set": {"read": True}})
        return result.modified_count

    async def mark_one_read(self, user_id: str, notification_id: str) -> Notification | None:
        document = await self.collection.find_one_and_update(
            {"_id": notification_id, "userId": user_id}, {"$set": {"read": True}},
            return_document=ReturnDocument.AFTER)
        return Notification.from_document(document) if document else None

    async def delete(self, user_id: str, notification_id: str) -> bool:
        result = await self.collection.delete_one({"_id": notification_id, "userId": user_id})
        return result.deleted_count == 1

    async def expire_before(self, cutoff: datetime) -> int:
        result = await self.collection.delete_many({"createdAt": {"$lt": cutoff}})
        return result.deleted_count

    async def expire(self) -> None:
        """What a TTL index does, for servers without one: delete expired notifications."""
        expired = await self.expire_before(datetime.now(UTC) - self.ttl)
        if expired:
            log.info("expired %d notifications", expired)
