"""The consumer on real Kafka, FerretDB and Redis: exactly-once effects over at-least-once
delivery, the dead-letter topic, self-actions, the real-time push and several instances."""

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from aiokafka import AIOKafkaProducer
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from socialhub.contracts.events import DEAD_LETTER_TOPIC, POST_TOPIC
from socialhub.kit.events.consumer import BatchConsumer, Rejected
from socialhub.kit.events.envelope import Event
from socialhub.notifications.app import CONSUMER_GROUP, TOPICS, create_app
from socialhub.notifications.ingest import NotificationIngest, push_channel
from socialhub.notifications.settings import NotificationSettings
from socialhub.notifications.store import NotificationStore
from tests.notifications.helpers import (
    Document,
    as_user,
    caught_up,
    commented,
    followed,
    liked,
    post_created,
    produce,
    replied,
    simple,
    uid,
)
from tests.support import app_client, eventually, read_topic

Collection = AsyncIOMotorCollection[Document]


def mixed_events(count: int, recipients: Sequence[str]) -> list[Event]:
    """Every notifying event type, spread over recipients (and so over partitions)."""
    events = []
    for i in range(count):
        recipient = recipients[i % len(recipients)]
        match i % 5:
            case 0:
                events.append(liked(uid(), recipient))
            case 1:
                events.append(commented(uid(), recipient))
            case 2:
                events.append(followed(uid(), recipient))
            case 3:
                events.append(replied(uid(), recipient))
            case _:
                events.append(post_created(recipient))
    return events


async def stored_count(collection: Collection, count: int, *, within: float = 120.0) -> None:
    async def reached() -> bool:
        return await collection.count_documents({}) >= count

    await eventually(reached, within=within, what=f"{count} notifications stored")


async def settled(settings: NotificationSettings, *, within: float = 60.0) -> None:
    """The group has handled and committed everything produced so far."""

    async def done() -> bool:
        return await caught_up(settings, CONSUMER_GROUP)

    await eventually(done, within=within, what="consumer group caught up")


async def assert_exactly(collection: Collection, events: Sequence[Event]) -> None:
    """One notification per event, no more, no fewer."""
    assert await collection.count_documents({}) == len(events)
    assert set(await collection.distinct("eventId")) == {e.event_id for e in events}


async def test_a_stopped_consumer_catches_up_exactly_once_and_replays_change_nothing(
    isolated: NotificationSettings, isolated_collection: Collection, producer: AIOKafkaProducer
) -> None:
    recipients = [uid() for _ in range(40)]
    first = mixed_events(3, recipients)
    async with app_client(create_app(isolated)):
        await produce(producer, isolated, first)
        await stored_count(isolated_collection, 3)
        await settled(isolated)
    # the service is stopped: its group has committed offsets and nobody consumes
    backlog = mixed_events(1000, recipients)
    await produce(producer, isolated, backlog)
    await asyncio.sleep(0.5)
    assert await isolated_collection.count_documents({}) == 3

    async with app_client(create_app(isolated)):
        await stored_count(isolated_collection, 1003)
        await settled(isolated)
        await assert_exactly(isolated_collection, first + backlog)

        duplicates_before = _sample("notifications_duplicates_total")
        await produce(producer, isolated, first + backlog)  # the same events, delivered again
        await settled(isolated)
        await assert_exactly(isolated_collection, first + backlog)
        assert _sample("notifications_duplicates_total") - duplicates_before >= 1003
    per_user = await isolated_collection.count_documents({"userId": recipients[0]})
    assert per_user == 26  # 1003 events over 40 recipients: the first 23 get 26, the rest 25


async def test_poison_messages_are_dead_lettered_and_the_partition_moves_on(
    isolated: NotificationSettings, isolated_collection: Collection, producer: AIOKafkaProducer
) -> None:
    author = uid()
    before, after = liked(uid(), author), liked(uid(), author)
    unknown = simple("post.exploded", postId=uid())
    broken = simple("post.liked", postId=uid(), userId=uid(), username="x")  # no postAuthorId
    ignored = [
        simple("user.created", userId=uid(), username="new", name="New"),
        simple("user.unfollowed", followerId=uid(), followingId=author),
        simple("user.blocked", blockerId=uid(), blockedId=author),
        simple("post.deleted", postId=uid(), userId=author),
    ]
    # one key: one partition, in this order, the poison in front of `after`
    await produce(
        producer,
        isolated,
        [before, (POST_TOPIC, b"{not json"), unknown, broken, *ignored, after],
        key=b"one-partition",
    )
    group = isolated.group(CONSUMER_GROUP)
    counted_before = _dead_lettered(group, isolated.topic(POST_TOPIC))
    async with app_client(create_app(isolated)):
        await stored_count(isolated_collection, 2, within=30)
        await settled(isolated)
    await assert_exactly(isolated_collection, [before, after])

    letters = await read_topic(
        isolated.kafka_bootstrap_servers, isolated.topic(DEAD_LETTER_TOPIC), 3, then_wait_ms=500
    )
    assert [value for value, _ in letters] == [b"{not json", unknown.to_bytes(), broken.to_bytes()]
    reasons = [headers["reason"].decode() for _, headers in letters]
    assert reasons[0].startswith("unparseable")
    assert reasons[1] == "unknown event type 'post.exploded'"
    assert "postAuthorId" in reasons[2]
    assert all(headers["group"] == group.encode() for _, headers in letters)
    assert letters[0][1]["source"].decode().startswith(f"{isolated.topic(POST_TOPIC)}/")
    assert _dead_lettered(group, isolated.topic(POST_TOPIC)) - counted_before == 3


