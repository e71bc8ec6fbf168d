"""A Kafka consumer-group loop that hands events to a handler in batches.

Offsets are committed only after the handler stored a batch, so a crash or rebalance redelivers
rather than loses (handlers are idempotent on eventId). A message that is not an envelope, or
that the handler rejects, goes to the dead-letter topic with the reason in its headers and is
counted; it never blocks its partition. A handler that fails (its database is down, say) gets
the same batch again after a back-off.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client import Counter

from socialhub.contracts.events import DEAD_LETTER_TOPIC
from socialhub.kit.events.envelope import Event
from socialhub.kit.settings import KafkaSettings

log = logging.getLogger(__name__)

CONSUMED = Counter("events_consumed_total", "Events handed to a handler", ["group", "topic"])
DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Messages sent to the dead-letter topic", ["group", "topic"]
)
HANDLER_FAILURES = Counter(
    "event_handler_failures_total", "Batches retried after a failure", ["group"]
)


@dataclass(frozen=True)
class Rejected:
    """An event the handler cannot process, ever (unknown type, invalid data)."""

    event: Event
    reason: str


Handler = Callable[[Sequence[Event]], Awaitable[Sequence[Rejected]]]


class BatchConsumer:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topics: Sequence[str],
        group: str,
        handler: Handler,
        batch_size: int = 500,
        poll_timeout_ms: int = 200,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.kafka = kafka
        self.topics = [kafka.topic(name) for name in topics]
        self.group = kafka.group(group)
        self.handler = handler
        self.batch_size = batch_size
        self.poll_timeout_ms = poll_timeout_ms
        self.max_backoff_seconds = max_backoff_seconds

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s failed, restarting in %.1fs: %r", self.group, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.kafka.kafka_bootstrap_servers,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
        )
        dead_letters = AIOKafkaProducer(
            bootstrap_servers=self.kafka.kafka_bootstrap_servers,
            enable_idempotence=True,
            acks="all",
        )
        await consumer.start()
        try:
            await dead_letters.start()
            while True:
                batch = await consumer.getmany(
                    timeout_ms=self.poll_timeout_ms, max_records=self.batch_size
                )
                if batch:
                    await self._process(consumer, dead_letters, batch)
        finally:
            with suppress(Exception):
                await dead_letters.stop()
            with suppress(Exception):
                await consumer.stop()

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        dead_letters: AIOKafkaProducer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        events: list[Event] = []
        origin: dict[str, ConsumerRecord] = {}
        for records in batch.values():
            for record in records:
                try:
                    event = Event.from_bytes(record.value)
                except ValueError as exc:
                    await self._dead_letter(dead_letters, record, f"unparseable: {exc}"[:500])
                    continue
                events.append(event)
                origin[event.event_id] = record
        rejected: Sequence[Rejected] = ()
        backoff = 0.2
        while events:
            try:
                rejected = await self.handler(events)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                HANDLER_FAILURES.labels(self.group).inc()
                log.warning(
                    "handler failed for %d events, retrying in %.1fs: %r", len(events), backoff, exc
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
        for item in rejected:
            await self._dead_letter(dead_letters, origin[item.event.event_id], item.reason)
        for event in events:
            CONSUMED.labels(self.group, origin[event.event_id].topic).inc()
        await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    async def _dead_letter(
        self, producer: AIOKafkaProducer, record: ConsumerRecord, reason: str
    ) -> None:
        DEAD_LETTERED.labels(self.group, record.topic).inc()
        log.warning(
            "dead-lettering %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )
        await producer.send_and_wait(
            self.kafka.topic(DEAD_LETTER_TOPIC),
            value=record.value,
            key=record.key,
            headers=[
                ("reason", reason.encode()),
                ("group", self.group.encode()),
                ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ],
        )
