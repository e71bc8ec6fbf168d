"""Home feeds and timelines: order, cursors under inserts, the Redis cache and its fallbacks."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from socialhub.contracts.events import PostCreated
from socialhub.kit.database import Database
from socialhub.kit.events.envelope import Event
from socialhub.posts.feed import READY, FanOut, FeedCache
from socialhub.posts.pagination import to_ms
from socialhub.posts.settings import PostsSettings
from tests.posts.conftest import api_instance
from tests.posts.helpers import (
    DEAD_ADDRESS,
    Graph,
    all_ids,
    as_user,
    create_post,
    page_ids,
    someone,
)
from tests.support import eventually

# A Redis database no consumer of the test platform writes to: instances with other feed
# settings keep their sets here, so the session instance's fan-out cannot interfere.
PRIVATE_REDIS_DB = 13


def created_ms(post: dict[str, Any]) -> int:
    return to_ms(datetime.fromisoformat(post["createdAt"].replace("Z", "+00:00")))


def key(user_id: uuid.UUID) -> str:
    return FeedCache.key(user_id)


async def feed_ids(client: httpx.AsyncClient, viewer: Any) -> list[str]:
    return await all_ids(client, viewer, "/posts/feed")


async def shows(client: httpx.AsyncClient, viewer: Any, expected: list[str]) -> None:
    """Wait until the feed is exactly `expected` (fan-out happens after the response)."""

    async def matches() -> bool:
        return await feed_ids(client, viewer) == expected

    await eventually(matches, within=20, what=f"feed of {viewer.username} == {expected}")


@pytest.fixture(scope="module")
def private_redis_url(posts_settings: PostsSettings) -> str:
    return f"{posts_settings.redis_url.rsplit('/', 1)[0]}/{PRIVATE_REDIS_DB}"


@pytest.fixture(scope="module")
async def private_redis(private_redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(private_redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_own_and_followed_posts_newest_first(posts: httpx.AsyncClient, graph: Graph) -> None:
    reader, b, c, stranger = someone("reader"), someone(), someone(), someone()
    await graph.follow(reader, b)
    await graph.follow(reader, c)
    made = [
        await create_post(posts, author, f"by {author.username}", visibility)
        for author, visibility in [
            (b, "public"),
            (c, "followers"),
            (stranger, "public"),
            (reader, "private"),
            (b, "private"),
            (c, "public"),
        ]
    ]
    # own private post yes; followed authors' private posts and strangers' posts no
    expected = [made[5]["id"], made[3]["id"], made[1]["id"], made[0]["id"]]
    assert await feed_ids(posts, reader) == expected
    later = await create_post(posts, b, "after the first read")
    await shows(posts, reader, [later["id"], *expected])


async def test_own_posts_show_at_once(posts: httpx.AsyncClient, graph: Graph) -> None:
    reader, friend = someone(), someone()
    await graph.follow(reader, friend)
    await feed_ids(posts, reader)  # the cache exists from here on
    mine = await create_post(posts, reader, "read your own writes", "private")
    ids, _ = await page_ids(posts, reader, "/posts/feed", limit=1)
    assert ids == [mine["id"]]


async def test_fan_out_writes_only_into_feeds_that_exist(
    posts: httpx.AsyncClient, graph: Graph, feed_redis: Redis
) -> None:
    writer, active, inactive = someone("writer"), someone("active"), someone("inactive")
    await graph.follow(active, writer)
    await graph.follow(inactive, writer)
    assert await feed_ids(posts, active) == []
    assert await feed_redis.zscore(key(active.id), READY) is not None
    post = await create_post(posts, writer, "fanned out")

    async def fanned_out() -> bool:
        return await feed_redis.zscore(key(active.id), post["id"]) is not None

    await eventually(fanned_out, what="post in the active follower's cached feed")
    assert await feed_redis.zscore(key(active.id), post["id"]) == created_ms(post)
    assert not await feed_redis.exists(key(inactive.id))  # never read: no feed kept for it
    assert await feed_ids(posts, active) == [post["id"]]


async def test_a_cold_feed_is_rebuilt_from_postgresql(
    posts: httpx.AsyncClient, graph: Graph, feed_redis: Redis
) -> None:
    reader, writer = someone(), someone()
    await graph.follow(reader, writer)
    made = [(await create_post(posts, writer, f"post {n}"))["id"] for n in range(3)]
    first = await feed_ids(posts, reader)
    assert first == made[::-1]
    cached = await feed_redis.zrange(key(reader.id), 0, -1)
    assert set(made) <= set(cached)
    assert await feed_redis.ttl(key(reader.id)) > 0
    await feed_redis.delete(key(reader.id))
    assert await feed_ids(posts, reader) == first
    assert set(made) <= set(await feed_redis.zrange(key(reader.id), 0, -1))


async def test_unfollow_and_block_apply_to_cached_feeds(
    posts: httpx.AsyncClient, graph: Graph
) -> None:
    reader, gone, blocker = someone(), someone(), someone()
    await graph.follow(reader, gone)
    await graph.follow(reader, blocker)
    first = await create_post(posts, gone, "soon unfollowed")
    second = await create_post(posts, blocker, "soon blocking")
    assert await feed_ids(posts, reader) == [second["id"], first["id"]]
    await graph.unfollow(reader, gone)
    await graph.block(blocker, reader)
    assert await feed_ids(posts, reader) == []


async def test_a_new_follow_brings_older_posts(posts: httpx.AsyncClient, graph: Graph) -> None:
    reader, writer = someone(), someone()
    made = [(await create_post(posts, writer, f"old {n}"))["id"] for n in range(3)]
    assert await feed_ids(posts, reader) == []
    await graph.follow(reader, writer)
    await shows(posts, reader, made[::-1])


@pytest.mark.parametrize("path", ["feed", "timeline"])
async def test_pages_stay_stable_while_posts_are_inserted(
    posts: httpx.AsyncClient, graph: Graph, path: str
) -> None:
    reader, writer = someone(), someone()
    await graph.follow(reader, writer)
    original = [(await create_post(posts, writer, f"post {n}"))["id"] for n in range(25)][::-1]
    url = "/posts/feed" if path == "feed" else f"/posts/user/{writer.id}"
    if path == "feed":
        await shows(posts, reader, original)
    response = await posts.get(url, headers=as_user(reader), params={"limit": 10})
    first, cursor = [p["id"] for p in response.json()["items"]], response.json()["nextCursor"]
    assert cursor
    assert response.headers["link"] == f'<{url}?limit=10&cursor={cursor}>; rel="next"'
    seen, inserted = list(first), []
    while cursor:
        inserted += [(await create_post(posts, writer, "meanwhile"))["id"] for _ in range(3)]
        ids, cursor = await page_ids(posts, reader, url, limit=10, cursor=cursor)
        seen += ids
    assert seen == original  # nothing repeated, nothing skipped, nothing new mixed in
    assert (
        "link" not in (await posts.get(url, headers=as_user(reader), params={"limit": 100})).headers
    )
    if path == "feed":
        await shows(posts, reader, inserted[::-1] + original)
    else:
        assert await all_ids(posts, reader, url) == inserted[::-1] + original


async def test_a_capped_feed_continues_from_postgresql(
    posts: httpx.AsyncClient,
    posts_settings: PostsSettings,
    graph: Graph,
    private_redis_url: str,
    private_redis: Redis,
) -> None:
    reader, writer = someone(), someone()
    await graph.follow(reader, writer)
    made = [(await create_post(posts, writer, f"post {n}"))["id"] for n in range(25)][::-1]
    async with api_instance(
        posts_settings, redis_url=private_redis_url, feed_cache_size=10
    ) as capped:
        assert await all_ids(capped, reader, "/posts/feed", limit=7) == made
        assert await private_redis.zcount(key(reader.id), 0, "+inf") == 10


async def test_big_accounts_are_merged_in_at_read_time(
    posts: httpx.AsyncClient,
    posts_settings: PostsSettings,
    graph: Graph,
    posts_db: Database,
    private_redis_url: str,
    private_redis: Redis,
) -> None:
    reader, star, regular = someone("reader"), someone("star"), someone("regular")
    for fan in (reader, someone(), someone()):
        await graph.follow(fan, star)
    await graph.follow(reader, regular)
    made = [
        await create_post(posts, author, f"by {author.username}")
        for author in (star, regular, star, regular)
    ]
    expected = [p["id"] for p in made][::-1]
    settings = PostsSettings(
        **{
            **posts_settings.model_dump(),
            "redis_url": private_redis_url,
            "fanout_read_threshold": 3,
        }
    )
    async with api_instance(settings) as instance:
        assert await all_ids(instance, reader, "/posts/feed") == expected
        cached = set(await private_redis.zrangebyscore(key(reader.id), 0, "+inf"))
        assert cached == {made[1]["id"], made[3]["id"]}  # the regular author's only
        # Fan-out on write skips the star too.
        newer = [await create_post(posts, author, "newer") for author in (star, regular)]
        fan_out = FanOut(posts_db, FeedCache(private_redis, settings), settings)
        events = [
            Event.of(PostCreated.of({**p, "postId": p["id"], "timestamp": 0, "mediaCount": 0}))
            for p in newer
        ]
        assert await fan_out.handle(events) == []
        cached = set(await private_redis.zrangebyscore(key(reader.id), 0, "+inf"))
        assert newer[1]["id"] in cached
        assert newer[0]["id"] not in cached
        assert await all_ids(instance, reader, "/posts/feed") == [
            newer[1]["id"],
            newer[0]["id"],
            *expected,
        ]


async def test_without_redis_everything_is_answered_from_postgresql(
    posts: httpx.AsyncClient, posts_settings: PostsSettings, graph: Graph
) -> None:
    reader, writer = someone(), someone()
    await graph.follow(reader, writer)
    made = [(await create_post(posts, writer, f"post {n}", "followers"))["id"] for n in range(5)][
        ::-1
    ]
    async with api_instance(
        posts_settings, redis_url=f"redis://{DEAD_ADDRESS}/0", kafka_bootstrap_servers=DEAD_ADDRESS
    ) as no_redis:
        mine = await create_post(no_redis, reader, "written without Redis")
        expected = [mine["id"], *made]
        assert await all_ids(no_redis, reader, "/posts/feed", limit=2) == expected
        assert await all_ids(no_redis, reader, f"/posts/user/{writer.id}", limit=2) == made
        like = await no_redis.post(f"/posts/{made[0]}/like", headers=as_user(reader))
        assert like.status_code == 200
        comment = await no_redis.post(
            f"/posts/{made[0]}/comments", headers=as_user(reader), json={"content": "still here"}
        )
        assert comment.status_code == 201
        suggestion = await no_redis.post(
            "/posts/ai/suggest", headers=as_user(reader), json={"content": "sunny day at the beach"}
        )
        assert suggestion.status_code == 200
        ready = await no_redis.get("/ready")
        assert ready.status_code == 200, ready.text  # Redis is no dependency of readiness
    await shows(posts, reader, expected)  # and the instance with Redis agrees
