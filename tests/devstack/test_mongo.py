"""The devstack MongoDB (FerretDB on SQLite) does what the notifications service needs.

Where FerretDB differs from MongoDB, the test pins the behaviour the service has to live with,
so a FerretDB upgrade that changes it shows up here first.
"""

import asyncio
import datetime as dt
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure

from devstack.config import PROFILES
from devstack.servers.mongo import Mongo
from devstack.waiting import free_port

Document = dict[str, Any]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOT_IMPLEMENTED = 238
DUPLICATE_KEY = 11000


def notification(event: int, user: str = "u1", *, read: bool = False) -> Document:
    return {
        "eventId": f"ev-{event}",
        "userId": user,
        "read": read,
        "type": "like",
        "createdAt": START + dt.timedelta(seconds=event),
    }


def notification_indexes() -> list[IndexModel]:
    return [
        IndexModel("eventId", unique=True),
        IndexModel([("userId", ASCENDING), ("createdAt", DESCENDING)]),
        IndexModel([("userId", ASCENDING), ("read", ASCENDING)]),
    ]


def event_ids(documents: list[Document]) -> list[str]:
    return [document["eventId"] for document in documents]


@pytest.fixture(scope="module")
async def database(mongo: str) -> AsyncIterator[Any]:
    client: Any = AsyncIOMotorClient(mongo, tz_aware=True)
    name = f"{PROFILES['test'].mongo_database}_devstack_{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    client.close()


@pytest.fixture
async def notifications(database: Any) -> AsyncIterator[Any]:
    """A fresh collection with the notifications service's indexes, one per command."""
    collection = database[f"notifications_{uuid.uuid4().hex[:8]}"]
    for index in notification_indexes():
        await collection.create_indexes([index])
    yield collection
    await collection.drop()


async def test_notification_indexes_exist_with_their_options(notifications: Any) -> None:
    indexes = await notifications.index_information()

    assert {name: (spec["key"], spec.get("unique", False)) for name, spec in indexes.items()} == {
        "_id_": ([("_id", 1)], False),
        "eventId_1": ([("eventId", 1)], True),
        "userId_1_createdAt_-1": ([("userId", 1), ("createdAt", -1)], False),
        "userId_1_read_1": ([("userId", 1), ("read", 1)], False),
    }


async def test_creating_existing_indexes_again_is_a_no_op(notifications: Any) -> None:
    """Unpatched FerretDB 1.24 drops the connection (a panic) when 2+ requested indexes exist."""
    again = await notifications.create_indexes(notification_indexes())

    assert again == ["eventId_1", "userId_1_createdAt_-1", "userId_1_read_1"]
    assert len(await notifications.index_information()) == 4


async def test_ttl_index_is_refused_so_expiry_is_the_services_job(notifications: Any) -> None:
    with pytest.raises(OperationFailure) as refused:
        await notifications.create_index("createdAt", expireAfterSeconds=3600)

    assert refused.value.code == NOT_IMPLEMENTED
    assert "expireAfterSeconds" in str(refused.value)
    assert "createdAt_1" not in await notifications.index_information()


async def test_expiry_by_created_at_deletes_only_old_notifications(notifications: Any) -> None:
    await notifications.insert_many([notification(event) for event in range(10)])

    cutoff = START + dt.timedelta(seconds=4)
    result = await notifications.delete_many({"createdAt": {"$lt": cutoff}})

    assert result.deleted_count == 4
    remaining = await notifications.find({}, sort=[("createdAt", ASCENDING)]).to_list(None)
    assert event_ids(remaining) == [f"ev-{event}" for event in range(4, 10)]


async def test_unordered_insert_keeps_new_events_and_reports_duplicates(notifications: Any) -> None:
    await notifications.insert_many([notification(0), notification(1)])
    replay = [notification(event) for event in range(5)] + [notification(4)]

    with pytest.raises(BulkWriteError) as failed:
        await notifications.insert_many(replay, ordered=False)

    details = failed.value.details
    assert details["nInserted"] == 3
    assert [
        (error["index"], error["code"], error["op"]["eventId"]) for error in details["writeErrors"]
    ] == [(0, DUPLICATE_KEY, "ev-0"), (1, DUPLICATE_KEY, "ev-1"), (5, DUPLICATE_KEY, "ev-4")]
    assert all(error["errmsg"].startswith("E11000") for error in details["writeErrors"])
    stored = await notifications.find({}, sort=[("eventId", ASCENDING)]).to_list(None)
    assert event_ids(stored) == [f"ev-{event}" for event in range(5)]


async def test_newest_first_pages_by_user_and_id_cursor(notifications: Any) -> None:
    await notifications.insert_many(
        [notification(event, "u1" if event % 3 else "u2") for event in range(18)]
    )
    mine = [f"ev-{event}" for event in reversed(range(18)) if event % 3]

    newest = await (
        notifications.find({"userId": "u1"}).sort("createdAt", DESCENDING).limit(5).to_list(None)
    )
    assert event_ids(newest) == mine[:5]
    assert all(document["createdAt"].tzinfo is not None for document in newest)

    pages: list[list[str]] = []
    cursor: dict[str, dict[str, ObjectId]] = {}
    while True:
        page = await (
            notifications.find({"userId": "u1", **cursor})
            .sort("_id", DESCENDING)
            .limit(5)
            .to_list(None)
        )
        if not page:
            break
        pages.append(event_ids(page))
        cursor = {"_id": {"$lt": page[-1]["_id"]}}
    assert [len(page) for page in pages] == [5, 5, 2]
    assert [event for page in pages for event in page] == mine


