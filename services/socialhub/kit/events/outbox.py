"""The transactional outbox: the only way a service publishes events.

`Outbox.emit` inserts the event in the same transaction as the change it describes, so either
both happen or neither does. `OutboxRelay` runs in the background of every instance; one of them
at a time (a PostgreSQL advisory lock) sends pending rows to Kafka in id order, deleting them once
Kafka acknowledged them. While Kafka is down rows wait, retried with back-off, and nothing is
lost; after a crash between "sent" and "deleted" a row is sent again (consumers dedupe on eventId).
"""

import asyncio
import json
import logging
from contextlib import suppress
from typing import Any

from aiokafka import AIOKafkaProducer
from alembic import op
from prometheus_client import Counter
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import CTE

from socialhub.contracts.events import EventData
from socialhub.kit.database import Database
from socialhub.kit.events.envelope import Event
from socialhub.kit.settings import KafkaSettings
from socialhub.kit.sql import Connection, Runner, Statement, driver_connection

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "socialhub_outbox"
RELAY_LOCK_ID = 0x50C1A1  # advisory lock key: one active relay per database

metadata = MetaData()
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("key", Text, nullable=True),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_INSERT = outbox.insert()
# One event row with bound values, for plain asyncpg connections (kit.sql): alone (`emit`), or
# carried by a hot path's own statement as a data-modifying CTE
# (`Statement(change.add_cte(EVENT_ROW.cte("event")))`, with `Outbox.row_params(data)`), so
# the change and its event cost one round trip. The JSONB codec (SQLAlchemy's) takes JSON text.
EVENT_ROW = outbox.insert().values(
    topic=bindparam("event_topic", type_=Text()),
    key=bindparam("event_key", type_=Text()),
    payload=bindparam("event_payload", type_=JSONB()),
)
_INSERT_ROW = Statement(EVENT_ROW)


def event_row_after(source: CTE) -> Insert:
    """`EVENT_ROW` inserted once per row `source` (a data-modifying CTE) returned: the event of
    a change that may do nothing (an insert that lost an ON CONFLICT race)."""
    columns = (
        bindparam("event_topic", type_=Text()),
        bindparam("event_key", type_=Text()),
        bindparam("event_payload", type_=JSONB()),
    )
    return outbox.insert().from_select(
        ["topic", "key", "payload"], select(*columns).select_from(source)
    )


_PENDING = Statement(
    select(outbox.c.id, outbox.c.topic, outbox.c.key, cast(outbox.c.payload, Text).label("payload"))
    .order_by(outbox.c.id)
    .limit(bindparam("limit", type_=Integer()))
    .with_for_update(skip_locked=True)
)
_DELETE_SENT = Statement(
    delete(outbox).where(outbox.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger()))))
)

PUBLISHED = Counter(
    "outbox_published_total", "Events the outbox relay delivered to Kafka", ["topic"]
)
RELAY_FAILURES = Counter("outbox_relay_failures_total", "Relay attempts that failed and will retry")


class Outbox:
    """Adds events to the current transaction. The event's model (socialhub.contracts.events)
    names its type, topic, producer and message key."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka

    async def emit(self, on: Runner, data: EventData) -> None:
        """Insert the event in `on`'s transaction: the request's session or a plain asyncpg
        connection inside its transaction (`Database.driver_transaction`). On a session whose
        transaction has begun and that holds no unflushed ORM change, the row goes straight to
        its asyncpg connection (kit.sql: ~1 ms of CPU less than `AsyncSession.execute`);
        otherwise through the session, which begins the transaction or flushes those changes
        first, so their errors surface here, where the caller handles them."""
        if isinstance(on, AsyncSession):
            raw = await driver_connection(on)
            if on.new or on.dirty or on.deleted or not raw.is_in_transaction():
                topic, payload = self.kafka.topic(data.topic), Event.of(data).to_json()
                await on.execute(_INSERT, {"topic": topic, "key": data.key, "payload": payload})
                return
            on = raw
        await _INSERT_ROW.execute(on, self.row_params(data))

    def row_params(self, data: EventData) -> dict[str, Any]:
        """The parameters of `EVENT_ROW` for this event."""
        return {
            "event_topic": self.kafka.topic(data.topic),
            "event_key": data.key,
            "event_payload": json.dumps(Event.of(data).to_json(), separators=(",", ":")),
        }


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        kafka: KafkaSettings,
        *,
        batch_size: int = 500,
        idle_poll_seconds: float = 1.0,
        linger_seconds: float = 0.005,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.kafka = kafka
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.linger_seconds = linger_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._wakeup = asyncio.Event()

    async def run(self) -> None:
        """Relay forever: hold the relay lock, then drain the outbox whenever it has rows."""
        backoff = 0.1
        while True:
            try:
                await self._run_while_leader()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                RELAY_FAILURES.inc()
                log.warning("outbox relay failed, retrying in %.1fs: %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
            else:
                backoff = 0.1

    async def _run_while_leader(self) -> None:
        async with self.database.engine.connect() as conn:
            try:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                # Standby instances wait here; the lock passes on when the leader's connection
                # ends.
                await raw.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK_ID)
                await raw.add_listener(NOTIFY_CHANNEL, self._on_notify)
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.kafka.kafka_bootstrap_servers,
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=5,
                    request_timeout_ms=10_000,
                )
                try:
                    await producer.start()
                    while True:
                        if await self._publish_batch(producer, raw) < self.batch_size:
                            await self._wait_for_rows(raw)
                            # commits arriving together go out as one batch: under load a
                            # batch's fixed cost (four round trips) is shared by many events
                            await asyncio.sleep(self.linger_seconds)
                finally:
                    with suppress(Exception):
                        await producer.stop()
            finally:
                # The connection is the relay's own: closing it (rather than returning it to
                # the pool) releases the lock and the listener whatever went wrong.
                with suppress(Exception):
                    await conn.invalidate()

    async def _publish_batch(self, producer: AIOKafkaProducer, raw: Connection) -> int:
        """One batch on the relay's own connection, as plain asyncpg calls (kit.sql): the
        payload is sent as PostgreSQL's JSON text, never decoded and encoded again here."""
        async with raw.transaction():
            rows = await _PENDING.fetch(raw, {"limit": self.batch_size})
            if not rows:
                return 0
            deliveries = [
                await producer.send(
                    row["topic"],
                    value=row["payload"].encode(),
                    key=row["key"].encode() if row["key"] else None,
                )
                for row in rows
            ]
            await asyncio.gather(*deliveries)
            await _DELETE_SENT.execute(raw, {"ids": [row["id"] for row in rows]})
        for row in rows:
            PUBLISHED.labels(row["topic"]).inc()
        return len(rows)

    async def _wait_for_rows(self, raw: Any) -> None:
        self._wakeup.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self.idle_poll_seconds)
        if raw.is_closed():
            raise ConnectionError("relay's listening connection closed")

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()


# Wakes the relay at commit time (NOTIFY is delivered on commit), instead of it polling.
NOTIFY_TRIGGER = (
    f"""CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', ''); RETURN NULL; END $$""",
    """CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()""",
)


def create_outbox_table() -> None:
    """Alembic operations creating the outbox and its wake-up trigger (first migration)."""
    outbox.create(op.get_bind())
    for statement in NOTIFY_TRIGGER:
        op.execute(statement)


def drop_outbox_table() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("outbox")
