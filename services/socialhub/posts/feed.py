"""Home feeds: fan-out on write into Redis, fan-out on read for big accounts, PostgreSQL always.

The design (README.md, "Home feed") in short:

- Each active user has a Redis sorted set `posts:feed:<userId>`: post ids scored by creation time
  (ms), the newest `FEED_CACHE_SIZE` of the posts of the authors they follow. Written on
  `post.created` by the `posts-feed` consumer group (fan-out on write, spread over every
  instance by partition), only into feeds that exist: a feed nobody read for
  `FEED_CACHE_TTL_SECONDS` expires and costs nothing until it is read again and rebuilt.
- Authors with `FANOUT_READ_THRESHOLD` followers or more are not fanned out: their posts are
  read from PostgreSQL (one index range per author) and merged in when a feed is read. So are
  the reader's own posts, which makes a new post visible to its author at once.
- The cache holds ids only. Every page is read from PostgreSQL by primary key with the
  visibility rules applied at that moment, so deletions, edits, unfollows and blocks take effect
  at once without touching the sets.
- Redis is only an accelerator: when it fails or is slow the same page comes from one
  PostgreSQL query, and Redis is skipped for a short while before being tried again.
"""

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from socialhub.contracts.events import PostCreated, PostUpdated
from socialhub.kit.database import Database
from socialhub.kit.events.consumer import Rejected
from socialhub.kit.events.envelope import Event
from socialhub.kit.sql import Connection, Record
from socialhub.posts.models import Visibility, follower_counts, follows, posts
from socialhub.posts.pagination import Position, to_ms
from socialhub.posts.queries import (
    FEED_ON_READ,
    FEED_REBUILD,
    FEED_VISIBLE,
    HOME_FEED,
    LIVE_POST,
    after,
)
from socialhub.posts.settings import PostsSettings

log = logging.getLogger(__name__)

FANOUT_CONSUMER_GROUP = "posts-feed"
FANOUT_EVENTS = {model.event_type: model for model in (PostCreated, PostUpdated)}
# Markers kept in each set below every post score (scores are ms since the epoch, > 0):
# `_building` while a rebuild is under way (fan-out writes only into sets that exist, so posts
# committed during a rebuild still land), `_ready` once the set holds the feed.
BUILDING, READY = "_building", "_ready"
MARKER_SCORES = {BUILDING: -2, READY: -1}
CACHE_ERRORS = (RedisError, OSError, TimeoutError)

# Adds (score, id) pairs to a feed that exists, then trims it to the newest ARGV[1] posts.
ADD_TO_FEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
local cap = tonumber(ARGV[1])
local posts = redis.call('ZCOUNT', KEYS[1], 0, '+inf')
if posts > cap then
  local markers = redis.call('ZCOUNT', KEYS[1], '-inf', '(0')
  redis.call('ZREMRANGEBYRANK', KEYS[1], markers, markers + posts - cap - 1)
