"""Events on POST_TOPIC in the documented shape (docs/events.md), through the outbox, including
those written while Kafka was unreachable."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from devstack.platform import Platform
from socialhub.kit.database import Database
from socialhub.kit.events.outbox import OutboxRelay, outbox
from socialhub.kit.migrations import upgrade_to_head
from socialhub.posts.app import create_app
from socialhub.posts.pagination import to_ms
from socialhub.posts.settings import PostsSettings
from tests.posts.helpers import DEAD_ADDRESS, as_user, create_post, database_at, png, someone
from tests.support import EventProbe, app_client, eventually

ENVELOPE = {"eventId", "eventType", "occurredAt", "producer", "data"}


def about(post_id: str) -> Any:
    return lambda event: event["data"].get("postId") == post_id


@pytest.fixture
async def probe(
    posts_settings: PostsSettings, post_topic: str, posts: httpx.AsyncClient
) -> AsyncIterator[EventProbe]:
    async with EventProbe.on(posts_settings.kafka_bootstrap_servers, post_topic) as found:
        yield found


async def test_post_created_as_the_design_document_shows(
    posts: httpx.AsyncClient, probe: EventProbe
) -> None:
    author = someone()
    response = await posts.post(
        "/posts/",
        headers=as_user(author),
        data={"content": "My first post on SocialHub!", "visibility": "followers"},
        files={"files": ("a.png", png(), "image/png")},
    )
    post = response.json()
    event, key = await probe.wait_for(about(post["id"]))
    assert key == post["id"].encode()
    assert set(event) == ENVELOPE
    assert (event["eventType"], event["producer"]) == ("post.created", "posts")
    created = to_ms(datetime.fromisoformat(post["createdAt"].replace("Z", "+00:00")))
    assert event["data"] == {
        "postId": post["id"],
        "userId": str(author.id),
        "username": author.username,
        "content": "My first post on SocialHub!",
        "timestamp": created,
        "visibility": "followers",
        "mediaCount": 1,
    }


async def test_edits_deletes_likes_comments_and_replies(
    posts: httpx.AsyncClient, probe: EventProbe
) -> None:
    author, fan, replier = someone("author"), someone("fan"), someone("replier")
    post_id = (await create_post(posts, author))["id"]
    path = f"/posts/{post_id}"
    await posts.patch(path, headers=as_user(author), json={"visibility": "private"})
    await posts.patch(path, headers=as_user(author), json={"visibility": "public"})
    await posts.post(f"{path}/like", headers=as_user(fan))
    await posts.post(f"{path}/like", headers=as_user(fan))  # taken back: no event
    await posts.post(f"{path}/dislike", headers=as_user(fan))  # no event
    top = (
        await posts.post(f"{path}/comments", headers=as_user(fan), json={"content": "nice"})
    ).json()
    reply = (
        await posts.post(
            f"{path}/comments",
            headers=as_user(replier),
            json={"content": "agreed", "parentId": top["id"]},
        )
    ).json()
    await posts.delete(path, headers=as_user(author))
    events = await probe.collect(about(post_id), 7)
    later = await probe.drain(seconds=1.0)
    assert [e for e in later if about(post_id)(e)] == []  # no event for unlike or dislike
    by_type = {e["eventType"]: e for e in events}
    assert [e["eventType"] for e in events] == [
        "post.created",
        "post.updated",
        "post.updated",
        "post.liked",
        "post.commented",
        "comment.replied",
        "post.deleted",
    ]  # one key: in order
    assert [e["data"]["visibility"] for e in events if e["eventType"] == "post.updated"] == [
        "private",
        "public",
    ]
    liked = by_type["post.liked"]["data"]
    assert liked == {
        "postId": post_id,
        "postAuthorId": str(author.id),
        "userId": str(fan.id),
        "username": fan.username,
        "timestamp": liked["timestamp"],
    }
    commented = by_type["post.commented"]["data"]
    assert commented == {
        "postId": post_id,
        "postAuthorId": str(author.id),
        "commentId": top["id"],
        "userId": str(fan.id),
        "username": fan.username,
        "content": "nice",
        "timestamp": commented["timestamp"],
    }
    replied = by_type["comment.replied"]["data"]
    assert replied == {
        "postId": post_id,
        "commentId": reply["id"],
        "parentCommentId": top["id"],
        "parentAuthorId": str(fan.id),
        "postAuthorId": str(author.id),
        "userId": str(replier.id),
        "username": replier.username,
        "content": "agreed",
        "timestamp": replied["timestamp"],
    }
    assert by_type["post.deleted"]["data"] == {"postId": post_id, "userId": str(author.id)}
    assert all(isinstance(e["data"].get("timestamp", 0), int) for e in events)


@pytest.fixture
async def scratch_database(platform: Platform) -> AsyncIterator[str]:
    """A posts database of its own, so only the relays this test starts can publish from it."""
    name = f"socialhub_posts_outbox_{uuid.uuid4().hex[:8]}"
    platform.infra.postgres.create_database(name)
    url = platform.infra.postgres.url(name)
    await asyncio.to_thread(upgrade_to_head, "socialhub.posts", url)
    yield url
    platform.infra.postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


async def pending(database: Database) -> int:
    async with database.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(outbox))).scalar_one())


async def test_writes_while_kafka_is_unreachable_are_published_later(
    posts_settings: PostsSettings, scratch_database: str, probe: EventProbe
) -> None:
    offline = posts_settings.model_copy(
        update={"database_url": scratch_database, "kafka_bootstrap_servers": DEAD_ADDRESS}
    )
    author, fan = someone(), someone()
    async with (
        app_client(create_app(offline)) as unreachable,
        database_at(scratch_database) as database,
    ):
        post_id = (await create_post(unreachable, author, "written offline"))["id"]
        assert (
            await unreachable.post(f"/posts/{post_id}/like", headers=as_user(fan))
        ).status_code == 200
        assert (
            await unreachable.post(
                f"/posts/{post_id}/comments", headers=as_user(fan), json={"content": "also offline"}
            )
        ).status_code == 201
        await asyncio.sleep(1.0)  # the instance's relay keeps failing against the dead broker
        assert await pending(database) == 3
    # The instance is gone; a relay reaching the real broker delivers what it left behind.
    async with database_at(scratch_database) as database:
        relay = asyncio.create_task(OutboxRelay(database, posts_settings).run())
        try:
            events = await probe.collect(about(post_id), 3)

            async def drained() -> bool:
                return await pending(database) == 0

            await eventually(drained, what="outbox drained")
        finally:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
    assert [e["eventType"] for e in events] == ["post.created", "post.liked", "post.commented"]
    assert events[0]["data"]["content"] == "written offline"