async def test_marking_read_and_counting_unread(notifications: Any) -> None:
    await notifications.insert_many(
        [notification(event, "u1") for event in range(6)] + [notification(9, "u2")]
    )

    one = await notifications.update_one({"eventId": "ev-2"}, {"$set": {"read": True}})
    assert (one.matched_count, one.modified_count) == (1, 1)
    assert await notifications.count_documents({"userId": "u1", "read": False}) == 5

    rest = await notifications.update_many(
        {"userId": "u1", "read": False}, {"$set": {"read": True}}
    )
    assert (rest.matched_count, rest.modified_count) == (5, 5)
    assert await notifications.count_documents({"userId": "u1", "read": False}) == 0
    assert await notifications.count_documents({"userId": "u2", "read": False}) == 1


async def test_delete_one_removes_exactly_the_matching_notification(notifications: Any) -> None:
    await notifications.insert_many([notification(event) for event in range(3)])

    assert (await notifications.delete_one({"eventId": "ev-1"})).deleted_count == 1
    assert (await notifications.delete_one({"eventId": "ev-1"})).deleted_count == 0
    remaining = await notifications.find({}, sort=[("eventId", ASCENDING)]).to_list(None)
    assert event_ids(remaining) == ["ev-0", "ev-2"]


async def test_find_one_and_update_returns_the_chosen_document(notifications: Any) -> None:
    await notifications.insert_many([notification(event) for event in range(4)])

    after = await notifications.find_one_and_update(
        {"eventId": "ev-1"}, {"$set": {"read": True}}, return_document=ReturnDocument.AFTER
    )
    newest_unread = await notifications.find_one_and_update(
        {"userId": "u1", "read": False},
        {"$set": {"read": True}},
        sort=[("createdAt", DESCENDING)],
        return_document=ReturnDocument.BEFORE,
    )
    missing = await notifications.find_one_and_update({"eventId": "nope"}, {"$set": {"read": True}})

    assert (after["eventId"], after["read"]) == ("ev-1", True)
    assert (newest_unread["eventId"], newest_unread["read"]) == ("ev-3", False)
    assert missing is None
    unread = await notifications.find({"read": False}, sort=[("eventId", ASCENDING)]).to_list(None)
    assert event_ids(unread) == ["ev-0", "ev-2"]


async def test_id_lookups_use_the_id_index(database: Any, notifications: Any) -> None:
    """Updates and deletes go through `_id` lookups: without the patch each one scans."""
    inserted = await notifications.insert_many([notification(event) for event in range(3)])

    explained = await database.command(
        "explain", {"find": notifications.name, "filter": {"_id": inserted.inserted_ids[1]}}
    )

    assert explained["filterPushdown"] is True
    assert any("USING INDEX" in step for step in explained["queryPlanner"]["Plan"])


@pytest.fixture
def private_mongo(tmp_path: Path) -> Iterator[Mongo]:
    """A second server with its own port and state, so restarting it disturbs nobody."""
    server = Mongo(port=free_port(), state_dir=tmp_path)
    yield server
    server.stop()


async def test_data_survives_a_restart(private_mongo: Mongo) -> None:
    server = private_mongo
    await asyncio.to_thread(server.start)
    client: Any = AsyncIOMotorClient(server.address)
    try:
        await client.kept.notifications.create_index("eventId", unique=True)
        await client.kept.notifications.insert_many([notification(event) for event in range(3)])
    finally:
        client.close()

    assert await asyncio.to_thread(server.stop)
    assert not server.ready()
    await asyncio.to_thread(server.start)

    client = AsyncIOMotorClient(server.address)
    try:
        stored = await client.kept.notifications.find({}, sort=[("eventId", 1)]).to_list(None)
        assert event_ids(stored) == ["ev-0", "ev-1", "ev-2"]
        with pytest.raises(BulkWriteError):
            await client.kept.notifications.insert_many([notification(0)], ordered=False)
    finally:
        client.close()
    assert list(server.data.glob("kept.sqlite*"))


@pytest.mark.slow
async def test_bulk_insert_and_indexed_find_rates(notifications: Any) -> None:
    """Prints the numbers for the notes (run with -s); asserts only on results, never on time."""
    total, batch, users = 10_000, 500, 500
    started = time.perf_counter()
    for first in range(0, total, batch):
        await notifications.insert_many(
            [notification(event, f"u{event % users}") for event in range(first, first + batch)],
            ordered=False,
        )
    insert_seconds = time.perf_counter() - started

    latencies: list[float] = []
    for user in range(0, users, users // 20):
        started = time.perf_counter()
        page = await (
            notifications.find({"userId": f"u{user}"})
            .sort("createdAt", DESCENDING)
            .limit(20)
            .to_list(None)
        )
        latencies.append(time.perf_counter() - started)
        assert event_ids(page) == [f"ev-{total - users + user - users * i}" for i in range(20)]
    assert await notifications.count_documents({}) == total
    print(
        f"\nFerretDB/SQLite: insert_many {total} docs in batches of {batch}: "
        f"{total / insert_seconds:,.0f} docs/s; find(userId).sort(createdAt).limit(20) on "
        f"{total} docs: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
