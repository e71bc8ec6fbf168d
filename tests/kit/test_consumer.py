"""The batch consumer on a real Kafka broker: commits, retries and the dead-letter topic."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from socialhub.contracts.events import DEAD_LETTER_TOPIC, POST_TOPIC
from socialhub.kit.events.consumer import BatchConsumer, Handler, Rejected
from socialhub.kit.events.envelope import Event
from socialhub.kit.settings import KafkaSettings
from tests.support import eventually, read_topic


class Recorder:
    """A handler that stores event ids, rejects `bad.type`, and can fail on demand."""

    def __init__(self, failures: int = 0) -> None:
        self.seen: list[str] = []
        self.failures_left = failures
        self.calls = 0

    async def __call__(self, events: Sequence[Event]) -> Sequence[Rejected]:
        self.calls += 1
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("store is down")
        self.seen.extend(e.event_id for e in events if e.event_type != "bad.type")
        return [Rejected(e, "unknown event type") for e in events if e.event_type == "bad.type"]


async def produce(settings: KafkaSettings, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic(POST_TOPIC), value, key=b"k")
    finally:
        await producer.stop()


@asynccontextmanager
async def consuming(settings: KafkaSettings, handler: Handler) -> AsyncIterator[None]:
    consumer = BatchConsumer(
        settings, topics=[POST_TOPIC], group="kit-test", handler=handler, max_backoff_seconds=0.2
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def event(event_type: str = "post.created") -> Event:
    return Event(event_type=event_type, producer="test", data={"x": 1})


async def committed_offsets(settings: KafkaSettings, group: str) -> int:
    """The sum of the group's committed offsets on POST_TOPIC."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.group(group))
    finally:
        await admin.close()
    return sum(
        meta.offset for tp, meta in offsets.items() if tp.topic == settings.topic(POST_TOPIC)
    )


async def test_poison_and_rejected_messages_go_to_the_dead_letter_topic(
    kafka_settings: KafkaSettings,
) -> None:
    good = [event() for _ in range(3)]
    rejected = event("bad.type")
    await produce(
        kafka_settings,
        [
            good[0].to_bytes(),
            b"{not json",
            good[1].to_bytes(),
            rejected.to_bytes(),
            good[2].to_bytes(),
        ],
    )
    recorder = Recorder()
    async with consuming(kafka_settings, recorder):

        async def all_good_seen() -> bool:
            return len(recorder.seen) == 3

        await eventually(all_good_seen, what="valid events after the poison one")
    assert recorder.seen == [e.event_id for e in good]
    letters = await read_topic(
        kafka_settings.kafka_bootstrap_servers, kafka_settings.topic(DEAD_LETTER_TOPIC), 2
    )
    assert [value for value, _ in letters] == [b"{not json", rejected.to_bytes()]
    assert letters[0][1]["reason"].startswith(b"unparseable")
    assert letters[1][1]["reason"] == b"unknown event type"
    assert letters[1][1]["group"] == kafka_settings.group("kit-test").encode()


async def test_a_failing_handler_gets_the_batch_again(kafka_settings: KafkaSettings) -> None:
    events = [event() for _ in range(4)]
    await produce(kafka_settings, [e.to_bytes() for e in events])
    recorder = Recorder(failures=2)
    async with consuming(kafka_settings, recorder):

        async def all_seen() -> bool:
            return len(recorder.seen) == 4

        await eventually(all_seen, what="events after two failed attempts")
    assert recorder.seen == [e.event_id for e in events]
    assert recorder.calls >= 3


async def test_committed_offsets_survive_a_restart(kafka_settings: KafkaSettings) -> None:
    first = [event() for _ in range(3)]
    await produce(kafka_settings, [e.to_bytes() for e in first])
    recorder = Recorder()
    async with consuming(kafka_settings, recorder):

        async def first_seen() -> bool:
            return len(recorder.seen) == 3

        await eventually(first_seen, what="first events")

        async def committed() -> bool:
            return await committed_offsets(kafka_settings, "kit-test") == 3

        await eventually(committed, what="offsets committed after the batch")

    second = [event() for _ in range(2)]
    await produce(kafka_settings, [e.to_bytes() for e in second])
    restarted = Recorder()
    async with consuming(kafka_settings, restarted):

        async def second_seen() -> bool:
            return len(restarted.seen) >= 2

        await eventually(second_seen, what="events produced while stopped", within=30)
        await asyncio.sleep(0.5)
    assert restarted.seen == [e.event_id for e in second]
