"""The posts service's ASGI app (`uvicorn --factory socialhub.posts.app:create_app`).

Each instance serves the API and, unless RUN_WORKERS=false, runs in the background: the outbox
relay (one active per database), one member of `posts-service` (the follow-graph replica,
USER_TOPIC), one member of `posts-feed` (fan-out of new posts into followers' cached feeds,
POST_TOPIC) and the sweep that removes the media of deleted posts.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from socialhub.contracts.events import POST_TOPIC, USER_TOPIC
from socialhub.kit.app import create_app as create_service_app
from socialhub.kit.app import resources
from socialhub.kit.events.consumer import BatchConsumer
from socialhub.kit.events.outbox import Outbox, OutboxRelay
from socialhub.kit.ratelimit import Limit, RateLimiter
from socialhub.posts.ai import create_engine
from socialhub.posts.comments import CommentService
from socialhub.posts.feed import FANOUT_CONSUMER_GROUP, FanOut, FeedCache, FeedReader
from socialhub.posts.graph import CONSUMER_GROUP, GraphReplica
from socialhub.posts.media import MediaPolicy, create_storage
from socialhub.posts.purge import sweep_deleted_media
from socialhub.posts.reactions import ReactionService
from socialhub.posts.routes import PostsApi, router
from socialhub.posts.service import PostService
from socialhub.posts.settings import MediaBackend, PostsSettings

# Fan-out writes whole batches in one pipeline: it may take longer than a page read.
FANOUT_REDIS_TIMEOUT_SECONDS = 10.0


def create_app(settings: PostsSettings | None = None) -> FastAPI:
    settings = settings or PostsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app) as res:
            database = await res.postgres(settings)
            # Redis only holds feeds, rebuilt from PostgreSQL: no readiness check, fail fast.
            redis = await res.redis(settings, fail_fast_seconds=settings.redis_timeout_seconds)
            fanout_redis = await res.redis(settings, fail_fast_seconds=FANOUT_REDIS_TIMEOUT_SECONDS)
            if settings.media is MediaBackend.LOCAL:
                settings.media_dir.mkdir(parents=True, exist_ok=True)
            storage = create_storage(settings)
            res.stack.push_async_callback(storage.close)

            outbox = Outbox(settings)
            cache = FeedCache(redis, settings)
            posts = PostService(database, outbox, storage, FeedReader(cache, settings))
            if settings.run_workers:
                res.background("outbox-relay", OutboxRelay(database, settings).run)
                res.background(
                    "graph-replica",
                    BatchConsumer(
                        settings,
                        topics=[USER_TOPIC],
                        group=CONSUMER_GROUP,
                        handler=GraphReplica(database, FeedCache(fanout_redis, settings)).handle,
                        batch_size=settings.consumer_batch_size,
                    ).run,
                )
                res.background(
                    "feed-fanout",
                    BatchConsumer(
                        settings,
                        topics=[POST_TOPIC],
                        group=FANOUT_CONSUMER_GROUP,
                        handler=FanOut(
                            database, FeedCache(fanout_redis, settings), settings
                        ).handle,
                        batch_size=settings.consumer_batch_size,
                    ).run,
                )
                res.periodic(
                    "media-purge",
                    lambda: sweep_deleted_media(database, storage, settings),
                    every_seconds=settings.media_purge_interval_seconds,
                )
            app.state.posts = PostsApi(
                posts=posts,
                comments=CommentService(posts, outbox, settings),
                reactions=ReactionService(posts, outbox),
                ai=create_engine(settings),
                media_policy=MediaPolicy.from_settings(settings),
                limiter=RateLimiter(redis, "posts"),
                ai_limit=Limit("ai_suggestions", settings.ai_suggest_limit_per_minute, 60),
            )
            yield

    return create_service_app("posts", settings, lifespan=lifespan, routers=[router])
