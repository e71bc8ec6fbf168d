"""The follow-graph replica built from USER_TOPIC: idempotent, order-insensitive, blocks."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from socialhub.contracts.events import DEAD_LETTER_TOPIC
from socialhub.kit.database import Database
from socialhub.posts.models import blocks, follower_counts, follows
from socialhub.posts.settings import PostsSettings
from tests.posts.helpers import Graph, now_ms, someone


async def _active(graph: Graph, table_name: str, source: uuid.UUID, target: uuid.UUID) -> bool:
    table = follows if table_name == "follows" else blocks
    row = await graph.edge(table, source, target)
    assert row is not None
    return bool(row["active"])


async def _followers(database: Database, user: uuid.UUID) -> int | None:
    async with database.transaction() as session:
        count = (
            await session.execute(
                select(follower_counts.c.followers).where(follower_counts.c.user_id == user)
            )
        ).scalar()
    return None if count is None else int(count)


async def test_follow_then_unfollow(graph: Graph, posts_db: Database) -> None:
    a, b = someone(), someone()
    await graph.follow(a, b)
    assert await _active(graph, "follows", a.id, b.id)
    assert await _followers(posts_db, b.id) == 1
    await graph.unfollow(a, b)
    assert not await _active(graph, "follows", a.id, b.id)
    assert await _followers(posts_db, b.id) == 0


async def test_follower_counts_follow_the_graph(graph: Graph, posts_db: Database) -> None:
    star, fans = someone(), [someone() for _ in range(4)]
    for fan in fans:
        await graph.follow(fan, star, wait=False)
    for fan in fans:
        await graph.applied(follows, fan.id, star.id, 0)
    await graph.unfollow(fans[0], star)
    assert await _followers(posts_db, star.id) == 3


async def test_replays_and_late_events_do_not_override_newer_ones(graph: Graph) -> None:
    a, b, marker = someone(), someone(), someone()
    base = now_ms()
    # The unfollow (newer) arrives before the follow it undoes (older), then a replay of it.
    await graph.unfollow(a, b, ms=base + 2000, wait=False)
    await graph.follow(a, b, ms=base + 1000, wait=False)
    await graph.follow(a, b, ms=base + 1000, wait=False)
    # Same key, same partition: once the marker is in, everything before it was handled.
    await graph.follow(a, marker, ms=base + 3000)
    row = await graph.edge(follows, a.id, b.id)
    assert row is not None
    assert (row["active"], row["event_ms"]) == (False, base + 2000)


async def test_equal_timestamps_are_ordered_by_occurred_at(graph: Graph) -> None:
    a, b = someone(), someone()
    ms = now_ms()
    later = datetime.now(UTC) + timedelta(seconds=1)
    await graph.publish(
        "user.followed",
        {
            "followerId": str(a.id),
            "followingId": str(b.id),
            "followerUsername": a.username,
            "followingUsername": b.username,
            "timestamp": ms,
        },
        key=a.id,
        occurred_at=later,
    )
    await graph.unfollow(a, b, ms=ms, wait=False)  # same ms, occurred earlier: loses
    marker = someone()
    await graph.follow(a, marker)
    assert await _active(graph, "follows", a.id, b.id)


async def test_a_block_ends_follows_both_ways_for_good(graph: Graph, posts_db: Database) -> None:
    a, b, marker = someone(), someone(), someone()
    base = now_ms()
    await graph.follow(a, b, ms=base)
    await graph.follow(b, a, ms=base)
    await graph.block(a, b, ms=base + 3000)
    assert await _active(graph, "blocks", a.id, b.id)
    assert not await _active(graph, "follows", a.id, b.id)
    assert not await _active(graph, "follows", b.id, a.id)
    assert await _followers(posts_db, a.id) == 0
    # A follow from before the block, delivered late, does not revive the relation...
    await graph.follow(b, a, ms=base + 2000, wait=False)
    await graph.follow(b, marker)
    assert not await _active(graph, "follows", b.id, a.id)
    # ...and unblocking does not restore follows.
    await graph.unblock(a, b, ms=base + 4000)
    assert not await _active(graph, "blocks", a.id, b.id)
    assert not await _active(graph, "follows", a.id, b.id)
    # Following again afterwards works.
    await graph.follow(b, a, ms=base + 5000)
    assert await _active(graph, "follows", b.id, a.id)


async def test_graph_events_with_invalid_data_are_dead_lettered(
    graph: Graph, posts_settings: PostsSettings, posts: httpx.AsyncClient
) -> None:
    consumer = AIOKafkaConsumer(
        posts_settings.topic(DEAD_LETTER_TOPIC),
        bootstrap_servers=posts_settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        for tp in consumer.assignment():
            await consumer.position(tp)
        a = someone()
        broken = await graph.publish(
            "user.followed", {"followerId": "not-an-id", "timestamp": now_ms()}, key=a.id
        )
        ignored = await graph.publish("user.updated", {"userId": str(a.id)}, key=a.id)
        group = posts_settings.group("posts-service").encode()
        seen: list[tuple[bytes, dict[str, bytes]]] = []
        async with asyncio.timeout(30):
            while not any(broken.event_id.encode() in value for value, _ in seen):
                batch = await consumer.getmany(timeout_ms=200)
                seen += [
                    (r.value, dict(r.headers))
                    for records in batch.values()
                    for r in records
                    if dict(r.headers).get("group") == group
                ]
        batch = await consumer.getmany(timeout_ms=1000)  # anything dead-lettered with it
        seen += [
            (r.value, dict(r.headers))
            for records in batch.values()
            for r in records
            if dict(r.headers).get("group") == group
        ]
        headers = next(h for value, h in seen if broken.event_id.encode() in value)
        assert b"invalid user.followed data" in headers["reason"]
        assert not any(ignored.event_id.encode() in value for value, _ in seen)
    finally:
        await consumer.stop()