end
return 1
"""


class CacheGuard:
    """Skips Redis for a while after it failed: a dead cache costs one error, not one per call."""

    def __init__(self, retry_after_seconds: float) -> None:
        self.retry_after = retry_after_seconds
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        if self._down_until == 0.0:
            log.warning("feed cache unavailable, reading feeds from PostgreSQL: %r", exc)
        self._down_until = time.monotonic() + self.retry_after

    def succeeded(self) -> None:
        if self._down_until != 0.0:
            log.info("feed cache available again")
            self._down_until = 0.0


class FeedCache:
    """The Redis side: one sorted set per user."""

    def __init__(self, redis: Redis, settings: PostsSettings) -> None:
        self.redis = redis
        self.size = settings.feed_cache_size
        self.ttl = settings.feed_cache_ttl_seconds
        self.guard = CacheGuard(retry_after_seconds=1.0)
        self._add = redis.register_script(ADD_TO_FEED)

    @staticmethod
    def key(user: uuid.UUID) -> str:
        return f"posts:feed:{user}"

    async def add(self, additions: dict[uuid.UUID, list[tuple[int, uuid.UUID]]]) -> None:
        """Fan-out: each user's new (ms, post id) entries, into the feeds that exist."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, entries in additions.items():
                args: list[Any] = [self.size]
                for ms, post_id in entries:
                    args += [ms, str(post_id)]
                await self._add(keys=[self.key(user)], args=args, client=pipe)
            await pipe.execute()

    async def invalidate(self, users: Iterable[uuid.UUID]) -> None:
        """Drop feeds the graph changed (rebuilt on the next read). Failures are only logged:
        reads filter by the current graph anyway, so a stale feed at worst misses old posts of
        a newly followed author until it expires."""
        keys = [self.key(user) for user in users]
        if not keys:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.unlink(key)
                await pipe.execute()
        except CACHE_ERRORS as exc:
            log.warning("could not invalidate %d feeds: %r", len(keys), exc)

    async def begin_rebuild(self, user: uuid.UUID) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key(user), {BUILDING: MARKER_SCORES[BUILDING]})
            pipe.expire(self.key(user), self.ttl)
            await pipe.execute()

    async def finish_rebuild(self, user: uuid.UUID, entries: list[tuple[int, uuid.UUID]]) -> None:
        key = self.key(user)
        async with self.redis.pipeline(transaction=True) as pipe:
            if entries:
                pipe.zadd(key, {str(post_id): ms for ms, post_id in entries})
            pipe.zadd(key, {READY: MARKER_SCORES[READY]})
            pipe.zrem(key, BUILDING)
            pipe.expire(key, self.ttl)
            await pipe.execute()

    async def window(
        self, user: uuid.UUID, before: Position | None, offset: int, count: int
    ) -> "Window":
        """Up to `count` entries from `offset` at or below `before`'s time, newest first, and
        the set's tail, in one round trip. Reading a feed keeps it alive for another TTL."""
        key = self.key(user)
        top: float | str = before.ms if before else "+inf"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(key, READY)
            pipe.zrevrangebyscore(key, top, 0, start=offset, num=count, withscores=True)
            pipe.zcount(key, 0, "+inf")
            pipe.zrangebyscore(key, 0, "+inf", start=0, num=1, withscores=True)
            pipe.expire(key, self.ttl)
            ready, found, held, oldest, _ = await pipe.execute()
        return Window(
            ready=ready is not None,
            entries=[(int(score), uuid.UUID(member)) for member, score in found],
            # a set holding fewer posts than its cap was never trimmed since it was built, so
            # nothing older than its oldest entry is missing from it
            complete=held < self.size,
            oldest=Position(int(oldest[0][1]), uuid.UUID(oldest[0][0])) if oldest else None,
        )


@dataclass(frozen=True)
class Window:
    ready: bool
    entries: list[tuple[int, uuid.UUID]]
    complete: bool
    oldest: Position | None


class FanOut:
    """The `posts-feed` consumer: pushes new posts into their author's followers' feeds."""

    def __init__(self, database: Database, cache: FeedCache, settings: PostsSettings) -> None:
        self.database = database
        self.cache = cache
        self.threshold = settings.fanout_read_threshold

    async def handle(self, events: Sequence[Event]) -> list[Rejected]:
        rejected: list[Rejected] = []
        post_ids: set[uuid.UUID] = set()
        for event in events:
            model = FANOUT_EVENTS.get(event.event_type)
            if model is None:
                continue
            try:
                post_ids.add(model.of(event.data).post_id)
            except ValidationError as exc:
                rejected.append(Rejected(event, f"invalid {event.event_type} data: {exc}"[:500]))
        if post_ids:
            await self._fan_out(post_ids)
        return rejected

    async def _fan_out(self, post_ids: set[uuid.UUID]) -> None:
        """From the posts as they are now: deleted or private ones are skipped, and a post
        whose visibility was widened by an edit gets fanned out then (adding is idempotent)."""
        async with self.database.transaction() as session:
            found = (
                await session.execute(
                    select(posts.c.id, posts.c.author_id, posts.c.created_at).where(
                        posts.c.id.in_(post_ids),
                        LIVE_POST,
                        posts.c.visibility != Visibility.PRIVATE.value,
                    )
                )
            ).all()
            authors = {row.author_id for row in found}
            audience = (
                await session.execute(
                    select(follows.c.following_id, follows.c.follower_id)
                    .select_from(
                        follows.outerjoin(
                            follower_counts, follower_counts.c.user_id == follows.c.following_id
                        )
                    )
                    .where(
                        follows.c.following_id.in_(authors),
                        follows.c.active,
                        (follower_counts.c.followers.is_(None))
                        | (follower_counts.c.followers < self.threshold),
                    )
                )
            ).all()
        followers: dict[uuid.UUID, list[uuid.UUID]] = {}
        for author, follower in audience:
            followers.setdefault(author, []).append(follower)
        additions: dict[uuid.UUID, list[tuple[int, uuid.UUID]]] = {}
        for row in found:
            for follower in followers.get(row.author_id, ()):
                additions.setdefault(follower, []).append((to_ms(row.created_at), row.id))
        if additions:
            await self.cache.add(additions)


