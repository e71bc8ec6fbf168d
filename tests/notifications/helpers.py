"""Events in the shared envelope (docs/events.md), produced to Kafka as the other services do."""

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from socialhub.contracts.events import POST_TOPIC, USER_TOPIC
from socialhub.kit.events.envelope import Event
from socialhub.kit.identity import Principal
from socialhub.kit.settings import KafkaSettings
from tests.support import eventually

Document = dict[str, Any]


def uid() -> str:
    return str(uuid.uuid4())


def as_user(user_id: str, username: str = "someone") -> dict[str, str]:
    """The header the gateway sets for a verified caller."""
    return {"x-user-payload": Principal(id=uuid.UUID(user_id), username=username).header_value()}


def _event(
    event_type: str, producer: str, data: dict[str, Any], occurred_at: datetime | None
) -> Event:
    return Event(
        event_type=event_type,
        producer=producer,
        data=data,
        occurred_at=occurred_at or datetime.now(UTC),
    )


def followed(
    follower: str, following: str, *, username: str = "alice", occurred_at: datetime | None = None
) -> Event:
    return _event(
        "user.followed",
        "users",
        {
            "followerId": follower,
            "followerUsername": username,
            "followingId": following,
            "followingUsername": "bob",
            "timestamp": 1764061200000,
        },
        occurred_at,
    )


def post_created(
    author: str,
    post: str | None = None,
    *,
    username: str = "alice",
    occurred_at: datetime | None = None,
) -> Event:
    return _event(
        "post.created",
        "posts",
        {
            "postId": post or uid(),
            "userId": author,
            "username": username,
            "content": "hello",
            "timestamp": 1764061200000,
            "visibility": "public",
            "mediaCount": 0,
        },
        occurred_at,
    )


def liked(
    liker: str,
    author: str,
    post: str | None = None,
    *,
    username: str = "alice",
    occurred_at: datetime | None = None,
) -> Event:
    return _event(
        "post.liked",
        "posts",
        {
            "postId": post or uid(),
            "postAuthorId": author,
            "userId": liker,
            "username": username,
            "timestamp": 1764061200000,
        },
        occurred_at,
    )


def commented(
    commenter: str,
    author: str,
    post: str | None = None,
    *,
    username: str = "alice",
    occurred_at: datetime | None = None,
) -> Event:
    return _event(
        "post.commented",
        "posts",
        {
            "postId": post or uid(),
            "postAuthorId": author,
            "commentId": uid(),
            "userId": commenter,
            "username": username,
            "content": "nice",
            "timestamp": 1764061200000,
        },
        occurred_at,
    )


def replied(
    replier: str,
    parent_author: str,
    *,
    username: str = "alice",
    occurred_at: datetime | None = None,
) -> Event:
    return _event(
        "comment.replied",
        "posts",
        {
            "postId": uid(),
            "postAuthorId": uid(),
            "commentId": uid(),
            "parentCommentId": uid(),
            "parentAuthorId": parent_author,
            "userId": replier,
            "username": username,
            "content": "agreed",
            "timestamp": 1764061200000,
        },
        occurred_at,
    )


def simple(event_type: str, **data: Any) -> Event:
    return Event(event_type=event_type, producer="test", data=data)


def topic_of(event_type: str) -> str:
    return USER_TOPIC if event_type.startswith("user.") else POST_TOPIC


def key_of(event: Event) -> bytes:
    """The documented key: postId for post events, the acting user for user events."""
    data = event.data
    key = (
        data.get("postId")
        or data.get("followerId")
        or data.get("blockerId")
        or data.get("userId")
        or event.event_id
    )
    return str(key).encode()


async def produce(
    producer: AIOKafkaProducer,
    settings: KafkaSettings,
    events: Sequence[Event | tuple[str, bytes]],
    *,
    key: bytes | None = None,
) -> None:
    """Send events (or raw `(topic, value)` messages) and wait until Kafka has them all.

    `key` overrides the documented keys, to put everything on one partition in order.
    """
    deliveries = []
    for item in events:
        if isinstance(item, Event):
            topic, value, own_key = topic_of(item.event_type), item.to_bytes(), key_of(item)
        else:
            (topic, value), own_key = item, b"raw"
        deliveries.append(await producer.send(settings.topic(topic), value, key=key or own_key))
    await asyncio.gather(*deliveries)


async def listed(client: httpx.AsyncClient, user_id: str, **params: Any) -> Document:
    response = await client.get("/notify/notifications", params=params, headers=as_user(user_id))
    assert response.status_code == 200, response.text
    body: Document = response.json()
    return body


async def wait_for_count(
    client: httpx.AsyncClient, user_id: str, count: int, *, within: float = 20.0
) -> Document:
    """The user's first page once it holds `count` notifications."""
    body: Document = {}

    async def arrived() -> bool:
        nonlocal body
        body = await listed(client, user_id, limit=100)
        return len(body["items"]) >= count

    await eventually(arrived, within=within, what=f"{count} notifications for {user_id}")
    return body


async def partitions_of(settings: KafkaSettings) -> list[TopicPartition]:
    """Every partition of the notification service's topics (fails if a topic is missing).

    From the admin client: a consumer's `topics()` fetches metadata without keeping it, so its
    `partitions_for_topic` knows nothing of topics it has not subscribed to.
    """
    names = [settings.topic(POST_TOPIC), settings.topic(USER_TOPIC)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in topic["partitions"]
    ]
    assert {tp.topic for tp in partitions} == set(names), described
    return partitions


async def caught_up(settings: KafkaSettings, group: str) -> bool:
    """Whether `group` has committed offsets at the end of every partition of its topics."""
    partitions = await partitions_of(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.group(group))
        ends = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
        await admin.close()
    return all(
        ends[tp] == 0 or (tp in committed and committed[tp].offset == ends[tp]) for tp in partitions
    )


async def rewind(settings: KafkaSettings, group: str) -> int:
    """Reset `group`'s offsets to the start of its topics, as a full replay would.

    Only while the group has no members (Kafka refuses the commit otherwise); returns how many
    records lie ahead of the group after the reset.
    """
    partitions = await partitions_of(settings)
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group(group),
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        reader.assign(partitions)  # manual assignment: commits without joining the group
        starts = await reader.beginning_offsets(partitions)
        ends = await reader.end_offsets(partitions)
        await reader.commit(starts)
    finally:
        await reader.stop()
    return sum(ends[tp] - starts[tp] for tp in partitions)
