"""The transactional outbox on real PostgreSQL and Kafka."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select, text

from socialhub.contracts.events import USER_TOPIC, UserUnblocked
from socialhub.kit.database import Database
from socialhub.kit.events.outbox import Outbox, OutboxRelay, outbox
from socialhub.kit.settings import KafkaSettings
from tests.support import EventProbe, eventually

DEAD_BROKER = "127.0.0.1:9"  # discard port: nothing listens, connections are refused


def numbered(n: int, marker: uuid.UUID, key: uuid.UUID | None = None) -> UserUnblocked:
    """A contract event carrying `n` (as its timestamp), keyed by `key`; `marker` (the blocked
    id) tells this test's events apart from anything else on the topic."""
    return UserUnblocked(blocker_id=key or uuid.uuid4(), blocked_id=marker, timestamp=n)


def marked(marker: uuid.UUID) -> Callable[[dict[str, Any]], bool]:
    return lambda e: bool(
        e["eventType"] == "user.unblocked" and e["data"]["blockedId"] == str(marker)
    )


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def pending(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(outbox))).scalar_one())


async def relay_locks_held(database: Database) -> int:
    async with database.transaction() as session:
        return int(
            (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
            ).scalar_one()
        )


async def drained(database: Database) -> None:
    """Rows are deleted right after Kafka acknowledges them, so wait for that commit."""

    async def empty() -> bool:
        return await pending(database) == 0

    await eventually(empty, what="outbox drained")


async def test_committed_events_reach_kafka_in_order_with_their_key(
    outbox_db: Database, kafka_settings: KafkaSettings
) -> None:
    events, marker, key = Outbox(kafka_settings), uuid.uuid4(), uuid.uuid4()
    async with EventProbe.on(
        kafka_settings.kafka_bootstrap_servers, kafka_settings.topic(USER_TOPIC)
    ) as probe:
        async with outbox_db.transaction() as session:
            for n in range(5):
                await events.emit(session, numbered(n, marker, key))
        async with running(OutboxRelay(outbox_db, kafka_settings)):
            received = await probe.collect(marked(marker), 5)
            await drained(outbox_db)
    assert [e["data"]["timestamp"] for e in received] == [0, 1, 2, 3, 4]
    assert {e["producer"] for e in received} == {UserUnblocked.producer}
    assert len({e["eventId"] for e in received}) == 5


async def test_rolled_back_changes_publish_nothing(
    outbox_db: Database, kafka_settings: KafkaSettings
) -> None:
    events = Outbox(kafka_settings)
    try:
        async with outbox_db.transaction() as session:
            await events.emit(session, numbered(0, uuid.uuid4()))
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    assert await pending(outbox_db) == 0


async def test_events_written_while_kafka_is_unreachable_are_delivered_later(
    outbox_db: Database, kafka_settings: KafkaSettings
) -> None:
    events, marker = Outbox(kafka_settings), uuid.uuid4()
    offline = kafka_settings.model_copy(update={"kafka_bootstrap_servers": DEAD_BROKER})
    async with running(OutboxRelay(outbox_db, offline, max_backoff_seconds=0.2)):
        async with outbox_db.transaction() as session:
            for n in range(20):
                await events.emit(session, numbered(n, marker))
        await asyncio.sleep(1.0)  # the relay retries against the dead broker meanwhile
        assert await pending(outbox_db) == 20
    # Failed attempts and the cancellation left no lock on a pooled connection, which would
    # keep every other relay of this database waiting forever.
    assert await relay_locks_held(outbox_db) == 0

    async with (
        EventProbe.on(
            kafka_settings.kafka_bootstrap_servers, kafka_settings.topic(USER_TOPIC)
        ) as probe,
        running(OutboxRelay(outbox_db, kafka_settings)),
    ):
        received = await probe.collect(marked(marker), 20)
        await drained(outbox_db)
    assert sorted(e["data"]["timestamp"] for e in received) == list(range(20))


async def test_only_one_relay_per_database_publishes(
    outbox_db: Database, kafka_settings: KafkaSettings
) -> None:
    events, marker, key = Outbox(kafka_settings), uuid.uuid4(), uuid.uuid4()
    async with (
        EventProbe.on(
            kafka_settings.kafka_bootstrap_servers, kafka_settings.topic(USER_TOPIC)
        ) as probe,
        running(OutboxRelay(outbox_db, kafka_settings)),
        running(OutboxRelay(outbox_db, kafka_settings)),
    ):
        for n in range(50):
            async with outbox_db.transaction() as session:
                await events.emit(session, numbered(n, marker, key))
        received = await probe.collect(marked(marker), 50)
        later = await probe.drain(seconds=1.0)
    assert [e["data"]["timestamp"] for e in received] == list(range(50))  # one key: in order
    assert [e for e in later if marked(marker)(e)] == []  # and no duplicates