class FeedReader:
    """One page of a home feed: from the cache when it can, from PostgreSQL when it must."""

    def __init__(self, cache: FeedCache, settings: PostsSettings) -> None:
        self.cache = cache
        self.threshold = settings.fanout_read_threshold

    async def page(
        self, connection: Connection, viewer: uuid.UUID, position: Position | None, count: int
    ) -> list[Record]:
        """Up to `count` posts after `position`, newest first."""
        guard = self.cache.guard
        if guard.available:
            try:
                rows = await self._cached_page(connection, viewer, position, count)
            except CACHE_ERRORS as exc:
                guard.failed(exc)
            else:
                guard.succeeded()
                if rows is not None:
                    return rows
        return await self._database_page(connection, viewer, position, count)

    async def _database_page(
        self, connection: Connection, viewer: uuid.UUID, position: Position | None, count: int
    ) -> list[Record]:
        return await HOME_FEED.fetch(
            connection, {"viewer": viewer, "limit": count, **after(position)}
        )

    async def _cached_page(
        self, connection: Connection, viewer: uuid.UUID, position: Position | None, count: int
    ) -> list[Record] | None:
        """None when the feed is not in the cache even after a rebuild (evicted meanwhile)."""
        found = await self._from_cache(connection, viewer, position, count)
        if found is None:
            await self._rebuild(connection, viewer)
            found = await self._from_cache(connection, viewer, position, count)
            if found is None:
                return None
        cached, last = found
        # The viewer's own posts and big accounts' posts: fan-out on read.
        rows = cached + await FEED_ON_READ.fetch(
            connection,
            {"viewer": viewer, "threshold": self.threshold, "limit": count, **after(position)},
        )
        if last is not None and not last.complete:
            # Older than the oldest cached post (the set is capped): from the database.
            floor = last.oldest
            below = min(position, floor) if position and floor else (floor or position)
            rows += await self._database_page(connection, viewer, below, count)
        unique = {row["id"]: row for row in rows}
        return sorted(unique.values(), key=Position.of, reverse=True)[:count]

    async def _from_cache(
        self,
        connection: Connection,
        viewer: uuid.UUID,
        position: Position | None,
        count: int,
    ) -> tuple[list[Record], Window | None] | None:
        """(visible posts, the cache's window that ran out of entries, or None when the page
        filled first), or None if there is no feed."""
        collected: list[Record] = []
        offset, chunk = 0, max(2 * count, 40)
        while len(collected) < count:
            window = await self.cache.window(viewer, position, offset, chunk)
            if not window.ready:
                return None
            offset += len(window.entries)
            ids = [
                post_id
                for ms, post_id in window.entries
                if position is None or Position(ms, post_id) < position
            ]
            collected += await self._visible(connection, viewer, ids)
            if len(window.entries) < chunk:
                return collected, window
        return collected, None

    async def _visible(
        self, connection: Connection, viewer: uuid.UUID, ids: list[uuid.UUID]
    ) -> list[Record]:
        """The cached ids the viewer may still see, as full rows, in cache order."""
        if not ids:
            return []
        rows = await FEED_VISIBLE.fetch(connection, {"viewer": viewer, "ids": ids})
        by_id = {row["id"]: row for row in rows}
        return [by_id[post_id] for post_id in ids if post_id in by_id]

    async def _rebuild(self, connection: Connection, viewer: uuid.UUID) -> None:
        """Load the newest posts of the fanned-out authors the viewer follows."""
        await self.cache.begin_rebuild(viewer)
        rows = await FEED_REBUILD.fetch(
            connection,
            {
                "viewer": viewer,
                "threshold": self.threshold,
                "limit": self.cache.size,
                **after(None),
            },
        )
        await self.cache.finish_rebuild(viewer, [(to_ms(r["created_at"]), r["id"]) for r in rows])