async def test_nobody_is_notified_of_their_own_actions(
    isolated: NotificationSettings, isolated_collection: Collection, producer: AIOKafkaProducer
) -> None:
    me = uid()
    post = uid()
    own = [liked(me, me, post), commented(me, me, post), followed(me, me), replied(me, me)]
    someone_else = liked(uid(), me, post)
    await produce(producer, isolated, [*own, someone_else])
    async with app_client(create_app(isolated)):
        await stored_count(isolated_collection, 1, within=30)
        await settled(isolated)
    await assert_exactly(isolated_collection, [someone_else])


async def test_an_online_user_gets_each_new_notification_pushed_once(
    notifications: httpx.AsyncClient,
    notification_settings: NotificationSettings,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    user, follower = uid(), uid()
    first, second = followed(follower, user), followed(follower, user)  # same key: in order
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(push_channel(notification_settings, user))
        await produce(producer, notification_settings, [first])
        pushed = await _next_message(pubsub)
        assert pushed["event"] == "notification"
        page = (await notifications.get("/notify/notifications", headers=as_user(user))).json()
        assert pushed["data"] == page["items"][0]
        assert pushed["data"]["eventId"] == first.event_id
        assert pushed["data"]["message"] == "alice started following you"

        await produce(producer, notification_settings, [first, second])  # a redelivery, then new
        pushed = await _next_message(pubsub)
        assert pushed["data"]["eventId"] == second.event_id


class CountingHandler:
    """One instance's handler: the real ingest, counting what this instance was given."""

    def __init__(self, ingest: NotificationIngest) -> None:
        self.ingest = ingest
        self.handled = 0

    async def __call__(self, events: Sequence[Event]) -> Sequence[Rejected]:
        rejected = await self.ingest.handle(events)
        self.handled += len(events)
        return rejected


@asynccontextmanager
async def instance(settings: NotificationSettings, redis: Redis) -> AsyncIterator[CountingHandler]:
    """One consumer instance of the service: its own connections, the shared group."""
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(settings.mongo_url, tz_aware=True)
    store = NotificationStore(
        client[settings.mongo_database], ttl_days=settings.notification_ttl_days
    )
    await store.ensure_indexes()
    handler = CountingHandler(NotificationIngest(store, redis, settings))
    consumer = BatchConsumer(
        settings,
        topics=TOPICS,
        group=CONSUMER_GROUP,
        handler=handler,
        batch_size=settings.consumer_batch_size,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield handler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        client.close()


async def test_two_instances_share_the_partitions_without_loss_or_duplicates(
    isolated: NotificationSettings,
    isolated_collection: Collection,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    recipients = [uid() for _ in range(30)]
    produced: list[Event] = []
    async with instance(isolated, redis) as a:
        async with instance(isolated, redis) as b:

            async def both_working() -> bool:
                wave = mixed_events(30, recipients)
                produced.extend(wave)
                await produce(producer, isolated, wave)
                await asyncio.sleep(0.3)
                return a.handled > 0 and b.handled > 0

            await eventually(both_working, within=60, what="both instances assigned partitions")
            load = mixed_events(1000, recipients)
            produced.extend(load)
            await produce(producer, isolated, load)
            await stored_count(isolated_collection, len(produced))
            await settled(isolated)
            await assert_exactly(isolated_collection, produced)
        # scale in: `b` left the group, `a` takes over its partitions
        handled_by_a = a.handled
        more = mixed_events(300, recipients)
        produced.extend(more)
        await produce(producer, isolated, more)
        await stored_count(isolated_collection, len(produced))
        await settled(isolated)
        await assert_exactly(isolated_collection, produced)
        assert a.handled - handled_by_a >= 300


async def _next_message(pubsub: object, within: float = 20.0) -> Document:
    async with asyncio.timeout(within):
        while True:
            message = await pubsub.get_message(  # type: ignore[attr-defined]
                ignore_subscribe_messages=True, timeout=1.0
            )
            if message is not None:
                decoded: Document = json.loads(message["data"])
                return decoded


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _dead_lettered(group: str, topic: str) -> float:
    return _sample("events_dead_lettered_total", {"group": group, "topic": topic})
