"""Notifications in MongoDB: idempotent batch inserts, the user's pages, read flags, expiry.

Uses only what both MongoDB and FerretDB support (the local server is FerretDB); the one gap,
TTL indexes, is detected at startup and replaced by a periodic sweep (`expire_before`).

A deletion is soft: the document stays, `deletedAt` set, until it expires with the others, so
the unique `(eventId, userId)` index keeps refusing the notification whenever Kafka redelivers
or a replay re-reads its event. Every read filters on `deletedAt: null` (also true of documents
stored before soft deletes, which have no such field). A notification already past its TTL is
never stored: expiry would delete it at once, and the deleted document that would have refused
it may be gone, so a replay resurrects nothing whatever the TTL and Kafka's retention.
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
INDEX_NOT_FOUND = 27

Document = dict[str, Any]

DELETED_AT = "deletedAt"
# Not deleted: null matches a null and a missing deletedAt alike (MongoDB and FerretDB).
LIVE: Document = {DELETED_AT: None}

INDEXES = [
    # The user's live notifications, newest first; _id breaks ties for the cursor.
    IndexModel(
        [
            ("userId", ASCENDING),
            (DELETED_AT, ASCENDING),
            ("createdAt", DESCENDING),
            ("_id", DESCENDING),
        ],
        name="user_live_created",
    ),
    # Unread counts and the unread filter.
    IndexModel(
        [
            ("userId", ASCENDING),
            (DELETED_AT, ASCENDING),
            ("read", ASCENDING),
            ("createdAt", DESCENDING),
        ],
        name="user_live_read",
    ),
    # Idempotency: one notification per event and recipient, whatever the redelivery; it sees
    # deleted ones too, so a deleted notification is never stored again.
    IndexModel(
        [("eventId", ASCENDING), ("userId", ASCENDING)], name="event_recipient", unique=True
    ),
]
# Replaced by the two above when deletion became soft (they did not key on deletedAt): dropped at
# startup once their replacements exist.
RETIRED_INDEXES = ("user_created", "user_read")


@dataclass(frozen=True)
class PagePosition:
    """Where a page starts: strictly older than this (createdAt, id)."""

    created_at: datetime
    id: str


@dataclass(frozen=True)
class Inserted:
    stored: list[Notification]
    duplicates: int
    expired: int = 0  # already past the TTL on arrival, so not stored


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
        await self._drop_retired_indexes()
        ttl_seconds = int(self.ttl.total_seconds())
        try:
            await self.collection.create_index(
                [("createdAt", ASCENDING)], name=TTL_INDEX, expireAfterSeconds=ttl_seconds
            )
        except OperationFailure as exc:
            if exc.code == NOT_IMPLEMENTED:
                log.warning("the server has no TTL indexes; expiring by a periodic sweep")
                return False
            if exc.code != INDEX_OPTIONS_CONFLICT:
                raise
            # The retention changed since the index was made: MongoDB changes it in place.
            await self.database.command(
                "collMod", COLLECTION, index={"name": TTL_INDEX, "expireAfterSeconds": ttl_seconds}
            )
        return True

    async def _drop_retired_indexes(self) -> None:
        """Drop the indexes an earlier version created, after their replacements exist."""
        existing = await self.collection.index_information()
        for name in RETIRED_INDEXES:
            if name not in existing:
                continue
            try:
                await self.collection.drop_index(name)
            except OperationFailure as exc:
                if exc.code != INDEX_NOT_FOUND:  # another instance starting dropped it first
                    raise
            log.info("dropped the retired index %s", name)

    async def insert(self, notifications: Sequence[Notification]) -> Inserted:
        """Store a batch; notifications already stored or deleted (redelivered events) and
        those already past the TTL are skipped."""
        cutoff = datetime.now(UTC) - self.ttl
        fresh = [n for n in notifications if n.created_at >= cutoff]
        expired = len(notifications) - len(fresh)
        if not fresh:
            return Inserted([], 0, expired)
        try:
            await self.collection.insert_many([n.to_document() for n in fresh], ordered=False)
        except BulkWriteError as exc:
            errors: list[Document] = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                error.get("code") != DUPLICATE_KEY for error in errors
            ):
                raise
            # Ids are derived from (eventId, recipient), so any duplicate key is a redelivery.
            skipped = {error["index"] for error in errors}
            stored = [n for i, n in enumerate(fresh) if i not in skipped]
            return Inserted(stored, len(skipped), expired)
        return Inserted(fresh, 0, expired)

    async def page(
        self,
        user_id: str,
        *,
        limit: int,
        after: PagePosition | None = None,
        kind: NotificationType | None = None,
        read: bool | None = None,
    ) -> list[Notification]:
        """Up to `limit` of the user's notifications, newest first, older than `after`."""
        query: Document = {"userId": user_id, **LIVE}
        if kind is not None:
            query["type"] = kind.value
        if read is not None:
            query["read"] = read
        if after is not None:
            query["$or"] = [
                {"createdAt": {"$lt": after.created_at}},
                {"createdAt": after.created_at, "_id": {"$lt": after.id}},
            ]
        cursor = (
            self.collection.find(query)
            .sort([("createdAt", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [Notification.from_document(document) async for document in cursor]

    async def unread_count(self, user_id: str) -> int:
        return await self.collection.count_documents({"userId": user_id, **LIVE, "read": False})

    async def mark_read(self, user_id: str, ids: Sequence[str] | None = None) -> int:
        """Mark the user's notifications `ids` (all of them if None) read; returns how many."""
        query: Document = {"userId": user_id, **LIVE, "read": False}
        if ids is not None:
            if not ids:
                return 0
            query["_id"] = {"$in": list(ids)}
        result = await self.collection.update_many(query, {"$set": {"read": True}})
        return result.modified_count

    async def mark_one_read(self, user_id: str, notification_id: str) -> Notification | None:
        document = await self.collection.find_one_and_update(
            {"_id": notification_id, "userId": user_id, **LIVE},
            {"$set": {"read": True}},
            return_document=ReturnDocument.AFTER,
        )
        return Notification.from_document(document) if document else None

    async def delete(self, user_id: str, notification_id: str) -> bool:
        """Mark it deleted, never remove it (see the module's docstring). The content stays, so
        an instance of the previous version, which reads every document, still parses it."""
        result = await self.collection.update_one(
            {"_id": notification_id, "userId": user_id, **LIVE},
            {"$set": {DELETED_AT: datetime.now(UTC)}},
        )
        return result.matched_count == 1

    async def expire_before(self, cutoff: datetime) -> int:
        """Delete what is older than `cutoff`, tombstones included."""
        result = await self.collection.delete_many({"createdAt": {"$lt": cutoff}})
        return result.deleted_count

    async def expire(self) -> None:
        """What a TTL index does, for servers without one: delete expired notifications."""
        expired = await self.expire_before(datetime.now(UTC) - self.ttl)
        if expired:
            log.info("expired %d notifications", expired)
