"""The users service's ASGI app (`uvicorn --factory socialhub.users.app:create_app`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from socialhub.contracts.events import POST_TOPIC, USER_TOPIC
from socialhub.kit.app import create_app as create_service_app
from socialhub.kit.app import resources
from socialhub.kit.events.consumer import BatchConsumer
from socialhub.kit.events.outbox import Outbox, OutboxRelay
from socialhub.users.cache import ProfileCache
from socialhub.users.events import CONSUMER_GROUP, EventHandler, prune_processed_events
from socialhub.users.routes import router
from socialhub.users.service import UsersService
from socialhub.users.settings import UsersSettings

PRUNE_EVERY_SECONDS = 3600.0  # processed event ids live for days: hourly is plenty


def create_app(settings: UsersSettings | None = None) -> FastAPI:
    settings = settings or UsersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app) as res:
            database = await res.postgres(settings)
            # Redis is only a cache here: an instance without it answers from PostgreSQL.
            redis = await res.redis(settings, fail_fast_seconds=settings.redis_timeout_seconds)
            cache = ProfileCache(redis, settings)
            app.state.profile_cache = cache
            app.state.users = UsersService(
                database,
                cache,
                Outbox(settings),
                new_user_wait_seconds=settings.new_user_wait_seconds,
            )
            res.background("outbox-relay", OutboxRelay(database, settings).run)
            consumer = BatchConsumer(
                settings,
                topics=[USER_TOPIC, POST_TOPIC],
                group=CONSUMER_GROUP,
                handler=EventHandler(database, cache),
            )
            res.background("event-consumer", consumer.run)
            retention = timedelta(days=settings.processed_events_retention_days)
            res.periodic(
                "processed-events-pruner",
                lambda: prune_processed_events(database, retention),
                every_seconds=PRUNE_EVERY_SECONDS,
            )
            yield

    return create_service_app("users", settings, lifespan=lifespan, routers=[router])
